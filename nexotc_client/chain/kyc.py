"""The zk KYC/KYB registry (`KYCRegistry`): issuers and roots, policies, attestations from proofs.

    registry = deploy_kyc_registry(admin)                # or get_kyc_registry() for the recorded one
    registry.set_issuer(issuer, True, "Acme KYC", sender=admin)
    registry.publish_root(tree.root, sender=issuer)
    policy_id, _ = registry.register_policy(params, "EU retail", sender=admin)
    registry.prepare(tree.root, policy_id, sender=issuer)  # optional: submissions ~12k gas cheaper
    registry.submit_proof(proof, policy_id, now, valid_until, sender=holder)   # the wallet in the proof
    registry.is_compliant(holder, deal_scope(deal), policy_id)
    registry.attestations(subject=holder)                # Attested events, with audit commitments

Every read goes to the chain; every action is simulated first so a broken rule is reported with the
contract's reason and nothing is sent. The registry (its Groth16 verifier is inlined) is recorded per network in
`<nexotc home>/kyc.json`, a file of its own next to deployments.json and desks.json.

Scopes: a deal's scope is its address as an integer (`deal_scope`); a desk's is `(1 << 160) | desk_id`
(`desk_scope`), above every address so that the two can never collide. A desk deal's scope is its desk's
(`scope_of_deal` reads what a deployed deal uses), so a desk member proves once for all the desk's deals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eth_utils import to_checksum_address

from nexotc_client.chain.contracts import container, instance
from nexotc_client.chain.deal import DealEvent, TxResult, _event, read_events
from nexotc_client.chain.deployment import RecordFile, _hex, network_key
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, NotDeployedError, RevertError, reverts_as_errors, simulate
from nexotc_client.terms import ZERO_ADDRESS

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI

KYC_FILE = "kyc.json"
CONTRACT = "KYCRegistry"
SNARK_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617
MAX_CLOCK_SKEW = 300
"""Seconds the proof's `now` may differ from block time (KYCRegistry.MAX_CLOCK_SKEW)."""
DEFAULT_ROOT_WINDOW = 3_600
MAX_ROOT_WINDOW = 30 * 86_400
"""The longest root window the registry accepts (KYCRegistry.MAX_ROOT_WINDOW)."""
CURRENT = 2**64 - 1
"""`root_status` validity of an issuer's current root."""
DESK_SCOPE_TAG = 1 << 160
ADMIN_METHODS = ("set_issuer", "expire_root", "set_root_window", "register_policy", "propose_admin", "accept_admin")


def deal_scope(deal: str) -> int:
    """The scope of a deal: its address as an integer."""
    return int(_address(deal, "deal"), 16)


def scope_of_deal(contract: Any) -> int:
    """The scope a deployed deal's principals prove in (`DealEscrow.scope()`): its desk's for a desk deal,
    else its own address. Deals of an implementation that predates desk scopes use their address."""
    try:
        reader = contract.scope
    except AttributeError:
        return deal_scope(str(contract.address))
    return int(reader())


def desk_scope(desk_id: int) -> int:
    """The scope of a desk: (1 << 160) | desk id."""
    if isinstance(desk_id, bool) or not isinstance(desk_id, int) or not 0 < desk_id < DESK_SCOPE_TAG:
        raise NexotcError(f"desk id: expected a positive integer, got {desk_id!r}")
    from nexotc_client.zk.credential import desk_scope as scope

    return scope(desk_id)


def unpack_binding(value: int) -> tuple[str, int, int]:
    """(checksummed wallet, now, valid_until) of a `binding` public input (layout: zk.credential.binding)."""
    from nexotc_client.zk.credential import unpack_binding as unpack

    wallet, now, valid_until = unpack(value)
    return to_checksum_address(wallet), now, valid_until


class ProofLike(Protocol):
    """What `submit_proof` needs of a proof (nexotc_client.zk.prover.Proof)."""

    public_signals: tuple[int, ...]

    def calldata(self) -> tuple[list[int], list[int]]: ...


@dataclass(frozen=True)
class PolicyParams:
    """A policy's parameters (packed by the registry into the policy word proofs carry): who may pass."""

    min_kyc_level: int
    require_accredited: bool
    entity_mask: int
    deny: tuple[int, ...]

    def as_args(self) -> tuple[int, bool, int, list[int]]:
        deny = list(self.deny) + [0] * (8 - len(self.deny))
        if len(deny) != 8:
            raise NexotcError(f"a policy denies at most 8 jurisdictions, got {len(self.deny)}")
        return self.min_kyc_level, self.require_accredited, self.entity_mask, deny


