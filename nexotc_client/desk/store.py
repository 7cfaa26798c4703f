"""Repositories over the desk database: RFQs, quotes and their price locks, hedges (state, child orders,
fills), bookings, tracked deals and their settlement records, the match book, the offers the desk signed.

    store = DeskStore(Database.open(url))
    store.save_rfq(rfq); store.save_quote(quote)
    store.save_hedge(state)            # one transaction: plan/progress, every child order, new fills
    state = store.load_hedge(parent)   # after a crash: exactly what was last saved
    store.add_fills(fills, parent)     # by (venue, symbol, trade_id): a fill reported twice is stored once,
                                       # a different fill under a stored key raises FillConflictError

Every save is one transaction, so a process killed at any instant leaves the last complete save behind.
The store speaks the engine's dataclasses (:mod:`nexotc_client.desk.models`); rows never leave it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from operator import attrgetter
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from nexotc_client.desk.db import (
    BookingRow,
    BookOfferRow,
    ChildOrderRow,
    Database,
    FillRow,
    HedgeRow,
    MatchRow,
    PreferenceRow,
    QuoteRow,
    RfqRow,
    SettlementMarkRow,
    SettlementRow,
    SignedOfferRow,
    TrackedDealRow,
)
from nexotc_client.desk.models import (
    RFQ,
    Booking,
    BookingKind,
    ChildOrder,
    Fill,
    HedgePlan,
    HedgeState,
    HedgeStatus,
    OrderStatus,
    Quote,
    QuoteComponents,
    QuoteState,
    SettlementRecord,
    Side,
    from_dict,
    to_dict,
)


class StoreError(LookupError):
    """Something asked of the store does not exist (unknown RFQ, quote, hedge, deal)."""


class FillConflictError(StoreError):
    """A fill whose key (venue, symbol, trade id) is stored already with another hedge, order, side, size or
    price: two different executions cannot share a venue's trade id, so one of the reports is wrong."""


_FILL_IDENTITY = ("order_id", "parent_id", "side", "size", "price")


def _check_same_fill(key: tuple[str, str, str], stored: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise unless ``new`` is the fill ``stored`` reported again (an unknown hedge, None, matches any)."""
    diffs = []
    for name in _FILL_IDENTITY:
        a, b = stored[name], new[name]
        if name == "parent_id" and (a is None or b is None):
            continue
        if a != b:
            diffs.append(f"{name} {a} vs {b}")
    if diffs:
        venue, symbol, trade_id = key
        raise FillConflictError(
            f"fill {venue} {symbol} trade {trade_id} is stored already with another {', '.join(diffs)}: "
            "refusing to merge two different executions"
        )


@dataclass(frozen=True)
class PriceLock:
    """Where an accepted quote became a deal: the escrow, the signed offer's hash, the accepting tx."""

    quote_id: str
    deal: str
    offer_hash: str
    tx_hash: str
    chain_id: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "quote_id": self.quote_id,
            "deal": self.deal,
            "offer_hash": self.offer_hash,
            "tx_hash": self.tx_hash,
            "chain_id": self.chain_id,
        }


class NonceTakenError(StoreError):
    """Another offer of the maker holds this nonce already (another process signed at the same moment): the
    caller picks the nonce again."""


@dataclass(frozen=True)
class SignedOfferRecord:
    """An offer the desk engine signed: its hash, the domain and maker whose nonce it spends, what it was for
    (a quote's lock or a match's invite) and, when it re-issues an untaken offer with the same nonce, that
    offer's hash. Addresses and hashes are stored in lower case."""

    offer_hash: str
    chain_id: int
    factory: str
    maker: str
    nonce: int
    expiry: int
    created_ms: int
    quote_id: str | None = None
    match_id: str | None = None
    supersedes: str | None = None
    leg_token: str | None = None  # the maker's on-chain leg: token and amount in its units (None: off chain)
    leg_amount: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_hash": self.offer_hash,
            "chain_id": self.chain_id,
            "factory": self.factory,
            "maker": self.maker,
            "nonce": self.nonce,
            "expiry": self.expiry,
            "created_ms": self.created_ms,
            "quote_id": self.quote_id,
            "match_id": self.match_id,
            "supersedes": self.supersedes,
            "leg_token": self.leg_token,
            "leg_amount": self.leg_amount,
        }


class DeskStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # per hedge: how many of its state's fills (an append-only list) are stored already
        self._saved_fills: dict[str, int] = {}
        # per hedge: each child order's values as stored by the last committed save (or load) of this store, so
        # that a save writes only the orders that changed since (a TWAP of thousands of clips changes one or two
        # a step). Only this store writes a running hedge (the hedge lock), so the rows still hold these values.
        self._saved_orders: dict[str, dict[str, tuple[Any, ...]]] = {}
        # per hedge: its mids as last saved, encoded (the list only grows: a save encodes the new ones)
        self._saved_mids: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ RFQs and quotes
    def save_rfq(self, rfq: RFQ) -> None:
        with self.db.session() as s:
            s.merge(_rfq_row(rfq))

    def insert_rfq(self, rfq: RFQ) -> bool:
        """Insert a new RFQ, never overwriting: False when its id exists (atomic: the primary key decides
        between concurrent processes)."""
        from sqlalchemy.exc import IntegrityError

        try:
            with self.db.session() as s:
                if s.get(RfqRow, rfq.rfq_id) is not None:
                    return False
                s.add(_rfq_row(rfq))
        except IntegrityError:
            return False
        return True

    def get_rfq(self, rfq_id: str) -> RFQ:
        with self.db.session() as s:
            row = s.get(RfqRow, rfq_id)
            if row is None:
                raise StoreError(f"no RFQ {rfq_id!r}")
            return RFQ(row.rfq_id, row.client, row.symbol, Side(row.side), row.size, row.ts_ms)

    def rfqs(self) -> list[RFQ]:
        with self.db.session() as s:
            rows = s.scalars(select(RfqRow).order_by(RfqRow.ts_ms, RfqRow.rfq_id)).all()
            return [RFQ(r.rfq_id, r.client, r.symbol, Side(r.side), r.size, r.ts_ms) for r in rows]

    def save_quote(self, quote: Quote) -> None:
        """Insert or update a quote (its state changes as it is accepted, countered, expired...); the
        price lock columns are kept."""
        with self.db.session() as s:
            row = s.get(QuoteRow, quote.quote_id)
            if row is None:
                if s.get(RfqRow, quote.rfq_id) is None:
                    raise StoreError(f"quote {quote.quote_id}: no RFQ {quote.rfq_id!r} (save the RFQ first)")
                row = QuoteRow(quote_id=quote.quote_id)
                s.add(row)
            _set_quote_row(row, quote)

    def insert_quote(self, quote: Quote) -> bool:
        """Insert a new quote, never overwriting: False when its id is taken (atomic: the primary key
        decides between concurrent processes)."""
        from sqlalchemy.exc import IntegrityError

        try:
            with self.db.session() as s:
                s.add(_set_quote_row(QuoteRow(quote_id=quote.quote_id), quote))
        except IntegrityError:
            return False
        return True

    def get_quote(self, quote_id: str) -> Quote:
        with self.db.session() as s:
            row = s.get(QuoteRow, quote_id)
            if row is None:
                raise StoreError(f"no quote {quote_id!r}")
            return _quote(row)

    def quotes(self, rfq_id: str | None = None, state: QuoteState | None = None) -> list[Quote]:
        with self.db.session() as s:
            query = select(QuoteRow).order_by(QuoteRow.created_ms, QuoteRow.quote_id)
            if rfq_id is not None:
                query = query.where(QuoteRow.rfq_id == rfq_id)
            if state is not None:
                query = query.where(QuoteRow.state == state.value)
            return [_quote(r) for r in s.scalars(query).all()]

    def record_lock(self, lock: PriceLock) -> None:
        with self.db.session() as s:
            row = s.get(QuoteRow, lock.quote_id)
            if row is None:
                raise StoreError(f"no quote {lock.quote_id!r}")
            if row.deal_address and row.deal_address.lower() != lock.deal.lower():
                raise StoreError(f"quote {lock.quote_id} is already locked into deal {row.deal_address}")
            row.deal_address, row.offer_hash, row.lock_tx, row.chain_id = (
                lock.deal,
                lock.offer_hash,
                lock.tx_hash,
                lock.chain_id,
            )

    def lock_of(self, quote_id: str) -> PriceLock | None:
        with self.db.session() as s:
            row = s.get(QuoteRow, quote_id)
            if row is None:
                raise StoreError(f"no quote {quote_id!r}")
            if not row.deal_address:
                return None
            return PriceLock(row.quote_id, row.deal_address, row.offer_hash or "", row.lock_tx or "", row.chain_id or 0)

    def quote_for_deal(self, deal: str) -> Quote | None:
        with self.db.session() as s:
            row = s.scalars(select(QuoteRow).where(func.lower(QuoteRow.deal_address) == deal.lower())).first()
            return _quote(row) if row is not None else None

    # ------------------------------------------------------------------ hedges
    def save_hedge(self, state: HedgeState, quote_id: str | None = None) -> int:
        """Persist the whole hedge in one transaction: its progress, its child orders and the fills not stored
        yet. Returns how many fills were new. Only the orders that are new or changed since this store's last
        save (or load) of the hedge are written: the others' rows hold their values already. A save that fails
        is rolled back and forgets nothing: the next one writes what it did not."""
        plan = state.plan
        saved = self._saved_orders.get(plan.parent_id, {})
        current: dict[str, tuple[Any, ...]] = {}
        # orders and fills have their tables; the mids (append-only) are encoded once each
        head = to_dict(replace(state, orders=[], fills=[], mids=[]))
        head.pop("orders")
        head.pop("fills")
        head["mids"] = mids = self._encoded_mids(plan.parent_id, state.mids)
        values: dict[str, Any] = {
            "symbol": plan.symbol,
            "side": plan.side.value,
            "target": plan.target_size,
            "filled": state.filled,
            "status": state.status.value,
            "state": head,
            "updated_ms": state.updated_ms,
        }
        if quote_id is not None:
            values["quote_id"] = quote_id
        with self.db.session() as s:
            # the hedge's row is written without being read back first (its state grows with the hedge)
            where = HedgeRow.parent_id == plan.parent_id
            if not s.execute(update(HedgeRow).where(where).values(**values)).rowcount:
                s.execute(insert(HedgeRow).values(parent_id=plan.parent_id, **values))
            for seq, order in enumerate(state.orders):
                key, stored = order.client_order_id or order.order_id or _order_key(order), _order_values(order)
                current[key] = stored
                if saved.get(key) != stored:
                    self._upsert_order(s, order, seq)
            start = self._saved_fills.get(plan.parent_id, 0)
            if start > len(state.fills):
                start = 0
            new = self._insert_fills(s, state.fills[start:], plan.parent_id)
        # committed: the rows hold these values now (a rollback above leaves the previous record as it was)
        self._saved_orders[plan.parent_id] = current
        self._saved_mids[plan.parent_id] = mids
        self._saved_fills[plan.parent_id] = len(state.fills)
        return new

    def _encoded_mids(self, parent_id: str, mids: list[tuple[int, Decimal]]) -> list[Any]:
        """The hedge's mids as the state column stores them: the last saved encoding plus the new ones (all of
        them again when the list is not that one grown)."""
        saved = self._saved_mids.get(parent_id, [])
        n = len(saved)
        if not n or n > len(mids) or saved[-1] != to_dict(mids[n - 1]):
            return [to_dict(m) for m in mids]
        return saved + [to_dict(m) for m in mids[n:]]

    def load_hedge(self, parent_id: str) -> HedgeState:
        with self.db.session() as s:
            row = s.get(HedgeRow, parent_id)
            if row is None:
                raise StoreError(f"no hedge {parent_id!r}")
            row_state = row.state
            state = from_dict(HedgeState, {**row_state, "orders": [], "fills": []})
            orders = s.scalars(
                select(ChildOrderRow).where(ChildOrderRow.parent_id == parent_id).order_by(ChildOrderRow.seq)
            ).all()
            state.orders = [_order(o) for o in orders]
            state.fills = [_fill(f) for f in s.scalars(_fills_query(parent_id)).all()]
        self._saved_orders[parent_id] = {_order_key(o): _order_values(o) for o in state.orders}
        self._saved_mids[parent_id] = list(row_state.get("mids", []))
        self._saved_fills[parent_id] = len(state.fills)
        return state

    def hedges(self) -> list[dict[str, Any]]:
        """A summary line per hedge (parent id, quote, side, target, filled, status)."""
        with self.db.session() as s:
            rows = s.scalars(select(HedgeRow).order_by(HedgeRow.parent_id)).all()
            return [
                {
                    "parent_id": r.parent_id,
                    "quote_id": r.quote_id,
                    "symbol": r.symbol,
                    "side": r.side,
                    "target": r.target,
                    "filled": r.filled,
                    "status": r.status,
                    "updated_ms": r.updated_ms,
                }
                for r in rows
            ]

    def hedge_quote_id(self, parent_id: str) -> str | None:
        with self.db.session() as s:
            row = s.get(HedgeRow, parent_id)
            if row is None:
                raise StoreError(f"no hedge {parent_id!r}")
            return row.quote_id

    def add_fills(self, fills: Iterable[Fill], parent_id: str | None = None) -> int:
        """Store fills not seen before (by venue, symbol and trade id); returns how many were new. A different
        fill under a stored key raises :class:`FillConflictError`."""
        with self.db.session() as s:
            return self._insert_fills(s, list(fills), parent_id)

    def fills(self, parent_id: str | None = None) -> list[Fill]:
        with self.db.session() as s:
            return [_fill(f) for f in s.scalars(_fills_query(parent_id)).all()]

    def orders(self, parent_id: str) -> list[ChildOrder]:
        with self.db.session() as s:
            rows = s.scalars(
                select(ChildOrderRow).where(ChildOrderRow.parent_id == parent_id).order_by(ChildOrderRow.seq)
            ).all()
            return [_order(o) for o in rows]

    def _upsert_order(self, s: Session, order: ChildOrder, seq: int) -> None:
        key = _order_key(order)
        row = s.get(ChildOrderRow, key)
        if row is None:
            row = ChildOrderRow(client_order_id=key, seq=seq)
            s.add(row)
        row.order_id = order.order_id
        row.parent_id, row.venue, row.symbol, row.side = order.parent_id, order.venue, order.symbol, order.side.value
        row.size, row.limit_price, row.ts_ms, row.status = (
            order.size,
            order.limit_price,
            order.ts_ms,
            order.status.value,
        )
        row.clip = order.clip
        row.filled, row.notional, row.fees = order.filled, order.notional, order.fees
        row.venue_filled = order.venue_filled

    def _insert_fills(self, s: Session, fills: Sequence[Fill], parent_id: str | None) -> int:
        """Insert the fills not stored yet, keyed as venues guarantee uniqueness: (venue, symbol, trade id). A
        fill seen again (the acknowledgement and the trade list, a restart) is stored once; a *different* fill
        under a stored key (another hedge, order, side, size or price) raises :class:`FillConflictError` and the
        whole save is rolled back: nothing is dropped silently."""
        if not fills:
            return 0
        batch: dict[tuple[str, str, str], dict[str, Any]] = {}
        for f in fills:
            value = {
                "trade_id": f.trade_id,
                "order_id": f.order_id,
                "parent_id": parent_id,
                "venue": f.venue,
                "symbol": f.symbol,
                "side": f.side.value,
                "size": f.size,
                "price": f.price,
                "fee": f.fee,
                "fee_asset": f.fee_asset,
                "ts_ms": f.ts_ms,
            }
            key = (f.venue, f.symbol, f.trade_id)
            prev = batch.get(key)
            if prev is None:
                batch[key] = value
            else:
                _check_same_fill(key, prev, value)
        trade_ids = sorted({key[2] for key in batch})
        stored: dict[tuple[str, str, str], dict[str, Any]] = {}
        for i in range(0, len(trade_ids), 500):
            for row in s.scalars(select(FillRow).where(FillRow.trade_id.in_(trade_ids[i : i + 500]))).all():
                key = (row.venue, row.symbol, row.trade_id)
                if key in batch:
                    stored[key] = {
                        "order_id": row.order_id,
                        "parent_id": row.parent_id,
                        "side": row.side,
                        "size": row.size,
                        "price": row.price,
                    }
        for key, row_value in stored.items():
            _check_same_fill(key, row_value, batch[key])
        new = [value for key, value in batch.items() if key not in stored]
        if new:
            # a plain insert: a row another writer stored meanwhile fails the transaction rather than vanishing
            s.execute(insert(FillRow), new)
        return len(new)

    # ------------------------------------------------------------------ bookings
    def save_booking(self, booking: Booking, quote_id: str | None = None) -> None:
        with self.db.session() as s:
            s.merge(
                BookingRow(
                    booking_id=booking.booking_id,
                    kind=booking.kind.value,
                    ref=booking.ref,
                    quote_id=quote_id,
                    symbol=booking.symbol,
                    side=booking.side.value,
                    size=booking.size,
                    price=booking.price,
                    fee=booking.fee,
                    ts_ms=booking.ts_ms,
                    tx_hash=booking.tx_hash,
                )
            )

    def bookings(self, quote_id: str | None = None, kind: BookingKind | None = None) -> list[Booking]:
        with self.db.session() as s:
            query = select(BookingRow).order_by(BookingRow.ts_ms, BookingRow.booking_id)
            if quote_id is not None:
                query = query.where(BookingRow.quote_id == quote_id)
            if kind is not None:
                query = query.where(BookingRow.kind == kind.value)
            return [
                Booking(
                    r.booking_id,
                    BookingKind(r.kind),
                    r.ref,
                    r.symbol,
                    Side(r.side),
                    r.size,
                    r.price,
                    r.fee,
                    r.ts_ms,
                    r.tx_hash,
                )
                for r in s.scalars(query).all()
            ]

    # ------------------------------------------------------------------ settlement
    def track_deal(self, row: TrackedDealRow) -> None:
        with self.db.session() as s:
            s.merge(row)

    def tracked(self, deal: str) -> TrackedDealRow:
        with self.db.session() as s:
            row = s.scalars(
                select(TrackedDealRow).where(func.lower(TrackedDealRow.deal_address) == deal.lower())
            ).first()
            if row is None:
                raise StoreError(f"deal {deal} is not tracked (run `nexotc settle track` first)")
            s.expunge(row)
            return row

    def tracked_deals(self) -> list[TrackedDealRow]:
        with self.db.session() as s:
            rows = list(s.scalars(select(TrackedDealRow).order_by(TrackedDealRow.created)).all())
            for row in rows:
                s.expunge(row)
            return rows

    def set_last_block(self, deal: str, block: int) -> None:
        with self.db.session() as s:
            row = s.get(TrackedDealRow, deal)
            if row is None:
                raise StoreError(f"deal {deal} is not tracked")
            row.last_block = max(row.last_block, block)

    def add_settlement_events(self, rows: Iterable[SettlementRow]) -> int:
        """Store on-chain events not stored yet (by tx hash and log index); returns how many were new."""
        added = 0
        with self.db.session() as s:
            for row in rows:
                exists = s.scalar(
                    select(func.count())
                    .select_from(SettlementRow)
                    .where(SettlementRow.tx_hash == row.tx_hash, SettlementRow.log_index == row.log_index)
                )
                if not exists:
                    s.add(row)
                    added += 1
        return added

    def set_settlement_amounts(self, amounts: dict[int, tuple[Decimal, Decimal]]) -> None:
        """Correct stored settlement records' amounts (record id -> base, quote) in one transaction."""
        with self.db.session() as s:
            for row_id, (base, quote) in amounts.items():
                row = s.get(SettlementRow, row_id)
                if row is not None:
                    row.base_amount, row.quote_amount = base, quote

    def settlement_events(self, deal: str) -> list[SettlementRow]:
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(SettlementRow)
                    .where(func.lower(SettlementRow.deal_address) == deal.lower())
                    .order_by(SettlementRow.block, SettlementRow.log_index)
                ).all()
            )
            for row in rows:
                s.expunge(row)
            return rows

    def settlement_records(self, deal: str | None = None) -> list[SettlementRecord]:
        """The settled tranches (Released / Resolved events) as the reconciliation's SettlementRecords."""
        with self.db.session() as s:
            query = (
                select(SettlementRow)
                .where(SettlementRow.event.in_(("Released", "Resolved")))
                .order_by(SettlementRow.block, SettlementRow.log_index)
            )
            if deal is not None:
                query = query.where(func.lower(SettlementRow.deal_address) == deal.lower())
            return [
                SettlementRecord(
                    ref=r.ref,
                    base_amount=r.base_amount,
                    quote_amount=r.quote_amount,
                    fee=r.fee,
                    ts_ms=r.ts_ms,
                    tx_hash=r.tx_hash,
                    chain_id=r.chain_id,
                    deal=r.deal_address,
                    block=r.block,
                )
                for r in s.scalars(query).all()
            ]

    def add_mark(self, row: SettlementMarkRow) -> None:
        with self.db.session() as s:
            existing = s.scalars(
                select(SettlementMarkRow).where(
                    SettlementMarkRow.deal_address == row.deal_address,
                    SettlementMarkRow.tranche == row.tranche,
                    SettlementMarkRow.milestone == row.milestone,
                )
            ).first()
            if existing is not None:
                raise StoreError(
                    f"tranche {row.tranche} of {row.deal_address} already has a {row.milestone!r} mark "
                    f"(evidence {existing.evidence!r})"
                )
            s.add(row)

    def marks(self, deal: str) -> list[SettlementMarkRow]:
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(SettlementMarkRow)
                    .where(func.lower(SettlementMarkRow.deal_address) == deal.lower())
                    .order_by(SettlementMarkRow.tranche, SettlementMarkRow.ts)
                ).all()
            )
            for row in rows:
                s.expunge(row)
            return rows

    # ------------------------------------------------------------------ match book
    def add(self, row: BookOfferRow | PreferenceRow | MatchRow) -> None:
        with self.db.session() as s:
            s.merge(row)

    def book_offers(self, pair: str | None = None, status: str | None = "open") -> list[BookOfferRow]:
        with self.db.session() as s:
            query = select(BookOfferRow).order_by(BookOfferRow.created, BookOfferRow.offer_id)
            if pair is not None:
                query = query.where(BookOfferRow.pair == pair)
            if status is not None:
                query = query.where(BookOfferRow.status == status)
            rows = list(s.scalars(query).all())
            for row in rows:
                s.expunge(row)
            return rows

    def get(self, kind: type[Any], key: str) -> Any:
        with self.db.session() as s:
            row = s.get(kind, key)
            if row is None:
                raise StoreError(f"no {kind.__tablename__[:-1].replace('_', ' ')} {key!r}")
            s.expunge(row)
            return row

    def preferences(self) -> list[PreferenceRow]:
        with self.db.session() as s:
            rows = list(s.scalars(select(PreferenceRow).order_by(PreferenceRow.created)).all())
            for row in rows:
                s.expunge(row)
            return rows

    def matches(self, pref_id: str | None = None) -> list[MatchRow]:
        with self.db.session() as s:
            query = select(MatchRow).order_by(MatchRow.created, MatchRow.match_id)
            if pref_id is not None:
                query = query.where(MatchRow.pref_id == pref_id)
            rows = list(s.scalars(query).all())
            for row in rows:
                s.expunge(row)
            return rows

    def set_status(self, kind: type[Any], key: str, status: str, **values: Any) -> None:
        with self.db.session() as s:
            row = s.get(kind, key)
            if row is None:
                raise StoreError(f"no {kind.__tablename__[:-1].replace('_', ' ')} {key!r}")
            row.status = status
            for name, value in values.items():
                setattr(row, name, value)

    # ------------------------------------------------------------------ signed offers
    def record_offer(self, record: SignedOfferRecord) -> bool:
        """Record an offer the desk signs, before it is handed out (its nonce is then taken). False when this very
        offer is recorded already. NonceTakenError when another offer of the maker holds the nonce, or already
        re-issues the offer this one re-issues (the unique key decides between concurrent processes)."""
        from sqlalchemy.exc import IntegrityError

        if not 0 <= record.nonce < 2**256:
            raise ValueError(f"nonce {record.nonce} is not a uint256")
        row = SignedOfferRow(
            offer_hash=record.offer_hash.lower(),
            chain_id=record.chain_id,
            factory=record.factory.lower(),
            maker=record.maker.lower(),
            nonce=str(record.nonce),
            supersedes=(record.supersedes or "").lower(),
            quote_id=record.quote_id,
            match_id=record.match_id,
            expiry=record.expiry,
            created_ms=record.created_ms,
            leg_token=record.leg_token.lower() if record.leg_token else None,
            leg_amount=str(record.leg_amount) if record.leg_amount is not None else None,
        )
        try:
            with self.db.session() as s:
                if s.get(SignedOfferRow, row.offer_hash) is not None:
                    return False
                s.add(row)
        except IntegrityError:
            if self.signed_offer(row.offer_hash) is not None:
                return False  # another process recorded this very offer
            taken = f"re-issues {row.supersedes}" if row.supersedes else f"holds nonce {record.nonce}"
            raise NonceTakenError(f"another offer of {record.maker} already {taken}") from None
        return True

    def forget_offer(self, offer_hash: str) -> None:
        """Drop a recorded offer that was never handed out (its signing failed): its nonce is free again."""
        with self.db.session() as s:
            row = s.get(SignedOfferRow, offer_hash.lower())
            if row is not None:
                s.delete(row)

    def signed_offer(self, offer_hash: str) -> SignedOfferRecord | None:
        with self.db.session() as s:
            row = s.get(SignedOfferRow, offer_hash.lower())
            return _signed_offer(row) if row is not None else None

    def signed_offers(self, quote_id: str | None = None, match_id: str | None = None) -> list[SignedOfferRecord]:
        """The recorded offers (of a quote, of a match), oldest first (an offer after the one it re-issues)."""
        with self.db.session() as s:
            query = select(SignedOfferRow)
            if quote_id is not None:
                query = query.where(SignedOfferRow.quote_id == quote_id)
            if match_id is not None:
                query = query.where(SignedOfferRow.match_id == match_id)
            records = [_signed_offer(r) for r in s.scalars(query).all()]
        by_hash = {r.offer_hash: r for r in records}

        def depth(record: SignedOfferRecord) -> int:
            n, seen = 0, {record.offer_hash}
            while record.supersedes in by_hash and record.supersedes not in seen:
                record = by_hash[record.supersedes]
                seen.add(record.offer_hash)
                n += 1
            return n

        return sorted(records, key=lambda r: (r.created_ms, depth(r), r.offer_hash))

    def open_offers(self, chain_id: int, factory: str, maker: str, now: int) -> list[SignedOfferRecord]:
        """The recorded offers of `maker` on `factory` not expired at chain time `now` (whether their nonces are
        used is on chain)."""
        with self.db.session() as s:
            rows = s.scalars(
                select(SignedOfferRow).where(
                    SignedOfferRow.chain_id == chain_id,
                    SignedOfferRow.factory == factory.lower(),
                    SignedOfferRow.maker == maker.lower(),
                    SignedOfferRow.expiry >= now,
                )
            ).all()
            return [_signed_offer(r) for r in rows]

    def offer_nonces(self, chain_id: int, factory: str, maker: str) -> list[int]:
        """Every nonce the recorded offers of `maker` on `factory` hold, ascending."""
        with self.db.session() as s:
            nonces = s.scalars(
                select(SignedOfferRow.nonce).where(
                    SignedOfferRow.chain_id == chain_id,
                    SignedOfferRow.factory == factory.lower(),
                    SignedOfferRow.maker == maker.lower(),
                )
            ).all()
        return sorted({int(n) for n in nonces})


