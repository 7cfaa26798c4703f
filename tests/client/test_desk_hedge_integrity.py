"""Hedges never share or lose fills: every simulated venue account issues its own trade ids (as a real exchange
does across sessions), the store keys fills as venues guarantee uniqueness (venue, symbol, trade id) and refuses
a different fill under a stored key, and hedge bookings are keyed by their hedge. On SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from nexotc_client.cli import run
from nexotc_client.desk.db import Database
from nexotc_client.desk.engine import fixture_books, reconcile_quote
from nexotc_client.desk.exchange import JournaledVenue, open_sim_venues
from nexotc_client.desk.models import Booking, BookingKind, Fill, Side
from nexotc_client.desk.sim import SimClock
from nexotc_client.desk.store import DeskStore


def fill(trade: str, order: str = "O1", symbol: str = "BTC/USDT", size: str = "1.5", price: str = "65001.25") -> Fill:
    return Fill(trade, order, "binance", Side.BUY, Decimal(size), Decimal(price), Decimal("0.9"), "USDT", 10, symbol)


def test_two_hedges_in_one_database_are_both_fully_booked_and_reconcile_clean(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"

    def nx(*argv: str) -> int:
        return run([*argv, "--home", str(home), "--db", db_url])

    for rfq_id, side in (("R1", "buy"), ("R2", "sell")):
        assert nx("rfq", "new", "--client", "acme", "--side", side, "--size", "20", "--id", rfq_id) == 0
        assert nx("quote", "new", rfq_id, "--ttl", "5m") == 0
        assert nx("quote", "accept", f"{rfq_id}-q1") == 0
    for q in ("R1-q1", "R2-q1"):  # the same seed: the same simulated markets, the same trade sequence
        assert nx("hedge", "start", q, "--clips", "4", "--interval", "10ms", "--seed", "7", "--json") in (0, 3)
    capsys.readouterr()

    store = DeskStore(Database.open(db_url))
    try:
        for q in ("R1-q1", "R2-q1"):
            parent = f"H-{q}"
            journals = sorted((home / "exchange" / parent).glob("*.jsonl"))
            executed = [f for p in journals for f in JournaledVenue(p.stem, [], p).executed("BTC/USDT")]
            stored = store.fills(parent)
            state = store.load_hedge(parent)
            # every trade the venues executed for this hedge is stored under this hedge, once
            assert executed and {(f.venue, f.trade_id) for f in stored} == {(f.venue, f.trade_id) for f in executed}
            assert state.filled == sum(f.size for f in executed) == sum(f.size for f in stored)
            bookings = store.bookings(quote_id=q, kind=BookingKind.HEDGE)
            assert len(bookings) == len(stored)
            assert {b.ref for b in bookings} == {f"{f.venue}:{f.trade_id}" for f in stored}
            report = reconcile_quote(store, q, tmp_path / "reports").report
            assert report.breaks == [] and report.matched == report.compared == len(stored)
        # the two hedges' venues never issued the same trade id
        assert not {f.trade_id for f in store.fills("H-R1-q1")} & {f.trade_id for f in store.fills("H-R2-q1")}
    finally:
        store.db.close()


def test_a_different_fill_under_a_stored_key_raises_and_stores_nothing(db_url: str) -> None:
    from nexotc_client.desk.store import FillConflictError

    db = Database.open(db_url)
    store = DeskStore(db)
    try:
        assert store.add_fills([fill("t1"), fill("t1"), fill("t2")], parent_id="H1") == 2
        assert store.add_fills([fill("t1")], parent_id="H1") == 0  # the same execution reported again: stored once
        for other in (fill("t1", order="O2"), fill("t1", size="2"), fill("t1", price="65000")):
            with pytest.raises(FillConflictError, match="binance BTC/USDT trade t1 is stored already"):
                store.add_fills([fill("t9"), other], parent_id="H1")
        with pytest.raises(FillConflictError, match="parent_id"):
            store.add_fills([fill("t2")], parent_id="H-other")
        with pytest.raises(FillConflictError, match="order_id"):  # a conflict within one batch too
            store.add_fills([fill("t8"), fill("t8", order="O3")])
        # each failed save was rolled back whole: t9 and t8 are not there
        assert sorted(f.trade_id for f in store.fills()) == ["t1", "t2"]
        # a venue numbers each symbol's trades: the same trade id on another symbol is another fill
        assert store.add_fills([fill("t1", symbol="ETH/USDT", price="3000")]) == 1
        assert len(store.fills()) == 3
    finally:
        db.close()


def test_each_simulated_venue_account_issues_its_own_trade_ids(tmp_path: Path) -> None:
    books = fixture_books("BTC/USDT")
    clock = SimClock(1_000)
    trades: list[set[str]] = []
    for run_dir in ("a", "b"):
        venues = open_sim_venues(books, tmp_path / run_dir, clock=clock, seed=7)
        ack = venues["binance"].create_order("BTC/USDT", Side.BUY, Decimal("3"), None, "c1")
        assert ack.fills
        trades.append({f.trade_id for f in ack.fills} | {ack.order_id})
        for v in venues.values():
            v.close()
    assert trades[0] and trades[1] and not trades[0] & trades[1]
    # a restarted process replays the journal into the same account: the same ids
    replayed = JournaledVenue("binance", [], tmp_path / "b" / "binance.jsonl", clock=clock)
    assert {f.trade_id for f in replayed.executed("BTC/USDT")} | {replayed.sim._orders["c1"].order_id} == trades[1]


def test_upgrade_to_0003_rekeys_hedge_bookings_and_keys_fills_by_symbol(db_url: str) -> None:
    db = Database.open(db_url, migrate=False)
    db.upgrade("0002")
    store = DeskStore(db)
    with db.engine.begin() as c:
        for parent, quote in (("HA", "QA"), ("HB", "QB")):
            c.execute(
                text(
                    "INSERT INTO hedges (parent_id, quote_id, symbol, side, target, filled, status, state, updated_ms)"
                    " VALUES (:p, :q, 'BTC/USDT', 'buy', '1', '1', 'done', '{}', 0)"
                ),
                {"p": parent, "q": quote},
            )
        c.execute(
            text(
                "INSERT INTO fills (trade_id, order_id, parent_id, venue, symbol, side, size, price, fee, fee_asset,"
                " ts_ms) VALUES ('binance-t1', 'o1', 'HA', 'binance', 'BTC/USDT', 'buy', '1', '65000', '0', 'USDT', 5)"
            )
        )
    store.save_booking(
        Booking(
            "HB-binance-binance-t1",
            BookingKind.HEDGE,
            "binance:binance-t1",
            "BTC/USDT",
            Side.BUY,
            Decimal(1),
            Decimal(65000),
            Decimal(0),
            5,
        ),
        quote_id="QA",
    )
    db.upgrade("0003")
    assert db.revision() == "0003"
    [booking] = store.bookings(quote_id="QA")
    assert booking.booking_id == "HB-HA-binance-binance-t1" and booking.ref == "binance:binance-t1"
    assert store.add_fills([fill("binance-t1", symbol="ETH/USDT", order="o9")], parent_id="HB") == 1
    db.close()
