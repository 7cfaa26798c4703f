# pragma version 0.4.3
"""
@title EscrowFactory
@notice Validates deal terms, packs them and deploys each deal as an EIP-1167
        clone of one DealEscrow implementation with the packed terms appended
        to its code (CREATE2; the salt binds the terms hash, the creator and a
        creator-chosen salt such as a quote id). Keeps the registry of deals.
        Also serves deposit addresses: one counterfactual CREATE2 address per
        (deal, funder, leg) that a funder able to make only plain transfers
        pays its leg into and that anyone sweeps into the deal.
@dev Overlap rules enforced here (documented in the README):
       - parties[0..3] are buyer, seller, platform, resolver; every wallet is
         distinct and non-zero;
       - the resolver holds no other role, so it is never a payee beyond its
         capped resolver fee; an introducer holds no other role;
       - ESCROWED: at least one marker and approval threshold >= 1; the side
         paid by the escrowed leg (the off-chain deliverer and the escrowed
         leg's receiver) can neither approve nor sign its own release;
       - DVP: no markers;
       - thresholds are between 1 and the number of holders of the role (0
         only when nobody holds it);
       - desk fee + introducers <= 10%, resolver fee <= 5%;
       - the compliance policy id fits 32 bits (it rides in the platform
         word, bits 224-255);
       - tranche amounts sum exactly to the leg totals; every deadline falls
         between funding deadline and final expiry minus approval window and
         dispute timeout (strictly: a dispute opened at the last moment
         still reaches its timeout before the final expiry).
@custom:security Permissionless and ownerless: the factory holds no funds and
     has no admin. The implementation it deploys can never act as a deal (every
     call on it reverts) and clones carry no initializer: terms are code.
     A deposit address (a clone of DepositWallet, which obeys this factory
     only) pays out to exactly two places, both bound by its salt: its deal,
     exactly the funder's open leg, crediting that funder (`sweep`); and the
     funder (`return_deposit`: excess, another token, or a leg that can no
     longer be swept).
"""

from ethereum.ercs import IERC20
from interfaces import IDealEscrow
from interfaces import IDepositWallet
from interfaces import IDeskRegistry
from interfaces import IEscrowFactory
import modules.eip712 as eip712
import modules.offer_hash as offer_hash
import modules.safe_token as safe_token
import modules.signatures as signatures
import modules.terms_layout as tl

implements: IEscrowFactory

MAX_INITCODE: constant(uint256) = 24_576
MAX_WALLET_INITCODE: constant(uint256) = 2_048
# EIP-1167 runtime, split around the implementation address.
PROXY_HEAD: constant(bytes10) = 0x363d3d373d3d3d363d73
PROXY_TAIL: constant(bytes15) = 0x5af43d82803e903d91602b57fd5bf3
PROXY_LEN: constant(uint256) = 45
# the type bound of slice(abi_encode(words), ...): (tl.MAX_WORDS + 2) * 32
MAX_DATA: constant(uint256) = 1696

# EIP-712 domain of signed offers
NAME_HASH: constant(bytes32) = keccak256("nexotc")
VERSION_HASH: constant(bytes32) = keccak256("1")
MAX_CANCEL: constant(uint256) = 64

IMPLEMENTATION: immutable(address)
# the DepositWallet implementation behind every deposit address
WALLET_IMPLEMENTATION: immutable(address)
# the DeskRegistry whose desks create_desk_deal serves (zero: none)
DESK_REGISTRY: immutable(address)

# maker => word => bitmap of used or cancelled offer nonces
nonce_bitmap: public(HashMap[address, HashMap[uint256, uint256]])



@deploy
def __init__(
    deal_initcode: Bytes[MAX_INITCODE], wallet_initcode: Bytes[MAX_WALLET_INITCODE], desk_registry: address
):
    """
    @param deal_initcode DealEscrow's creation code; the factory deploys the
           implementation itself so that the implementation's FACTORY is this.
    @param wallet_initcode DepositWallet's creation code, deployed the same way
           (second, at this factory's CREATE nonce 2: clients can derive it).
    @param desk_registry The DeskRegistry whose desks `create_desk_deal`
           serves (zero: no desk deals).
    """
    IMPLEMENTATION = raw_create(deal_initcode)
    WALLET_IMPLEMENTATION = raw_create(wallet_initcode)
    DESK_REGISTRY = desk_registry


