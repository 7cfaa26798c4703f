"""The desk database and store on both back ends: a SQLite file and a real PostgreSQL server (started once per
session by tests/pgserver.py). Migrations build exactly the models' schema; money round-trips exactly; every
repository stores and returns the engine's dataclasses; fills and settlement events are stored once however
often they are reported."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from nexotc_client.desk.db import Base, Database, DatabaseError, SettlementRow, TrackedDealRow, canonical
from nexotc_client.desk.migrations import downgrade, head_revision
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
    Side,
)
from nexotc_client.desk.store import DeskStore, NonceTakenError, PriceLock, SignedOfferRecord, StoreError

TABLES = {
    "rfqs",
    "quotes",
    "hedges",
    "child_orders",
    "fills",
    "bookings",
    "tracked_deals",
    "settlement_records",
    "settlement_marks",
    "book_offers",
    "preferences",
    "matches",
    "signed_offers",
}


@pytest.fixture
def store(db_url: str) -> DeskStore:
    db = Database.open(db_url)
    yield DeskStore(db)
    db.close()


def rfq(rfq_id: str = "R1") -> RFQ:
    return RFQ(rfq_id, "client-a", "BTC/USDT", Side.BUY, Decimal("200"), 1_700_000_000_000)


def quote(quote_id: str = "Q1", rfq_id: str = "R1") -> Quote:
    return Quote(
        quote_id=quote_id,
        rfq_id=rfq_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        size=Decimal("200"),
        bid=Decimal("64850.12345678"),
        ask=Decimal("65150.87654321"),
        price=Decimal("65150.87654321"),
        mid=Decimal("65000.5"),
        components=QuoteComponents(Decimal("65010.1"), Decimal("12.5"), Decimal("3"), Decimal("-1.25")),
        created_ms=1_700_000_000_100,
        ttl_ms=15_000,
    )


FACTORY, MAKER, OTHER = "0x" + "Fa" * 20, "0x" + "Ab" * 20, "0x" + "Cd" * 20


def signed_offer(offer_hash: str = "0x" + "aa" * 32, nonce: int = 7, **kw) -> SignedOfferRecord:
    base = dict(chain_id=31337, factory=FACTORY.lower(), maker=MAKER.lower(), expiry=1_700_000_600, created_ms=1)
    return SignedOfferRecord(offer_hash=offer_hash, nonce=nonce, **{**base, **kw})


def fill(trade: str, size: str = "1.5", venue: str = "binance", order: str = "O1", ts: int = 10) -> Fill:
    return Fill(trade, order, venue, Side.BUY, Decimal(size), Decimal("65001.25"), Decimal("0.975"), "USDT", ts)


# ------------------------------------------------------------------ schema
def test_open_migrates_to_head_and_matches_the_models(store: DeskStore, db_url: str) -> None:
    assert store.db.revision() == head_revision() == "0004"
    assert TABLES <= set(inspect(store.db.engine).get_table_names())
    with store.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    # opening again is a no-op (the data stays)
    store.save_rfq(rfq())
    again = Database.open(db_url)
    assert DeskStore(again).get_rfq("R1") == rfq()
    again.close()


def test_upgrade_from_the_first_revision_keeps_the_data(db_url: str) -> None:
    db = Database.open(db_url, migrate=False)
    db.upgrade("0001")
    assert db.revision() == "0001"
    store = DeskStore(db)
    store.save_rfq(rfq())
    with db.engine.begin() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("child_orders")}
        assert "venue_filled" not in columns
        connection.exec_driver_sql(
            "INSERT INTO hedges (parent_id, symbol, side, target, filled, status, state, updated_ms) "
            "VALUES ('H0', 'BTC/USDT', 'buy', '1', '0', 'running', '{}', 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO child_orders (client_order_id, order_id, parent_id, venue, symbol, side, size, ts_ms, status,"
            " clip, filled, notional, fees, seq) VALUES ('H0-c0-okx', 'o1', 'H0', 'okx', 'BTC/USDT', 'buy', '1', 0,"
            " 'filled', 0, '1', '65000', '0.1', 0)"
        )
    db.upgrade()
    assert db.revision() == "0004"
    assert store.get_rfq("R1") == rfq()
    [order] = store.orders("H0")
    assert order.order_id == "o1" and order.venue_filled == 0 and order.filled == 1
    db.close()


def test_upgrade_to_0004_adds_signed_offers_and_downgrades(db_url: str) -> None:
    db = Database.open(db_url, migrate=False)
    db.upgrade("0003")
    store = DeskStore(db)
    store.save_rfq(rfq())
    assert "signed_offers" not in inspect(db.engine).get_table_names()
    db.upgrade()
    assert db.revision() == "0004" and store.get_rfq("R1") == rfq()
    assert store.record_offer(signed_offer()) and store.signed_offers() == [signed_offer()]
    downgrade(db.engine, "0003")
    assert db.revision() == "0003" and "signed_offers" not in inspect(db.engine).get_table_names()
    assert store.get_rfq("R1") == rfq()
    db.upgrade()
    assert store.signed_offers() == [] and store.offer_nonces(31337, FACTORY, MAKER) == []
    db.close()


def test_bad_urls_are_named_errors(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="not a database URL"):
        Database.open("::nonsense::")
    with pytest.raises(DatabaseError, match="unsupported database"):
        Database.open("mysql://u@h/db")
    with pytest.raises(DatabaseError, match="cannot open the desk database"):
        Database.open("postgresql://nobody@127.0.0.1:1/none")


# ------------------------------------------------------------------ money
def test_money_round_trips_exactly(store: DeskStore) -> None:
    amounts = ["0.000000000000000001", "200.00000001", "79228162514264337593543950335", "65150.876543210000001"]
    for i, amount in enumerate(amounts):
        store.save_rfq(RFQ(f"R{i}", "c", "ETH/USDT", Side.SELL, Decimal(amount), i))
    got = {r.rfq_id: r.size for r in store.rfqs()}
    assert [got[f"R{i}"] for i in range(len(amounts))] == [Decimal(a) for a in amounts]
    assert canonical(Decimal("1.500000")) == "1.5" and canonical(Decimal("2E+2")) == "200"
    with pytest.raises(Exception, match="never a float"):
        store.save_rfq(RFQ("RF", "c", "ETH/USDT", Side.SELL, 1.1, 0))  # type: ignore[arg-type]


# ------------------------------------------------------------------ RFQ / quote / lock
def test_quotes_round_trip_change_state_and_lock_once(store: DeskStore) -> None:
    with pytest.raises(StoreError, match="save the RFQ first"):
        store.save_quote(quote())
    store.save_rfq(rfq())
    q = quote()
    store.save_quote(q)
    assert store.get_quote("Q1") == q
    q.state, q.updated_ms = QuoteState.ACCEPTED, q.created_ms + 500
    store.save_quote(q)
    assert store.get_quote("Q1").state is QuoteState.ACCEPTED
    assert [x.quote_id for x in store.quotes(state=QuoteState.ACCEPTED)] == ["Q1"]
    assert store.quotes(state=QuoteState.EXPIRED) == []

    assert store.lock_of("Q1") is None
    lock = PriceLock("Q1", "0x" + "ab" * 20, "0x" + "01" * 32, "0x" + "02" * 32, 31337)
    store.record_lock(lock)
    store.save_quote(q)  # a later state update keeps the lock
    assert store.lock_of("Q1") == lock
    assert store.quote_for_deal(lock.deal.upper().replace("0X", "0x")).quote_id == "Q1"
    with pytest.raises(StoreError, match="already locked"):
        store.record_lock(PriceLock("Q1", "0x" + "cd" * 20, "0x", "0x", 1))
    with pytest.raises(StoreError, match="no quote"):
        store.get_quote("nope")


# ------------------------------------------------------------------ hedges and fills
def test_fills_are_stored_once_whatever_the_order_or_repetition(store: DeskStore) -> None:
    batch = [fill("t1", ts=3), fill("t2", ts=1), fill("t1", ts=3), fill("t3", venue="okx", ts=2)]
    assert store.add_fills(batch) == 3
    assert store.add_fills([fill("t2", ts=1), fill("t3", venue="okx", ts=2)]) == 0
    # the same trade id on another venue is another fill
    assert store.add_fills([fill("t1", venue="kraken")]) == 1
    assert sorted(f.key for f in store.fills()) == [
        ("binance", "t1"),
        ("binance", "t2"),
        ("kraken", "t1"),
        ("okx", "t3"),
    ]
    assert sum(f.size for f in store.fills()) == Decimal("6.0")


def test_hedge_state_round_trips_with_orders_and_fills(store: DeskStore) -> None:
    plan = HedgePlan(
        "H1",
        "BTC/USDT",
        Side.BUY,
        Decimal("200"),
        clips=4,
        interval_ms=60_000,
        start_ms=1_000,
        venues=("binance", "okx"),
        participation_cap=Decimal("0.1"),
        venue_caps={"okx": Decimal("80")},
    )
    state = HedgeState(plan, status=HedgeStatus.RUNNING, next_clip=1, arrival_mid=Decimal("65000.5"))
    order = ChildOrder("O1", "H1", "binance", "BTC/USDT", Side.BUY, Decimal("50"), Decimal("65300"), 1_000, clip=0)
    order.client_order_id = "H1-0-binance"
    state.orders.append(order)
    # two orders persisted before the venues answer (no venue order id yet) are two rows, keyed by client id
    pending = [
        ChildOrder("", "H1", v, "BTC/USDT", Side.BUY, Decimal("25"), None, 2_000, clip=1, client_order_id=f"H1-c1-{v}")
        for v in ("okx", "kraken")
    ]
    state.orders += pending
    assert store.save_hedge(state, quote_id="Q1") == 0
    assert [o.client_order_id for o in store.load_hedge("H1").orders] == ["H1-0-binance", "H1-c1-okx", "H1-c1-kraken"]
    pending[0].order_id, pending[0].status = "okx-o7", OrderStatus.CANCELED
    store.save_hedge(state)
    assert [o.order_id for o in store.load_hedge("H1").orders] == ["O1", "okx-o7", ""]
    state.orders = [order]
    # a clip fills: the order and the state change, fills arrive (one twice)
    order.status, order.filled = OrderStatus.FILLED, Decimal("50")
    state.fills += [fill("t1", "20"), fill("t2", "30"), fill("t1", "20")]
    state.filled, state.next_clip, state.mids = Decimal("50"), 1, [(1_000, Decimal("65000.5"))]
    assert store.save_hedge(state) == 2
    assert store.save_hedge(state) == 0

    loaded = store.load_hedge("H1")
    assert loaded.plan == plan and loaded.filled == Decimal("50") and loaded.mids == state.mids
    assert loaded.orders[0] == order and len(loaded.orders) == 3  # rows are never dropped
    assert [f.trade_id for f in loaded.fills] == ["t1", "t2"]
    assert store.hedge_quote_id("H1") == "Q1"
    assert store.hedges()[0]["status"] == "running"
    with pytest.raises(StoreError, match="no hedge"):
        store.load_hedge("H2")


# ------------------------------------------------------------------ bookings and settlement
def test_bookings_settlement_events_and_marks(store: DeskStore) -> None:
    b = Booking(
        "B1", BookingKind.SETTLEMENT, "Q1/0", "BTC/USDT", Side.BUY, Decimal("50"), Decimal("65150.5"), Decimal("0"), 5
    )
    store.save_booking(b, quote_id="Q1")
    assert store.bookings(quote_id="Q1") == [b] and store.bookings(kind=BookingKind.HEDGE) == []

    deal = "0x" + "11" * 20
    store.track_deal(
        TrackedDealRow(
            deal_address=deal,
            quote_id="Q1",
            network="ethereum:local",
            chain_id=31337,
            confirmations=2,
            mode="dvp",
            base_decimals=8,
            quote_decimals=6,
            tranches=[{"unlock": 1, "deadline": 2}],
            sla={"tranche_s": 3600},
            created=1,
        )
    )
    assert store.tracked(deal.upper().replace("0X", "0x")).confirmations == 2

    def event(name: str, log: int, tranche: int | None = 0) -> SettlementRow:
        return SettlementRow(
            deal_address=deal,
            ref=f"Q1/{tranche}",
            event=name,
            tranche=tranche,
            base_amount=Decimal("50"),
            quote_amount=Decimal("3257525"),
            fee=Decimal("8143.8125"),
            tx_hash="0x" + "aa" * 32,
            log_index=log,
            block=7,
            ts_ms=9_000,
            chain_id=31337,
        )

    assert store.add_settlement_events([event("Funded", 0, None), event("Released", 1)]) == 2
    assert store.add_settlement_events([event("Released", 1)]) == 0
    [record] = store.settlement_records(deal)
    assert (record.ref, record.quote_amount, record.fee, record.chain_id) == (
        "Q1/0",
        Decimal("3257525"),
        Decimal("8143.8125"),
        31337,
    )
    assert [e.event for e in store.settlement_events(deal)] == ["Funded", "Released"]


# ------------------------------------------------------------------ signed offers
def test_signed_offers_hold_one_nonce_each_unless_re_issued(store: DeskStore) -> None:
    top = 2**256 - 1  # a uint256 nonce round-trips exactly
    first = signed_offer(nonce=top, quote_id="Q1", leg_token="0x" + "E" * 40, leg_amount=10**30, created_ms=5)
    assert store.record_offer(first) is True
    assert store.record_offer(first) is False  # the same offer again: kept once
    stored = store.signed_offer(first.offer_hash.upper().replace("0X", "0x"))
    assert stored == replace(first, leg_token="0x" + "e" * 40) and stored.nonce == top
    # another offer of the maker with that nonce is refused, on any quote or match
    for other in (signed_offer("0x" + "bb" * 32, top, quote_id="Q2"), signed_offer("0x" + "bb" * 32, top)):
        with pytest.raises(NonceTakenError, match=f"holds nonce {top}"):
            store.record_offer(other)
    # re-issuing it with its nonce is one successor; a second successor of the same offer is refused
    again = signed_offer("0x" + "cc" * 32, top, quote_id="Q1", supersedes=first.offer_hash, created_ms=5)
    assert store.record_offer(again) is True
    with pytest.raises(NonceTakenError, match="re-issues 0xaaaa"):
        store.record_offer(replace(again, offer_hash="0x" + "dd" * 32))
    # the nonce is per chain, factory and maker (addresses in any case)
    for key in ({"maker": OTHER}, {"factory": OTHER}, {"chain_id": 1}):
        assert store.record_offer(signed_offer("0x" + "ee" * 32, top, **key)) is True
        store.forget_offer("0x" + "ee" * 32)
    assert store.record_offer(signed_offer("0x" + "ff" * 32, 3, match_id="M-1")) is True
    assert store.offer_nonces(31337, FACTORY.upper().replace("0X", "0x"), MAKER) == [3, top]
    # oldest first, a re-issue after the offer it re-issues (created in the same millisecond)
    assert [r.offer_hash for r in store.signed_offers(quote_id="Q1")] == [first.offer_hash, again.offer_hash]
    assert [r.nonce for r in store.signed_offers(match_id="M-1")] == [3]
    assert {r.offer_hash for r in store.open_offers(31337, FACTORY, MAKER, now=1_700_000_600)} == {
        first.offer_hash,
        again.offer_hash,
        "0x" + "ff" * 32,
    }
    assert store.open_offers(31337, FACTORY, MAKER, now=1_700_000_601) == []  # expired
    # an offer never handed out is forgotten: its nonce is free again
    store.forget_offer(again.offer_hash)
    assert store.signed_offers(quote_id="Q1") == [stored]
    with pytest.raises(ValueError, match="not a uint256"):
        store.record_offer(signed_offer("0x" + "01" * 32, 2**256))