@dataclass(frozen=True)
class PolicyRecord:
    """A registered policy: id, word, parameters as published in its PolicyRegistered event."""

    policy_id: int
    policy_word: int
    registrar: str
    params: PolicyParams
    label: str
    block: int
    tx_hash: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # policy_word stays an int (91 bits), as `kyc policy register --json` gives it
        d["params"]["deny"] = list(self.params.deny)
        d["params"]["entities"] = entity_names(self.params.entity_mask)
        return d


ENTITY_MASK_NAMES = {1: "individual", 2: "business"}


def entity_names(mask: int) -> list[str]:
    """The entity types a policy's mask allows: ["individual"], ["business"] or both."""
    return [name for bit, name in ENTITY_MASK_NAMES.items() if mask & bit]


@dataclass(frozen=True)
class Attestation:
    """One Attested event: `subject` met `policy_id` in `scope` until `expiry`."""

    subject: str
    scope: int
    policy_id: int
    nullifier: int
    audit_commitment: int
    expiry: int
    root: int
    tx_hash: str
    block: int
    timestamp: int
    log_index: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("scope", "nullifier", "audit_commitment", "root"):
            d[key] = str(d[key])
        return d

    @classmethod
    def from_event(cls, ev: DealEvent) -> Attestation:
        a = ev.args
        return cls(
            subject=to_checksum_address(str(a["subject"])),
            scope=int(a["scope"]),
            policy_id=int(a["policy"]),
            nullifier=int(a["nullifier"]),
            audit_commitment=int(a["audit_commitment"]),
            expiry=int(a["expiry"]),
            root=int(a["root"]),
            tx_hash=ev.tx_hash,
            block=ev.block,
            timestamp=ev.timestamp,
            log_index=ev.log_index,
        )


@dataclass(frozen=True)
class RootStatus:
    root: int
    issuer: str | None
    valid_until: int

    @property
    def known(self) -> bool:
        return self.issuer is not None

    @property
    def current(self) -> bool:
        return self.valid_until == CURRENT

    def valid_at(self, timestamp: int) -> bool:
        return self.known and timestamp <= self.valid_until

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "issuer": self.issuer, "valid_until": self.valid_until, "current": self.current}


