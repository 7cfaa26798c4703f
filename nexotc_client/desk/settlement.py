"""Settlement tracker: follows a deal's escrow events with a confirmation threshold per network, the off-chain
leg's milestones (USDT on another chain, a fiat wire, BTC: a mark with its evidence), and flags SLA breaches.

    tracker = SettlementTracker(store, factory, network="ethereum:mainnet")     # 12 confirmations
    tracker.track(deal, quote_id="Q-1", sla=Sla(funding_s=3600, release_s=86400))
    view = tracker.poll(deal.address)        # new confirmed events stored once; pending ones shown
    tracker.mark_offchain(deal.address, 0, "delivered", "btc txid ...", marker)   # ESCROWED: marks on chain too
    view.breaches                             # funding late, release late, off-chain leg late, disputes...

Only events with at least the network's confirmations are stored (by tx hash and log index: polling twice or
after a restart stores nothing twice); younger ones are reported as pending with their confirmation count.
The chain stays the authority: a tranche's state comes from the deal's own views; the store keeps the
history the reconciliation reads (:meth:`DeskStore.settlement_records`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nexotc_client.chain.errors import NexotcError
from nexotc_client.desk.db import SettlementMarkRow, SettlementRow, TrackedDealRow
from nexotc_client.desk.money import asset_decimals
from nexotc_client.desk.store import DeskStore
from nexotc_client.terms import LegId, Mode, Phase, TrancheStatus

if TYPE_CHECKING:
    from ape.api import AccountAPI

    from nexotc_client.chain.deal import Deal, DealEvent
    from nexotc_client.chain.factory import Factory
    from nexotc_client.terms import Terms

#: confirmations before an event counts as settled, per network (ecosystem:network); others: DEFAULT
CONFIRMATIONS: dict[str, int] = {
    "ethereum:mainnet": 12,
    "ethereum:sepolia": 3,
    "ethereum:holesky": 3,
    "arbitrum:mainnet": 20,
    "optimism:mainnet": 10,
    "base:mainnet": 10,
    "polygon:mainnet": 128,
    "bsc:mainnet": 15,
    "avalanche:mainnet": 1,
    "ethereum:local": 1,
    "ethereum:mainnet-fork": 1,
}
DEFAULT_CONFIRMATIONS = 6
#: milestones of an off-chain leg, in order; "delivered" is the one an ESCROWED deal marks on chain
MILESTONES = ("initiated", "sent", "delivered", "confirmed")
SETTLED_EVENTS = ("Released", "Resolved")


class MarkExistsError(NexotcError, LookupError):
    """The tranche's milestone is recorded already (refused before any transaction is sent)."""


def confirmations_for(network: str) -> int:
    key = ":".join(network.split(":")[:2])
    return CONFIRMATIONS.get(key, DEFAULT_CONFIRMATIONS)


@dataclass(frozen=True)
class Sla:
    """Service levels in seconds: both legs funded within `funding_s` of tracking; each tranche released within
    `release_s` of its unlock; the off-chain leg delivered (marked) within `offchain_s` of the unlock."""

    funding_s: int = 3_600
    release_s: int = 86_400
    offchain_s: int = 43_200

    def to_dict(self) -> dict[str, int]:
        return {"funding_s": self.funding_s, "release_s": self.release_s, "offchain_s": self.offchain_s}


@dataclass(frozen=True)
class Breach:
    kind: str  # funding_late | offchain_late | release_late | disputed | deadline_missed
    tranche: int | None
    due: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tranche": self.tranche, "due": self.due, "detail": self.detail}


@dataclass(frozen=True)
class PendingEvent:
    name: str
    tranche: int | None
    tx_hash: str
    confirmations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "tranche": self.tranche,
            "tx_hash": self.tx_hash,
            "confirmations": self.confirmations,
        }


@dataclass(frozen=True)
class TrancheView:
    index: int
    status: str
    unlock_time: int
    deadline: int
    settled_tx: str | None
    offchain: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "unlock_time": self.unlock_time,
            "deadline": self.deadline,
            "settled_tx": self.settled_tx,
            "offchain": list(self.offchain),
        }


