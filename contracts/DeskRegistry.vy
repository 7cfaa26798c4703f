# pragma version 0.4.3
"""
@title DeskRegistry
@notice Private OTC desks, many in one registry (ids from 1). A desk has an
        admin (usually a MultiSig, which calls as msg.sender), members with
        roles (bit flags: TRADER 1, APPROVER 2, COMPLIANCE 4, CLIENT 8), an
        allow-list of assets (the zero address stands for off-chain legs),
        a fee schedule (fee recipient, highest desk fee, introducer cap), an
        access mode (public or invite-only), an optional compliance policy
        id and a suspension switch. The factory creates a deal for a desk
        only after `check_packed` accepted its creator and terms
        (`check_deal` is the same check on the terms struct, for clients).
@dev Rules of `check_deal` and `check_packed` (the same rules on the terms
     as a struct or packed as the factory packs them), in this order (the
     first broken one reverts; both first refuse terms without the four fixed
     parties: "need buyer, seller, platform, resolver" / "bad packed terms"):
       1. the desk exists ("no such desk") and is not suspended ("desk
          suspended");
       2. the creator is a member ("not a desk member") holding TRADER
          ("not a trader");
       3. the platform (parties[2], the fee payee) is the desk's fee
          recipient ("platform must be the desk's fee recipient");
       4. desk fee <= the desk's highest ("desk fee above schedule"); the sum
          of introducer commissions <= the desk's cap ("introducers above
          cap");
       5. each leg's asset is on the list: its token when on chain, the zero
          address when off chain ("asset not allowed");
       6. invite-only: buyer and seller are both members, any role (a
          client is invited with CLIENT) ("counterparty not invited");
       7. compliance: a desk whose policy id, read as a number, is a
          KYCRegistry policy id (1 .. 2**32-1) requires its deals to carry
          exactly that policy ("deal must carry the desk's policy"), so both
          principals of every desk deal must prove it (DealEscrow's gate);
          a larger policy id (e.g. the hash of a label) is an off-chain
          reference that is returned but not enforced;
       8. screening (AML): the trader checked is not screened out by the
          desk ("trader screened out by the desk"), nor is any party of the
          deal, any wallet in its terms ("party screened out by the desk").
     Every other rule of the terms is the factory's (`EscrowFactory._pack`).
     Members, assets and screened wallets are maps; `MemberSet`, `AssetSet`
     and `Screened` events list them (a client replays them and reads the
     maps back). The desk's admin or a member with COMPLIANCE screens
     wallets (`set_screened`, e.g. from a sanctions list): it refuses new
     deals with them and never touches an existing deal (no path of this
     registry can freeze or move escrowed funds).
@custom:security Holds no funds and makes no external call (only a code-size
     read of an allowed token): no admin path can touch deal funds, and a
     deal's terms are fixed in its code once created, so changing a desk
     never changes an existing deal. Only a desk's admin changes the desk;
     the admin moves in two steps (propose, then accept by the new admin).
     Anyone may create a desk with any admin: desk ids are fresh, so a desk
     can never be taken over by creating another.
"""

from interfaces import IDealEscrow
from interfaces import IDeskRegistry
import modules.terms_layout as tl

implements: IDeskRegistry

# Member roles (bit flags).
ROLE_TRADER: constant(uint256) = 1
ROLE_APPROVER: constant(uint256) = 2
ROLE_COMPLIANCE: constant(uint256) = 4
ROLE_CLIENT: constant(uint256) = 8
ROLE_ALL: constant(uint256) = 15

MAX_ASSETS: constant(uint256) = 32
MAX_SCREEN: constant(uint256) = 64
# the bound of EscrowFactory's packed terms (its MAX_DATA): (tl.MAX_WORDS + 3) * 32
PACKED_MAX: constant(uint256) = 1696

# desk id => desk (ids from 1; an id without admin is no desk)
_desks: HashMap[uint256, IDeskRegistry.Desk]
# the number of desks created, which is also the last id
desk_count: public(uint256)
# desk id => member => roles (0: not a member)
member_roles: public(HashMap[uint256, HashMap[address, uint256]])
# desk id => token => on the asset list (zero address: off-chain legs)
asset_allowed: public(HashMap[uint256, HashMap[address, bool]])
# desk id => wallet => screened out of the desk's new deals (AML)
screened: public(HashMap[uint256, HashMap[address, bool]])


