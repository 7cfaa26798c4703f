# pragma version 0.4.3
"""
@title DealEscrow
@notice One OTC deal: both legs (DVP) or one escrowed leg (ESCROWED), settled
        in tranches with marks, approvals, release signatures, disputes,
        refunds, expiry and commissions fixed at creation.
@dev Deployed once as an implementation; every deal is an EIP-1167 clone made
     by EscrowFactory whose code carries the packed terms after the 45-byte
     proxy (see modules/terms_layout.vy). Terms are therefore immutable and
     cost no storage; the only storage is the state machine.
     Settlement modes:
       DVP       both legs on chain; both sides fund; a release swaps the
                 tranche's base and quote atomically.
       ESCROWED  one leg off chain; the on-chain leg is held; a marker marks a
                 tranche delivered (evidence hash), approvers accept it, the
                 release signers release it.
     Payouts: base leg to the base receiver, quote leg to the quote receiver;
     the fee leg pays floor(amount * bps / 10000) to the platform and to each
     introducer, and the receiver gets the exact remainder. Refunds go to the
     funder of the leg (seller for base, buyer for quote).
@custom:security No owner, no upgrade, no admin path: only the parties named
     in the terms can act, and every payout goes to an address named in them.
     All mutating entry points are non-reentrant (transient lock) and follow
     checks-effects-interactions. A payee whose transfer fails (blocklist) is
     credited a pull balance instead of blocking the deal.
     Compliance gate: a deal whose terms carry a policy id (platform word,
     bits 224-255) requires the principal (buyer or seller) to hold a
     KYCRegistry attestation of that policy in the deal's scope (a desk
     deal's scope is its desk, (1 << 160) | desk id, so a member proves
     once for all the desk's deals; any other deal's scope is its own
     address) that lasts until the final expiry to fund a leg (fund,
     credit, sweep, the factory's create-and-fund and accept_offer, which
     also checks that both principals, the accepting party and the maker,
     are compliant), so no funder can back out by letting its attestation
     lapse; and both principals to hold an unexpired one at a release
     payout (release, a resolver's split paying a receiver; a default
     release by settle_dispute refunds instead). Nothing else is gated:
     refunds, cancel, expiry, disputes, splits back to the funders and pull
     claims stay open, so an attestation expiring mid-deal (a principal
     that funds nothing) blocks releases but never traps funds. The registry is an immutable of the implementation (a
     constructor argument; zero: no registry, and a deal with a policy can
     then never be funded).
"""

from ethereum.ercs import IERC20
from interfaces import IDealEscrow
from interfaces import IKYCRegistry
import modules.terms_layout as tl
import modules.safe_token as safe_token

implements: IDealEscrow

# Length of the EIP-1167 runtime; the packed terms start right after it.
DATA_OFFSET: constant(uint256) = 45

# Deal state word: funding flags in the low byte, 4-bit tranche statuses above.
BASE_FUNDED: constant(uint256) = 1
QUOTE_FUNDED: constant(uint256) = 2
CANCELLED: constant(uint256) = 4
EXPIRED: constant(uint256) = 8
# set by the factory right after it creates the clone: only registered deals
# accept deposits (a clone made by anyone else stays inert)
REGISTERED: constant(uint256) = 16
STATUS_SHIFT: constant(uint256) = 8
# a desk deal's desk id (set once by `register`; zero: not a desk deal), above
# the 32 tranche statuses (bits 8-135)
DESK_SHIFT: constant(uint256) = 192
MAX_DESK_ID: constant(uint256) = 2**64 - 1
# desk scopes sit above every address (KYCRegistry scopes)
DESK_SCOPE_TAG: constant(uint256) = 1 << 160

# Tranche data word.
SIGS_SHIFT: constant(uint256) = 16
MARKED_AT_SHIFT: constant(uint256) = 32
DISPUTED_AT_SHIFT: constant(uint256) = 64
# the disputant's own approval and signature bits, as it could give them
# (its party index in the low and the high 16 bits), for settle_dispute
DISPUTANT_SHIFT: constant(uint256) = 96

# the resolver word's CONF_GATED bit
GATED: constant(uint256) = 1 << tl.CONF_GATED

# Deal phases reported by `phase()`.
PHASE_FUNDING: constant(uint256) = 0
PHASE_ACTIVE: constant(uint256) = 1
PHASE_SETTLED: constant(uint256) = 2
PHASE_CANCELLED: constant(uint256) = 3
PHASE_EXPIRED: constant(uint256) = 4

MODE_DVP: constant(uint256) = 0
MODE_ESCROWED: constant(uint256) = 1

FACTORY: immutable(address)
IMPLEMENTATION: immutable(address)
# the KYCRegistry that deals with a compliance policy ask (zero: none)
KYC_REGISTRY: immutable(address)

deal_state: uint256
tranche_data: HashMap[uint256, uint256]

# Pull balances of payees whose transfer failed: payee => token => amount.
claimable: public(HashMap[address, HashMap[address, uint256]])
# Sum of claimable balances per token (what the escrow still owes payees).
unclaimed: public(HashMap[address, uint256])


@deploy
def __init__(kyc_registry: address):
    """
    @param kyc_registry The KYCRegistry of compliance gates (zero: none).
           Deployments that predate the gate pass no argument: it reads as
           zero.
    """
    FACTORY = msg.sender
    IMPLEMENTATION = self
    KYC_REGISTRY = kyc_registry


# ---------------------------------------------------------------- funding


@external
@nonreentrant
def fund():
    """
    @notice Deposit the caller's leg in full (seller: base, buyer: quote).
            The caller must have approved this deal for the leg amount.
    """
    self._fund(msg.sender)


@external
@nonreentrant
def credit(party: address):
    """
    @notice Factory-only: the factory has just moved `party`'s leg into this
            deal from `party`'s allowance to the factory (create-and-fund,
            accepted offers, fund_deal); record it after the same checks as
            `fund()`.
    """
    assert msg.sender == FACTORY, "only factory"
    leg: uint256 = 0
    token: address = empty(address)
    amount: uint256 = 0
    leg, token, amount = self._open_leg(party, True)
    self.deal_state = self.deal_state | (1 << leg)
    # the factory checked the exact transfer; the deal checks it holds it
    assert staticcall IERC20(token).balanceOf(self) >= amount, "leg not received"
    log IDealEscrow.Funded(leg=leg, funder=party, amount=amount)