@dataclass(frozen=True)
class SettlementView:
    deal: str
    quote_id: str | None
    network: str
    confirmations: int
    head: int
    now: int
    phase: str
    funded: tuple[bool, bool]
    tranches: tuple[TrancheView, ...]
    new_events: int
    pending: tuple[PendingEvent, ...] = ()
    breaches: tuple[Breach, ...] = field(default=())

    @property
    def settled(self) -> bool:
        return self.phase == Phase.SETTLED.name.lower() and not self.pending

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal": self.deal,
            "quote_id": self.quote_id,
            "network": self.network,
            "confirmations": self.confirmations,
            "head": self.head,
            "now": self.now,
            "phase": self.phase,
            "funded": list(self.funded),
            "settled": self.settled,
            "new_events": self.new_events,
            "tranches": [t.to_dict() for t in self.tranches],
            "pending": [p.to_dict() for p in self.pending],
            "breaches": [b.to_dict() for b in self.breaches],
        }


class SettlementTracker:
    def __init__(self, store: DeskStore, factory: Factory, network: str = "ethereum:local") -> None:
        self.store = store
        self.factory = factory
        self.network = network

    # ------------------------------------------------------------------ tracking
    def track(
        self,
        deal: Deal,
        quote_id: str | None = None,
        sla: Sla | None = None,
        confirmations: int | None = None,
        offchain_decimals: int | None = None,
    ) -> TrackedDealRow:
        """Start following `deal` (idempotent: tracking again updates the SLA and the threshold). A leg settled
        off chain counts in `offchain_decimals` units, by default its asset's (the quote's pair, as the lock made
        the terms; 8 without a quote)."""
        from ape import chain

        from nexotc_client.chain.contracts import erc20

        terms = deal.terms
        quote_id = self._quote_of(deal, quote_id)
        assets: tuple[str | None, str | None] = (None, None)
        if quote_id is not None:
            base_asset, _, quote_asset = self.store.get_quote(quote_id).symbol.partition("/")
            assets = (base_asset, quote_asset)
        decimals = []
        for leg, asset in zip((terms.base, terms.quote), assets, strict=True):
            if leg.on_chain:
                decimals.append(int(erc20(leg.token).decimals()))
            elif offchain_decimals is not None:
                decimals.append(offchain_decimals)
            else:
                decimals.append(asset_decimals(asset) if asset else 8)
        threshold = confirmations if confirmations is not None else confirmations_for(self.network)
        if threshold < 1:
            raise NexotcError("confirmations: at least 1")
        try:
            previous = self.store.tracked(deal.address)
        except LookupError:
            previous = None
        if previous is not None and previous.quote_id and quote_id != previous.quote_id:
            raise NexotcError(f"deal {deal.address} is tracked for quote {previous.quote_id}, not {quote_id}")
        row = TrackedDealRow(
            deal_address=deal.address,
            quote_id=quote_id,
            network=self.network,
            chain_id=int(chain.chain_id),
            confirmations=threshold,
            mode=terms.mode.name.lower(),
            base_decimals=decimals[0],
            quote_decimals=decimals[1],
            tranches=[{"unlock": t.unlock_time, "deadline": t.deadline} for t in terms.tranches],
            sla=(sla or Sla()).to_dict(),
            last_block=previous.last_block if previous else 0,
            created=previous.created if previous else int(chain.pending_timestamp),
        )
        self.store.track_deal(row)
        return row

    def _quote_of(self, deal: Deal, quote_id: str | None) -> str | None:
        """The quote a deal locks: the store's lock, else the one its offer's salt names on chain; a given
        `quote_id` must be a quote of the store and the one the deal locks (never relinked)."""
        from nexotc_client.desk.lock import read_quote_id

        locked = self.store.quote_for_deal(deal.address)
        if quote_id is None:
            if locked is not None:
                return locked.quote_id
            on_chain = read_quote_id(self.factory, deal.address)
            if on_chain is not None:
                try:
                    self.store.get_quote(on_chain)
                except LookupError:
                    return None  # another desk's quote id: not ours to link
            return on_chain
        try:
            self.store.get_quote(quote_id)
        except LookupError:
            raise NexotcError(f"no quote {quote_id!r} in this desk database") from None
        if locked is not None and locked.quote_id != quote_id:
            raise NexotcError(f"deal {deal.address} locks quote {locked.quote_id}, not {quote_id}")
        other = self.store.lock_of(quote_id)
        if other is not None and other.deal.lower() != deal.address.lower():
            raise NexotcError(f"quote {quote_id} is locked into another deal, {other.deal}")
        on_chain = read_quote_id(self.factory, deal.address)
        if on_chain != quote_id:
            named = f"names quote {on_chain}" if on_chain else "names no desk quote (not created from a lock offer)"
            raise NexotcError(f"deal {deal.address} does not lock quote {quote_id}: its offer salt {named}")
        return quote_id

    # ------------------------------------------------------------------ polling
    def poll(self, deal_address: str) -> SettlementView:
        """Read the deal's events: store every confirmed one not stored yet, report the younger ones as
        pending; the tranches' state from the chain; the SLA breaches at the chain's current time."""
        from ape import chain

        tracked = self.store.tracked(deal_address)
        deal = self.factory.deal(tracked.deal_address)
        head = int(chain.blocks.head.number or 0)
        now = int(chain.blocks.head.timestamp)
        confirmed_to = head - tracked.confirmations + 1  # an event in block b has head - b + 1 confirmations
        start = max(self.factory.start_block, tracked.last_block + 1 if tracked.last_block else 0)
        rows: list[SettlementRow] = []
        pending: list[PendingEvent] = []
        for ev in deal.events(from_block=start):
            tranche = _tranche_of(ev)
            if ev.block > confirmed_to:
                pending.append(PendingEvent(ev.name, tranche, ev.tx_hash, head - ev.block + 1))
                continue
            rows.append(self._row(tracked, ev, tranche))
        new = self.store.add_settlement_events(rows)
        if confirmed_to > 0:
            self.store.set_last_block(tracked.deal_address, confirmed_to)
        status = deal.status()
        events = self.store.settlement_events(tracked.deal_address)
        self._complete_offchain_amounts(tracked, deal, events)
        settled_tx = {e.tranche: e.tx_hash for e in events if e.event in SETTLED_EVENTS}
        marks: dict[int, list[str]] = {}
        for mark in self.store.marks(tracked.deal_address):
            marks.setdefault(mark.tranche, []).append(mark.milestone)
        tranches = tuple(
            TrancheView(
                t.index,
                t.status.name.lower(),
                t.unlock_time,
                t.deadline,
                settled_tx.get(t.index),
                tuple(marks.get(t.index, ())),
            )
            for t in status.tranches
        )
        view = SettlementView(
            deal=tracked.deal_address,
            quote_id=tracked.quote_id,
            network=tracked.network,
            confirmations=tracked.confirmations,
            head=head,
            now=now,
            phase=status.phase.name.lower(),
            funded=(status.base.funded or not status.base.on_chain, status.quote.funded or not status.quote.on_chain),
            tranches=tranches,
            new_events=new,
            pending=tuple(pending),
        )
        return _with_breaches(view, tracked, status, now)

    def _complete_offchain_amounts(self, tracked: TrackedDealRow, deal: Deal, events: list[SettlementRow]) -> None:
        """Released records stored by an earlier version with a zero off-chain leg (the event's amount) get the
        tranche's quantity from the terms, as new records do."""
        terms = deal.terms
        if terms.base.on_chain and terms.quote.on_chain:
            return
        updates: dict[int, tuple[Decimal, Decimal]] = {}
        for e in events:
            if e.event == "Released":
                amounts = _offchain_leg_amounts(terms, e.tranche, e.base_amount, e.quote_amount, tracked)
                if amounts != (e.base_amount, e.quote_amount):
                    updates[e.id] = amounts
        if updates:
            self.store.set_settlement_amounts(updates)

    def _row(self, tracked: TrackedDealRow, ev: DealEvent, tranche: int | None) -> SettlementRow:
        args = ev.args
        base = quote = fee = Decimal(0)
        if ev.name in ("Released", "Refunded", "Cancelled", "Expired"):
            base = _units(args.get("base_amount", 0), tracked.base_decimals)
            quote = _units(args.get("quote_amount", 0), tracked.quote_decimals)
        if ev.name == "Released":
            terms = self.factory.deal(tracked.deal_address).terms
            fee_decimals = tracked.quote_decimals if terms.fee_leg == LegId.QUOTE else tracked.base_decimals
            fee = _units(args.get("fees", 0), fee_decimals)
            base, quote = _offchain_leg_amounts(terms, tranche, base, quote, tracked)
        elif ev.name == "Resolved":
            base = _units(int(args["base"]["to_receiver"]), tracked.base_decimals)
            quote = _units(int(args["quote"]["to_receiver"]), tracked.quote_decimals)
        elif ev.name == "Funded":
            leg = int(args.get("leg", 0))
            amount = _units(args.get("amount", 0), tracked.base_decimals if leg == 0 else tracked.quote_decimals)
            base, quote = (amount, Decimal(0)) if leg == 0 else (Decimal(0), amount)
        ref_root = tracked.quote_id or tracked.deal_address
        return SettlementRow(
            deal_address=tracked.deal_address,
            ref=f"{ref_root}/{tranche}" if tranche is not None else f"{ref_root}/{ev.name.lower()}",
            event=ev.name,
            tranche=tranche,
            base_amount=base,
            quote_amount=quote,
            fee=fee,
            tx_hash=ev.tx_hash,
            log_index=ev.log_index,
            block=ev.block,
            ts_ms=ev.timestamp * 1000,
            chain_id=tracked.chain_id,
            args=_jsonable(args),
        )

    # ------------------------------------------------------------------ off-chain leg
    def mark_offchain(
        self,
        deal_address: str,
        tranche: int,
        milestone: str,
        evidence: str,
        marker: AccountAPI | None = None,
    ) -> SettlementMarkRow:
        """Record a milestone of the off-chain leg of `tranche` with its evidence (a txid on another chain, a
        wire reference). For an ESCROWED deal, "delivered" is also the on-chain mark (`DealEscrow.mark` with
        the evidence hash) when the `marker` account is given.

        Refused, before anything is recorded or sent: a DVP deal (both legs settle on chain, there is no
        off-chain leg); a milestone earlier than one the tranche already has (they only move forward, steps may
        be skipped); a deal whose escrow is not funded (the off-chain leg is delivered against a funded escrow)
        or that was cancelled or expired; a tranche that is already released, refunded or resolved; and, on
        chain, a tranche that is not pending."""
        from ape import chain

        from nexotc_client.chain.encoding import to_evidence

        if milestone not in MILESTONES:
            raise NexotcError(f"milestone {milestone!r}: one of {', '.join(MILESTONES)}")
        tracked = self.store.tracked(deal_address)
        if tracked.mode != Mode.ESCROWED.name.lower():
            raise NexotcError(
                f"deal {tracked.deal_address} is {tracked.mode.upper()}: a DVP deal has no off-chain leg to mark"
            )
        if not 0 <= tranche < len(tracked.tranches):
            raise NexotcError(f"no tranche {tranche}: the deal has {len(tracked.tranches)}")
        if not evidence.strip():
            raise NexotcError("evidence: empty")
        if marker is not None and milestone != "delivered":
            raise NexotcError(f"only the 'delivered' milestone is marked on chain, not {milestone!r}")
        marks = [m for m in self.store.marks(tracked.deal_address) if m.tranche == tranche]
        existing = next((m for m in marks if m.milestone == milestone), None)
        # everything is checked before a transaction is sent
        if existing is None:
            recorded = {m.milestone for m in marks}
            later = [m for m in MILESTONES[MILESTONES.index(milestone) + 1 :] if m in recorded]
            if later:
                raise NexotcError(
                    f"tranche {tranche} is already {later[-1]!r}: {milestone!r} comes before it (milestones only "
                    f"move forward: {' → '.join(MILESTONES)})"
                )
        if existing is not None:
            if existing.evidence != evidence:
                raise MarkExistsError(
                    f"tranche {tranche} already has a {milestone!r} mark with other evidence ({existing.evidence!r})"
                )
            if marker is None or existing.tx_hash:
                where = f"marked on chain in {existing.tx_hash}" if existing.tx_hash else "recorded off chain"
                raise MarkExistsError(f"tranche {tranche} already has a {milestone!r} mark with this evidence, {where}")
        deal = self.factory.deal(tracked.deal_address)
        status = deal.status()
        if status.phase is Phase.FUNDING:
            missing = [
                n for n, leg in (("base", status.base), ("quote", status.quote)) if leg.on_chain and not leg.funded
            ]
            raise NexotcError(
                f"deal {tracked.deal_address} is not funded yet ({' and '.join(missing) or 'a'} leg not deposited): "
                "the off-chain leg is delivered, and marked, once the escrow is funded"
            )
        if status.phase in (Phase.CANCELLED, Phase.EXPIRED):
            raise NexotcError(f"deal {tracked.deal_address} is {status.phase.name.lower()}: nothing to mark")
        state = status.tranches[tranche].status
        if state in (TrancheStatus.RELEASED, TrancheStatus.REFUNDED, TrancheStatus.RESOLVED):
            raise NexotcError(
                f"tranche {tranche} is already {state.name.lower()}: its settlement is over, nothing to mark"
            )
        if marker is not None and state is not TrancheStatus.PENDING:
            raise NexotcError(f"tranche {tranche} is {state.name.lower()}: only a pending tranche is marked on chain")
        tx_hash = None
        if marker is not None:
            tx_hash = deal.mark(tranche, evidence, marker).tx_hash
        if existing is not None:  # the off-chain record of the same evidence, now also marked on chain
            with self.store.db.session() as s:
                row = s.get(SettlementMarkRow, existing.id)
                if row is None:
                    raise NexotcError(f"the {milestone!r} mark of tranche {tranche} vanished meanwhile")
                row.tx_hash = tx_hash
                s.flush()
                s.expunge(row)
            return row
        row = SettlementMarkRow(
            deal_address=tracked.deal_address,
            tranche=tranche,
            milestone=milestone,
            evidence=evidence,
            evidence_hash="0x" + to_evidence(evidence).hex(),
            ts=int(chain.blocks.head.timestamp),
            tx_hash=tx_hash,
        )
        self.store.add_mark(row)
        return row


