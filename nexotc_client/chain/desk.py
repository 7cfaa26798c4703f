"""Private OTC desks: the `DeskRegistry` contract (many desks, ids from 1) and where it is recorded.

    registry = deploy_desk_registry(sender)              # or get_desk_registry() for the recorded one
    desk_id, _ = registry.create_desk(admin, fee_recipient=desk, max_desk_fee_bps=30,
                                      introducer_cap_bps=20, assets=[wbtc, usdt], sender=sender)
    registry.add_member(desk_id, trader, DeskRole.TRADER, sender=admin)
    registry.desk(desk_id)                               # DeskInfo: fields, members, assets (live)
    registry.check_deal(desk_id, trader, terms)          # the policy id, or RevertError with the rule

Every read goes to the chain. The contract is the authority; admin actions are simulated first so a
broken rule is reported with the contract's reason and nothing is sent. A desk administered by a
MultiSig takes its changes as executed calls: `call(method, *args)` gives the (target, data) to sign.

The registry's address is recorded per network in `<nexotc home>/desks.json` (same keys as
deployments.json: "<ecosystem>:<network>:<chain_id>"), a file of its own so that the factory's
deployment record is left untouched. The registry that matters is the one the factory serves: its
`desk_registry()` is fixed when the factory is deployed, so `desk_registry_of(factory)` reads it from
the chain (the record only gives its deployment block, to bound event scans).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntFlag
from typing import TYPE_CHECKING, Any

from eth_utils import keccak, to_checksum_address

from nexotc_client.chain.contracts import container, instance
from nexotc_client.chain.deal import TxResult, _event, read_events
from nexotc_client.chain.deployment import RecordFile, _hex, network_key
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, NotDeployedError, RevertError, reverts_as_errors, simulate
from nexotc_client.terms import MAX_TOTAL_FEE_BPS, ZERO_ADDRESS, Terms

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI
    from ape.contracts import ContractInstance

    from nexotc_client.chain.deal import Deal

DESKS_FILE = "desks.json"
CONTRACT = "DeskRegistry"
MAX_ASSETS = 32  # tokens per create_desk / set_assets list
OFF_CHAIN = ZERO_ADDRESS
"""The asset standing for off-chain legs on a desk's list."""
ZERO_POLICY = b"\0" * 32
MAX_SCREEN = 64
"""Wallets per `set_screened` call (the contract's bound)."""
ADMIN_METHODS = (
    "set_screened",
    "add_member",
    "remove_member",
    "set_assets",
    "set_fees",
    "set_invite_only",
    "set_policy_id",
    "set_suspended",
    "propose_admin",
    "accept_admin",
)


class DeskRole(IntFlag):
    """Roles of a desk member (bit flags of `member_roles`)."""

    TRADER = 1
    APPROVER = 2
    COMPLIANCE = 4
    CLIENT = 8


DESK_ROLE_ALL = 15


def parse_roles(text: str | int | DeskRole) -> DeskRole:
    """`trader,approver` (names, any case, `,` or `+` separated), or the bitmap as an integer."""
    if isinstance(text, int):
        value = int(text)
    else:
        raw = text.strip().lower()
        if raw.isdigit():
            value = int(raw)
        else:
            value = 0
            for name in raw.replace("+", ",").split(","):
                name = name.strip()
                if not name:
                    continue
                try:
                    value |= DeskRole[name.upper()]
                except KeyError:
                    names = ", ".join(r.name.lower() for r in DeskRole if r.name)
                    raise NexotcError(f"unknown desk role {name!r} (one of {names})") from None
    if not 0 < value <= DESK_ROLE_ALL:
        raise NexotcError(f"roles: need at least one of trader, approver, compliance, client (got {text!r})")
    return DeskRole(value)


def role_names(roles: int) -> list[str]:
    return [r.name.lower() for r in DeskRole if r.name and int(roles) & r]


