"""Wiring of the desk engine for the CLI and the demo: venue books (offline fixtures through ccxt's parsers, or
live ccxt), the quote engine, journaled simulated venues or live exchanges for hedging, and hedges persisted after
every change.

    books = fixture_books("BTC/USDT")                       # 4 venues, raw exchange responses parsed by ccxt
    engine = quote_engine(books)                            # QuoteEngine over those books
    state = run_hedge(store, plan, journal_dir, books)      # TWAP on journaled sim venues, saved at every change
    state = resume_hedge(store, parent_id, journal_dir)     # after a kill: from the database and the journals

    live = LiveVenues(("binance", "okx"), sandbox=True)     # live exchanges through ccxt (recorded: no secret)
    venues = live.open(os.environ)                          # CcxtVenues, credentials from the environment
    state = run_hedge(store, plan, journal_dir, venue_books(venues, "BTC/USDT"), venues=venues, live=live)

A venue error during a hedge (the network, the exchange) saves the hedge as it stands, still running, and raises
:class:`HedgeInterruptedError`: `resume` continues it, adopting by client order id what the exchange took.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

from nexotc_client.chain.errors import NexotcError
from nexotc_client.desk.db import hedge_booking_id
from nexotc_client.desk.exchange import LiveVenues, open_hedge_venues, open_sim_venues, wall_ms
from nexotc_client.desk.hedge import HedgeExecutor
from nexotc_client.desk.models import (
    RFQ,
    Book,
    Booking,
    BookingKind,
    HedgePlan,
    HedgeState,
    HedgeStatus,
    Quote,
    QuoteState,
    Side,
    to_dict,
)
from nexotc_client.desk.money import CTX
from nexotc_client.desk.quote import QuoteConfig, QuoteEngine
from nexotc_client.desk.sim import SimParams
from nexotc_client.desk.store import DeskStore
from nexotc_client.desk.tca import (
    ReconReport,
    TCAReport,
    plot_trade,
    reconcile,
    tca,
    write_breaks_csv,
    write_tca_csv,
)
from nexotc_client.desk.venues import (
    CCXT_VENUES,
    CcxtVenue,
    ExecutionVenue,
    FixtureResponder,
    RawTransport,
    Venue,
    VenueError,
)
from nexotc_client.terms import LegId, Terms

ENV_FIXTURES = "NEXOTC_VENUE_FIXTURES"


def fixtures_root() -> Path:
    """$NEXOTC_VENUE_FIXTURES, else the repository's tests/fixtures/venues."""
    env = os.environ.get(ENV_FIXTURES, "").strip()
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "venues"


def fixture_books(symbol: str, root: Path | None = None, venues: Sequence[str] = CCXT_VENUES) -> list[Book]:
    """Each venue's book for `symbol` from its recorded raw responses, through ccxt's own parser (offline)."""
    base = root or fixtures_root()
    now = wall_ms()
    books = []
    for name in venues:
        venue = CcxtVenue(name, transport=RawTransport(FixtureResponder(base, name)), clock=lambda: now)
        books.append(replace(venue.fetch_order_book(symbol), ts_ms=now))
    return books


SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$")


def known_pairs(root: Path | None = None) -> list[str]:
    """The pairs the desk can quote: those with a recorded book at every venue of the fixtures."""
    base = root or fixtures_root()
    per_venue = [
        {p.stem.replace("-", "/") for p in (base / name).glob("*-*.json")}
        for name in CCXT_VENUES
        if (base / name).is_dir()
    ]
    return sorted(set.intersection(*per_venue)) if per_venue else []


def check_pair(text: str, what: str = "symbol", root: Path | None = None) -> str:
    """`text` as a pair the desk quotes (BASE/QUOTE, upper case), or a DeskInputError naming the known pairs."""
    pair = text.strip().upper()
    pairs = known_pairs(root)
    if not SYMBOL_RE.match(pair):
        raise DeskInputError(f"{what}: {text!r} is not a pair like BTC/USDT (known: {', '.join(pairs) or 'none'})")
    if pair not in pairs:
        raise DeskInputError(f"{what}: the desk has no market data for {pair} (known: {', '.join(pairs) or 'none'})")
    return pair


class DeskInputError(NexotcError):
    """A desk command's input is refused (unknown pair, duplicate id, a second acceptance...)."""


RFQ_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,17}$")