# ------------------------------------------------------------------ breaches
def _with_breaches(view: SettlementView, tracked: TrackedDealRow, status: Any, now: int) -> SettlementView:
    sla = Sla(**tracked.sla)
    breaches: list[Breach] = []
    funding_due = tracked.created + sla.funding_s
    if not all(view.funded) and status.phase in (Phase.FUNDING,) and now > funding_due:
        missing = [leg for leg, ok in zip(("base", "quote"), view.funded, strict=True) if not ok]
        breaches.append(Breach("funding_late", None, funding_due, f"{' and '.join(missing)} leg not funded"))
    marks = {(m, t.index) for t in view.tranches for m in t.offchain}
    for t in view.tranches:
        done = t.status in ("released", "resolved", "refunded")
        if t.status == "disputed":
            breaches.append(Breach("disputed", t.index, t.unlock_time, "tranche disputed: awaiting the resolver"))
            continue
        if tracked.mode == "escrowed" and not done and t.status != "marked":
            due = t.unlock_time + sla.offchain_s
            if now > due and ("delivered", t.index) not in marks:
                breaches.append(Breach("offchain_late", t.index, due, "off-chain leg not delivered (no mark)"))
        if not done and now > t.unlock_time + sla.release_s:
            breaches.append(Breach("release_late", t.index, t.unlock_time + sla.release_s, f"tranche {t.status}"))
        if not done and now > t.deadline:
            breaches.append(Breach("deadline_missed", t.index, t.deadline, "past its delivery deadline: refundable"))
    return SettlementView(**{**view.__dict__, "breaches": tuple(breaches)})