class KYCRegistry:
    """A deployed KYCRegistry."""

    def __init__(self, contract: Any, start_block: int = 0) -> None:
        self.contract = contract
        self.start_block = start_block

    @classmethod
    def at(cls, address: str, start_block: int = 0) -> KYCRegistry:
        """The registry at `address`; refuses an address without code or that is not a KYCRegistry."""
        from ape import chain

        address = _address(address, "kyc registry")
        with reverts_as_errors("reading the kyc registry"):
            code = chain.provider.get_code(address)
        if not code:
            raise NexotcError(f"no contract at {address}: no kyc registry there on this network")
        registry = cls(instance(address, container(CONTRACT)), start_block)
        try:
            registry.root_window  # noqa: B018  (probe: reverts if not a registry)
        except NexotcError as exc:
            raise NexotcError(f"{address} is not a KYCRegistry") from exc
        return registry

    def __repr__(self) -> str:
        return f"<KYCRegistry {self.address}>"

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # -------------------------------------------------------------- reads
    @property
    def admin(self) -> str:
        with reverts_as_errors("admin()"):
            return to_checksum_address(str(self.contract.admin()))

    @property
    def pending_admin(self) -> str | None:
        with reverts_as_errors("pending_admin()"):
            pending = to_checksum_address(str(self.contract.pending_admin()))
        return None if pending == ZERO_ADDRESS else pending

    @property
    def root_window(self) -> int:
        with reverts_as_errors("root_window()"):
            return int(self.contract.root_window())

    @property
    def policy_count(self) -> int:
        with reverts_as_errors("policy_count()"):
            return int(self.contract.policy_count())

    def is_issuer(self, who: str) -> bool:
        with reverts_as_errors("is_issuer()"):
            return bool(self.contract.is_issuer(_address(who, "issuer")))

    def current_root(self, issuer: str) -> int:
        with reverts_as_errors("current_root()"):
            return int(self.contract.current_root(_address(issuer, "issuer")))

    def root_status(self, root: int) -> RootStatus:
        with reverts_as_errors("root_status()"):
            issuer, until = self.contract.root_status(int(root))
        issuer = to_checksum_address(str(issuer))
        return RootStatus(int(root), None if issuer == ZERO_ADDRESS else issuer, int(until))

    def policy_word(self, policy_id: int) -> int:
        with reverts_as_errors("policy_word()"):
            return int(self.contract.policy_word(int(policy_id)))

    def policy_of(self, policy_word: int) -> int:
        with reverts_as_errors("policy_of()"):
            return int(self.contract.policy_of(int(policy_word)))

    def nullifier_owner(self, scope: int, nullifier: int) -> str | None:
        with reverts_as_errors("nullifier_owner()"):
            owner = to_checksum_address(str(self.contract.nullifier_owner(int(scope), int(nullifier))))
        return None if owner == ZERO_ADDRESS else owner

    def is_compliant(self, subject: str, scope: int, policy_id: int) -> bool:
        with reverts_as_errors("is_compliant()"):
            return bool(self.contract.is_compliant(_address(subject, "subject"), int(scope), int(policy_id)))

    def attestation(self, subject: str, scope: int, block: int | None = None) -> tuple[int, int]:
        """(expiry, policy id) of `subject`'s attestation in `scope` (as of `block`, else the head); zeros if
        none."""
        with reverts_as_errors("attestation()"):
            at = {} if block is None else {"block_id": block}
            expiry, policy = self.contract.attestation(_address(subject, "subject"), int(scope), **at)
        return int(expiry), int(policy)

    def policies(self) -> list[PolicyRecord]:
        out = []
        for ev in self.events(("PolicyRegistered",)):
            a = ev.args
            out.append(
                PolicyRecord(
                    policy_id=int(a["policy"]),
                    policy_word=int(a["policy_word"]),
                    registrar=to_checksum_address(str(a["registrar"])),
                    params=PolicyParams(
                        int(a["min_kyc_level"]),
                        bool(a["require_accredited"]),
                        int(a["entity_mask"]),
                        tuple(int(x) for x in a["deny"]),
                    ),
                    label=str(a["label"]),
                    block=ev.block,
                    tx_hash=ev.tx_hash,
                )
            )
        return out

    def policy(self, policy_id: int) -> PolicyRecord:
        for p in self.policies():
            if p.policy_id == policy_id:
                return p
        raise NexotcError(f"no policy #{policy_id} in the kyc registry at {self.address}")

    def attestations(
        self, subject: str | None = None, scope: int | None = None, from_block: int | None = None
    ) -> list[Attestation]:
        """Attested events (oldest first), optionally for one subject and/or scope."""
        out = [Attestation.from_event(ev) for ev in self.events(("Attested",), from_block)]
        if subject is not None:
            who = _address(subject, "subject")
            out = [a for a in out if a.subject == who]
        if scope is not None:
            out = [a for a in out if a.scope == int(scope)]
        return out

    def latest_attestation(self, subject: str, scope: int) -> Attestation | None:
        found = self.attestations(subject, scope)
        return found[-1] if found else None

    def issuers(self) -> dict[str, bool]:
        """Issuer => active, from IssuerSet events and the live map."""
        seen: list[str] = []
        for ev in self.events(("IssuerSet",)):
            who = to_checksum_address(str(ev.args["issuer"]))
            if who not in seen:
                seen.append(who)
        return {who: self.is_issuer(who) for who in seen}

    def events(self, names: tuple[str, ...], from_block: int | None = None) -> list[DealEvent]:
        abis = [e for e in self.contract.contract_type.events if e.name in names]
        return read_events(self.address, abis, self.start_block if from_block is None else from_block)

    # ------------------------------------------------------------ actions
    def submit_proof(self, proof: ProofLike, policy_id: int, sender: AccountAPI) -> TxResult:
        """Submit a compliance proof from the wallet bound in it: records the attestation.

        The registry's checks are read from the chain first, so that a proof that would be refused is
        named with what to do (the registry still decides: a race gets its revert reason, with the hint)."""
        from ape import chain

        points, signals = proof.calldata()
        nullifier, audit, root, policy_word, scope, bound = (int(s) for s in signals)
        wallet, now, valid_until = unpack_binding(bound)
        if wallet != to_checksum_address(sender.address):
            raise NexotcError(f"the proof is bound to {wallet}, not to the sender {sender.address}")
        expected = self.policy_word(policy_id)
        if expected == 0:
            raise NexotcError(f"no policy #{policy_id} in the kyc registry at {self.address}")
        if expected != policy_word:
            raise NexotcError(f"the proof is for another policy than #{policy_id} (policy word mismatch)")
        with reverts_as_errors("reading the chain time"):
            block_time = int(chain.blocks.head.timestamp)
        if now + MAX_CLOCK_SKEW < block_time:
            raise NexotcError(f"proof time too old ({_iso(now)}, over {MAX_CLOCK_SKEW}s ago): {REPROVE_HINT}")
        if valid_until < block_time:
            raise NexotcError(f"the proof's validity ended at {_iso(valid_until)}: {REPROVE_HINT}")
        status = self.root_status(root)
        if not status.valid_at(block_time):
            state = "unknown" if not status.known else "expired"
            raise NexotcError(
                f"the proof's root is {state} on chain: ask the issuer for a fresh path (`nexotc issuer path`), "
                "then re-run `nexotc kyc prove`"
            )
        self.check_nullifier(scope, nullifier, wallet)
        self.check_extends(wallet, scope, int(policy_id), valid_until, block_time)
        args = (scope, int(policy_id), root, nullifier, audit, now, valid_until, [int(v) for v in points])
        try:
            return self._send("submit_proof", sender, *args)
        except RevertError as exc:
            if exc.reason in ("proof time too old", "validity already ended"):
                raise NexotcError(f"{exc}: {REPROVE_HINT}") from exc
            if exc.reason == "nullifier used":
                self.check_nullifier(scope, nullifier, wallet)
            if exc.reason in ("attested for another policy in this scope", "an attestation in force is only extended"):
                self.check_extends(wallet, scope, int(policy_id), valid_until, int(chain.blocks.head.timestamp))
            raise

    def check_extends(self, wallet: str, scope: int, policy_id: int, valid_until: int, now: int) -> None:
        """Refuse what the registry refuses while `wallet`'s attestation in `scope` is in force: another policy, or
        an expiry not after the one in force (attestations only grow, whatever the credential)."""
        expiry, policy = self.attestation(wallet, scope)
        if policy == 0 or now > expiry:
            return
        if policy != policy_id:
            raise NexotcError(
                f"{wallet} holds an attestation of policy #{policy} in this scope until {_iso(expiry)}: until then a "
                f"new one must carry policy #{policy} (attestations in force are only extended), not #{policy_id}"
            )
        if valid_until <= expiry:
            raise NexotcError(
                f"{wallet} is already attested for policy #{policy} in this scope until {_iso(expiry)}; only a later "
                "expiry extends it (re-run `nexotc kyc prove` with a --valid-for that reaches past it)"
            )

    def check_nullifier(self, scope: int, nullifier: int, wallet: str) -> None:
        """Refuse a nullifier already used in `scope` by another wallet (one wallet per credential and scope); the
        same wallet may use it again (its attestation is then only extended: `check_extends`). The nullifier is
        Poseidon([secret, scope]): the holder computes it offline, so `kyc prove` asks before proving."""
        owner = self.nullifier_owner(scope, nullifier)
        if owner is None:
            return
        if owner != to_checksum_address(_address(wallet, "wallet")):
            raise NexotcError(
                f"this credential already attested {owner} in this scope: a credential attests one wallet per scope"
            )

    def publish_root(self, root: int, sender: AccountAPI) -> TxResult:
        """Issuer-only: make `root` the sender's current root."""
        return self._send("publish_root", sender, _field(root, "root"))

    def prepare(self, root: int | str, policy_id: int, sender: AccountAPI) -> TxResult:
        """Anyone (issuers, after publishing a root): store the verifier's part fixed by (root, policy) so
        that every later submission against them costs two ecMul (~12k gas) less."""
        return self._send("prepare", sender, _field(root, "root"), _policy_id(policy_id))

    def prepared(self, root: int, policy_id: int) -> bool:
        with reverts_as_errors("prepared()"):
            return bool(self.contract.prepared(_field(root, "root"), _policy_id(policy_id)))

    def register_policy(self, params: PolicyParams, label: str, sender: AccountAPI) -> tuple[int, TxResult]:
        """Admin or issuer: register a policy; returns (policy id, TxResult)."""
        result = self._send("register_policy", sender, *self.args("register_policy", params, label))
        created = [e for e in result.events if e.name == "PolicyRegistered"]
        if not created:
            raise NexotcError(f"transaction {result.tx_hash} registered no policy")
        return int(created[0].args["policy"]), result

    def set_issuer(self, issuer: str, active: bool, label: str, sender: AccountAPI) -> TxResult:
        return self._send("set_issuer", sender, *self.args("set_issuer", issuer, active, label))

    def expire_root(self, root: int, sender: AccountAPI) -> TxResult:
        return self._send("expire_root", sender, *self.args("expire_root", root))

    def set_root_window(self, window: int, sender: AccountAPI) -> TxResult:
        return self._send("set_root_window", sender, *self.args("set_root_window", window))

    def propose_admin(self, new_admin: str | None, sender: AccountAPI) -> TxResult:
        return self._send("propose_admin", sender, *self.args("propose_admin", new_admin))

    def accept_admin(self, sender: AccountAPI) -> TxResult:
        return self._send("accept_admin", sender)

    # --------------------------------------------- calls for MultiSig admins
    def args(self, method: str, *values: Any) -> tuple[Any, ...]:
        """Contract arguments of an admin `method` from friendly values, checked before sending."""
        if method == "set_issuer":
            issuer, active, label = values
            return (_address(issuer, "issuer"), bool(active), _label(label))
        if method == "expire_root":
            return (_field(values[0], "root"),)
        if method == "set_root_window":
            window = int(values[0])
            if window < 0:
                raise NexotcError("root window: must be >= 0 seconds")
            return (window,)
        if method == "register_policy":
            params, label = values
            return (*params.as_args(), _label(label))
        if method == "propose_admin":
            return (ZERO_ADDRESS if values[0] is None else _address(values[0], "new admin"),)
        if method == "accept_admin":
            return ()
        raise NexotcError(f"not a kyc registry admin method: {method}")

    def call(self, method: str, *args: Any) -> tuple[str, bytes]:
        """(target, calldata) of `method(*args)` for a MultiSig admin to sign and execute."""
        with reverts_as_errors(f"encoding {method}"):
            data = bytes(getattr(self.contract, method).encode_input(*args))
        return self.address, data

    # ---------------------------------------------------------- internals
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
class KycRecord:
    """A KYCRegistry deployed on one network."""

    network: str
    address: str
    block: int
    block_hash: str
    deployer: str
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> KycRecord:
        from nexotc_client.chain.deployment import parse_record

        return cls(**parse_record(data, cls, "kyc registry record"))