# ------------------------------------------------------------------- desks


@external
def create_desk(
    admin: address,
    fee_recipient: address,
    max_desk_fee_bps: uint256,
    introducer_cap_bps: uint256,
    invite_only: bool,
    policy_id: bytes32,
    assets: DynArray[address, MAX_ASSETS],
) -> uint256:
    """
    @notice Create a desk administered by `admin`, with no members yet.
            Anyone may create a desk; the admin then adds the members.
    @param fee_recipient The platform party of every desk deal.
    @param max_desk_fee_bps Highest desk fee of a desk deal (<= 1000).
    @param introducer_cap_bps Highest sum of introducer commissions (<= 1000).
    @param policy_id Compliance policy id; zero for none.
    @param assets Initial asset list (tokens; the zero address for off-chain
           legs).
    @return The new desk's id.
    """
    assert admin != empty(address), "zero admin"
    self._check_fees(fee_recipient, max_desk_fee_bps, introducer_cap_bps)
    desk_id: uint256 = self.desk_count + 1
    self.desk_count = desk_id
    self._desks[desk_id] = IDeskRegistry.Desk(
        admin=admin,
        pending_admin=empty(address),
        fee_recipient=fee_recipient,
        max_desk_fee_bps=max_desk_fee_bps,
        introducer_cap_bps=introducer_cap_bps,
        invite_only=invite_only,
        suspended=False,
        policy_id=policy_id,
        member_count=0,
        asset_count=0,
    )
    log IDeskRegistry.DeskCreated(
        desk_id=desk_id,
        admin=admin,
        creator=msg.sender,
        fee_recipient=fee_recipient,
        max_desk_fee_bps=max_desk_fee_bps,
        introducer_cap_bps=introducer_cap_bps,
        invite_only=invite_only,
        policy_id=policy_id,
    )
    for token: address in assets:
        self._allow(desk_id, token)
    return desk_id


# ------------------------------------------------------ admin: membership


@external
def add_member(desk_id: uint256, member: address, roles: uint256):
    """
    @notice Admin-only: make `member` a member with `roles` (bit flags), or
            replace the roles of a member.
    """
    self._only_admin(desk_id)
    assert member != empty(address), "zero member"
    assert roles != 0 and roles & ~ROLE_ALL == 0, "bad roles"
    previous: uint256 = self.member_roles[desk_id][member]
    assert previous != roles, "member already has these roles"
    if previous == 0:
        self._desks[desk_id].member_count += 1
    self.member_roles[desk_id][member] = roles
    log IDeskRegistry.MemberSet(desk_id=desk_id, member=member, roles=roles, previous_roles=previous)


@external
def remove_member(desk_id: uint256, member: address):
    """
    @notice Admin-only: remove `member` (every role). Deals it created
            before stay as they are.
    """
    self._only_admin(desk_id)
    previous: uint256 = self.member_roles[desk_id][member]
    assert previous != 0, "not a desk member"
    self.member_roles[desk_id][member] = 0
    self._desks[desk_id].member_count -= 1
    log IDeskRegistry.MemberSet(desk_id=desk_id, member=member, roles=0, previous_roles=previous)


# ------------------------------------------------------ compliance: screening


@external
def set_screened(desk_id: uint256, wallets: DynArray[address, MAX_SCREEN], screened: bool):
    """
    @notice The desk's admin or a member with COMPLIANCE: screen `wallets`
            out of the desk's new deals (`screened` true), or back in.
            Each must change. Existing deals are not affected.
    """
    admin: address = self._desks[desk_id].admin
    assert admin != empty(address), "no such desk"
    assert msg.sender == admin or self.member_roles[desk_id][msg.sender] & ROLE_COMPLIANCE != 0, (
        "not the desk admin or compliance"
    )
    # a screened officer screens nothing, and cannot take itself off the list (the admin or another can)
    assert msg.sender == admin or not self.screened[desk_id][msg.sender], "caller screened out by the desk"
    for wallet: address in wallets:
        assert wallet != empty(address), "zero wallet"
        assert self.screened[desk_id][wallet] != screened, "wallet already screened" if screened else "wallet not screened"
        self.screened[desk_id][wallet] = screened
        log IDeskRegistry.Screened(desk_id=desk_id, wallet=wallet, screened=screened, by=msg.sender)


