"""`Deal`: one deployed DealEscrow clone. Every read goes to the chain; nothing is mirrored.

Actions return a `TxResult`; a revert raises `RevertError` (a `NexotcError`) carrying the contract's
reason. Obvious input mistakes (no such tranche, the sender lacks the role) are caught before
sending with a clearer message, but the contract stays the authority.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from nexotc_client.chain.contracts import deal_container, erc20, instance
from nexotc_client.chain.encoding import is_valid_address, to_evidence, to_reason
from nexotc_client.chain.errors import NexotcError, NotADealError, RevertError, reverts_as_errors, simulate
from nexotc_client.spec import fmt_time, format_units
from nexotc_client.terms import LegId, Mode, Phase, Role, Terms, TrancheStatus

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI
    from ape.contracts import ContractInstance

    from nexotc_client.chain.factory import Factory

_CLOSED = (TrancheStatus.RELEASED, TrancheStatus.REFUNDED, TrancheStatus.RESOLVED)
#: the files every `kyc prove` hint names (placeholders: the holder's credential and secret, the proof to write)
PROVE_FILES = "--credential CREDENTIAL.json --secret SECRET.json --out PROOF.json"


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class DealEvent:
    """A decoded event of a deal (or of the factory, for `DealCreated`)."""

    name: str
    args: dict[str, Any]
    address: str
    tx_hash: str
    block: int
    log_index: int
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TxResult:
    """What one transaction did: its hash, gas, block and the nexotc events it emitted."""

    tx_hash: str
    gas_used: int
    block: int
    events: list[DealEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "gas_used": self.gas_used,
            "block": self.block,
            "events": [e.to_dict() for e in self.events],
        }


@dataclass(frozen=True)
class Split:
    """One leg's share of a dispute resolution; the parts sum to the tranche's amount of the leg."""

    to_receiver: int = 0
    to_funder: int = 0
    to_resolver: int = 0

    @property
    def total(self) -> int:
        return self.to_receiver + self.to_funder + self.to_resolver

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.to_receiver, self.to_funder, self.to_resolver)

    @classmethod
    def proportional(cls, amount: int, receiver_bps: int, resolver_bps: int = 0) -> Split:
        """`resolver_bps` of `amount` to the resolver (floor), `receiver_bps` of the rest to the
        receiver (floor), the exact remainder to the funder."""
        if not 0 <= receiver_bps <= 10_000 or not 0 <= resolver_bps <= 10_000:
            raise NexotcError("split: bps must be within 0..10000")
        to_resolver = amount * resolver_bps // 10_000
        to_receiver = (amount - to_resolver) * receiver_bps // 10_000
        return cls(to_receiver, amount - to_resolver - to_receiver, to_resolver)


@dataclass(frozen=True)
class LegStatus:
    token: str
    on_chain: bool
    amount: int
    funded: bool
    held: int


@dataclass(frozen=True)
class TrancheState:
    index: int
    base_amount: int
    quote_amount: int
    unlock_time: int
    deadline: int
    status: TrancheStatus
    approvals: int
    signatures: int
    marked_at: int
    disputed_at: int
    approved_by: tuple[str, ...] = ()
    signed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class DealStatus:
    """The deal's state read at one block."""

    address: str
    block: int
    timestamp: int
    phase: Phase
    mode: Mode
    base: LegStatus
    quote: LegStatus
    tranches: tuple[TrancheState, ...]
    claimable: dict[str, dict[str, int]]
    """payee => token => amount owed by pull (only non-zero balances of the deal's parties)."""

    @property
    def funded(self) -> tuple[bool, bool]:
        return (self.base.funded, self.quote.funded)

    @property
    def held(self) -> tuple[int, int]:
        return (self.base.held, self.quote.held)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["phase"] = self.phase.name.lower()
        out["mode"] = self.mode.name.lower()
        for t in out["tranches"]:
            t["status"] = TrancheStatus(t["status"]).name.lower()
            t["approved_by"] = list(t["approved_by"])
            t["signed_by"] = list(t["signed_by"])
        return out