@external
def create_deal(terms: IDealEscrow.Terms, salt: bytes32) -> address:
    """
    @notice Validate `terms` and deploy the deal. Anyone may create a deal;
            what binds the parties is that only they can fund and act on it.
    """
    return self._create(self._pack(terms), salt, msg.sender, empty(address), 0)


@external
def create_desk_deal(desk_id: uint256, terms: IDealEscrow.Terms, salt: bytes32) -> address:
    """
    @notice Create a deal for desk `desk_id`: the desk registry checks that the
            caller is one of the desk's traders and that the terms follow the
            desk's rules (asset list, fee schedule, access mode), reverting
            with the rule broken; then the deal is created as by create_deal.
    """
    return self._create_for_desk(self._pack(terms), salt, msg.sender, empty(address), desk_id, msg.sender)


@view
@external
def desk_registry() -> address:
    return DESK_REGISTRY


@external
@nonreentrant
def create_and_fund(terms: IDealEscrow.Terms, salt: bytes32) -> address:
    """
    @notice Create the deal and deposit the caller's leg in one transaction,
            from the caller's allowance to this factory (one approval serves
            every deal; the factory can only move a party's exact leg into a
            deal where that party is the leg's funder).
    """
    deal: address = self._create(self._pack(terms), salt, msg.sender, empty(address), 0)
    funded: bool = self._fund_party(deal, terms, msg.sender)
    assert funded, "the creator funds no leg"
    return deal


@external
@nonreentrant
def fund_deal(deal: address):
    """
    @notice Deposit the caller's leg of `deal` from its allowance to this
            factory (the alternative to approving the deal and calling
            `fund()` on it).
    """
    self._require_deal(deal)
    leg: uint256 = 0
    token: address = empty(address)
    amount: uint256 = 0
    leg, token, amount = staticcall IDealEscrow(deal).funding_leg(msg.sender)
    self._move(deal, token, msg.sender, amount)


@external
@nonreentrant
def sweep(deal: address, funder: address) -> uint256:
    """
    @notice Fund `funder`'s open leg of `deal` from its deposit address (see
            `deposit_address`). Anyone may call once the address holds at
            least the leg amount: exactly the leg moves into the deal, which
            credits `funder`; any excess of the leg's token goes back to
            `funder` in the same call.
    @dev Creates the deposit address on first use. The deal's own checks
         apply (`funding_leg`: registered, open, not funded, before the
         funding deadline), the move is balance-delta checked (fee-on-transfer
         tokens fail) and the deal checks it holds the leg. A failed return
         of the excess (a blocklisted funder) leaves it in the deposit
         address, for `return_deposit` later.
    @return The excess returned to `funder`.
    """
    self._require_deal(deal)
    leg: uint256 = 0
    token: address = empty(address)
    amount: uint256 = 0
    leg, token, amount = staticcall IDealEscrow(deal).funding_leg(funder)
    wallet: address = self._open_wallet(deal, funder, leg)
    assert self._balance(token, wallet) >= amount, "deposit short"
    before: uint256 = self._balance(token, deal)
    assert self._transfer_out(wallet, token, deal, amount), "token transfer failed"
    after: uint256 = self._balance(token, deal)
    # cannot underflow: after >= before is checked first
    assert after >= before and unsafe_sub(after, before) == amount, "fee-on-transfer token"
    extcall IDealEscrow(deal).credit(funder)
    log IEscrowFactory.DepositSwept(deal=deal, funder=funder, wallet=wallet, leg=leg, token=token, amount=amount)
    excess: uint256 = self._balance(token, wallet)
    if excess == 0 or not self._return(deal, funder, wallet, token, excess):
        return 0
    return excess