# ------------------------------------------------------ admin: the desk


@external
def set_assets(desk_id: uint256, allow: DynArray[address, MAX_ASSETS], disallow: DynArray[address, MAX_ASSETS]):
    """
    @notice Admin-only: put `allow` on the asset list, then take `disallow`
            off it. Each token must change (a typo is an error, not a no-op).
    """
    self._only_admin(desk_id)
    assert len(allow) + len(disallow) > 0, "no asset to change"
    for token: address in allow:
        self._allow(desk_id, token)
    for token: address in disallow:
        assert self.asset_allowed[desk_id][token], "asset not on the list"
        self.asset_allowed[desk_id][token] = False
        self._desks[desk_id].asset_count -= 1
        log IDeskRegistry.AssetSet(desk_id=desk_id, token=token, allowed=False)


@external
def set_fees(desk_id: uint256, fee_recipient: address, max_desk_fee_bps: uint256, introducer_cap_bps: uint256):
    """
    @notice Admin-only: set the fee schedule of future desk deals.
    """
    self._only_admin(desk_id)
    self._check_fees(fee_recipient, max_desk_fee_bps, introducer_cap_bps)
    self._desks[desk_id].fee_recipient = fee_recipient
    self._desks[desk_id].max_desk_fee_bps = max_desk_fee_bps
    self._desks[desk_id].introducer_cap_bps = introducer_cap_bps
    log IDeskRegistry.FeesSet(
        desk_id=desk_id,
        fee_recipient=fee_recipient,
        max_desk_fee_bps=max_desk_fee_bps,
        introducer_cap_bps=introducer_cap_bps,
    )


@external
def set_invite_only(desk_id: uint256, invite_only: bool):
    """
    @notice Admin-only: invite-only (buyer and seller must be members) or
            public (any counterparty; the creator is still a trader).
    """
    self._only_admin(desk_id)
    self._desks[desk_id].invite_only = invite_only
    log IDeskRegistry.AccessModeSet(desk_id=desk_id, invite_only=invite_only)


@external
def set_policy_id(desk_id: uint256, policy_id: bytes32):
    """
    @notice Admin-only: set the compliance policy id (zero: none).
    """
    self._only_admin(desk_id)
    self._desks[desk_id].policy_id = policy_id
    log IDeskRegistry.PolicySet(desk_id=desk_id, policy_id=policy_id)


@external
def set_suspended(desk_id: uint256, suspended: bool):
    """
    @notice Admin-only: suspend the desk (no new desk deal) or lift it.
            Existing deals are not affected.
    """
    self._only_admin(desk_id)
    self._desks[desk_id].suspended = suspended
    log IDeskRegistry.SuspensionSet(desk_id=desk_id, suspended=suspended)


# ------------------------------------------------------ admin: transfer


@external
def propose_admin(desk_id: uint256, new_admin: address):
    """
    @notice Admin-only: propose `new_admin`, who becomes admin by calling
            `accept_admin`. The zero address withdraws a proposal.
    """
    admin: address = self._only_admin(desk_id)
    assert new_admin != admin, "already the admin"
    self._desks[desk_id].pending_admin = new_admin
    log IDeskRegistry.AdminProposed(desk_id=desk_id, admin=admin, pending_admin=new_admin)


@external
def accept_admin(desk_id: uint256):
    """
    @notice The proposed admin takes over the desk.
    """
    pending: address = self._desks[desk_id].pending_admin
    assert pending != empty(address) and msg.sender == pending, "not the pending admin"
    previous: address = self._desks[desk_id].admin
    self._desks[desk_id].admin = pending
    self._desks[desk_id].pending_admin = empty(address)
    log IDeskRegistry.AdminTransferred(desk_id=desk_id, previous_admin=previous, admin=pending)


# ------------------------------------------------------------------ views