# --------------------------------------------------------------------- deal
class Deal:
    """A deal escrow created by `factory`. Build one with `Deal.at` or `Factory.create`."""

    def __init__(
        self,
        contract: ContractInstance,
        factory: Factory,
        created: TxResult | None = None,
    ) -> None:
        self.contract = contract
        self.factory = factory
        self.created = created

    @classmethod
    def at(cls, address: str, factory: Factory) -> Deal:
        """The deal at `address`; refuses anything that is not a deal of `factory`."""
        if not isinstance(address, str) or not is_valid_address(address):
            raise NexotcError(f"not an address: {address!r}")
        address = to_checksum_address(address)
        if not factory.is_deal(address):
            raise NotADealError(f"{address} is not a deal of the factory at {factory.address}")
        return cls(instance(address, deal_container()), factory)

    def __repr__(self) -> str:
        return f"<Deal {self.address}>"

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # -------------------------------------------------------------- reads
    @cached_property
    def terms(self) -> Terms:
        """The deal's terms, decoded by the contract from its own code (immutable)."""
        with reverts_as_errors("terms()"):
            return Terms.from_struct(self.contract.terms())

    @property
    def mode(self) -> Mode:
        return self.terms.mode

    def terms_hash(self) -> bytes:
        with reverts_as_errors("terms_hash()"):
            return bytes(self.contract.terms_hash())

    def phase(self) -> Phase:
        with reverts_as_errors("phase()"):
            return Phase(int(self.contract.phase()))

    def tranche_status(self, index: int) -> TrancheStatus:
        self._check_tranche(index)
        with reverts_as_errors("tranche_status()"):
            return TrancheStatus(int(self.contract.tranche_status(index)))

    def claimable(self, payee: str, token: str) -> int:
        with reverts_as_errors("claimable()"):
            return int(self.contract.claimable(payee, token))

    def status(self) -> DealStatus:
        """Phase, funding, holdings, every tranche and pull balances, all read at one block."""
        from ape import chain

        terms = self.terms
        block = chain.provider.get_block("latest")
        number = int(block.number or 0)
        c = self.contract

        def call(name: str, *args: Any) -> Any:
            return getattr(c, name)(*args, block_id=number)

        approvers = terms.holders(Role.APPROVER)
        signers = terms.holders(Role.SIGNER)
        with reverts_as_errors("reading the deal status"):
            tranches = []
            closed_signers: dict[int, tuple[str, ...]] | None = None
            for i, tr in enumerate(terms.tranches):
                status = TrancheStatus(int(call("tranche_status", i)))
                approvals = int(call("approvals", i))
                if status in _CLOSED and terms.release_threshold > 0:
                    # the contract keeps signature bits only while a tranche is open (the call that pays
                    # out does not store its own signature): for a closed tranche the Signed events are
                    # the record
                    if closed_signers is None:
                        closed_signers = self._signers_by_tranche(number)
                    signed_by = closed_signers.get(i, ())
                    signatures = len(signed_by)
                else:
                    signatures = int(call("signatures", i))
                    signed_by = tuple(w for w in signers if signatures and call("has_signed", i, w))
                approved_by = tuple(w for w in approvers if approvals and call("has_approved", i, w))
                tranches.append(
                    TrancheState(
                        index=i,
                        base_amount=tr.base_amount,
                        quote_amount=tr.quote_amount,
                        unlock_time=tr.unlock_time,
                        deadline=tr.deadline,
                        status=status,
                        approvals=approvals,
                        signatures=signatures,
                        marked_at=int(call("marked_at", i)),
                        disputed_at=int(call("disputed_at", i)),
                        approved_by=approved_by,
                        signed_by=signed_by,
                    )
                )
            legs = []
            for leg_id, leg in ((LegId.BASE, terms.base), (LegId.QUOTE, terms.quote)):
                legs.append(
                    LegStatus(
                        token=leg.token,
                        on_chain=leg.on_chain,
                        amount=leg.amount,
                        funded=bool(call("funded", int(leg_id))),
                        held=int(call("held", int(leg_id))),
                    )
                )
            tokens = [leg.token for leg in (terms.base, terms.quote) if leg.on_chain]
            claimable: dict[str, dict[str, int]] = {}
            for party in terms.parties:
                for token in tokens:
                    amount = int(call("claimable", party.wallet, token))
                    if amount:
                        claimable.setdefault(party.wallet, {})[token] = amount
            phase = Phase(int(call("phase")))
        return DealStatus(
            address=self.address,
            block=number,
            timestamp=int(block.timestamp),
            phase=phase,
            mode=terms.mode,
            base=legs[0],
            quote=legs[1],
            tranches=tuple(tranches),
            claimable=claimable,
        )

    def _signers_by_tranche(self, stop_block: int) -> dict[int, tuple[str, ...]]:
        """tranche => the release signers in the order of their `Signed` events, up to `stop_block`."""
        abis = [abi for abi in deal_container().contract_type.events if abi.name == "Signed"]
        out: dict[int, list[str]] = {}
        for event in read_events(self.address, abis, self.factory.start_block, stop_block):
            signer = to_checksum_address(event.args["signer"])
            tranche_signers = out.setdefault(int(event.args["tranche"]), [])
            if signer not in tranche_signers:
                tranche_signers.append(signer)
        return {k: tuple(v) for k, v in out.items()}

    def events(self, from_block: int | None = None) -> list[DealEvent]:
        """Every event of this deal, oldest first, with its creation (`DealCreated`, and `OfferAccepted`
        for a deal made from a signed offer) first."""
        start = self.factory.start_block if from_block is None else from_block
        created = [r.event for r in self.factory.deals(from_block=start) if r.deal == self.address]
        accepted = self.factory.offer_accepted(self.address, from_block=start)
        rest = read_events(self.address, deal_container().contract_type.events, start)
        if accepted is not None:
            rest = sorted([accepted, *rest], key=lambda e: (e.block, e.log_index))
        return created + rest

    # ------------------------------------------------------------ actions
    def fund(self, sender: AccountAPI) -> TxResult:
        """Deposit the sender's leg (seller: base, buyer: quote), approving the exact amount first
        if the allowance is short."""
        terms = self.terms
        leg_id = funding_leg(terms, sender.address)  # names a sender that funds nothing
        # everything `fund` would refuse that does not depend on the allowance is checked before an
        # approval is sent: a refused deposit leaves the sender's allowance untouched
        self._check_fundable(leg_id)
        refused = [w for w in self._gate_refuses() if w[1].lower() == sender.address.lower()]
        if refused:
            raise self._gate_error("fund", refused)
        short = self.coverage_problems(sender.address)
        if short:
            raise NexotcError(f"fund: {short[0]}")
        try:  # the contract's own answer (its `funding_leg` view runs `fund`'s checks but the gate, checked above)
            simulate(self.contract, "funding_leg", (sender.address,), sender.address)
        except RevertError as exc:
            raise RevertError("fund", exc.reason) from exc
        prepare_funding(terms, sender, self.address)
        return self._send("fund", sender)

    def _check_fundable(self, leg_id: LegId) -> None:
        """Refuse a deposit into a closed deal, an already funded leg or after the funding deadline,
        read from the chain, with the cause named."""
        from ape import chain

        leg = leg_id.name.lower()
        phase = self.phase()
        if phase in (Phase.CANCELLED, Phase.EXPIRED):
            raise NexotcError(f"fund: the deal is {phase.name.lower()}: nothing can be deposited any more")
        with reverts_as_errors("funded()"):
            funded = bool(self.contract.funded(int(leg_id)))
        if funded:
            state = " (the deal is settled)" if phase == Phase.SETTLED else ""
            raise NexotcError(f"fund: the {leg} leg is already funded{state}: nothing to deposit")
        now = int(chain.pending_timestamp)
        deadline = self.terms.funding_deadline
        if now > deadline:
            raise NexotcError(f"fund: funding closed at {fmt_time(deadline, now)}: the deal can only be cancelled")

    def mark(self, tranche: int, evidence: bytes | str, sender: AccountAPI) -> TxResult:
        """ESCROWED: state the off-chain delivery of `tranche`; `evidence` is 32 bytes, 64 hex
        digits (a BTC txid) or text that gets hashed."""
        if self.terms.mode != Mode.ESCROWED:
            raise NexotcError("mark: a DVP deal has no marks (both legs are on chain)")
        self._check_tranche(tranche)
        self._require_role(sender, Role.MARKER, "a marker")
        return self._send("mark", sender, tranche, to_evidence(evidence))

    def approve(self, tranche: int, sender: AccountAPI) -> TxResult:
        self._check_tranche(tranche)
        self._require_role(sender, Role.APPROVER, "an approver")
        now = self._check_active("approve")
        self._check_releasable("approve", tranche, now)
        with reverts_as_errors("has_approved()"):
            if bool(self.contract.has_approved(tranche, sender.address)):
                raise NexotcError(f"approve: {sender.address} has already approved tranche {tranche}")
        return self._send("approve", sender, tranche)

    def release(self, tranche: int, sender: AccountAPI) -> TxResult:
        """Sign (if the sender is a release signer) and pay out once the conditions hold."""
        self._check_tranche(tranche)
        now = self._check_active("release")
        self._check_releasable("release", tranche, now)
        self._check_release_ready(tranche, sender.address, now)
        return self._send("release", sender, tranche)

    def dispute(self, tranche: int, reason: bytes | str, sender: AccountAPI) -> TxResult:
        self._check_tranche(tranche)
        self._require_role(sender, Role.BUYER | Role.SELLER, "the buyer or the seller")
        return self._send("dispute", sender, tranche, to_reason(reason))

    def resolve(self, tranche: int, base_split: Split, quote_split: Split, sender: AccountAPI) -> TxResult:
        """The resolver splits a disputed tranche; each on-chain leg's parts sum to its amount."""
        self._check_tranche(tranche)
        terms = self.terms
        if sender.address.lower() != terms.resolver.lower():
            raise NexotcError(f"resolve: {sender.address} is not the resolver of this deal ({terms.resolver})")
        tr = terms.tranches[tranche]
        cap = terms.resolver_fee_bps
        for name, leg, split, amount in (
            ("base", terms.base, base_split, tr.base_amount),
            ("quote", terms.quote, quote_split, tr.quote_amount),
        ):
            expected = amount if leg.on_chain else 0
            if split.total != expected:
                raise NexotcError(
                    f"resolve: the {name} split must sum to {expected} (tranche {tranche}'s {name} "
                    f"amount{'' if leg.on_chain else ', off chain'}), got {split.total}"
                )
            if split.to_resolver * 10_000 > expected * cap:
                share = split.to_resolver * 10_000 / expected if expected else 0
                raise NexotcError(
                    f"resolve: the resolver's part of the {name} leg is {share:g} bps, above the deal's "
                    f"{cap} bps resolver cap"
                )
        self._check_active("resolve")
        self._check_disputed("resolve", tranche)
        return self._send("resolve", sender, tranche, base_split.as_tuple(), quote_split.as_tuple())

    def settle_dispute(self, tranche: int, sender: AccountAPI) -> TxResult:
        self._check_tranche(tranche)
        now = self._check_active("settle")
        self._check_disputed("settle", tranche)
        with reverts_as_errors("disputed_at()"):
            disputed_at = int(self.contract.disputed_at(tranche))
        settleable = disputed_at + self.terms.dispute_timeout
        if now < settleable:
            raise NexotcError(
                f"settle: tranche {tranche} was disputed at {fmt_time(disputed_at)}; the resolver has until "
                f"the dispute timeout: settleable from {fmt_time(settleable, now)}"
            )
        return self._send("settle_dispute", sender, tranche)

    def refund(self, tranche: int, sender: AccountAPI) -> TxResult:
        self._check_tranche(tranche)
        return self._send("refund", sender, tranche)

    def cancel_unfunded(self, sender: AccountAPI) -> TxResult:
        return self._send("cancel_unfunded", sender)

    def expire(self, sender: AccountAPI) -> TxResult:
        return self._send("expire", sender)

    def claim(self, token: str, recipient: str, sender: AccountAPI) -> TxResult:
        """Withdraw the sender's pull balance of `token` to `recipient`."""
        for what, value in (("token", token), ("recipient", recipient)):
            if not is_valid_address(value):
                raise NexotcError(f"claim: {what} is not an address: {value!r}")
        token, recipient = to_checksum_address(token), to_checksum_address(recipient)
        # the contract's rule ("recipient would lock the funds"), named before anything is sent
        locking = {self.address.lower(): "this deal itself", self.factory.address.lower(): "this deal's factory"}
        if recipient.lower() in locking:
            raise NexotcError(
                f"claim: the recipient {recipient} is {locking[recipient.lower()]}: nothing could ever pay the tokens "
                "out from there (the deal refuses it: recipient would lock the funds); claim to a wallet"
            )
        if not self.claimable(sender.address, token):
            raise NexotcError(f"claim: {sender.address} has no pull balance of {token_label(token)} in this deal")
        try:
            return self._send("claim", sender, token, recipient)
        except RevertError as exc:
            if exc.reason == "transfer failed":
                raise NexotcError(
                    f"claim: the transfer to {recipient} failed: the token refuses transfers to this address; "
                    "claim to another with --to"
                ) from exc
            raise

    # ------------------------------------------------------------ pre-checks
    def _check_active(self, action: str) -> int:
        """The deal must be funded, not closed and before its final expiry; returns the pending
        block's time."""
        from ape import chain

        phase = self.phase()
        if phase == Phase.FUNDING:
            raise NexotcError(f"{action}: the deal is not funded yet (both on-chain legs must be deposited)")
        if phase in (Phase.CANCELLED, Phase.EXPIRED):
            raise NexotcError(f"{action}: the deal is {phase.name.lower()}")
        now = int(chain.pending_timestamp)
        if now >= self.terms.final_expiry:
            raise NexotcError(
                f"{action}: the deal passed its final expiry at {fmt_time(self.terms.final_expiry, now)}: "
                "only `nexotc deal expire` remains"
            )
        return now

    def _status_text(self, tranche: int, status: TrancheStatus) -> str:
        text = f"tranche {tranche} is {status.name.lower()}"
        if status == TrancheStatus.PENDING and self.terms.mode == Mode.ESCROWED:
            text += " (not marked delivered yet: `nexotc deal mark`)"
        return text

    def _check_releasable(self, action: str, tranche: int, now: int) -> None:
        """ESCROWED: the tranche must be marked; DVP: pending and before its deadline."""
        status = self.tranche_status(tranche)
        wanted = TrancheStatus.MARKED if self.terms.mode == Mode.ESCROWED else TrancheStatus.PENDING
        if status != wanted:
            raise NexotcError(f"{action}: {self._status_text(tranche, status)}")
        deadline = self.terms.tranches[tranche].deadline
        if self.terms.mode == Mode.DVP and now > deadline:
            raise NexotcError(
                f"{action}: tranche {tranche}'s deadline passed at {fmt_time(deadline, now)}: it can only be refunded"
            )

    def _check_disputed(self, action: str, tranche: int) -> None:
        status = self.tranche_status(tranche)
        if status != TrancheStatus.DISPUTED:
            raise NexotcError(f"{action}: {self._status_text(tranche, status)}, not disputed")

    def _who(self, wallet: str) -> str:
        roles = self.terms.roles_of(wallet)
        for role in (Role.BUYER, Role.SELLER, Role.PLATFORM, Role.RESOLVER):
            if roles & role:
                return f"the {str(role.name).lower()} {wallet}"
        return wallet

    def _check_release_ready(self, tranche: int, sender: str, now: int) -> None:
        """Refuse a release call that would neither record a signature nor pay out, naming what is
        missing (the contract's rule; its revert stays the authority)."""
        missing = self.release_missing(tranche, now, sender)
        if missing:
            raise NexotcError(f"release: {'; '.join(missing)}")

    def release_missing(self, tranche: int, now: int, sender: str | None = None) -> list[str]:
        """What an open `tranche` still needs before a release call pays it out, read from the chain (approvals,
        release signatures, the unlock time, and when an ESCROWED deal's approval window lets anyone release
        instead): empty when a release now would pay out. With `sender`: empty too when its release call would
        record its own signature (a step forward), and a sender that is no release signer is named as such."""
        terms = self.terms
        c = self.contract
        with reverts_as_errors("reading the tranche"):
            approvals = int(c.approvals(tranche))
            signatures = int(c.signatures(tranche))
            marked_at = int(c.marked_at(tranche))
            signers = terms.holders(Role.SIGNER)
            signed = [w for w in signers if bool(c.has_signed(tranche, w))]
            approvers = terms.holders(Role.APPROVER)
            approved = [w for w in approvers if bool(c.has_approved(tranche, w))]
        is_signer = sender is None or any(w.lower() == sender.lower() for w in signers)
        if sender is not None:
            signs_now = (
                terms.release_threshold > 0 and is_signer and not any(w.lower() == sender.lower() for w in signed)
            )
            if signs_now:
                return []  # the call records the sender's signature (and pays out if that completes it)
        tr = terms.tranches[tranche]
        window = terms.approval_window
        window_passed = terms.mode == Mode.ESCROWED and window > 0 and now >= marked_at + window
        missing: list[str] = []
        if not window_passed:
            if approvals < terms.approval_threshold:
                waiting = [self._who(w) for w in approvers if w not in approved]
                missing.append(
                    f"needs {terms.approval_threshold - approvals} more approval(s) from {' or '.join(waiting)}"
                )
            if signatures < terms.release_threshold:
                waiting = [self._who(w) for w in signers if w not in signed]
                missing.append(
                    f"needs {terms.release_threshold - signatures} more signature(s) from {' or '.join(waiting)}"
                    + ("" if is_signer else f" ({sender} is not a release signer)")
                )
            if missing and terms.mode == Mode.ESCROWED and window > 0:
                missing.append(f"or, undisputed, releasable by anyone from {fmt_time(marked_at + window, now)}")
        if now < tr.unlock_time:
            missing.insert(0, f"tranche {tranche} unlocks {fmt_time(tr.unlock_time, now)}")
        return missing

    # ----------------------------------------------------------- internals
    def _check_tranche(self, index: int) -> None:
        n = len(self.terms.tranches)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n:
            raise NexotcError(f"no tranche {index!r}: this deal has {n} (0..{n - 1})")

    def _require_role(self, sender: AccountAPI, role: Role, what: str) -> None:
        if not self.terms.roles_of(sender.address) & role:
            raise NexotcError(f"{sender.address} is not {what} of this deal")

    def _send(self, method: str, sender: AccountAPI, *args: Any) -> TxResult:
        try:
            with reverts_as_errors(method):
                simulate(self.contract, method, args, sender.address)
                receipt = getattr(self.contract, method)(*args, sender=sender)
        except RevertError as exc:
            if exc.reason in ("party not compliant", "party not compliant until final expiry", "no kyc registry"):
                refused = self._gate_refuses()
                if refused or exc.reason != "party not compliant until final expiry":
                    raise self._gate_error(method, refused) from exc
                # attested now, but not until the final expiry (a deposit)
                short = [p for wallet in (self.terms.buyer, self.terms.seller) for p in self.coverage_problems(wallet)]
                if short:
                    raise NexotcError(f"{method}: {short[0]}") from exc
            raise
        return tx_result(receipt, {self.address})

    # ------------------------------------------------------- compliance gate
    def compliance(self, block: int | None = None) -> dict[str, Any] | None:
        """A gated deal's gate as its principals face it (None for an ungated deal): the policy, the scope, and
        per principal its attestation in that scope (expiry, policy), whether the gate lets it through now and
        whether it lasts to the final expiry. One that ends earlier blocks every release after it (refunds stay
        open), so a seller delivering off chain checks the buyer's first. With `block`, all of it as of that
        block ("now" is that block's time)."""
        terms = self.terms
        if terms.policy_id == 0:
            return None
        at: dict[str, Any] = {} if block is None else {"block_id": block}
        with reverts_as_errors("kyc_registry()"):
            registry = to_checksum_address(str(self.contract.kyc_registry(**at)))
        out: dict[str, Any] = {"policy_id": terms.policy_id, "kyc_registry": registry, "principals": []}
        if int(registry, 16) == 0:
            return out
        from nexotc_client.chain.kyc import KYCRegistry

        kyc = KYCRegistry.at(registry)
        with reverts_as_errors("scope()"):
            scope = int(self.contract.scope(**at))
        out["scope"] = str(scope)  # decimal, as `kyc status` shows it
        out["scope_name"] = f"desk #{scope & ((1 << 160) - 1)}'s scope" if scope >> 160 else "the deal's own scope"
        for role, wallet in (("buyer", terms.buyer), ("seller", terms.seller)):
            expiry, policy = kyc.attestation(wallet, scope, block)
            with reverts_as_errors("compliant()"):
                now_ok = bool(self.contract.compliant(wallet, **at))
            out["principals"].append(
                {
                    "role": role,
                    "wallet": wallet,
                    "attested_until": expiry or None,
                    "attested_policy": policy or None,
                    "compliant_now": now_ok,
                    "covers_final_expiry": policy == terms.policy_id and expiry >= terms.final_expiry,
                }
            )
        return out

    def coverage_problems(self, wallet: str) -> list[str]:
        """Why this deal would refuse a deposit of `wallet` (a principal) that its gate lets through now: its
        attestation ends before the final expiry (see `chain.offers.coverage_problems`); empty otherwise."""
        from nexotc_client.chain.offers import coverage_problems

        terms = self.terms
        if terms.policy_id == 0:
            return []
        role = "seller" if wallet.lower() == terms.seller.lower() else "buyer"
        with reverts_as_errors("desk_id()"):
            desk_id = int(self.contract.desk_id())
        return coverage_problems(self.factory, terms, self.address, [(role, wallet)], desk_id)

    def compliance_hint(self, role: str, wallet: str) -> str:
        """What `wallet` (this deal's `role`: buyer or seller) runs to get through the deal's compliance gate: the
        `nexotc kyc prove` and `kyc submit` steps in the deal's scope (its desk's for a desk deal), or why it never
        can (no KYC registry, an unregistered policy)."""
        from nexotc_client.chain.offers import compliance_problems

        with reverts_as_errors("desk_id()"):
            desk_id = int(self.contract.desk_id())
        problems = compliance_problems(self.factory, self.terms, self.address, [(role, wallet)], desk_id)
        if problems:
            return problems[0]
        # the registry's view of the attestation passes but the deal's own gate does not: name the gate
        return f"the {role} {wallet} does not pass this deal's compliance gate (policy #{self.terms.policy_id}) now"

    def _gate_refuses(self) -> list[tuple[str, str]]:
        """The principals (role, wallet) this deal's compliance gate refuses now (none for an
        ungated deal): the deal's own `compliant(who)`, which asks its KYC registry in its scope."""
        terms = self.terms
        if terms.policy_id == 0:
            return []
        with reverts_as_errors("compliant()"):
            return [
                (role, wallet)
                for role, wallet in (("buyer", terms.buyer), ("seller", terms.seller))
                if not bool(self.contract.compliant(wallet))
            ]

    def _gate_error(self, action: str, refused: list[tuple[str, str]]) -> NexotcError:
        with reverts_as_errors("kyc_registry()"):
            registry = str(self.contract.kyc_registry())
        policy = self.terms.policy_id
        if int(registry, 16) == 0:
            return NexotcError(
                f"{action}: this deal carries compliance policy #{policy} but its factory has no KYC registry, "
                "so it can never be funded or released (refunds and expiry stay open)"
            )
        who = " and ".join(f"the {role} {wallet}" for role, wallet in refused) or "a principal"
        return NexotcError(
            f"{action}: {who} {'has' if len(refused) == 1 else 'have'} no current attestation of policy "
            f"#{policy} in this deal's scope: prove with `nexotc kyc prove --deal {self.address} --policy {policy} "
            f"--account WALLET {PROVE_FILES}`, then `nexotc kyc submit PROOF.json --account WALLET`"
        )