@external
@nonreentrant
def return_deposit(deal: address, funder: address, leg: uint256, token: address) -> uint256:
    """
    @notice Send the whole balance of `token` (the zero address: ether) held
            by the deposit address of (`deal`, `funder`, `leg`) to `funder`,
            and nowhere else. Anyone may call when that balance can no longer
            fund the leg: `token` is not the leg's token, or `leg` is not
            `funder`'s open leg (already funded, not its leg, funding closed,
            deal cancelled or expired). `funder` itself may call any time,
            even for a `deal` that was never created (a deposit made ahead
            of a deal that did not happen): until swept, a deposit is still
            the funder's.
    @return The amount returned.
    """
    if msg.sender != funder:
        self._require_deal(deal)
        success: bool = False
        response: Bytes[96] = b""
        success, response = raw_call(
            deal,
            abi_encode(funder, method_id=method_id("funding_leg(address)")),
            max_outsize=96,
            is_static_call=True,
            revert_on_failure=False,
        )
        if success:
            open_leg: uint256 = 0
            leg_token: address = empty(address)
            leg_amount: uint256 = 0
            open_leg, leg_token, leg_amount = abi_decode(response, (uint256, address, uint256))
            assert open_leg != leg or leg_token != token, "deposit can still fund the leg"
        else:
            # a deal always reverts with a reason ("already funded", "funding
            # closed", ...): no reason means the call ran out of gas
            assert len(response) > 0, "funding_leg failed"
    wallet: address = self._open_wallet(deal, funder, leg)
    amount: uint256 = self._balance(token, wallet)
    assert amount > 0, "nothing to return"
    assert self._return(deal, funder, wallet, token, amount), "token transfer failed"
    return amount


@external
@nonreentrant
def accept_offer(
    terms: IDealEscrow.Terms,
    offer: IEscrowFactory.OfferMeta,
    maker_signature: Bytes[signatures.MAX_SIGNATURE],
    taker_signature: Bytes[signatures.MAX_SIGNATURE],
    fund: bool,
) -> address:
    """
    @notice Accept a signed offer: deploy the deal with exactly the signed
            terms (a public offer's open counterparty becomes the caller).
    @dev Checks: expiry; the maker is the terms' buyer or seller and signed
         (ECDSA with low s, or EIP-1271 for a contract wallet); a private
         offer is accepted by its taker, or by anyone carrying the taker's
         signature too; the nonce is unused (then consumed); on a gated deal
         both principals pass the compliance gate (the deal checks them in
         `register`: "party not compliant" for the acceptor, "maker not
         compliant"); both funders hold
         and have approved this factory for their on-chain legs (the balance
         check). With `fund`, both legs are deposited in the same transaction:
         the signatures authorise it. The deal's address is
         predict_address(filled terms, maker, offer struct hash).
         A desk offer (`offer.desk_id` non-zero) makes a desk deal: the desk
         registry checks the filled terms as for create_desk_deal, with the
         maker as the desk's trader, or else the taker (a client's offer
         that a desk trader accepts, or a counter to a desk's offer); the
         deal records the desk and DeskDealCreated names that trader.
    @param taker_signature Empty unless a third party submits a private offer.
    """
    assert block.timestamp <= offer.expiry, "offer expired"
    assert len(terms.parties) >= 4, "need buyer, seller, platform, resolver"
    counterparty: uint256 = tl.P_SELLER
    if offer.maker != empty(address) and offer.maker == terms.parties[tl.P_BUYER].wallet:
        counterparty = tl.P_SELLER
    elif offer.maker != empty(address) and offer.maker == terms.parties[tl.P_SELLER].wallet:
        counterparty = tl.P_BUYER
    else:
        raise "maker is not the buyer or the seller"
    struct_hash: bytes32 = offer_hash._hash_offer(terms, offer)
    digest: bytes32 = eip712._digest(eip712._domain_separator(NAME_HASH, VERSION_HASH), struct_hash)
    assert signatures._is_valid_now(offer.maker, digest, maker_signature), "invalid maker signature"

    filled: IDealEscrow.Terms = terms
    taker: address = offer.taker
    if taker == empty(address):
        assert terms.parties[counterparty].wallet == empty(address), "a public offer leaves the counterparty open"
        taker = msg.sender
        filled.parties[counterparty].wallet = msg.sender
    else:
        assert terms.parties[counterparty].wallet == taker, "taker is not the counterparty"
        if msg.sender != taker:
            assert signatures._is_valid_now(taker, digest, taker_signature), "invalid taker signature"
    self._use_nonce(offer.maker, offer.nonce)

    deal: address = empty(address)
    if offer.desk_id == 0:
        deal = self._create(self._pack(filled), struct_hash, offer.maker, taker, 0)
    else:
        deal = self._create_for_desk(self._pack(filled), struct_hash, offer.maker, taker, offer.desk_id, taker)
    self._check_funds(filled, tl.P_SELLER, filled.base_token, filled.base_amount, filled.base_on_chain)
    self._check_funds(filled, tl.P_BUYER, filled.quote_token, filled.quote_amount, filled.quote_on_chain)
    if fund:
        if filled.base_on_chain:
            self._move(deal, filled.base_token, filled.parties[tl.P_SELLER].wallet, filled.base_amount)
        if filled.quote_on_chain:
            self._move(deal, filled.quote_token, filled.parties[tl.P_BUYER].wallet, filled.quote_amount)
    log IEscrowFactory.OfferAccepted(
        offer_hash=struct_hash, deal=deal, maker=offer.maker, taker=taker, previous=offer.previous, funded=fund
    )
    return deal