# ------------------------------------------------------------------ row -> model
def _signed_offer(row: SignedOfferRow) -> SignedOfferRecord:
    return SignedOfferRecord(
        offer_hash=row.offer_hash,
        chain_id=row.chain_id,
        factory=row.factory,
        maker=row.maker,
        nonce=int(row.nonce),
        expiry=row.expiry,
        created_ms=row.created_ms,
        quote_id=row.quote_id,
        match_id=row.match_id,
        supersedes=row.supersedes or None,
        leg_token=row.leg_token,
        leg_amount=int(row.leg_amount) if row.leg_amount is not None else None,
    )


def _rfq_row(rfq: RFQ) -> RfqRow:
    return RfqRow(
        rfq_id=rfq.rfq_id, client=rfq.client, symbol=rfq.symbol, side=rfq.side.value, size=rfq.size, ts_ms=rfq.ts_ms
    )


def _set_quote_row(row: QuoteRow, quote: Quote) -> QuoteRow:
    row.rfq_id = quote.rfq_id
    row.symbol = quote.symbol
    row.side = quote.side.value
    row.size = quote.size
    row.bid = quote.bid
    row.ask = quote.ask
    row.price = quote.price
    row.mid = quote.mid
    row.components = to_dict(quote.components)
    row.created_ms = quote.created_ms
    row.ttl_ms = quote.ttl_ms
    row.state = quote.state.value
    row.counter_price = quote.counter_price
    row.updated_ms = quote.updated_ms
    row.reason = quote.reason
    return row