# -------------------------------------------------------------- helpers
def funding_leg(terms: Terms, wallet: str, labels: tuple[str, str] | None = None) -> LegId:
    """The leg `wallet` deposits: the seller the base leg, the buyer the quote leg (on chain only).
    `labels` (the base and quote assets' names, e.g. from the terms file) make the refusal clearer."""
    if wallet.lower() == terms.seller.lower() and terms.base.on_chain:
        return LegId.BASE
    if wallet.lower() == terms.buyer.lower() and terms.quote.on_chain:
        return LegId.QUOTE
    base_label, quote_label = labels or ("", "")
    for role, leg_name, leg, label in (
        ("seller", "base", terms.base, base_label),
        ("buyer", "quote", terms.quote, quote_label),
    ):
        party = terms.seller if role == "seller" else terms.buyer
        if wallet.lower() == party.lower() and not leg.on_chain:
            other, other_leg = ("buyer", "quote") if role == "seller" else ("seller", "base")
            named = f" ({label})" if label else ""
            raise NexotcError(
                f"{wallet} is the {role} and the {leg_name} leg{named} is off chain: the {role} funds nothing on "
                f"chain; only the {other} deposits (the {other_leg} leg)"
            )
    depositors = [
        f"the {role} {party} (the {name} leg)"
        for role, party, name, leg in (
            ("seller", terms.seller, "base", terms.base),
            ("buyer", terms.buyer, "quote", terms.quote),
        )
        if leg.on_chain
    ]
    verb = "deposits" if len(depositors) == 1 else "deposit"
    raise NexotcError(f"{wallet} funds nothing in this deal: only {' and '.join(depositors)} {verb}")