def to_policy_id(value: bytes | str | int | None) -> bytes:
    """A compliance policy id: none/empty/0 is zero (no policy); an integer; 0x hex up to 32 bytes
    (left-padded); any other text is hashed (keccak256), e.g. "eu-mica-v1"."""
    if value is None:
        return ZERO_POLICY
    if isinstance(value, bool):
        raise NexotcError("policy id: expected bytes, hex, an integer or text")
    if isinstance(value, int):
        if not 0 <= value < 2**256:
            raise NexotcError("policy id: integer out of range (0 .. 2**256-1)")
        return value.to_bytes(32, "big")
    if isinstance(value, bytes):
        if len(value) > 32:
            raise NexotcError(f"policy id: {len(value)} bytes, at most 32")
        return value.rjust(32, b"\0")
    text = value.strip()
    if text.lower() in ("", "none"):
        return ZERO_POLICY
    if text.isdigit():
        return to_policy_id(int(text))
    if text.startswith("0x"):
        body = text[2:]
        if len(body) > 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
            raise NexotcError(f"policy id: not hex of at most 32 bytes: {text!r}")
        return bytes.fromhex(body.rjust(64, "0"))
    return keccak(text=text)


def _address(value: Any, what: str) -> str:
    text = value if isinstance(value, str) else getattr(value, "address", value)
    if not isinstance(text, str) or not is_valid_address(text):
        raise NexotcError(f"{what}: not an address: {value!r}")
    return to_checksum_address(text)