def check_rfq(rfq: RFQ) -> RFQ:
    """Refuse an RFQ the desk could not lock: a malformed id (its quotes' ids must fit the offer salt), an empty
    client, a size that is not positive or has more decimals than the base asset."""
    from nexotc_client.desk.db import canonical
    from nexotc_client.desk.money import MAX_DECIMALS, MAX_INTEGER_DIGITS, asset_decimals, decimal_places, in_range

    if not RFQ_ID_RE.match(rfq.rfq_id):
        raise DeskInputError(f"RFQ id {rfq.rfq_id!r}: 1 to 18 letters, digits, '.', '_' or '-'")
    if not rfq.client.strip():
        raise DeskInputError("client: empty")
    if not rfq.size.is_finite() or rfq.size <= 0:
        raise DeskInputError("size: must be positive")
    if not in_range(rfq.size):
        raise DeskInputError(
            f"size: out of range (at most {MAX_INTEGER_DIGITS} digits before the decimal point and {MAX_DECIMALS} "
            "after)"
        )
    dp = asset_decimals(rfq.symbol.split("/")[0])
    if decimal_places(rfq.size) > dp:
        raise DeskInputError(f"size {canonical(rfq.size)}: {rfq.symbol.split('/')[0]} has at most {dp} decimals")
    return rfq


def insert_rfq(store: DeskStore, rfq: RFQ) -> RFQ:
    """Record a new RFQ; an existing id is refused (never overwritten), atomically."""
    if not store.insert_rfq(rfq):
        raise DeskInputError(f"RFQ {rfq.rfq_id} exists")
    return rfq


def _quote_number(quote_id: str, rfq_id: str) -> int:
    tail = quote_id[len(rfq_id) + 2 :] if quote_id.startswith(f"{rfq_id}-q") else ""
    return int(tail) if tail.isdigit() else 0


def insert_quote(store: DeskStore, quote: Quote, attempts: int = 50) -> Quote:
    """Record a new quote of its RFQ under the next free id ``<rfq>-q<n>``, allocated atomically: the row is
    inserted (never merged), and an id taken meanwhile by a concurrent process moves on to the next one."""
    for _ in range(attempts):
        taken = [_quote_number(q.quote_id, quote.rfq_id) for q in store.quotes(rfq_id=quote.rfq_id)]
        quote.quote_id = f"{quote.rfq_id}-q{max(taken, default=0) + 1}"
        if store.insert_quote(quote):
            return quote
    raise DeskInputError(f"could not allocate a quote id for RFQ {quote.rfq_id} (too many concurrent quotes)")


def filled_by(store: DeskStore, rfq_id: str, other_than: str | None = None) -> Quote | None:
    """The RFQ's accepted (or locked) quote, if any (ignoring `other_than`)."""
    for q in store.quotes(rfq_id=rfq_id):
        if q.quote_id != other_than and (q.state is QuoteState.ACCEPTED or store.lock_of(q.quote_id) is not None):
            return q
    return None


def inventory(store: DeskStore) -> dict[str, Decimal]:
    """The desk's position per base asset (signed base units): every accepted client trade (a client BUY
    leaves the desk short its size, a SELL long) plus every hedge fill (the desk's own side on the venue)."""
    out: dict[str, Decimal] = {}

    def add(symbol: str, amount: Decimal) -> None:
        base = symbol.split("/")[0]
        out[base] = out.get(base, Decimal(0)) + amount

    for q in store.quotes(state=QuoteState.ACCEPTED):
        add(q.symbol, -q.size if q.side is Side.BUY else q.size)
    for h in store.hedges():
        for f in store.fills(h["parent_id"]):
            add(f.symbol or h["symbol"], f.size if f.side is Side.BUY else -f.size)
    return out


def live_books(
    symbol: str, venues: Sequence[str] = CCXT_VENUES, sandbox: bool = False, proxy_url: str | None = None
) -> list[Book]:
    """Each venue's current public book through ccxt over the network (no credentials), in sandbox mode and
    through a proxy URL when given."""
    return [CcxtVenue(name, sandbox=sandbox, proxy_url=proxy_url).fetch_order_book(symbol) for name in venues]


def venue_books(venues: Mapping[str, Venue], symbol: str) -> list[Book]:
    """Each venue's current book of ``symbol`` (for live venues: through ccxt, from the exchange)."""
    return [venue.fetch_order_book(symbol) for _, venue in sorted(venues.items())]