def token_label(token: str) -> str:
    """The token's symbol and address ("USDT 0x…"), or its address when it has no symbol()."""
    try:
        return f"{erc20(token).symbol()} ({token})"
    except Exception:  # a token without symbol()
        return f"token {token}"


def token_amount(token: str, units: int) -> str:
    """`units` of `token` for humans ("1,000 USDT"), read from the token's symbol and decimals;
    raw units and the short address when the token does not tell."""
    try:
        contract = erc20(token)
        return f"{format_units(units, int(contract.decimals()))} {contract.symbol()}"
    except Exception:  # a token without symbol()/decimals(): raw units
        return f"{units:,} units of token {token}"


def prepare_funding(terms: Terms, sender: AccountAPI, spender: str) -> int:
    """Check the sender's balance of its leg and set its allowance to `spender` to the exact amount
    when short (resetting to 0 first, as USDT requires). Returns the amount to deposit."""
    leg_id = funding_leg(terms, sender.address)
    leg = terms.base if leg_id == LegId.BASE else terms.quote
    token = erc20(leg.token)
    with reverts_as_errors("reading the token"):
        balance = int(token.balanceOf(sender.address))
        allowance = int(token.allowance(sender.address, spender))
    if balance < leg.amount:
        raise NexotcError(
            f"{sender.address} holds {token_amount(leg.token, balance)}, the {leg_id.name.lower()} leg needs "
            f"{token_amount(leg.token, leg.amount)} (token {leg.token})"
        )
    if allowance < leg.amount:
        with reverts_as_errors("approve"):
            if allowance:
                token.approve(spender, 0, sender=sender)
            token.approve(spender, leg.amount, sender=sender)
    return leg.amount