def _offchain_leg_amounts(
    terms: Terms, tranche: int | None, base: Decimal, quote: Decimal, tracked: TrackedDealRow
) -> tuple[Decimal, Decimal]:
    """A released tranche's amounts with its off-chain leg's quantity taken from the deal's terms (read from the
    deal: the chain's terms are authoritative). The Released event only carries what the escrow paid out, zero
    for a leg settled off chain; the release itself proves that leg delivered (the receiver approved it)."""
    if tranche is None or not 0 <= tranche < len(terms.tranches):
        return base, quote
    t = terms.tranches[tranche]
    if not terms.base.on_chain:
        base = _units(t.base_amount, tracked.base_decimals)
    if not terms.quote.on_chain:
        quote = _units(t.quote_amount, tracked.quote_decimals)
    return base, quote


def _tranche_of(ev: DealEvent) -> int | None:
    value = ev.args.get("tranche")
    return int(value) if value is not None else None


def _units(value: Any, decimals: int) -> Decimal:
    return Decimal(int(value)).scaleb(-decimals)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int | str | bool) or value is None:
        return value
    return str(value)


__all__ = [
    "CONFIRMATIONS",
    "Breach",
    "MarkExistsError",
    "MILESTONES",
    "PendingEvent",
    "SettlementTracker",
    "SettlementView",
    "Sla",
    "TrancheView",
    "confirmations_for",
]