class HedgeInterruptedError(VenueError):
    """A venue error stopped a hedge; it is saved as it stands (running) and `resume` continues it."""

    def __init__(self, parent_id: str, cause: Exception) -> None:
        self.parent_id = parent_id
        super().__init__(
            f"hedge {parent_id} interrupted: {cause} (saved; the exchange keeps what it executed: "
            f"`nexotc hedge resume {parent_id}` continues it, `nexotc hedge cancel {parent_id}` stops it)"
        )


def quote_engine(
    books: Sequence[Book],
    config: QuoteConfig | None = None,
    clock: Callable[[], int] = wall_ms,
    inventory: dict[str, Decimal] | None = None,
) -> QuoteEngine:
    by_symbol: dict[str, list[Book]] = {}
    for book in books:
        by_symbol.setdefault(book.symbol, []).append(book)

    def current(symbol: str) -> list[Book]:
        now = clock()
        return [replace(b, ts_ms=now) for b in by_symbol.get(symbol, [])]

    return QuoteEngine(books=current, clock=clock, config=config or QuoteConfig(), inventory=dict(inventory or {}))


def hedge_plan(
    quote: Quote,
    clips: int,
    interval_ms: int,
    start_ms: int,
    parent_id: str | None = None,
    participation_cap: Decimal | None = None,
    venue_caps: dict[str, Decimal] | None = None,
    limit_bps: Decimal | None = None,
) -> HedgePlan:
    """The hedge of a client trade: the desk takes the client's side on the venues (a client BUY: the desk
    sold, it buys back) for the quote's size."""
    return HedgePlan(
        parent_id=parent_id or f"H-{quote.quote_id}",
        symbol=quote.symbol,
        side=quote.side,
        target_size=quote.size,
        clips=clips,
        interval_ms=interval_ms,
        start_ms=start_ms,
        participation_cap=participation_cap,
        venue_caps=dict(venue_caps or {}),
        limit_bps=limit_bps,
    )


def _executor(
    store: DeskStore,
    venues: dict,
    quote_id: str | None,
    clock: Callable[[], int],
    sleep: Callable[[int], None],
    console: Console | None,
) -> HedgeExecutor:
    return HedgeExecutor(
        venues,
        clock=clock,
        sleep=sleep,
        console=console,
        on_change=lambda state: store.save_hedge(state, quote_id),
    )


def _sleep_ms(ms: int) -> None:
    time.sleep(ms / 1000)


def run_hedge(
    store: DeskStore,
    plan: HedgePlan,
    journal_dir: Path,
    books: Sequence[Book],
    quote_id: str | None = None,
    seed: int = 0,
    params: SimParams | None = None,
    clock: Callable[[], int] = wall_ms,
    sleep: Callable[[int], None] = _sleep_ms,
    console: Console | None = None,
    poll_ms: int = 50,
    max_wait_ms: int = 10_000,
    on_started: Callable[[HedgeState], None] | None = None,
    venues: Mapping[str, ExecutionVenue] | None = None,
    live: LiveVenues | None = None,
) -> HedgeState:
    """Start and run a hedge on journaled simulated venues seeded with `books`, or on the given live `venues`
    (``live``, their record, is written to `journal_dir` first, so that resume and cancel reopen them); every
    change is saved. ``on_started(state)`` is called once the hedge is saved, before its first clip."""
    if venues is None:
        venues = open_sim_venues(books, journal_dir, clock=clock, seed=seed, params=params)
    if live is not None:
        live.save(journal_dir)
    executor = _executor(store, venues, quote_id, clock, sleep, console)
    state = executor.start(plan)
    if on_started is not None:
        on_started(state)
    state = _run(store, executor, state, quote_id, poll_ms, max_wait_ms)
    book_hedge_fills(store, state, quote_id)
    return state


def _run(
    store: DeskStore, executor: HedgeExecutor, state: HedgeState, quote_id: str | None, poll_ms: int, max_wait_ms: int
) -> HedgeState:
    """Run the hedge; a venue error saves it as it stands (what was learnt before the error included: an order the
    venue acknowledged, the fills that arrived) and raises :class:`HedgeInterruptedError`."""
    try:
        return executor.run(state, poll_ms=poll_ms, max_wait_ms=max_wait_ms)
    except VenueError as exc:
        store.save_hedge(state, quote_id)
        book_hedge_fills(store, state, quote_id)
        raise HedgeInterruptedError(state.plan.parent_id, exc) from exc