@external
def cancel_nonces(nonces: DynArray[uint256, MAX_CANCEL]):
    """
    @notice The caller cancels its offers with these nonces. Reverts if any
            of them is already used or cancelled, so a cancellation that
            lands proves that none of those offers was filled before it
            (a taker cancelling its counter before accepting the answer to
            it can never end up with both deals).
    """
    for n: uint256 in nonces:
        self._use_nonce(msg.sender, n)
        log IEscrowFactory.NoncesCancelled(maker=msg.sender, word=n >> 8, mask=1 << (n & 255))


@view
@external
def nonce_used(maker: address, nonce: uint256) -> bool:
    return self.nonce_bitmap[maker][nonce >> 8] & (1 << (nonce & 255)) != 0


@view
@external
def offer_struct_hash(terms: IDealEscrow.Terms, offer: IEscrowFactory.OfferMeta) -> bytes32:
    """
    @notice hashStruct(Offer): what a counter-offer references as `previous`.
    """
    return offer_hash._hash_offer(terms, offer)


@view
@external
def offer_digest(terms: IDealEscrow.Terms, offer: IEscrowFactory.OfferMeta) -> bytes32:
    """
    @notice The EIP-712 digest the maker signs.
    """
    return eip712._digest(eip712._domain_separator(NAME_HASH, VERSION_HASH), offer_hash._hash_offer(terms, offer))


@view
@external
def domain_separator() -> bytes32:
    return eip712._domain_separator(NAME_HASH, VERSION_HASH)


@view
@external
def predict_address(terms: IDealEscrow.Terms, creator: address, salt: bytes32, desk_id: uint256) -> address:
    """
    @notice The address `create_deal(terms, salt)` (desk_id 0) or
            `create_desk_deal(desk_id, terms, salt)` from `creator` deploys to
            (a deal from an offer: its maker as creator, the offer's struct
            hash as salt).
    """
    data: Bytes[MAX_DATA] = self._pack(terms)
    initcode: Bytes[MAX_DATA + 55] = self._initcode(IMPLEMENTATION, data)
    return self._create2_address(keccak256(initcode), self._salt(keccak256(data), creator, desk_id, salt))


@view
@external
def validate(terms: IDealEscrow.Terms) -> bytes32:
    """
    @notice Revert with the first broken rule, or return the terms hash.
    """
    return keccak256(self._pack(terms))


@view
@external
def is_deal(deal: address) -> bool:
    return self._is_deal(deal)


@internal
@view
def _require_deal(deal: address):
    # one copy of the check (and its reason) for fund_deal, sweep, return_deposit
    assert self._is_deal(deal), "not a deal of this factory"