class KycRecords(RecordFile[KycRecord]):
    """The JSON file of kyc registries by network key (`<home>/kyc.json`)."""

    FILE = KYC_FILE
    LABEL = "kyc registry file"
    RECORD = KycRecord


def deploy_kyc_registry(
    sender: AccountAPI,
    admin: str | None = None,
    root_window: int = DEFAULT_ROOT_WINDOW,
    records: KycRecords | None = None,
) -> KYCRegistry:
    """Deploy a KYCRegistry administered by `admin` (default: the sender) and record it for the
    connected network."""
    from ape import chain

    records = records or KycRecords()
    with reverts_as_errors("deploying the kyc registry"):
        contract = container(CONTRACT).deploy(
            _address(admin or sender.address, "admin"), int(root_window), sender=sender
        )
        receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
        block_number = int(receipt.block_number) if receipt else int(chain.blocks.height)
        block = chain.provider.get_block(block_number)
    records.record(
        KycRecord(
            network=network_key(),
            address=to_checksum_address(str(contract.address)),
            block=block_number,
            block_hash=_hex(block.hash),
            deployer=to_checksum_address(sender.address),
            timestamp=int(block.timestamp),
        )
    )
    return KYCRegistry(instance(str(contract.address), container(CONTRACT)), start_block=block_number)