def resume_hedge(
    store: DeskStore,
    parent_id: str,
    journal_dir: Path,
    clock: Callable[[], int] = wall_ms,
    sleep: Callable[[int], None] = _sleep_ms,
    console: Console | None = None,
    poll_ms: int = 50,
    max_wait_ms: int = 10_000,
    environ: Mapping[str, str] | None = None,
) -> HedgeState:
    """Continue a hedge from the database after a crash: the venues are rebuilt from their journals (a live
    hedge's from its venues record, credentials from ``environ``), orders persisted as NEW are adopted (the venue
    knows them) or sent, fills are counted once."""
    state = store.load_hedge(parent_id)
    quote_id = store.hedge_quote_id(parent_id)
    if not journal_dir.exists():
        raise FileNotFoundError(f"no venue journal for hedge {parent_id} in {journal_dir}")
    venues = open_hedge_venues(journal_dir, environ, clock)
    executor = _executor(store, venues, quote_id, clock, sleep, console)
    try:
        executor.resume(state)
    except VenueError as exc:
        store.save_hedge(state, quote_id)
        raise HedgeInterruptedError(parent_id, exc) from exc
    if state.status is HedgeStatus.RUNNING:
        state = _run(store, executor, state, quote_id, poll_ms, max_wait_ms)
    book_hedge_fills(store, state, quote_id)
    return state


def cancel_hedge(
    store: DeskStore,
    parent_id: str,
    journal_dir: Path,
    clock: Callable[[], int] = wall_ms,
    environ: Mapping[str, str] | None = None,
) -> HedgeState:
    """Cancel a hedge (idempotent): its open orders are cancelled through the venues' API (a live hedge's on its
    exchanges, credentials from ``environ``), orders never sent stay unsent, the fills that arrived are stored and
    booked, and it is marked CANCELLED. A venue error leaves it as it was (cancel again)."""
    state = store.load_hedge(parent_id)
    if state.status is HedgeStatus.CANCELLED:
        return state
    quote_id = store.hedge_quote_id(parent_id)
    venues = open_hedge_venues(journal_dir, environ, clock) if journal_dir.exists() else {}
    missing = sorted({o.venue for o in state.orders} - set(venues))
    if missing:
        raise FileNotFoundError(f"no venue journal for {', '.join(missing)} of hedge {parent_id} in {journal_dir}")
    executor = _executor(store, venues, quote_id, clock, _sleep_ms, None)
    executor.cancel(state)
    book_hedge_fills(store, state, quote_id)
    return state


def book_hedge_fills(store: DeskStore, state: HedgeState, quote_id: str | None) -> int:
    """The desk's internal booking of each hedge fill (ref ``venue:trade_id``), idempotent; keyed by the hedge
    (:func:`~nexotc_client.desk.db.hedge_booking_id`) so another hedge's fills never overwrite these."""
    for fill in state.fills:
        store.save_booking(
            Booking(
                booking_id=hedge_booking_id(state.plan.parent_id, fill.venue, fill.trade_id),
                kind=BookingKind.HEDGE,
                ref=f"{fill.venue}:{fill.trade_id}",
                symbol=fill.symbol or state.plan.symbol,
                side=fill.side,
                size=fill.size,
                price=fill.price,
                fee=fill.fee,
                ts_ms=fill.ts_ms,
            ),
            quote_id=quote_id,
        )
    return len(state.fills)


def book_settlement(
    store: DeskStore,
    quote: Quote,
    terms: Terms,
    tranche: int,
    tx_hash: str,
    ts_ms: int,
    base_decimals: int,
    quote_decimals: int,
) -> Booking:
    """The desk's booking of one settled tranche of a locked quote (ref ``<quote id>/<tranche>``): the tranche's
    base amount at the locked price, the commissions the terms take from it, the release transaction."""
    t = terms.tranches[tranche]
    fee_units = sum(terms.commissions(t.quote_amount if terms.fee_leg == LegId.QUOTE else t.base_amount).values())
    fee_dp = quote_decimals if terms.fee_leg == LegId.QUOTE else base_decimals
    base = Decimal(t.base_amount).scaleb(-base_decimals)
    booking = Booking(
        booking_id=f"SB-{quote.quote_id}-{tranche}",
        kind=BookingKind.SETTLEMENT,
        ref=f"{quote.quote_id}/{tranche}",
        symbol=quote.symbol,
        side=quote.side,
        size=base,
        price=CTX.divide(Decimal(t.quote_amount).scaleb(-quote_decimals), base),
        fee=Decimal(fee_units).scaleb(-fee_dp),
        ts_ms=ts_ms,
        tx_hash=tx_hash,
    )
    store.save_booking(booking, quote_id=quote.quote_id)
    return booking