@external
def register(acceptor: address, desk_id: uint256):
    """
    @notice Factory-only, once: marks this clone as a deal the factory
            created from validated terms.
    @param acceptor The party accepting a signed offer (zero for a plain
           creation): on a gated deal both principals, the acceptor and the
           maker, must pass the compliance gate.
    @param desk_id The desk a desk deal was created for (zero: none); it
           becomes the deal's compliance scope.
    """
    assert msg.sender == FACTORY, "only factory"
    assert self != IMPLEMENTATION, "implementation"
    assert self.deal_state == 0, "already registered"
    assert desk_id <= MAX_DESK_ID, "desk id too large"
    # the scope must be set before the gate below reads it
    self.deal_state = REGISTERED | (desk_id << DESK_SHIFT)
    if acceptor != empty(address):
        policy: uint256 = self._policy(self._conf())
        if policy != 0:
            self._require_compliant(acceptor, policy)
            maker: address = self._party_wallet(tl.P_BUYER)
            if maker == acceptor:
                maker = self._party_wallet(tl.P_SELLER)
            assert self._is_compliant(maker, policy), "maker not compliant"


@external
@nonreentrant
def cancel_unfunded():
    """
    @notice After the funding deadline, if a leg was not funded, return every
            deposit to its funder. Anyone may call.
    """
    conf: uint256 = self._conf()
    state: uint256 = self.deal_state
    assert state & (CANCELLED | EXPIRED) == 0, "deal closed"
    assert not self._is_funded(conf, state), "deal is funded"
    assert block.timestamp > tl._field(self._timers(), tl.CONF_FUNDING_DEADLINE, tl.MASK_32), "funding open"
    self.deal_state = state | CANCELLED
    base_back: uint256 = 0
    quote_back: uint256 = 0
    base_back, quote_back = self._return_deposits(state)
    log IDealEscrow.Cancelled(caller=msg.sender, base_amount=base_back, quote_amount=quote_back)


# ------------------------------------------------------------ tranche flow


@external
@nonreentrant
def mark(tranche: uint256, evidence: bytes32):
    """
    @notice ESCROWED only: a marker states that the off-chain leg of `tranche`
            was delivered, with an evidence hash (BTC txid, wire reference).
    """
    conf: uint256 = self._conf()
    assert self._mode(conf) == MODE_ESCROWED, "no marks in DVP"
    assert self._roles_of(msg.sender, conf)[0] & tl.ROLE_MARKER != 0, "not a marker"
    state: uint256 = self._active_state(conf)
    assert self._status(state, tranche) == tl.PENDING, "tranche not pending"
    assert block.timestamp <= self._deadline(self._tranche_word(conf, tranche)), "delivery deadline passed"
    self.deal_state = self._set_status(state, tranche, tl.MARKED)
    self.tranche_data[tranche] = self.tranche_data[tranche] | (block.timestamp << MARKED_AT_SHIFT)
    log IDealEscrow.Marked(tranche=tranche, marker=msg.sender, evidence=evidence)


@external
@nonreentrant
def approve(tranche: uint256):
    """
    @notice An approver accepts `tranche` (ESCROWED: after it was marked;
            DVP: before its deadline).
    """
    conf: uint256 = self._conf()
    roles: uint256 = 0
    index: uint256 = 0
    roles, index = self._roles_of(msg.sender, conf)
    assert roles & tl.ROLE_APPROVER != 0, "not an approver"
    state: uint256 = self._active_state(conf)
    self._assert_releasable(conf, state, tranche)
    data: uint256 = self.tranche_data[tranche]
    bit: uint256 = 1 << index
    assert data & bit == 0, "already approved"
    data = data | bit
    self.tranche_data[tranche] = data
    log IDealEscrow.Approved(tranche=tranche, approver=msg.sender, approvals=self._popcount(data & tl.MASK_16))


@external
@nonreentrant
def release(tranche: uint256):
    """
    @notice Sign and, once the terms' conditions hold, pay out `tranche`.
    @dev A release signer's call records its signature. The payout happens
         in the call that finds: approvals >= approval threshold, signatures
         >= release threshold and the unlock time reached. With a release
         threshold of 0 anyone may trigger it. ESCROWED: once the approval
         window after the mark has passed undisputed, anyone may trigger it.
    """
    conf: uint256 = self._conf()
    state: uint256 = self._active_state(conf)
    self._assert_releasable(conf, state, tranche)
    word: uint256 = self._tranche_word(conf, tranche)
    data: uint256 = self.tranche_data[tranche]
    mode: uint256 = self._mode(conf)

    window: uint256 = tl._field(self._windows(), tl.CONF_APPROVAL_WINDOW, tl.MASK_32)
    window_passed: bool = (
        mode == MODE_ESCROWED
        and window > 0
        # cannot overflow: both terms are below 2**33
        and block.timestamp >= unsafe_add(tl._field(data, MARKED_AT_SHIFT, tl.MASK_32), window)
    )
    signed: bool = False
    if tl._field(conf, tl.CONF_RELEASE_THRESHOLD, tl.MASK_8) > 0:
        roles: uint256 = 0
        index: uint256 = 0
        roles, index = self._roles_of(msg.sender, conf)
        bit: uint256 = 1 << (index + SIGS_SHIFT)
        if roles & tl.ROLE_SIGNER != 0 and data & bit == 0:
            data = data | bit
            signed = True
            log IDealEscrow.Signed(
                tranche=tranche, signer=msg.sender, signatures=self._popcount((data >> SIGS_SHIFT) & tl.MASK_16)
            )

    ready: bool = window_passed or self._quorum(conf, data)
    ready = ready and block.timestamp >= self._unlock(word)
    if not ready:
        assert signed, "release conditions not met"
        self.tranche_data[tranche] = data
        return

    # compliance gate: both principals must still hold their attestation
    # (the flag test is inline: an ungated deal pays no internal call)
    if conf & GATED != 0:
        policy: uint256 = self._fees() >> tl.CONF_POLICY_ID
        self._require_compliant(self._party_wallet(tl.P_BUYER), policy)
        self._require_compliant(self._party_wallet(tl.P_SELLER), policy)

    # signature bits are kept only while a tranche is pending: once it pays
    # out, the Signed event is the record
    self.deal_state = self._set_status(state, tranche, tl.RELEASED)
    base_amount: uint256 = 0
    quote_amount: uint256 = 0
    base_amount, quote_amount = self._on_chain_amounts(conf, word)
    fees: uint256 = self._pay_receivers(conf, base_amount, quote_amount)
    log IDealEscrow.Released(
        tranche=tranche, caller=msg.sender, base_amount=base_amount, quote_amount=quote_amount, fees=fees
    )