@internal
@view
def _is_deal(deal: address) -> bool:
    """
    @notice True for a deal this factory created: its code is our EIP-1167
            proxy to our implementation, and it was registered by us (only
            this factory can register, and only right after creating it).
    @dev The registry costs no storage of its own; DealCreated events list
         every deal.
    """
    if deal.codesize <= PROXY_LEN:
        return False
    if slice(deal.code, 0, PROXY_LEN) != concat(PROXY_HEAD, convert(IMPLEMENTATION, bytes20), PROXY_TAIL):
        return False
    return staticcall IDealEscrow(deal).registered()


@view
@external
def implementation() -> address:
    return IMPLEMENTATION


@view
@external
def deposit_address(deal: address, funder: address, leg: uint256) -> address:
    """
    @notice The deposit address of `funder`'s `leg` (0 base, 1 quote) of
            `deal`: known before it (or the deal) is deployed. CREATE2 from
            this factory with salt keccak256(abi_encode(deal, funder, leg))
            and the 55-byte creation code of an EIP-1167 clone of
            `deposit_implementation()` (a deal's, without terms).
    """
    initcode_hash: bytes32 = keccak256(self._initcode(WALLET_IMPLEMENTATION, b""))
    return self._create2_address(initcode_hash, self._deposit_salt(deal, funder, leg))


@view
@external
def deposit_implementation() -> address:
    return WALLET_IMPLEMENTATION


@internal
def _create(data: Bytes[MAX_DATA], salt: bytes32, creator: address, acceptor: address, desk_id: uint256) -> address:
    terms_hash: bytes32 = keccak256(data)
    deal: address = raw_create(self._initcode(IMPLEMENTATION, data), salt=self._salt(terms_hash, creator, desk_id, salt))
    extcall IDealEscrow(deal).register(acceptor, desk_id)
    log IEscrowFactory.DealCreated(deal=deal, creator=creator, terms_hash=terms_hash, salt=salt)
    return deal


@internal
def _create_for_desk(
    data: Bytes[MAX_DATA], salt: bytes32, creator: address, acceptor: address, desk_id: uint256, taker: address
) -> address:
    """
    @dev A deal for desk `desk_id`: the registry checks the packed terms
         with `creator` as the desk's trader, or else `taker` (for an offer:
         its maker, else its taker; for create_desk_deal both are the
         caller), reverting with the rule broken; DeskDealCreated names the
         trader checked.
    """
    assert DESK_REGISTRY != empty(address), "no desk registry"
    policy_id: bytes32 = empty(bytes32)
    trader: address = empty(address)
    policy_id, trader = staticcall IDeskRegistry(DESK_REGISTRY).check_offer_packed(desk_id, creator, taker, data)
    deal: address = self._create(data, salt, creator, acceptor, desk_id)
    log IEscrowFactory.DeskDealCreated(deal=deal, desk_id=desk_id, creator=trader, policy_id=policy_id)
    return deal


@internal
def _fund_party(deal: address, terms: IDealEscrow.Terms, party: address) -> bool:
    # the seller funds the base leg, the buyer the quote leg (when on chain)
    if party == terms.parties[tl.P_SELLER].wallet and terms.base_on_chain:
        self._move(deal, terms.base_token, party, terms.base_amount)
        return True
    if party == terms.parties[tl.P_BUYER].wallet and terms.quote_on_chain:
        self._move(deal, terms.quote_token, party, terms.quote_amount)
        return True
    return False


@internal
def _move(deal: address, token: address, party: address, amount: uint256):
    """
    @dev transferFrom `party` (allowance to this factory) into `deal`,
         exactly `amount` (fee-on-transfer tokens fail), then the deal
         credits `party`'s leg after its own checks.
    """
    safe_token._move_exact(token, party, deal, amount)
    extcall IDealEscrow(deal).credit(party)


@internal
@view
def _check_funds(terms: IDealEscrow.Terms, funder_index: uint256, token: address, amount: uint256, on_chain: bool):
    if not on_chain:
        return
    funder: address = terms.parties[funder_index].wallet
    assert staticcall IERC20(token).balanceOf(funder) >= amount, "funder balance below its leg"
    assert staticcall IERC20(token).allowance(funder, self) >= amount, "funder allowance below its leg"