@dataclass(frozen=True)
class ReconResult:
    quote_id: str
    report: ReconReport
    tca: TCAReport | None
    """The first hedge's TCA (the quote's execution; None when it was not hedged)."""
    files: dict[str, str]
    hedged: bool = True
    locked: bool = True
    hedge_tcas: tuple[TCAReport, ...] = ()
    """Every hedge's TCA, in the order they were started (a --residual hedge after the first)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "quote_id": self.quote_id,
            "compared": self.report.compared,
            "matched": self.report.matched,
            "breaks": self.report.by_kind(),
            "break_list": [to_dict(b) for b in self.report.breaks[:100]],
            "tca": None if self.tca is None else _tca_dict(self.tca),
            "hedges": [{"hedge": t.parent_id, **_tca_dict(t)} for t in self.hedge_tcas],
            "files": self.files,
            "hedged": self.hedged,
            "locked": self.locked,
        }


def _tca_dict(t: TCAReport) -> dict[str, Any]:
    return {
        "filled": str(t.filled),
        "avg_price": str(t.avg_price.quantize(Decimal("0.00000001"))),
        "decision_mid": str(t.decision_mid),
        "arrival_mid": str(t.arrival_mid),
        "arrival_slippage_bps": str(t.arrival_slippage_bps.quantize(Decimal("0.0001"))),
        "interval_vwap_slippage_bps": str(t.interval_vwap_slippage_bps.quantize(Decimal("0.0001"))),
        "shortfall_bps": {k: str(v.quantize(Decimal("0.0001"))) for k, v in t.components_bps().items()},
        "shortfall_total_bps": str(t.is_total_bps.quantize(Decimal("0.0001"))),
        "markouts_bps": {str(h): str(v.quantize(Decimal("0.0001"))) for h, v in t.markouts_bps},
    }


def reconcile_quote(store: DeskStore, quote_id: str, out_dir: Path) -> ReconResult:
    """Reconciliation of one client trade: the desk's bookings against the hedge's venue fills and the deal's
    on-chain settlement records, plus the hedge's TCA (decision mid: the quote's mid); writes breaks.csv,
    tca.csv and the trade's PNG (fills vs schedule vs mid) into `out_dir`."""
    quote = store.get_quote(quote_id)
    if quote.state is not QuoteState.ACCEPTED:
        raise DeskInputError(f"quote {quote_id} is {quote.state.value}: only an accepted quote is reconciled")
    hedges = [h["parent_id"] for h in store.hedges() if h["quote_id"] == quote_id]
    fills = [f for h in hedges for f in store.fills(h)]
    lock = store.lock_of(quote_id)
    settlements = store.settlement_records(lock.deal) if lock is not None else []
    report = reconcile(store.bookings(quote_id=quote_id), fills, settlements)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"breaks_csv": str(write_breaks_csv(report, out_dir / f"{quote_id}-breaks.csv"))}
    analyses: list[TCAReport] = []
    states = sorted((store.load_hedge(h) for h in hedges), key=lambda st: (st.plan.start_ms, st.plan.parent_id))
    for i, state in enumerate(states):
        hedge_id = state.plan.parent_id
        if state.arrival_mid is None or not state.mids:
            continue  # never reached a venue (cancelled before its first clip): nothing to analyse
        analyses.append(tca(state, decision_mid=quote.mid))
        # the first hedge's chart keeps the quote's name; a residual hedge's carries its own id
        name = f"{quote_id}.png" if i == 0 else f"{quote_id}-{hedge_id}.png"
        files["png" if i == 0 else f"png_{hedge_id}"] = str(plot_trade(state, out_dir / name))
    if analyses:
        files["tca_csv"] = str(write_tca_csv(analyses, out_dir / f"{quote_id}-tca.csv"))
    first = analyses[0] if analyses else None
    return ReconResult(
        quote_id, report, first, files, hedged=bool(hedges), locked=lock is not None, hedge_tcas=tuple(analyses)
    )


__all__ = [
    "DeskInputError",
    "HedgeInterruptedError",
    "ReconResult",
    "check_pair",
    "check_rfq",
    "filled_by",
    "insert_quote",
    "insert_rfq",
    "inventory",
    "known_pairs",
    "book_hedge_fills",
    "book_settlement",
    "cancel_hedge",
    "reconcile_quote",
    "fixture_books",
    "fixtures_root",
    "hedge_plan",
    "live_books",
    "quote_engine",
    "resume_hedge",
    "run_hedge",
    "venue_books",
]