@external
@nonreentrant
def refund(tranche: uint256):
    """
    @notice After a tranche's deadline passed while it was still pending
            (ESCROWED: never marked; DVP: never released), return its amounts
            to the funders. Anyone may call.
    """
    conf: uint256 = self._conf()
    state: uint256 = self._active_state(conf)
    assert self._status(state, tranche) == tl.PENDING, "tranche not pending"
    word: uint256 = self._tranche_word(conf, tranche)
    assert block.timestamp > self._deadline(word), "deadline not passed"
    self.deal_state = self._set_status(state, tranche, tl.REFUNDED)
    base_amount: uint256 = 0
    quote_amount: uint256 = 0
    base_amount, quote_amount = self._on_chain_amounts(conf, word)
    self._pay_funders(conf, base_amount, quote_amount)
    log IDealEscrow.Refunded(tranche=tranche, caller=msg.sender, base_amount=base_amount, quote_amount=quote_amount)


# ---------------------------------------------------------------- disputes


@external
@nonreentrant
def dispute(tranche: uint256, reason: bytes32):
    """
    @notice The buyer or the seller freezes a pending or marked tranche.
    @dev Allowed only while the dispute timeout still ends before the final
         expiry, so the default outcome is always reachable; a marked
         tranche of an ESCROWED deal with an approval window only within
         that window after the mark.
    """
    conf: uint256 = self._conf()
    roles: uint256 = 0
    index: uint256 = 0
    roles, index = self._roles_of(msg.sender, conf)
    assert roles & (tl.ROLE_BUYER | tl.ROLE_SELLER) != 0, "not buyer or seller"
    state: uint256 = self._active_state(conf)
    status: uint256 = self._status(state, tranche)
    word: uint256 = self._tranche_word(conf, tranche)
    windows: uint256 = self._windows()
    data: uint256 = self.tranche_data[tranche]
    own: uint256 = 0
    if status == tl.PENDING:
        assert block.timestamp <= self._deadline(word), "deadline passed"
    else:
        assert status == tl.MARKED, "tranche not open"
        # ESCROWED with an approval window: silence within the window
        # accepts the delivery (anyone may then release), so it closes
        # disputes of the mark too (the same bound as release's); only
        # ESCROWED tranches are ever marked
        window: uint256 = tl._field(windows, tl.CONF_APPROVAL_WINDOW, tl.MASK_32)
        # cannot overflow: both terms are below 2**33
        assert window == 0 or block.timestamp < unsafe_add(
            tl._field(data, MARKED_AT_SHIFT, tl.MASK_32), window
        ), "approval window passed"
        # the payer's (the escrowed leg's funder's) silence would have
        # accepted for every approver and signer: so does a contest it
        # loses by default
        payer: uint256 = tl.ROLE_SELLER
        if tl._flag(conf, tl.CONF_QUOTE_ON_CHAIN):
            payer = tl.ROLE_BUYER
        if window > 0 and roles & payer != 0:
            own = tl.MASK_32
    # strictly before: settle_dispute must find a second at or after the
    # timeout that is still before the final expiry
    # cannot overflow: timestamp < 2**64 and the timeout < 2**32
    assert (
        unsafe_add(block.timestamp, tl._field(windows, tl.CONF_DISPUTE_TIMEOUT, tl.MASK_32))
        < tl._field(self._timers(), tl.CONF_FINAL_EXPIRY, tl.MASK_32)
    ), "too close to final expiry"
    self.deal_state = self._set_status(state, tranche, tl.DISPUTED)
    if roles & tl.ROLE_APPROVER != 0:
        own = own | (1 << index)
    if roles & tl.ROLE_SIGNER != 0:
        own = own | (1 << (index + SIGS_SHIFT))
    self.tranche_data[tranche] = data | (block.timestamp << DISPUTED_AT_SHIFT) | (own << DISPUTANT_SHIFT)
    log IDealEscrow.Disputed(tranche=tranche, party=msg.sender, reason=reason)


@external
@nonreentrant
def resolve(tranche: uint256, base: IDealEscrow.Split, quote: IDealEscrow.Split):
    """
    @notice The resolver splits a disputed tranche. Per on-chain leg the three
            parts must add up to the tranche's amount exactly; the resolver's
            part is capped by the terms' resolver fee. Off-chain legs: zeros.
            Commissions apply to the receiver's part of the fee leg.
    """
    conf: uint256 = self._conf()
    assert msg.sender == self._party_wallet(tl.P_RESOLVER), "not the resolver"
    state: uint256 = self._active_state(conf)
    assert self._status(state, tranche) == tl.DISPUTED, "tranche not disputed"
    word: uint256 = self._tranche_word(conf, tranche)
    base_amount: uint256 = 0
    quote_amount: uint256 = 0
    base_amount, quote_amount = self._on_chain_amounts(conf, word)
    fee_cap: uint256 = tl._field(self._fees(), tl.CONF_RESOLVER_FEE_BPS, tl.MASK_16)
    self._check_split(base, base_amount, fee_cap)
    self._check_split(quote, quote_amount, fee_cap)
    # compliance gate: paying a receiver is a release; splits back to the
    # funders (and the resolver's fee) stay open
    if conf & GATED != 0 and (base.to_receiver > 0 or quote.to_receiver > 0):
        policy: uint256 = self._fees() >> tl.CONF_POLICY_ID
        self._require_compliant(self._party_wallet(tl.P_BUYER), policy)
        self._require_compliant(self._party_wallet(tl.P_SELLER), policy)
    self.deal_state = self._set_status(state, tranche, tl.RESOLVED)
    self._pay_split(conf, base, quote)
    log IDealEscrow.Resolved(tranche=tranche, resolver=msg.sender, base=base, quote=quote, by_default=False)