@internal
def _use_nonce(maker: address, nonce: uint256):
    word: uint256 = nonce >> 8
    mask: uint256 = 1 << (nonce & 255)
    bitmap: uint256 = self.nonce_bitmap[maker][word]
    assert bitmap & mask == 0, "nonce used or cancelled"
    self.nonce_bitmap[maker][word] = bitmap | mask


@internal
@pure
def _salt(terms_hash: bytes32, creator: address, desk_id: uint256, salt: bytes32) -> bytes32:
    # a desk deal's address also binds its desk, so it never shares one with
    # a plain deal of the same terms (which its creator could take): the desk
    # id goes in the creator word's upper 96 bits (desk ids count up from 1,
    # and a desk deal is only made for a desk that exists)
    return keccak256(concat(terms_hash, convert(convert(creator, uint256) | (desk_id << 160), bytes32), salt))


@internal
@view
def _create2_address(initcode_hash: bytes32, salt: bytes32) -> address:
    h: bytes32 = keccak256(concat(b"\xff", convert(self, bytes20), salt, initcode_hash))
    return convert(convert(slice(h, 12, 20), bytes20), address)


@internal
def _open_wallet(deal: address, funder: address, leg: uint256) -> address:
    """
    @dev The deposit address of (deal, funder, leg), created if needed.
    """
    salt: bytes32 = self._deposit_salt(deal, funder, leg)
    initcode: Bytes[MAX_DATA + 55] = self._initcode(WALLET_IMPLEMENTATION, b"")
    wallet: address = self._create2_address(keccak256(initcode), salt)
    if not wallet.is_contract:
        wallet = raw_create(initcode, salt=salt)
    return wallet


@internal
def _return(deal: address, funder: address, wallet: address, token: address, amount: uint256) -> bool:
    """
    @dev Send `amount` of `token` from `wallet` to `funder`; false if the
         transfer failed (nothing moved, nothing logged).
    """
    if not self._transfer_out(wallet, token, funder, amount):
        return False
    log IEscrowFactory.DepositReturned(deal=deal, funder=funder, wallet=wallet, token=token, amount=amount)
    return True


@internal
def _transfer_out(wallet: address, token: address, to: address, amount: uint256) -> bool:
    return extcall IDepositWallet(wallet).transfer_out(token, to, amount)


@internal
@view
def _balance(token: address, holder: address) -> uint256:
    # the zero address stands for ether; an address without code reverts
    # (no return data)
    if token == empty(address):
        return holder.balance
    return staticcall IERC20(token).balanceOf(holder)


@internal
@pure
def _deposit_salt(deal: address, funder: address, leg: uint256) -> bytes32:
    assert leg <= tl.LEG_QUOTE, "bad leg"
    return keccak256(abi_encode(deal, funder, leg))


@internal
@view
def _initcode(implementation: address, data: Bytes[MAX_DATA]) -> Bytes[MAX_DATA + 55]:
    # creation prefix: PUSH2 len DUP1 PUSH1 0x0a RETURNDATASIZE CODECOPY
    #                  RETURNDATASIZE RETURN  (copies and returns the runtime)
    runtime_len: uint256 = PROXY_LEN + len(data)
    return concat(
        b"\x61",
        slice(convert(runtime_len, bytes32), 30, 2),
        b"\x80\x60\x0a\x3d\x39\x3d\xf3",
        PROXY_HEAD,
        convert(implementation, bytes20),
        PROXY_TAIL,
        data,
    )