@view
@external
def desk(desk_id: uint256) -> IDeskRegistry.Desk:
    """
    @notice The desk `desk_id`; reverts for an id that is no desk.
    """
    d: IDeskRegistry.Desk = self._desks[desk_id]
    assert d.admin != empty(address), "no such desk"
    return d


@view
@external
def check_deal(desk_id: uint256, creator: address, terms: IDealEscrow.Terms) -> bytes32:
    """
    @notice Revert with the first desk rule `creator` and `terms` break (see
            the contract's @dev), or return the desk's compliance policy id.
            The view for clients; the factory asks `check_packed`.
    """
    assert len(terms.parties) >= 4, "need buyer, seller, platform, resolver"
    introducer_bps: uint256 = 0
    blocked: bool = False
    for p: IDealEscrow.Party in terms.parties:
        if p.roles & tl.ROLE_INTRODUCER != 0:
            introducer_bps += p.bps
        blocked = blocked or self.screened[desk_id][p.wallet]
    return self._check(
        desk_id,
        creator,
        self._leg_asset(terms.base_token, terms.base_on_chain),
        self._leg_asset(terms.quote_token, terms.quote_on_chain),
        terms.parties[tl.P_BUYER].wallet,
        terms.parties[tl.P_SELLER].wallet,
        terms.parties[tl.P_PLATFORM].wallet,
        terms.desk_fee_bps,
        introducer_bps,
        terms.policy_id,
        blocked,
    )


@view
@external
def check_packed(desk_id: uint256, creator: address, packed: Bytes[PACKED_MAX]) -> bytes32:
    """
    @notice `check_deal` on packed terms (see `_check_packed`).
    """
    return self._check_packed(desk_id, creator, packed)


@view
@external
def check_offer_packed(desk_id: uint256, maker: address, taker: address, packed: Bytes[PACKED_MAX]) -> (bytes32, address):
    """
    @notice What the factory asks for a deal made for desk `desk_id` from a
            signed offer (or created directly: maker = taker = creator):
            `check_packed` with the maker as the creator when it is one of
            the desk's traders, else the taker. Returns the desk's policy id
            and the trader checked.
    """
    trader: address = maker
    if self.member_roles[desk_id][maker] & ROLE_TRADER == 0:
        trader = taker
    return self._check_packed(desk_id, trader, packed), trader


# -------------------------------------------------------------- internals


@internal
@view
def _check_packed(desk_id: uint256, creator: address, packed: Bytes[PACKED_MAX]) -> bytes32:
    """
    @notice `check_deal` on terms in the packed layout a deal carries in its
            code (modules/terms_layout.vy), as EscrowFactory._pack returns
            them: the factory validates and packs the terms, asks this, then
            deploys the same bytes. Same rules, same reasons, same result.
    @dev Reads what the rules need: the leg tokens and on-chain flags, the
         four fixed wallets, the desk fee and every introducer's bps. Packed
         terms that the factory did not produce are not validated here
         beyond their length (this is a view; only the factory's call
         matters).
    """
    assert len(packed) % 32 == 0 and len(packed) >= (tl.HEADER_WORDS + 4) * 32, "bad packed terms"
    resolver_word: uint256 = self._word(packed, tl.HEADER_WORDS + tl.P_RESOLVER)
    n: uint256 = tl._field(resolver_word, tl.CONF_N_PARTIES, tl.MASK_8)
    assert n >= 4 and n <= tl.MAX_PARTIES and (tl.HEADER_WORDS + n) * 32 <= len(packed), "bad packed terms"
    introducer_bps: uint256 = 0
    blocked: bool = False
    for i: uint256 in range(tl.MAX_PARTIES):
        if i == n:
            break
        word: uint256 = self._word(packed, tl.HEADER_WORDS + i)
        if tl._field(word, tl.PARTY_ROLES, tl.MASK_16) & tl.ROLE_INTRODUCER != 0:
            introducer_bps += tl._field(word, tl.PARTY_BPS, tl.MASK_16)
        blocked = blocked or self.screened[desk_id][tl._wallet(word)]
    platform_word: uint256 = self._word(packed, tl.HEADER_WORDS + tl.P_PLATFORM)
    base_on_chain: bool = tl._flag(resolver_word, tl.CONF_BASE_ON_CHAIN)
    quote_on_chain: bool = tl._flag(resolver_word, tl.CONF_QUOTE_ON_CHAIN)
    return self._check(
        desk_id,
        creator,
        self._leg_asset(tl._wallet(self._word(packed, 0)), base_on_chain),
        self._leg_asset(tl._wallet(self._word(packed, 1)), quote_on_chain),
        tl._wallet(self._word(packed, tl.HEADER_WORDS + tl.P_BUYER)),
        tl._wallet(self._word(packed, tl.HEADER_WORDS + tl.P_SELLER)),
        tl._wallet(platform_word),
        tl._field(platform_word, tl.CONF_DESK_FEE_BPS, tl.MASK_16),
        introducer_bps,
        platform_word >> tl.CONF_POLICY_ID,
        blocked,
    )