@external
@nonreentrant
def settle_dispute(tranche: uint256):
    """
    @notice When the resolver has not acted within the dispute timeout, anyone
            applies the default outcome fixed in the terms (refund or release).
            A default release of an ESCROWED tranche that was never marked
            delivered refunds instead: a dispute cannot stand in for delivery.
            So does one of a gated deal while a principal is not compliant,
            and one the release rules would not allow with the disputant's
            own approval and signature counted: a default stands in for the
            disputant's consent (it lost its contest), never for anyone
            else's, so a party cannot dispute its own payment to skip the
            approvals and signatures the terms require.
    """
    conf: uint256 = self._conf()
    state: uint256 = self._active_state(conf)
    assert self._status(state, tranche) == tl.DISPUTED, "tranche not disputed"
    data: uint256 = self.tranche_data[tranche]
    disputed_at: uint256 = tl._field(data, DISPUTED_AT_SHIFT, tl.MASK_32)
    # cannot overflow: both terms are below 2**33
    assert (
        block.timestamp >= unsafe_add(disputed_at, tl._field(self._windows(), tl.CONF_DISPUTE_TIMEOUT, tl.MASK_32))
    ), "dispute timeout not reached"
    word: uint256 = self._tranche_word(conf, tranche)
    base_amount: uint256 = 0
    quote_amount: uint256 = 0
    base_amount, quote_amount = self._on_chain_amounts(conf, word)
    base: IDealEscrow.Split = empty(IDealEscrow.Split)
    quote: IDealEscrow.Split = empty(IDealEscrow.Split)
    # a default release needs a delivery claim: DVP swaps both legs atomically;
    # ESCROWED releases only a tranche that was marked before the dispute
    delivered: bool = self._mode(conf) == MODE_DVP or tl._field(data, MARKED_AT_SHIFT, tl.MASK_32) != 0
    # a default release is a release: with a principal no longer compliant
    # the tranche is refunded instead (funds are never trapped)
    if (
        tl._field(conf, tl.CONF_DISPUTE_DEFAULT, 1) == tl.DEFAULT_RELEASE
        and delivered
        # the thresholds with the disputant's own approval and signature
        and self._quorum(conf, data | (data >> DISPUTANT_SHIFT))
        and self._principals_ok(conf)
    ):
        assert block.timestamp >= self._unlock(word), "tranche locked"
        base.to_receiver = base_amount
        quote.to_receiver = quote_amount
    else:
        base.to_funder = base_amount
        quote.to_funder = quote_amount
    self.deal_state = self._set_status(state, tranche, tl.RESOLVED)
    self._pay_split(conf, base, quote)
    log IDealEscrow.Resolved(tranche=tranche, resolver=msg.sender, base=base, quote=quote, by_default=True)


# ------------------------------------------------------------ expiry, pull


@external
@nonreentrant
def expire():
    """
    @notice After the final expiry, return every unreleased amount to whoever
            deposited it, in one call. Anyone may call. A settled deal (every
            tranche paid out) has nothing to expire.
    """
    conf: uint256 = self._conf()
    state: uint256 = self.deal_state
    assert state & (CANCELLED | EXPIRED) == 0, "deal closed"
    assert block.timestamp >= tl._field(self._timers(), tl.CONF_FINAL_EXPIRY, tl.MASK_32), "before final expiry"
    base_back: uint256 = 0
    quote_back: uint256 = 0
    if not self._is_funded(conf, state):
        self.deal_state = state | EXPIRED
        base_back, quote_back = self._return_deposits(state)
    else:
        open_tranches: bool = False
        n: uint256 = tl._field(conf, tl.CONF_N_TRANCHES, tl.MASK_8)
        for t: uint256 in range(tl.MAX_TRANCHES):
            if t >= n:
                break
            status: uint256 = self._status(state, t)
            if status == tl.PENDING or status == tl.MARKED or status == tl.DISPUTED:
                open_tranches = True
                state = self._set_status(state, t, tl.REFUNDED)
                base_amount: uint256 = 0
                quote_amount: uint256 = 0
                base_amount, quote_amount = self._on_chain_amounts(conf, self._tranche_word(conf, t))
                base_back += base_amount
                quote_back += quote_amount
        assert open_tranches, "deal settled"
        self.deal_state = state | EXPIRED
        self._pay_funders(conf, base_back, quote_back)
    log IDealEscrow.Expired(caller=msg.sender, base_amount=base_back, quote_amount=quote_back)


@external
@nonreentrant
def claim(token: address, recipient: address):
    """
    @notice Withdraw the caller's pull balance of `token` (credited when a
            transfer to it failed) to `recipient`, e.g. a non-blocked wallet.
            Not to this deal or its factory: nothing could ever pay it out
            from there (the deal's accounting does not count it).
    """
    amount: uint256 = self.claimable[msg.sender][token]
    assert amount > 0, "nothing to claim"
    assert recipient != empty(address), "zero recipient"
    assert recipient != self and recipient != FACTORY, "recipient would lock the funds"
    self.claimable[msg.sender][token] = 0
    self.unclaimed[token] -= amount
    assert safe_token._try_transfer(token, recipient, amount), "transfer failed"
    log IDealEscrow.Claimed(payee=msg.sender, token=token, recipient=recipient, amount=amount)


# ------------------------------------------------------------------- views


@view
@external
def factory() -> address:
    return FACTORY


@view
@external
def funding_leg(party: address) -> (uint256, address, uint256):
    """
    @notice The leg `party` can fund now (0 base, 1 quote), its token and
            amount; reverts with the reason it cannot. On a gated deal the
            party's compliance is not part of it: it is checked when the
            leg is credited (fund, the factory's credit), so a temporary
            lapse never makes a deposit address return its deposit.
    """
    return self._open_leg(party, False)


@view
@external
def compliant(who: address) -> bool:
    """
    @notice Whether `who` passes this deal's compliance gate now: true when
            the deal has no policy, else `who` must hold an unexpired
            attestation of the policy in this deal's scope.
    """
    policy: uint256 = self._policy(self._conf())
    return policy == 0 or (KYC_REGISTRY != empty(address) and self._is_compliant(who, policy))