def _quote(row: QuoteRow) -> Quote:
    return Quote(
        quote_id=row.quote_id,
        rfq_id=row.rfq_id,
        symbol=row.symbol,
        side=Side(row.side),
        size=row.size,
        bid=row.bid,
        ask=row.ask,
        price=row.price,
        mid=row.mid,
        components=from_dict(QuoteComponents, row.components),
        created_ms=row.created_ms,
        ttl_ms=row.ttl_ms,
        state=QuoteState(row.state),
        counter_price=row.counter_price,
        updated_ms=row.updated_ms,
        reason=row.reason,
    )


def _order_key(order: ChildOrder) -> str:
    """A child order's row key: its client order id (known before the venue answers), else the venue's id."""
    key = order.client_order_id or order.order_id
    if not key:
        raise StoreError(f"child order of {order.parent_id} has neither a client order id nor an order id")
    return key


#: everything of a child order its row stores, but the key and the position (written once, at insert)
_order_values: Callable[[ChildOrder], tuple[Any, ...]] = attrgetter(
    "order_id", "parent_id", "venue", "symbol", "side", "size", "limit_price", "ts_ms", "status", "clip", "filled",
    "notional", "fees", "venue_filled",
)  # fmt: skip


def _order(row: ChildOrderRow) -> ChildOrder:
    return ChildOrder(
        order_id=row.order_id,
        parent_id=row.parent_id,
        venue=row.venue,
        symbol=row.symbol,
        side=Side(row.side),
        size=row.size,
        limit_price=row.limit_price,
        ts_ms=row.ts_ms,
        status=OrderStatus(row.status),
        clip=row.clip,
        client_order_id=row.client_order_id,
        filled=row.filled,
        notional=row.notional,
        fees=row.fees,
        venue_filled=row.venue_filled,
    )


def _fill(row: FillRow) -> Fill:
    return Fill(
        trade_id=row.trade_id,
        order_id=row.order_id,
        venue=row.venue,
        side=Side(row.side),
        size=row.size,
        price=row.price,
        fee=row.fee,
        fee_asset=row.fee_asset,
        ts_ms=row.ts_ms,
        symbol=row.symbol,
    )


def _fills_query(parent_id: str | None) -> Any:
    query = select(FillRow).order_by(FillRow.id)
    if parent_id is not None:
        query = query.where(FillRow.parent_id == parent_id)
    return query


__all__ = [
    "DeskStore",
    "FillConflictError",
    "HedgePlan",
    "HedgeStatus",
    "NonceTakenError",
    "PriceLock",
    "SignedOfferRecord",
    "StoreError",
]