@internal
@view
def _check(
    desk_id: uint256,
    creator: address,
    base_asset: address,
    quote_asset: address,
    buyer: address,
    seller: address,
    platform: address,
    desk_fee_bps: uint256,
    introducer_bps: uint256,
    deal_policy: uint256,
    blocked: bool,
) -> bytes32:
    # the rules of the contract's @dev, in that order
    assert self._desks[desk_id].admin != empty(address), "no such desk"
    assert not self._desks[desk_id].suspended, "desk suspended"
    creator_roles: uint256 = self.member_roles[desk_id][creator]
    assert creator_roles != 0, "not a desk member"
    assert creator_roles & ROLE_TRADER != 0, "not a trader"
    assert platform == self._desks[desk_id].fee_recipient, "platform must be the desk's fee recipient"
    assert desk_fee_bps <= self._desks[desk_id].max_desk_fee_bps, "desk fee above schedule"
    assert introducer_bps <= self._desks[desk_id].introducer_cap_bps, "introducers above cap"
    assert self.asset_allowed[desk_id][base_asset], "asset not allowed"
    assert self.asset_allowed[desk_id][quote_asset], "asset not allowed"
    if self._desks[desk_id].invite_only:
        assert self.member_roles[desk_id][buyer] != 0, "counterparty not invited"
        assert self.member_roles[desk_id][seller] != 0, "counterparty not invited"
    policy_id: bytes32 = self._desks[desk_id].policy_id
    desk_policy: uint256 = convert(policy_id, uint256)
    if desk_policy != 0 and desk_policy <= tl.MASK_32:
        assert deal_policy == desk_policy, "deal must carry the desk's policy"
    assert not self.screened[desk_id][creator], "trader screened out by the desk"
    assert not blocked, "party screened out by the desk"
    return policy_id


@internal
@pure
def _word(packed: Bytes[PACKED_MAX], index: uint256) -> uint256:
    # word `index` of packed terms (extract32 reverts past the end)
    return extract32(packed, index * 32, output_type=uint256)


@internal
@view
def _only_admin(desk_id: uint256) -> address:
    admin: address = self._desks[desk_id].admin
    assert admin != empty(address), "no such desk"
    assert msg.sender == admin, "not the desk admin"
    return admin


@internal
def _allow(desk_id: uint256, token: address):
    assert token == empty(address) or token.is_contract, "asset is not a contract"
    assert not self.asset_allowed[desk_id][token], "asset already allowed"
    self.asset_allowed[desk_id][token] = True
    self._desks[desk_id].asset_count += 1
    log IDeskRegistry.AssetSet(desk_id=desk_id, token=token, allowed=True)


@internal
@pure
def _check_fees(fee_recipient: address, max_desk_fee_bps: uint256, introducer_cap_bps: uint256):
    # the factory caps desk fee + introducers at 1000 bps whatever the desk allows
    assert fee_recipient != empty(address), "zero fee recipient"
    assert max_desk_fee_bps <= tl.MAX_TOTAL_FEE_BPS, "desk fee cap above 1000 bps"
    assert introducer_cap_bps <= tl.MAX_TOTAL_FEE_BPS, "introducer cap above 1000 bps"


@internal
@pure
def _leg_asset(token: address, on_chain: bool) -> address:
    # an off-chain leg carries no token: the desk allows it as the zero address
    if on_chain:
        return token
    return empty(address)