def plain(value: Any) -> Any:
    """Event arguments as JSON-friendly values: 0x-hex strings for bytes, dicts for structs."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def _typed(value: Any, abi_type: Any) -> Any:
    """`plain` guided by the ABI: structs become dicts with their field names, bools bools."""
    if abi_type is None:
        return plain(value)
    kind = str(getattr(abi_type, "type", ""))
    components = getattr(abi_type, "components", None)
    if kind == "bool":
        return bool(value)
    if kind == "tuple" and components:
        items = list(value.values()) if isinstance(value, dict) else list(value)
        return {c.name: _typed(v, c) for c, v in zip(components, items, strict=False)}
    return plain(value)


def _event(log: Any, timestamp: int, abis: dict[str, Any] | None = None) -> DealEvent:
    abi = (abis or {}).get(str(log.event_name))
    types = {i.name: i for i in abi.inputs} if abi is not None else {}
    return DealEvent(
        name=str(log.event_name),
        args={k: _typed(v, types.get(k)) for k, v in dict(log.event_arguments).items()},
        address=to_checksum_address(str(log.contract_address)),
        tx_hash=_hex(log.transaction_hash),
        block=int(log.block_number),
        log_index=int(log.log_index),
        timestamp=timestamp,
    )


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _all_event_abis() -> list[Any]:
    from nexotc_client.chain.contracts import factory_container

    return list(deal_container().contract_type.events) + list(factory_container().contract_type.events)


def tx_result(receipt: ReceiptAPI, addresses: set[str]) -> TxResult:
    """A TxResult from a receipt, keeping the nexotc events emitted by `addresses`."""
    wanted = {a.lower() for a in addresses}
    timestamp = int(receipt.timestamp)
    abis = _all_event_abis()
    by_name = {abi.name: abi for abi in abis}
    events = [
        _event(log, timestamp, by_name)
        for log in receipt.decode_logs(abis)
        if str(log.contract_address).lower() in wanted
    ]
    return TxResult(
        tx_hash=_hex(receipt.txn_hash),
        gas_used=int(receipt.gas_used),
        block=int(receipt.block_number),
        events=events,
    )


def read_events(address: str, abis: Any, from_block: int = 0, stop_block: int | None = None) -> list[DealEvent]:
    """Decoded logs of `address` for the given event ABIs, oldest first, with block timestamps."""
    from ape import chain
    from ape.types import LogFilter

    abis = list(abis)
    by_name = {abi.name: abi for abi in abis}
    log_filter = LogFilter(addresses=[address], events=list(abis), start_block=from_block, stop_block=stop_block)
    with reverts_as_errors("reading events"):
        logs = list(chain.provider.get_contract_logs(log_filter))
        stamps: dict[int, int] = {}
        out = []
        for log in logs:
            number = int(log.block_number)
            if number not in stamps:
                stamps[number] = int(chain.provider.get_block(number).timestamp)
            out.append(_event(log, stamps[number], by_name))
    out.sort(key=lambda e: (e.block, e.log_index))
    return out


__all__ = [
    "Deal",
    "DealEvent",
    "DealStatus",
    "LegStatus",
    "Split",
    "TrancheState",
    "TxResult",
    "funding_leg",
    "prepare_funding",
    "read_events",
    "token_amount",
    "tx_result",
]