@view
@external
def scope() -> uint256:
    """
    @notice The KYCRegistry scope principals prove in: (1 << 160) | desk id
            for a desk deal, else this deal's address.
    """
    return self._scope()


@view
@external
def desk_id() -> uint256:
    """
    @notice The desk this deal was created for (zero: not a desk deal).
    """
    return self.deal_state >> DESK_SHIFT


@view
@external
def policy_id() -> uint256:
    """
    @notice The KYCRegistry policy id principals must hold (0: none).
    """
    return self._policy(self._conf())


@view
@external
def kyc_registry() -> address:
    return KYC_REGISTRY


@view
@external
def registered() -> bool:
    """
    @notice True when the factory created this deal from validated terms.
    """
    return self.deal_state & REGISTERED != 0


@view
@external
def terms() -> IDealEscrow.Terms:
    """
    @notice The full terms of this deal, decoded from the clone's code.
    """
    conf: uint256 = self._conf()
    w0: uint256 = self._word(0)
    w1: uint256 = self._word(1)
    t: IDealEscrow.Terms = empty(IDealEscrow.Terms)
    t.base_token = tl._wallet(w0)
    t.base_amount = w0 >> 160
    t.base_on_chain = tl._flag(conf, tl.CONF_BASE_ON_CHAIN)
    t.quote_token = tl._wallet(w1)
    t.quote_amount = w1 >> 160
    t.quote_on_chain = tl._flag(conf, tl.CONF_QUOTE_ON_CHAIN)
    n: uint256 = tl._field(conf, tl.CONF_N_PARTIES, tl.MASK_8)
    for i: uint256 in range(tl.MAX_PARTIES):
        if i >= n:
            break
        w: uint256 = self._word(tl.HEADER_WORDS + i)
        t.parties.append(
            IDealEscrow.Party(
                wallet=tl._wallet(w),
                roles=tl._field(w, tl.PARTY_ROLES, tl.MASK_16),
                bps=tl._field(w, tl.PARTY_BPS, tl.MASK_16),
            )
        )
    t.approval_threshold = tl._field(conf, tl.CONF_APPROVAL_THRESHOLD, tl.MASK_8)
    t.release_threshold = tl._field(conf, tl.CONF_RELEASE_THRESHOLD, tl.MASK_8)
    fees: uint256 = self._fees()
    timers: uint256 = self._timers()
    windows: uint256 = self._windows()
    t.desk_fee_bps = tl._field(fees, tl.CONF_DESK_FEE_BPS, tl.MASK_16)
    t.fee_leg = tl._field(conf, tl.CONF_FEE_LEG, 1)
    t.resolver_fee_bps = tl._field(fees, tl.CONF_RESOLVER_FEE_BPS, tl.MASK_16)
    t.funding_deadline = tl._field(timers, tl.CONF_FUNDING_DEADLINE, tl.MASK_32)
    t.approval_window = tl._field(windows, tl.CONF_APPROVAL_WINDOW, tl.MASK_32)
    t.dispute_timeout = tl._field(windows, tl.CONF_DISPUTE_TIMEOUT, tl.MASK_32)
    t.dispute_default = tl._field(conf, tl.CONF_DISPUTE_DEFAULT, 1)
    t.final_expiry = tl._field(timers, tl.CONF_FINAL_EXPIRY, tl.MASK_32)
    t.policy_id = fees >> tl.CONF_POLICY_ID
    nt: uint256 = tl._field(conf, tl.CONF_N_TRANCHES, tl.MASK_8)
    for j: uint256 in range(tl.MAX_TRANCHES):
        if j >= nt:
            break
        t.tranches.append(self._decode_tranche(self._word(tl.HEADER_WORDS + n + j)))
    return t


@view
@external
def terms_hash() -> bytes32:
    """
    @notice keccak256 of the packed terms (the words appended to the clone).
    """
    conf: uint256 = self._conf()
    n_words: uint256 = (
        tl.HEADER_WORDS
        + tl._field(conf, tl.CONF_N_PARTIES, tl.MASK_8)
        + tl._field(conf, tl.CONF_N_TRANCHES, tl.MASK_8)
    )
    words: DynArray[uint256, tl.MAX_WORDS] = []
    for i: uint256 in range(tl.MAX_WORDS):
        if i >= n_words:
            break
        words.append(self._word(i))
    # abi_encode prefixes the offset and the length (64 bytes)
    return keccak256(slice(abi_encode(words), 64, n_words * 32))


@view
@external
def mode() -> uint256:
    """
    @notice 0 = DVP (both legs on chain), 1 = ESCROWED (one leg off chain).
    """
    return self._mode(self._conf())


@view
@external
def phase() -> uint256:
    """
    @notice 0 funding, 1 active, 2 settled (every tranche final), 3 cancelled
            (a leg was not funded in time), 4 expired.
    """
    conf: uint256 = self._conf()
    state: uint256 = self.deal_state
    if state & CANCELLED != 0:
        return PHASE_CANCELLED
    if state & EXPIRED != 0:
        return PHASE_EXPIRED
    if not self._is_funded(conf, state):
        return PHASE_FUNDING
    n: uint256 = tl._field(conf, tl.CONF_N_TRANCHES, tl.MASK_8)
    for t: uint256 in range(tl.MAX_TRANCHES):
        if t >= n:
            break
        if self._status(state, t) < tl.RELEASED:
            return PHASE_ACTIVE
    return PHASE_SETTLED


@view
@external
def funded(leg: uint256) -> bool:
    """
    @notice Whether `leg` (0 base, 1 quote) has been deposited.
    """
    assert leg <= tl.LEG_QUOTE, "bad leg"
    return self.deal_state & (1 << leg) != 0


@view
@external
def tranche_count() -> uint256:
    return tl._field(self._conf(), tl.CONF_N_TRANCHES, tl.MASK_8)


@view
@external
def tranche(index: uint256) -> IDealEscrow.Tranche:
    return self._decode_tranche(self._tranche_word(self._conf(), index))