def get_kyc_record(records: KycRecords | None = None) -> KycRecord:
    """The registry recorded for the connected network, checked against the chain."""
    from ape import chain

    records = records or KycRecords()
    key = network_key()
    entry = records.get(key)
    if entry is None:
        raise NotDeployedError(f"no kyc registry recorded for {key} in {records.path} (run `nexotc kyc deploy`)")
    with reverts_as_errors("checking the kyc registry"):
        same_chain = entry.block <= int(chain.blocks.height) and (
            _hex(chain.provider.get_block(entry.block).hash) == entry.block_hash
        )
        has_code = bool(chain.provider.get_code(entry.address))
    if not same_chain or not has_code:
        raise NotDeployedError(
            f"the kyc registry recorded for {key} ({entry.address}, block {entry.block}) is not on this chain "
            "any more (chain reset?); run `nexotc kyc deploy`"
        )
    return entry


def get_kyc_registry(records: KycRecords | None = None) -> KYCRegistry:
    entry = get_kyc_record(records)
    return KYCRegistry.at(entry.address, start_block=entry.block)


def registry_of_deal(contract: Any, block: int | None = None) -> str | None:
    """The KYC registry a deployed deal gates on (`DealEscrow.kyc_registry()`: its implementation's constructor
    argument, fixed when its factory was deployed); None when it has none. What `audit verify` trusts too: a
    registry recorded in a nexotc home may be a newer one that this deal never asks."""
    at: dict[str, Any] = {} if block is None else {"block_id": block}
    with reverts_as_errors("kyc_registry()"):
        address = to_checksum_address(str(contract.kyc_registry(**at)))
    return None if address == ZERO_ADDRESS else address