@internal
@view
def _pack(t: IDealEscrow.Terms) -> Bytes[MAX_DATA]:
    """
    @dev Validates every rule and returns the packed terms.
    """
    # ---- legs
    assert t.base_on_chain or t.quote_on_chain, "one leg must be on chain"
    self._check_leg(t.base_token, t.base_amount, t.base_on_chain)
    self._check_leg(t.quote_token, t.quote_amount, t.quote_on_chain)
    dvp: bool = t.base_on_chain and t.quote_on_chain
    if dvp:
        assert t.base_token != t.quote_token, "legs use the same token"

    # ---- parties
    n: uint256 = len(t.parties)
    assert n >= 4, "need buyer, seller, platform, resolver"
    assert t.parties[tl.P_BUYER].roles & tl.ROLE_BUYER != 0, "parties[0] must be the buyer"
    assert t.parties[tl.P_SELLER].roles & tl.ROLE_SELLER != 0, "parties[1] must be the seller"
    assert t.parties[tl.P_PLATFORM].roles & tl.ROLE_PLATFORM != 0, "parties[2] must be the platform"
    assert t.parties[tl.P_RESOLVER].roles == tl.ROLE_RESOLVER, "parties[3] must be only the resolver"
    # roles that must not approve or sign in ESCROWED: the side paid by the escrowed leg
    paid_side: uint256 = 0
    if not dvp:
        if t.quote_on_chain:
            paid_side = tl.ROLE_SELLER | tl.ROLE_QUOTE_RECEIVER
        else:
            paid_side = tl.ROLE_BUYER | tl.ROLE_BASE_RECEIVER
    markers: uint256 = 0
    approvers: uint256 = 0
    signers: uint256 = 0
    introducers: uint256 = 0
    base_receivers: uint256 = 0
    quote_receivers: uint256 = 0
    fee_bps: uint256 = t.desk_fee_bps
    nt: uint256 = len(t.tranches)
    # configuration carried in the spare bits of the four fixed parties
    extra: uint256[4] = [
        t.funding_deadline | (t.final_expiry << 32),
        t.approval_window | (t.dispute_timeout << 32),
        t.desk_fee_bps | (t.resolver_fee_bps << 16) | (t.policy_id << 32),
        n
        | (nt << 8)
        | (t.approval_threshold << 16)
        | (t.release_threshold << 24)
        | (convert(t.base_on_chain, uint256) << 32)
        | (convert(t.quote_on_chain, uint256) << 33)
        | (t.fee_leg << 34)
        | (t.dispute_default << 35)
        | (convert(t.policy_id != 0, uint256) << 36),
    ]
    words: DynArray[uint256, tl.MAX_WORDS] = [
        convert(t.base_token, uint256) | (t.base_amount << 160),
        convert(t.quote_token, uint256) | (t.quote_amount << 160),
    ]
    for i: uint256 in range(tl.MAX_PARTIES):
        if i >= n:
            break
        p: IDealEscrow.Party = t.parties[i]
        assert p.wallet != empty(address), "zero party wallet"
        assert p.roles != 0 and p.roles & ~tl.ROLE_ALL == 0, "bad roles"
        for j: uint256 in range(tl.MAX_PARTIES):
            if j >= i:
                break
            assert t.parties[j].wallet != p.wallet, "duplicate party wallet"
        if i != tl.P_BUYER:
            assert p.roles & tl.ROLE_BUYER == 0, "only parties[0] is the buyer"
        if i != tl.P_SELLER:
            assert p.roles & tl.ROLE_SELLER == 0, "only parties[1] is the seller"
        if i != tl.P_PLATFORM:
            assert p.roles & tl.ROLE_PLATFORM == 0, "only parties[2] is the platform"
        if i != tl.P_RESOLVER:
            assert p.roles & tl.ROLE_RESOLVER == 0, "only parties[3] is the resolver"
        if p.roles & tl.ROLE_INTRODUCER != 0:
            assert p.roles == tl.ROLE_INTRODUCER, "an introducer holds no other role"
            assert p.bps > 0, "introducer without commission"
            fee_bps += p.bps
            introducers += 1
        else:
            assert p.bps == 0, "only introducers carry bps"
        if p.roles & (tl.ROLE_APPROVER | tl.ROLE_SIGNER) != 0:
            assert p.roles & paid_side == 0, "paid side cannot approve or sign its release"
        if p.roles & tl.ROLE_MARKER != 0:
            markers += 1
        if p.roles & tl.ROLE_APPROVER != 0:
            approvers += 1
        if p.roles & tl.ROLE_SIGNER != 0:
            signers += 1
        if p.roles & tl.ROLE_BASE_RECEIVER != 0:
            base_receivers += 1
        if p.roles & tl.ROLE_QUOTE_RECEIVER != 0:
            quote_receivers += 1
        word: uint256 = convert(p.wallet, uint256) | (p.roles << tl.PARTY_ROLES) | (p.bps << tl.PARTY_BPS)
        if i < 4:
            word = word | (extra[i] << 192)
        words.append(word)
    assert base_receivers == 1, "exactly one base receiver"
    assert quote_receivers == 1, "exactly one quote receiver"
    assert introducers <= tl.MAX_INTRODUCERS, "too many introducers"
    assert markers <= tl.MAX_MARKERS, "too many markers"
    assert fee_bps <= tl.MAX_TOTAL_FEE_BPS, "commissions above cap"
    assert t.resolver_fee_bps <= tl.MAX_RESOLVER_FEE_BPS, "resolver fee above cap"
    self._check_threshold(t.approval_threshold, approvers)
    self._check_threshold(t.release_threshold, signers)
    if dvp:
        assert markers == 0, "no markers in DVP"
    else:
        assert markers > 0, "escrowed deal needs a marker"
        assert t.approval_threshold > 0, "escrowed deal needs approvers"
    assert t.fee_leg <= tl.LEG_QUOTE, "bad fee leg"
    # one assert for both legs (one copy of the reason in the code)
    assert (t.base_on_chain if t.fee_leg == tl.LEG_BASE else t.quote_on_chain), "fee leg must be on chain"

    # ---- timers
    assert t.dispute_default <= tl.DEFAULT_RELEASE, "bad dispute default"
    assert t.dispute_timeout > 0 and t.dispute_timeout <= tl.MASK_32, "bad dispute timeout"
    assert t.approval_window <= tl.MASK_32, "bad approval window"
    assert t.funding_deadline > block.timestamp, "funding deadline passed"
    assert t.final_expiry <= tl.MASK_32, "final expiry out of range"
    assert t.policy_id <= tl.MASK_32, "policy id out of range"

    # ---- tranches
    assert nt > 0, "no tranches"
    base_sum: uint256 = 0
    quote_sum: uint256 = 0
    last_deadline: uint256 = t.funding_deadline
    for k: uint256 in range(tl.MAX_TRANCHES):
        if k >= nt:
            break
        tr: IDealEscrow.Tranche = t.tranches[k]
        assert tr.deadline >= t.funding_deadline, "tranche deadline before funding deadline"
        assert tr.unlock_time <= tr.deadline, "tranche unlocks after its deadline"
        moves: uint256 = 0
        if t.base_on_chain:
            moves += tr.base_amount
        if t.quote_on_chain:
            moves += tr.quote_amount
        assert moves > 0, "tranche moves nothing"
        base_sum += tr.base_amount
        quote_sum += tr.quote_amount
        last_deadline = max(last_deadline, tr.deadline)
    assert base_sum == t.base_amount, "base tranches must sum to the base leg"
    assert quote_sum == t.quote_amount, "quote tranches must sum to the quote leg"
    assert (
        t.final_expiry > last_deadline + t.approval_window + t.dispute_timeout
    ), "final expiry too early"
    # every tranche deadline <= final expiry <= 2**32 - 1, so times fit 32 bits
    for k: uint256 in range(tl.MAX_TRANCHES):
        if k >= nt:
            break
        tr: IDealEscrow.Tranche = t.tranches[k]
        words.append(
            tr.base_amount
            | (tr.quote_amount << tl.TRANCHE_QUOTE)
            | (tr.unlock_time << tl.TRANCHE_UNLOCK)
            | (tr.deadline << tl.TRANCHE_DEADLINE)
        )

    # abi_encode prefixes the offset and the length (64 bytes)
    return slice(abi_encode(words), 64, len(words) * 32)


@internal
@view
def _check_leg(token: address, amount: uint256, on_chain: bool):
    assert amount > 0 and amount <= tl.MASK_96, "leg amount out of range"
    if on_chain:
        assert token.is_contract, "leg token is not a contract"
    else:
        assert token == empty(address), "off-chain leg has no token"


@internal
@pure
def _check_threshold(threshold: uint256, holders: uint256):
    if holders == 0:
        assert threshold == 0, "threshold without holders"
    else:
        assert threshold >= 1 and threshold <= holders, "threshold out of range"
