"""Wiring of the desk engine for the CLI and the demo: venue books (offline fixtures through ccxt's parsers, or
live ccxt), the quote engine, journaled simulated venues for hedging, and hedges persisted after every change.

    books = fixture_books("BTC/USDT")                       # 4 venues, raw exchange responses parsed by ccxt
    engine = quote_engine(books)                            # QuoteEngine over those books
    state = run_hedge(store, plan, journal_dir, books)      # TWAP on journaled sim venues, saved at every change
    state = resume_hedge(store, parent_id, journal_dir)     # after a kill: from the database and the journals
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

from nexotc_client.desk.exchange import open_sim_venues, wall_ms
from nexotc_client.desk.hedge import HedgeExecutor
from nexotc_client.desk.models import (
    Book,
    Booking,
    BookingKind,
    HedgePlan,
    HedgeState,
    HedgeStatus,
    Quote,
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
from nexotc_client.desk.venues import CCXT_VENUES, CcxtVenue, FixtureResponder, RawTransport
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


def live_books(symbol: str, venues: Sequence[str] = CCXT_VENUES) -> list[Book]:
    """Each venue's current book through ccxt over the network (not used by tests)."""
    return [CcxtVenue(name).fetch_order_book(symbol) for name in venues]


def quote_engine(
    books: Sequence[Book], config: QuoteConfig | None = None, clock: Callable[[], int] = wall_ms
) -> QuoteEngine:
    by_symbol: dict[str, list[Book]] = {}
    for book in books:
        by_symbol.setdefault(book.symbol, []).append(book)

    def current(symbol: str) -> list[Book]:
        now = clock()
        return [replace(b, ts_ms=now) for b in by_symbol.get(symbol, [])]

    return QuoteEngine(books=current, clock=clock, config=config or QuoteConfig())


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
) -> HedgeState:
    """Start and run a hedge on journaled simulated venues seeded with `books`; every change is saved."""
    venues = open_sim_venues(books, journal_dir, clock=clock, seed=seed, params=params)
    executor = _executor(store, venues, quote_id, clock, sleep, console)
    state = executor.start(plan)
    state = executor.run(state, poll_ms=poll_ms, max_wait_ms=max_wait_ms)
    book_hedge_fills(store, state, quote_id)
    return state


def resume_hedge(
    store: DeskStore,
    parent_id: str,
    journal_dir: Path,
    clock: Callable[[], int] = wall_ms,
    sleep: Callable[[int], None] = _sleep_ms,
    console: Console | None = None,
    poll_ms: int = 50,
    max_wait_ms: int = 10_000,
) -> HedgeState:
    """Continue a hedge from the database after a crash: the venues are rebuilt from their journals, orders
    persisted as NEW are adopted (the venue knows them) or sent, fills are counted once."""
    state = store.load_hedge(parent_id)
    quote_id = store.hedge_quote_id(parent_id)
    if not journal_dir.exists():
        raise FileNotFoundError(f"no venue journal for hedge {parent_id} in {journal_dir}")
    venues = {p.stem: v for p, v in ((p, _reopen(p, clock)) for p in sorted(journal_dir.glob("*.jsonl")))}
    executor = _executor(store, venues, quote_id, clock, sleep, console)
    executor.resume(state)
    if state.status is HedgeStatus.RUNNING:
        state = executor.run(state, poll_ms=poll_ms, max_wait_ms=max_wait_ms)
    book_hedge_fills(store, state, quote_id)
    return state


def _reopen(path: Path, clock: Callable[[], int]):
    from nexotc_client.desk.exchange import JournaledVenue

    return JournaledVenue(path.stem, [], path, clock=clock)


def book_hedge_fills(store: DeskStore, state: HedgeState, quote_id: str | None) -> int:
    """The desk's internal booking of each hedge fill (ref ``venue:trade_id``), idempotent."""
    for fill in state.fills:
        store.save_booking(
            Booking(
                booking_id=f"HB-{fill.venue}-{fill.trade_id}",
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
    files: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        t = self.tca
        return {
            "quote_id": self.quote_id,
            "compared": self.report.compared,
            "matched": self.report.matched,
            "breaks": self.report.by_kind(),
            "break_list": [to_dict(b) for b in self.report.breaks[:100]],
            "tca": None
            if t is None
            else {
                "filled": str(t.filled),
                "avg_price": str(t.avg_price.quantize(Decimal("0.00000001"))),
                "decision_mid": str(t.decision_mid),
                "arrival_mid": str(t.arrival_mid),
                "arrival_slippage_bps": str(t.arrival_slippage_bps.quantize(Decimal("0.0001"))),
                "interval_vwap_slippage_bps": str(t.interval_vwap_slippage_bps.quantize(Decimal("0.0001"))),
                "shortfall_bps": {k: str(v.quantize(Decimal("0.0001"))) for k, v in t.components_bps().items()},
                "shortfall_total_bps": str(t.is_total_bps.quantize(Decimal("0.0001"))),
                "markouts_bps": {str(h): str(v.quantize(Decimal("0.0001"))) for h, v in t.markouts_bps},
            },
            "files": self.files,
        }


def reconcile_quote(store: DeskStore, quote_id: str, out_dir: Path) -> ReconResult:
    """Reconciliation of one client trade: the desk's bookings against the hedge's venue fills and the deal's
    on-chain settlement records, plus the hedge's TCA (decision mid: the quote's mid); writes breaks.csv,
    tca.csv and the trade's PNG (fills vs schedule vs mid) into `out_dir`."""
    quote = store.get_quote(quote_id)
    hedges = [h["parent_id"] for h in store.hedges() if h["quote_id"] == quote_id]
    fills = [f for h in hedges for f in store.fills(h)]
    lock = store.lock_of(quote_id)
    settlements = store.settlement_records(lock.deal) if lock is not None else []
    report = reconcile(store.bookings(quote_id=quote_id), fills, settlements)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"breaks_csv": str(write_breaks_csv(report, out_dir / f"{quote_id}-breaks.csv"))}
    analysis = None
    if hedges:
        state = store.load_hedge(hedges[0])
        analysis = tca(state, decision_mid=quote.mid)
        files["tca_csv"] = str(write_tca_csv([analysis], out_dir / f"{quote_id}-tca.csv"))
        files["png"] = str(plot_trade(state, out_dir / f"{quote_id}.png"))
    return ReconResult(quote_id, report, analysis, files)


__all__ = [
    "ReconResult",
    "book_hedge_fills",
    "book_settlement",
    "reconcile_quote",
    "fixture_books",
    "fixtures_root",
    "hedge_plan",
    "live_books",
    "quote_engine",
    "resume_hedge",
    "run_hedge",
]