@view
@external
def tranche_status(index: uint256) -> uint256:
    """
    @notice 0 pending, 1 marked, 2 disputed, 3 released, 4 refunded, 5 resolved.
    """
    self._tranche_word(self._conf(), index)
    return self._status(self.deal_state, index)


@view
@external
def approvals(index: uint256) -> uint256:
    """
    @notice Number of approvals recorded for tranche `index`.
    """
    return self._popcount(self.tranche_data[index] & tl.MASK_16)


@view
@external
def signatures(index: uint256) -> uint256:
    """
    @notice Number of release signatures recorded for tranche `index`.
    """
    return self._popcount((self.tranche_data[index] >> SIGS_SHIFT) & tl.MASK_16)


@view
@external
def has_approved(index: uint256, who: address) -> bool:
    roles: uint256 = 0
    i: uint256 = 0
    roles, i = self._roles_of(who, self._conf())
    return roles != 0 and self.tranche_data[index] & (1 << i) != 0


@view
@external
def has_signed(index: uint256, who: address) -> bool:
    roles: uint256 = 0
    i: uint256 = 0
    roles, i = self._roles_of(who, self._conf())
    return roles != 0 and self.tranche_data[index] & (1 << (i + SIGS_SHIFT)) != 0


@view
@external
def marked_at(index: uint256) -> uint256:
    return tl._field(self.tranche_data[index], MARKED_AT_SHIFT, tl.MASK_32)


@view
@external
def disputed_at(index: uint256) -> uint256:
    return tl._field(self.tranche_data[index], DISPUTED_AT_SHIFT, tl.MASK_32)


@view
@external
def roles_of(who: address) -> uint256:
    """
    @notice The role bit flags `who` holds in this deal (0 if none).
    """
    return self._roles_of(who, self._conf())[0]


@view
@external
def buyer() -> address:
    return self._party_wallet(tl.P_BUYER)


@view
@external
def seller() -> address:
    return self._party_wallet(tl.P_SELLER)


@view
@external
def platform() -> address:
    return self._party_wallet(tl.P_PLATFORM)


@view
@external
def resolver() -> address:
    return self._party_wallet(tl.P_RESOLVER)


@view
@external
def held(leg: uint256) -> uint256:
    """
    @notice Amount of `leg` the escrow holds for the deal (excluding pull
            balances owed to payees): deposited - released - refunded.
    """
    assert leg <= tl.LEG_QUOTE, "bad leg"
    conf: uint256 = self._conf()
    state: uint256 = self.deal_state
    if state & (1 << leg) == 0 or state & (CANCELLED | EXPIRED) != 0:
        return 0
    total: uint256 = 0
    n: uint256 = tl._field(conf, tl.CONF_N_TRANCHES, tl.MASK_8)
    for t: uint256 in range(tl.MAX_TRANCHES):
        if t >= n:
            break
        if self._status(state, t) < tl.RELEASED:
            word: uint256 = self._tranche_word(conf, t)
            if leg == tl.LEG_BASE:
                total += word & tl.MASK_96
            else:
                total += tl._field(word, tl.TRANCHE_QUOTE, tl.MASK_96)
    return total


# ---------------------------------------------------------------- internal


@internal
@view
def _word(i: uint256) -> uint256:
    # EXTCODECOPY of this clone (CODECOPY would read the implementation).
    me: address = self
    return convert(slice(me.code, DATA_OFFSET + i * 32, 32), uint256)


@internal
@view
def _conf() -> uint256:
    # the resolver's word carries the deal's counts, thresholds and flags
    assert self != IMPLEMENTATION, "implementation"
    return self._word(tl.HEADER_WORDS + tl.P_RESOLVER)


@internal
@view
def _timers() -> uint256:
    # the buyer's word carries the funding deadline and the final expiry
    return self._word(tl.HEADER_WORDS + tl.P_BUYER)


@internal
@view
def _windows() -> uint256:
    # the seller's word carries the approval window and the dispute timeout
    return self._word(tl.HEADER_WORDS + tl.P_SELLER)


@internal
@view
def _fees() -> uint256:
    # the platform's word carries the desk and resolver fees
    return self._word(tl.HEADER_WORDS + tl.P_PLATFORM)


@internal
@view
def _policy(conf: uint256) -> uint256:
    # the resolver word flags a gated deal (an ungated one reads no other
    # word); the platform's word carries the policy id in its top bits
    if not tl._flag(conf, tl.CONF_GATED):
        return 0
    return self._fees() >> tl.CONF_POLICY_ID


@internal
@view
def _is_compliant(who: address, policy: uint256) -> bool:
    return block.timestamp <= self._attested_until(who, policy)


@internal
@view
def _attested_until(who: address, policy: uint256) -> uint256:
    # the expiry of `who`'s attestation of `policy` (non-zero: a gated deal)
    # in this deal's scope; zero without one (the registry's is_compliant
    # is `block.timestamp <= this`)
    expiry: uint256 = 0
    attested: uint256 = 0
    expiry, attested = staticcall IKYCRegistry(KYC_REGISTRY).attestation(who, self._scope())
    if attested != policy:
        return 0
    return expiry


@internal
@view
def _scope() -> uint256:
    desk: uint256 = self.deal_state >> DESK_SHIFT
    if desk == 0:
        return convert(self, uint256)
    return DESK_SCOPE_TAG | desk


@internal
@view
def _principals_ok(conf: uint256) -> bool:
    # true for an ungated deal; else both principals must be compliant now
    if conf & GATED == 0:
        return True
    if KYC_REGISTRY == empty(address):
        return False
    policy: uint256 = self._fees() >> tl.CONF_POLICY_ID
    return self._is_compliant(self._party_wallet(tl.P_BUYER), policy) and self._is_compliant(
        self._party_wallet(tl.P_SELLER), policy
    )


@internal
@pure
def _quorum(conf: uint256, data: uint256) -> bool:
    # approvals and release signatures in a tranche's data word meet the
    # terms' thresholds
    return self._popcount(data & tl.MASK_16) >= tl._field(
        conf, tl.CONF_APPROVAL_THRESHOLD, tl.MASK_8
    ) and self._popcount((data >> SIGS_SHIFT) & tl.MASK_16) >= tl._field(conf, tl.CONF_RELEASE_THRESHOLD, tl.MASK_8)