def registry_of_factory(factory: Any) -> str | None:
    """The KYC registry the deals of `factory` (a chain.factory.Factory) gate on, existing and future: its deal
    implementation's (fixed at the factory's deployment); None when it has none."""
    from nexotc_client.chain.contracts import deal_container

    return registry_of_deal(instance(str(factory.implementation), deal_container()))


def deal_initcode(kyc_registry: str | None) -> bytes:
    """DealEscrow's creation code with its constructor argument (the kyc registry; zero: none)."""
    from eth_abi import encode
    from hexbytes import HexBytes

    from nexotc_client.chain.contracts import deal_container

    code = bytes(HexBytes(deal_container().contract_type.deployment_bytecode.bytecode))  # type: ignore[union-attr]
    registry = ZERO_ADDRESS if kyc_registry is None else _address(kyc_registry, "kyc registry")
    return code + encode(["address"], [registry])


REPROVE_HINT = "re-run `nexotc kyc prove` (a proof's time must be within 5 minutes of the chain's when submitted)"


def _iso(ts: int) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def check_scope(value: int | str, what: str = "scope") -> int:
    """A scope as the registry accepts it: an integer in [0, r) (r: the BN254 scalar field; the verifier
    refuses a larger public signal, and the prover would silently reduce it mod r into another scope)."""
    if isinstance(value, bool):
        raise NexotcError(f"{what}: not an integer: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 0) if text.lower().lstrip("+-").startswith("0x") else int(text, 10)
        except ValueError:
            raise NexotcError(f"{what}: not an integer: {value!r} (decimal or 0x hex)") from None
    else:
        number = int(value)
    if not 0 <= number < SNARK_FIELD:
        raise NexotcError(f"{what}: must be in [0, r) with r = {SNARK_FIELD} (the BN254 scalar field), got {number}")
    return number


def _address(value: Any, what: str) -> str:
    text = str(getattr(value, "address", value)).strip()
    if not is_valid_address(text):
        raise NexotcError(f"{what}: not an address: {value!r}")
    return to_checksum_address(text)


def _policy_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**32:
        raise NexotcError(f"policy id: expected an integer from 1 to 2**32 - 1, got {value!r}")
    return value


def _field(value: Any, what: str) -> int:
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise NexotcError(f"{what}: not an integer: {value!r}") from None
    if not 0 < number < SNARK_FIELD:
        raise NexotcError(f"{what}: must be a non-zero BN254 field element")
    return number


def _label(text: Any) -> str:
    label = "" if text is None else str(text)
    if len(label.encode()) > 64:
        raise NexotcError(f"label: at most 64 bytes, got {len(label.encode())}")
    return label


__all__ = [
    "Attestation",
    "CURRENT",
    "DEFAULT_ROOT_WINDOW",
    "KYCRegistry",
    "KYC_FILE",
    "KycRecord",
    "KycRecords",
    "MAX_CLOCK_SKEW",
    "MAX_ROOT_WINDOW",
    "PolicyParams",
    "PolicyRecord",
    "RootStatus",
    "SNARK_FIELD",
    "check_scope",
    "deal_initcode",
    "entity_names",
    "deal_scope",
    "deploy_kyc_registry",
    "desk_scope",
    "scope_of_deal",
    "get_kyc_record",
    "get_kyc_registry",
    "registry_of_deal",
    "registry_of_factory",
    "unpack_binding",
]