def _bps(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOTAL_FEE_BPS:
        raise NexotcError(f"{what}: {value!r} bps, must be within 0..{MAX_TOTAL_FEE_BPS}")
    return value


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class DeskInfo:
    """A desk read at one block: its fields, and its members and assets (replayed from the
    registry's events, then read back live)."""

    desk_id: int
    registry: str
    admin: str
    pending_admin: str | None
    fee_recipient: str
    max_desk_fee_bps: int
    introducer_cap_bps: int
    invite_only: bool
    suspended: bool
    policy_id: str
    member_count: int
    asset_count: int
    members: dict[str, DeskRole] = field(default_factory=dict)
    assets: list[str] = field(default_factory=list)
    screened: list[str] = field(default_factory=list)
    """Wallets screened out of the desk's new deals (AML), replayed from `Screened` events."""

    @property
    def has_policy(self) -> bool:
        return int(self.policy_id, 16) != 0

    @property
    def kyc_policy(self) -> int:
        """The KYCRegistry policy every deal of the desk must carry (the registry's rule 7: a policy id that, read
        as a number, is 1 .. 2**32-1); 0 when the desk requires none (no id, or an off-chain reference)."""
        value = int(self.policy_id, 16)
        return value if 0 < value < 2**32 else 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["access"] = "invite-only" if self.invite_only else "public"
        out["members"] = {m: role_names(r) for m, r in self.members.items()}
        out["assets"] = ["off-chain" if a == OFF_CHAIN else a for a in self.assets]
        return out


# ------------------------------------------------------------------ registry
class DeskRegistry:
    """A DeskRegistry. `start_block` (its deployment block, when known) bounds event scans."""

    def __init__(self, contract: ContractInstance, start_block: int = 0) -> None:
        self.contract = contract
        self.start_block = start_block

    @classmethod
    def at(cls, address: str, start_block: int = 0) -> DeskRegistry:
        """The registry at `address`; refuses an address without code or that is not a registry."""
        from ape import chain

        address = _address(address, "desk registry")
        with reverts_as_errors("reading the desk registry"):
            code = chain.provider.get_code(address)
        if not code:
            raise NexotcError(f"no contract at {address}: no desk registry there on this network")
        registry = cls(instance(address, container(CONTRACT)), start_block)
        try:
            registry.desk_count  # noqa: B018  (probe: reverts if not a registry)
        except NexotcError as exc:
            raise NexotcError(f"{address} is not a DeskRegistry") from exc
        return registry

    def __repr__(self) -> str:
        return f"<DeskRegistry {self.address}>"

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # -------------------------------------------------------------- reads
    @property
    def desk_count(self) -> int:
        with reverts_as_errors("desk_count()"):
            return int(self.contract.desk_count())

    def exists(self, desk_id: int) -> bool:
        return isinstance(desk_id, int) and 1 <= desk_id <= self.desk_count

    def member_roles(self, desk_id: int, who: str) -> DeskRole:
        with reverts_as_errors("member_roles()"):
            return DeskRole(int(self.contract.member_roles(desk_id, _address(who, "member"))))

    def asset_allowed(self, desk_id: int, token: str) -> bool:
        with reverts_as_errors("asset_allowed()"):
            return bool(self.contract.asset_allowed(desk_id, _address(token, "asset")))

    def screened(self, desk_id: int, wallet: str) -> bool:
        """True while `wallet` is screened out of the desk's new deals."""
        with reverts_as_errors("screened()"):
            return bool(self.contract.screened(desk_id, _address(wallet, "wallet")))

    def desk(self, desk_id: int, lists: bool = True) -> DeskInfo:
        """The desk's fields, members and asset list (`lists=False`: fields only, members and
        assets left empty); NexotcError for an id that is no desk."""
        self._require_desk(desk_id)
        with reverts_as_errors("desk()"):
            d = self.contract.desk(desk_id)
        members: dict[str, DeskRole] = {}
        assets: list[str] = []
        seen_members: list[str] = []
        seen_assets: list[str] = []
        screened_now: dict[str, bool] = {}  # wallet => its last Screened event's state (first screened first)
        for ev in self._events(("MemberSet", "AssetSet", "Screened")) if lists else ():
            if int(ev.args["desk_id"]) != desk_id:
                continue
            if ev.name == "MemberSet":
                who = to_checksum_address(ev.args["member"])
                if who not in seen_members:
                    seen_members.append(who)
            elif ev.name == "Screened":
                # every screening change emits Screened (set_screened requires each wallet to change), so the
                # last event is the registry's state: no read per wallet (an AML list can be long)
                screened_now[to_checksum_address(ev.args["wallet"])] = bool(ev.args["screened"])
            else:
                token = to_checksum_address(ev.args["token"])
                if token not in seen_assets:
                    seen_assets.append(token)
        with reverts_as_errors("reading members and assets"):
            for who in seen_members:
                roles = int(self.contract.member_roles(desk_id, who))
                if roles:
                    members[who] = DeskRole(roles)
            for token in seen_assets:
                if self.contract.asset_allowed(desk_id, token):
                    assets.append(token)
        screened = [w for w, on in screened_now.items() if on]
        pending = to_checksum_address(str(d.pending_admin))
        return DeskInfo(
            desk_id=desk_id,
            registry=self.address,
            admin=to_checksum_address(str(d.admin)),
            pending_admin=None if pending == ZERO_ADDRESS else pending,
            fee_recipient=to_checksum_address(str(d.fee_recipient)),
            max_desk_fee_bps=int(d.max_desk_fee_bps),
            introducer_cap_bps=int(d.introducer_cap_bps),
            invite_only=bool(d.invite_only),
            suspended=bool(d.suspended),
            policy_id="0x" + bytes(d.policy_id).hex(),
            member_count=int(d.member_count),
            asset_count=int(d.asset_count),
            members=members,
            assets=assets,
            screened=screened,
        )

    def desks(self) -> list[int]:
        return list(range(1, self.desk_count + 1))

    def check_offer(self, desk_id: int, maker: str, taker: str | None, terms: Terms) -> tuple[bytes, str]:
        """What the factory asks when a desk offer is accepted (`check_offer_packed`: the maker as the desk's
        trader when it is one, else the taker; None: not known yet, a public offer): the desk's policy id and the
        trader checked; RevertError naming the first desk rule broken otherwise."""
        with reverts_as_errors("check_offer_packed"):
            policy, trader = self.contract.check_offer_packed(
                desk_id, _address(maker, "maker"), _address(taker or ZERO_ADDRESS, "taker"), terms.pack()
            )
        return bytes(policy), to_checksum_address(str(trader))

    def check_deal(self, desk_id: int, creator: str, terms: Terms) -> bytes:
        """The desk's policy id if `creator` may create `terms` for the desk; RevertError naming the
        first desk rule broken otherwise."""
        with reverts_as_errors("check_deal"):
            return bytes(self.contract.check_deal(desk_id, _address(creator, "creator"), terms.as_struct()))

    def screened_in(self, desk_id: int, terms: Terms, trader: str | None = None) -> list[str]:
        """Which of the deal's wallets (the trader checked, then every party) the desk has screened out, each
        with its roles: what "screened out by the desk" refers to."""
        from nexotc_client.terms import role_names as party_roles

        out = []
        if trader is not None and self.screened(desk_id, trader):
            out.append(f"{to_checksum_address(trader)} (the trader)")
        for party in terms.parties:
            if party.wallet != ZERO_ADDRESS and self.screened(desk_id, party.wallet):
                out.append(f"{party.wallet} ({', '.join(party_roles(party.roles))})")
        return out

    def require_deal(self, desk_id: int, creator: str, terms: Terms) -> bytes:
        """`check_deal`, with the desk's id checked first and the broken rule named for the user:
        "desk #1 refuses this deal from 0x..: not a desk member"."""
        self._require_desk(desk_id)
        creator = _address(creator, "creator")
        try:
            return self.check_deal(desk_id, creator, terms)
        except RevertError as exc:
            named = self.screened_in(desk_id, terms, creator) if "screened out by the desk" in exc.reason else []
            which = f" ({'; '.join(named)})" if named else ""
            raise NexotcError(f"desk #{desk_id} refuses this deal from {creator}: {exc.reason}{which}") from exc

    # ------------------------------------------------------------ actions
    def create_desk(
        self,
        admin: str,
        fee_recipient: str,
        max_desk_fee_bps: int,
        introducer_cap_bps: int,
        sender: AccountAPI,
        invite_only: bool = False,
        policy_id: bytes | str | int | None = None,
        assets: list[str] | tuple[str, ...] = (),
    ) -> tuple[int, TxResult]:
        """Create a desk (anyone may; `admin` then manages it). Returns (desk id, TxResult)."""
        args = (
            _address(admin, "admin"),
            _address(fee_recipient, "fee recipient"),
            _bps(max_desk_fee_bps, "max desk fee"),
            _bps(introducer_cap_bps, "introducer cap"),
            bool(invite_only),
            to_policy_id(policy_id),
            self._assets(assets, "assets"),
        )
        receipt = self._transact("create_desk", sender, *args)
        created = [
            log for log in receipt.decode_logs(self.contract.DeskCreated) if log.contract_address == self.address
        ]
        if not created:
            raise NexotcError(f"transaction {receipt.txn_hash} created no desk")
        return int(created[0].desk_id), self._result(receipt)

    def set_screened(
        self, desk_id: int, wallets: list[str] | tuple[str, ...], screened: bool, sender: AccountAPI
    ) -> TxResult:
        """The desk's admin or a COMPLIANCE member: screen `wallets` out of the desk's new deals (or back in,
        `screened` False); each must change (at most MAX_SCREEN)."""
        return self._send("set_screened", sender, *self.args("set_screened", desk_id, wallets, screened))

    def add_member(self, desk_id: int, member: str, roles: DeskRole | int | str, sender: AccountAPI) -> TxResult:
        """Admin-only: make `member` a member with `roles` (or replace its roles)."""
        return self._send("add_member", sender, *self.args("add_member", desk_id, member, roles))

    def remove_member(self, desk_id: int, member: str, sender: AccountAPI) -> TxResult:
        return self._send("remove_member", sender, *self.args("remove_member", desk_id, member))

    def set_assets(
        self, desk_id: int, sender: AccountAPI, allow: list[str] | tuple = (), disallow: list[str] | tuple = ()
    ) -> TxResult:
        return self._send("set_assets", sender, *self.args("set_assets", desk_id, allow, disallow))

    def set_fees(
        self,
        desk_id: int,
        sender: AccountAPI,
        fee_recipient: str | None = None,
        max_desk_fee_bps: int | None = None,
        introducer_cap_bps: int | None = None,
    ) -> TxResult:
        """Set the fee schedule; a field left None keeps its current value."""
        return self._send(
            "set_fees", sender, *self.args("set_fees", desk_id, fee_recipient, max_desk_fee_bps, introducer_cap_bps)
        )

    def set_invite_only(self, desk_id: int, invite_only: bool, sender: AccountAPI) -> TxResult:
        return self._send("set_invite_only", sender, *self.args("set_invite_only", desk_id, invite_only))

    def set_policy_id(self, desk_id: int, policy_id: bytes | str | int | None, sender: AccountAPI) -> TxResult:
        return self._send("set_policy_id", sender, *self.args("set_policy_id", desk_id, policy_id))

    def set_suspended(self, desk_id: int, suspended: bool, sender: AccountAPI) -> TxResult:
        return self._send("set_suspended", sender, *self.args("set_suspended", desk_id, suspended))

    def propose_admin(self, desk_id: int, new_admin: str | None, sender: AccountAPI) -> TxResult:
        """Propose `new_admin` (None withdraws a proposal); it takes over with `accept_admin`."""
        return self._send("propose_admin", sender, *self.args("propose_admin", desk_id, new_admin))

    def accept_admin(self, desk_id: int, sender: AccountAPI) -> TxResult:
        return self._send("accept_admin", sender, *self.args("accept_admin", desk_id))

    # --------------------------------------------- calls for MultiSig admins
    def args(self, method: str, desk_id: int, *values: Any) -> tuple[Any, ...]:
        """The contract arguments of an admin `method` from friendly values (roles by name, policy
        ids as text, None = keep for set_fees), checked before anything is sent."""
        self._require_desk(desk_id)
        if method == "set_screened":
            wallets, screened = values
            listed = list(dict.fromkeys(_address(w, "wallet") for w in wallets))
            if not listed:
                raise NexotcError("screening: no wallet given")
            if len(listed) > MAX_SCREEN:
                raise NexotcError(f"screening: {len(listed)} wallets, at most {MAX_SCREEN} per call")
            if ZERO_ADDRESS in listed:
                raise NexotcError("screening: the zero address is not a wallet")
            return (desk_id, listed, bool(screened))
        if method == "add_member":
            member, roles = values
            return (desk_id, _address(member, "member"), int(parse_roles(roles)))
        if method == "remove_member":
            return (desk_id, _address(values[0], "member"))
        if method == "set_assets":
            allow, disallow = (self._assets(v, w) for v, w in zip(values, ("allow", "disallow"), strict=True))
            if not allow and not disallow:
                raise NexotcError("set assets: nothing to allow or disallow")
            return (desk_id, allow, disallow)
        if method == "set_fees":
            fee_recipient, max_fee, cap = values
            if fee_recipient is None or max_fee is None or cap is None:
                with reverts_as_errors("desk()"):
                    current = self.contract.desk(desk_id)
                fee_recipient = str(current.fee_recipient) if fee_recipient is None else fee_recipient
                max_fee = int(current.max_desk_fee_bps) if max_fee is None else max_fee
                cap = int(current.introducer_cap_bps) if cap is None else cap
            return (
                desk_id,
                _address(fee_recipient, "fee recipient"),
                _bps(max_fee, "max desk fee"),
                _bps(cap, "introducer cap"),
            )
        if method in ("set_invite_only", "set_suspended"):
            return (desk_id, bool(values[0]))
        if method == "set_policy_id":
            return (desk_id, to_policy_id(values[0]))
        if method == "propose_admin":
            return (desk_id, ZERO_ADDRESS if values[0] is None else _address(values[0], "new admin"))
        if method == "accept_admin":
            return (desk_id,)
        raise NexotcError(f"not a desk admin method: {method}")

    def send(self, method: str, sender: AccountAPI, *args: Any) -> TxResult:
        """Send admin `method` with contract arguments (as `args` returns them)."""
        if method not in ADMIN_METHODS:
            raise NexotcError(f"not a desk admin method: {method}")
        return self._send(method, sender, *args)

    def call(self, method: str, *args: Any) -> tuple[str, bytes]:
        """(target, calldata) of `method(*args)` (contract arguments, see `args`), for a MultiSig admin
        to sign and execute (nexotc_client.multisig.Call(target, 0, data))."""
        with reverts_as_errors(f"encoding {method}"):
            data = bytes(getattr(self.contract, method).encode_input(*args))
        return self.address, data

    # ---------------------------------------------------------- internals
    def _require_desk(self, desk_id: int) -> None:
        if isinstance(desk_id, bool) or not isinstance(desk_id, int) or desk_id < 1:
            raise NexotcError(f"desk id: expected a positive integer, got {desk_id!r}")
        count = self.desk_count
        if desk_id > count:
            raise NexotcError(f"no desk #{desk_id} (the registry at {self.address} has {count})")

    @staticmethod
    def _assets(tokens: Any, what: str) -> list[str]:
        out = [_address(t, what) for t in tokens or ()]
        if len(out) > MAX_ASSETS:
            raise NexotcError(f"{what}: {len(out)} assets, at most {MAX_ASSETS} per call")
        if len(set(out)) != len(out):
            raise NexotcError(f"{what}: an asset is listed twice")
        return out

    def _events(self, names: tuple[str, ...]) -> list[Any]:
        abis = [e for e in self.contract.contract_type.events if e.name in names]
        return read_events(self.address, abis, self.start_block)

    def _transact(self, method: str, sender: AccountAPI, *args: Any) -> ReceiptAPI:
        with reverts_as_errors(method):
            simulate(self.contract, method, args, sender.address)
            return getattr(self.contract, method)(*args, sender=sender)

    def _send(self, method: str, sender: AccountAPI, *args: Any) -> TxResult:
        return self._result(self._transact(method, sender, *args))

    def _result(self, receipt: ReceiptAPI) -> TxResult:
        abis = list(self.contract.contract_type.events)
        by_name = {abi.name: abi for abi in abis}
        timestamp = int(receipt.timestamp)
        events = [
            _event(log, timestamp, by_name)
            for log in receipt.decode_logs(abis)
            if str(log.contract_address).lower() == self.address.lower()
        ]
        return TxResult(
            tx_hash=_hex(receipt.txn_hash),
            gas_used=int(receipt.gas_used),
            block=int(receipt.block_number),
            events=events,
        )


# ------------------------------------------------------------- the record
@dataclass(frozen=True)
class DeskRegistryRecord:
    """A DeskRegistry deployed on one network."""

    network: str
    address: str
    block: int
    block_hash: str
    tx_hash: str
    deployer: str
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DeskRegistryRecord:
        from nexotc_client.chain.deployment import parse_record

        return cls(**parse_record(data, cls, "desk registry record"))


class DeskRecords(RecordFile[DeskRegistryRecord]):
    """The JSON file of desk registries by network key (`<home>/desks.json`)."""

    FILE = DESKS_FILE
    LABEL = "desk registry file"
    RECORD = DeskRegistryRecord


def deploy_desk_registry(sender: AccountAPI, records: DeskRecords | None = None) -> DeskRegistry:
    """Deploy a DeskRegistry and record it for the connected network."""
    from ape import chain

    records = records or DeskRecords()
    with reverts_as_errors("deploying the desk registry"):
        contract = container(CONTRACT).deploy(sender=sender)
        receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
        block_number = int(receipt.block_number) if receipt else int(chain.blocks.height)
        block = chain.provider.get_block(block_number)
    records.record(
        DeskRegistryRecord(
            network=network_key(),
            address=to_checksum_address(str(contract.address)),
            block=block_number,
            block_hash=_hex(block.hash),
            tx_hash=_hex(receipt.txn_hash) if receipt else "",
            deployer=to_checksum_address(sender.address),
            timestamp=int(block.timestamp),
        )
    )
    return DeskRegistry(instance(str(contract.address), container(CONTRACT)), start_block=block_number)


def get_desk_record(records: DeskRecords | None = None) -> DeskRegistryRecord:
    """The registry recorded for the connected network, checked against the chain (the deployment
    block still has the recorded hash and the registry its code)."""
    from ape import chain

    records = records or DeskRecords()
    key = network_key()
    entry = records.get(key)
    if entry is None:
        raise NotDeployedError(f"no desk registry recorded for {key} in {records.path} (run `nexotc desk deploy`)")
    with reverts_as_errors("checking the desk registry"):
        same_chain = entry.block <= int(chain.blocks.height) and (
            _hex(chain.provider.get_block(entry.block).hash) == entry.block_hash
        )
        has_code = bool(chain.provider.get_code(entry.address))
    if not same_chain or not has_code:
        raise NotDeployedError(
            f"the desk registry recorded for {key} ({entry.address}, block {entry.block}) is not on this chain "
            "any more (chain reset?); run `nexotc desk deploy`"
        )
    return entry


def get_desk_registry(records: DeskRecords | None = None) -> DeskRegistry:
    entry = get_desk_record(records)
    return DeskRegistry.at(entry.address, start_block=entry.block)


def factory_desk_registry(factory: str) -> str | None:
    """The DeskRegistry the factory at `factory` serves (its `desk_registry()`, fixed when it was
    deployed), None when it serves none (zero)."""
    from nexotc_client.chain.contracts import factory_container

    contract = instance(_address(factory, "factory"), factory_container())
    try:
        with reverts_as_errors("desk_registry()"):
            address = to_checksum_address(str(contract.desk_registry()))
    except NexotcError as exc:
        raise NexotcError(f"cannot read desk_registry() of the factory at {contract.address}: {exc}") from exc
    return None if address == ZERO_ADDRESS else address


def desk_registry_of(factory: str, records: DeskRecords | None = None) -> DeskRegistry:
    """The DeskRegistry the factory at `factory` serves, read from the chain (desk deals of that
    factory follow the desks of this registry and no other). The record in desks.json, when it
    names the same registry, gives the deployment block that bounds event scans."""
    address = factory_desk_registry(factory)
    if address is None:
        raise NexotcError(
            f"the factory at {to_checksum_address(factory)} serves no desk registry (deployed without one): "
            "deploy a new factory with `nexotc deploy --force --new-desk-registry` (it deploys the registry it serves)"
        )
    start = 0
    try:
        entry = (records or DeskRecords()).get(network_key())
    except NexotcError:
        entry = None
    if entry is not None and entry.address == address:
        start = entry.block
    return DeskRegistry.at(address, start_block=start)


def create_desk_deal(factory: Any, desk_id: int, terms: Terms, sender: AccountAPI, salt: bytes) -> Deal:
    """Create a deal for desk `desk_id` through `factory.create_desk_deal` (the factory asks the
    registry's check first; the call is simulated, so a broken rule sends nothing). Returns the
    Deal, its creation's TxResult in `Deal.created`; NexotcError if the factory has no desk hook."""
    from nexotc_client.chain.contracts import deal_container
    from nexotc_client.chain.deal import Deal, tx_result
    from nexotc_client.chain.factory import Factory

    contract = getattr(factory, "contract", factory)
    if not any(m.name == "create_desk_deal" for m in contract.contract_type.mutable_methods):
        raise NexotcError(f"the factory at {contract.address} has no create_desk_deal")
    args = (desk_id, terms.as_struct(), salt)
    with reverts_as_errors("create_desk_deal"):
        simulate(contract, "create_desk_deal", args, sender.address)
        receipt = contract.create_desk_deal(*args, sender=sender)
    factory_address = str(contract.address)
    created = [log for log in receipt.decode_logs(contract.DealCreated) if log.contract_address == factory_address]
    if not created:
        raise NexotcError(f"transaction {receipt.txn_hash} created no deal")
    address = to_checksum_address(str(created[0].deal))
    wrapper = factory if isinstance(factory, Factory) else Factory(contract)
    deal = Deal(instance(address, deal_container()), wrapper)
    deal.created = tx_result(receipt, {factory_address, address})
    return deal


__all__ = [
    "DESKS_FILE",
    "DESK_ROLE_ALL",
    "MAX_ASSETS",
    "OFF_CHAIN",
    "DeskInfo",
    "DeskRecords",
    "DeskRegistry",
    "DeskRegistryRecord",
    "DeskRole",
    "RevertError",
    "create_desk_deal",
    "deploy_desk_registry",
    "desk_registry_of",
    "factory_desk_registry",
    "get_desk_record",
    "get_desk_registry",
    "parse_roles",
    "role_names",
    "to_policy_id",
]