@internal
@view
def _require_compliant(who: address, policy: uint256):
    assert KYC_REGISTRY != empty(address), "no kyc registry"
    assert self._is_compliant(who, policy), "party not compliant"


@internal
@view
def _require_covered(who: address):
    # a funder's attestation must last until the final expiry: one that
    # lapsed mid-deal would block every release while refunds stay open,
    # a way for the funder to take its deposit back from a deal the other
    # side has performed (e.g. delivered the off-chain leg)
    assert KYC_REGISTRY != empty(address), "no kyc registry"
    # the final expiry is after the funding deadline, so this implies an
    # unexpired attestation now
    assert self._attested_until(who, self._fees() >> tl.CONF_POLICY_ID) >= tl._field(
        self._timers(), tl.CONF_FINAL_EXPIRY, tl.MASK_32
    ), "party not compliant until final expiry"


@internal
@view
def _party_wallet(i: uint256) -> address:
    assert self != IMPLEMENTATION, "implementation"
    return tl._wallet(self._word(tl.HEADER_WORDS + i))


@internal
@view
def _roles_of(who: address, conf: uint256) -> (uint256, uint256):
    n: uint256 = tl._field(conf, tl.CONF_N_PARTIES, tl.MASK_8)
    for i: uint256 in range(tl.MAX_PARTIES):
        if i >= n:
            break
        w: uint256 = self._word(tl.HEADER_WORDS + i)
        if tl._wallet(w) == who:
            return tl._field(w, tl.PARTY_ROLES, tl.MASK_16), i
    return 0, 0


@internal
@view
def _tranche_word(conf: uint256, index: uint256) -> uint256:
    assert index < tl._field(conf, tl.CONF_N_TRANCHES, tl.MASK_8), "no such tranche"
    return self._word(tl.HEADER_WORDS + tl._field(conf, tl.CONF_N_PARTIES, tl.MASK_8) + index)


@internal
@pure
def _decode_tranche(word: uint256) -> IDealEscrow.Tranche:
    return IDealEscrow.Tranche(
        base_amount=word & tl.MASK_96,
        quote_amount=tl._field(word, tl.TRANCHE_QUOTE, tl.MASK_96),
        unlock_time=tl._field(word, tl.TRANCHE_UNLOCK, tl.MASK_32),
        deadline=word >> tl.TRANCHE_DEADLINE,
    )


@internal
@pure
def _unlock(word: uint256) -> uint256:
    return tl._field(word, tl.TRANCHE_UNLOCK, tl.MASK_32)


@internal
@pure
def _deadline(word: uint256) -> uint256:
    return word >> tl.TRANCHE_DEADLINE


@internal
@pure
def _mode(conf: uint256) -> uint256:
    if tl._flag(conf, tl.CONF_BASE_ON_CHAIN) and tl._flag(conf, tl.CONF_QUOTE_ON_CHAIN):
        return MODE_DVP
    return MODE_ESCROWED


@internal
@pure
def _is_funded(conf: uint256, state: uint256) -> bool:
    base_ok: bool = state & BASE_FUNDED != 0 or not tl._flag(conf, tl.CONF_BASE_ON_CHAIN)
    quote_ok: bool = state & QUOTE_FUNDED != 0 or not tl._flag(conf, tl.CONF_QUOTE_ON_CHAIN)
    return base_ok and quote_ok


@internal
@view
def _active_state(conf: uint256) -> uint256:
    state: uint256 = self.deal_state
    assert state & (CANCELLED | EXPIRED) == 0, "deal closed"
    assert self._is_funded(conf, state), "deal not funded"
    assert block.timestamp < tl._field(self._timers(), tl.CONF_FINAL_EXPIRY, tl.MASK_32), "deal expired"
    return state


@internal
@pure
def _status(state: uint256, tranche: uint256) -> uint256:
    return (state >> (STATUS_SHIFT + tranche * 4)) & 15


@internal
@pure
def _set_status(state: uint256, tranche: uint256, status: uint256) -> uint256:
    pos: uint256 = STATUS_SHIFT + tranche * 4
    return (state & ~(15 << pos)) | (status << pos)


@internal
@view
def _assert_releasable(conf: uint256, state: uint256, tranche: uint256):
    status: uint256 = self._status(state, tranche)
    if self._mode(conf) == MODE_ESCROWED:
        assert status == tl.MARKED, "tranche not marked"
    else:
        assert status == tl.PENDING, "tranche not pending"
        assert block.timestamp <= self._deadline(self._tranche_word(conf, tranche)), "deadline passed"


@internal
@pure
def _popcount(x: uint256) -> uint256:
    # SWAR bit count of a 16-bit value; no step can overflow or underflow
    v: uint256 = unsafe_sub(x, (x >> 1) & 21845)  # 0x5555
    v = unsafe_add(v & 13107, (v >> 2) & 13107)  # 0x3333
    v = unsafe_add(v, v >> 4) & 3855  # 0x0F0F
    return unsafe_add(v, v >> 8) & 31


@internal
@pure
def _on_chain_amounts(conf: uint256, word: uint256) -> (uint256, uint256):
    base_amount: uint256 = 0
    quote_amount: uint256 = 0
    if tl._flag(conf, tl.CONF_BASE_ON_CHAIN):
        base_amount = word & tl.MASK_96
    if tl._flag(conf, tl.CONF_QUOTE_ON_CHAIN):
        quote_amount = tl._field(word, tl.TRANCHE_QUOTE, tl.MASK_96)
    return base_amount, quote_amount


@internal
def _fund(party: address):
    leg: uint256 = 0
    token: address = empty(address)
    amount: uint256 = 0
    leg, token, amount = self._open_leg(party, True)
    self.deal_state = self.deal_state | (1 << leg)
    safe_token._pull_exact(token, party, amount)
    log IDealEscrow.Funded(leg=leg, funder=party, amount=amount)


@internal
@view
def _open_leg(party: address, gate: bool) -> (uint256, address, uint256):
    """
    @dev The leg `party` funds (seller: base, buyer: quote), its token and
         amount; reverts unless it can be funded now. With `gate`, on a
         gated deal `party` must be compliant too (funding_leg leaves that
         to the credit).
    """
    conf: uint256 = self._conf()
    state: uint256 = self.deal_state
    assert state & REGISTERED != 0, "not a registered deal"
    assert state & (CANCELLED | EXPIRED) == 0, "deal closed"
    assert block.timestamp <= tl._field(self._timers(), tl.CONF_FUNDING_DEADLINE, tl.MASK_32), "funding closed"
    leg: uint256 = 0
    w: uint256 = 0
    if party == self._party_wallet(tl.P_SELLER) and tl._flag(conf, tl.CONF_BASE_ON_CHAIN):
        assert state & BASE_FUNDED == 0, "already funded"
        leg = tl.LEG_BASE
        w = self._word(0)
    elif party == self._party_wallet(tl.P_BUYER) and tl._flag(conf, tl.CONF_QUOTE_ON_CHAIN):
        assert state & QUOTE_FUNDED == 0, "already funded"
        leg = tl.LEG_QUOTE
        w = self._word(1)
    else:
        raise "nothing to fund"
    if gate and conf & GATED != 0:
        self._require_covered(party)
    return leg, tl._wallet(w), w >> 160


@internal
def _return_deposits(state: uint256) -> (uint256, uint256):
    base_back: uint256 = 0
    quote_back: uint256 = 0
    if state & BASE_FUNDED != 0:
        w: uint256 = self._word(0)
        base_back = w >> 160
        self._pay(tl._wallet(w), self._party_wallet(tl.P_SELLER), base_back)
    if state & QUOTE_FUNDED != 0:
        w: uint256 = self._word(1)
        quote_back = w >> 160
        self._pay(tl._wallet(w), self._party_wallet(tl.P_BUYER), quote_back)
    return base_back, quote_back


@internal
def _pay_funders(conf: uint256, base_amount: uint256, quote_amount: uint256):
    if base_amount > 0:
        self._pay(tl._wallet(self._word(0)), self._party_wallet(tl.P_SELLER), base_amount)
    if quote_amount > 0:
        self._pay(tl._wallet(self._word(1)), self._party_wallet(tl.P_BUYER), quote_amount)


@internal
def _pay_receivers(conf: uint256, base_amount: uint256, quote_amount: uint256) -> uint256:
    """
    @dev Pays each on-chain leg to its receiver; the fee leg first pays the
         platform and the introducers. Returns the commissions paid.
    """
    fee_leg: uint256 = tl._field(conf, tl.CONF_FEE_LEG, 1)
    fee_base: uint256 = base_amount
    if fee_leg == tl.LEG_QUOTE:
        fee_base = quote_amount
    fee_token: address = empty(address)
    if fee_base > 0:
        fee_token = tl._wallet(self._word(fee_leg))
    base_receiver: address = empty(address)
    quote_receiver: address = empty(address)
    fees: uint256 = 0
    n: uint256 = tl._field(conf, tl.CONF_N_PARTIES, tl.MASK_8)
    for i: uint256 in range(tl.MAX_PARTIES):
        if i >= n:
            break
        w: uint256 = self._word(tl.HEADER_WORDS + i)
        roles: uint256 = tl._field(w, tl.PARTY_ROLES, tl.MASK_16)
        if roles & tl.ROLE_BASE_RECEIVER != 0:
            base_receiver = tl._wallet(w)
        if roles & tl.ROLE_QUOTE_RECEIVER != 0:
            quote_receiver = tl._wallet(w)
        if fee_base == 0:
            continue
        bps: uint256 = 0
        if i == tl.P_PLATFORM:
            bps = tl._field(w, tl.CONF_DESK_FEE_BPS, tl.MASK_16)
        elif roles & tl.ROLE_INTRODUCER != 0:
            bps = tl._field(w, tl.PARTY_BPS, tl.MASK_16)
        if bps > 0:
            # cannot overflow: fee_base < 2**96 and bps < 2**16
            cut: uint256 = unsafe_div(unsafe_mul(fee_base, bps), tl.BPS)
            fees = unsafe_add(fees, cut)
            self._pay(fee_token, tl._wallet(w), cut)
    # cannot underflow: total commission bps are capped at 10% at creation
    # (fee_token is already the fee leg's token whenever that leg pays anything)
    if fee_leg == tl.LEG_BASE:
        self._pay(fee_token, base_receiver, unsafe_sub(base_amount, fees))
        if quote_amount > 0:
            self._pay(tl._wallet(self._word(1)), quote_receiver, quote_amount)
    else:
        if base_amount > 0:
            self._pay(tl._wallet(self._word(0)), base_receiver, base_amount)
        self._pay(fee_token, quote_receiver, unsafe_sub(quote_amount, fees))
    return fees


@internal
@pure
def _check_split(split: IDealEscrow.Split, amount: uint256, fee_cap_bps: uint256):
    assert split.to_receiver + split.to_funder + split.to_resolver == amount, "split must equal the tranche"
    # cannot overflow: amount < 2**96 and the cap < 2**16
    assert split.to_resolver * tl.BPS <= unsafe_mul(amount, fee_cap_bps), "resolver fee above cap"


@internal
def _pay_split(conf: uint256, base: IDealEscrow.Split, quote: IDealEscrow.Split):
    resolver: address = self._party_wallet(tl.P_RESOLVER)
    if base.to_resolver > 0:
        self._pay(tl._wallet(self._word(0)), resolver, base.to_resolver)
    if quote.to_resolver > 0:
        self._pay(tl._wallet(self._word(1)), resolver, quote.to_resolver)
    self._pay_funders(conf, base.to_funder, quote.to_funder)
    if base.to_receiver > 0 or quote.to_receiver > 0:
        self._pay_receivers(conf, base.to_receiver, quote.to_receiver)


@internal
def _pay(token: address, to: address, amount: uint256):
    """
    @dev Push `amount` of `token`; if the transfer fails (a blocklisted payee,
         a paused token) credit a pull balance instead of reverting.
    """
    if amount == 0:
        return
    if not safe_token._try_transfer(token, to, amount):
        self.claimable[to][token] += amount
        self.unclaimed[token] += amount
        log IDealEscrow.PaymentDeferred(payee=to, token=token, amount=amount)
