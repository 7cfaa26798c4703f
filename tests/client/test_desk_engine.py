"""Desk engine (pure Python): ccxt parsing of the raw venue fixtures, guards, aggregation, quotes and their life
cycle, the TWAP hedge (schedule, caps, routing, dedupe, resume, the ccxt execution path on all four venues),
reconciliation and TCA."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest
from rich.console import Console
from venuekit import FIX, HOSTS, ORDER_PATHS, SECRET, TRADE_PATHS, emulated

from nexotc_client.desk.aggregator import InsufficientDepthError, PreparedBook, consolidate, walk_vwap
from nexotc_client.desk.emulators import BinanceSandboxEmulator
from nexotc_client.desk.hedge import HedgeExecutor, recompute_totals
from nexotc_client.desk.models import (
    RFQ,
    Book,
    Booking,
    BookingKind,
    BreakKind,
    Fill,
    HedgePlan,
    HedgeState,
    HedgeStatus,
    Level,
    OrderStatus,
    QuoteState,
    SettlementRecord,
    Side,
    from_dict,
    to_dict,
)
from nexotc_client.desk.quote import (
    IllegalTransitionError,
    NoMarketDataError,
    QuoteEngine,
    QuoteExpiredError,
    SizeBeyondDepthError,
    realised_vol_bps,
)
from nexotc_client.desk.sim import SimClock, SimParams, SimVenue
from nexotc_client.desk.tca import plot_trade, reconcile, tca, write_breaks_csv, write_tca_csv
from nexotc_client.desk.venues import (
    CCXT_VENUES,
    CcxtVenue,
    FixtureResponder,
    RawTransport,
    ReplayVenue,
    VenueError,
    apply_guards,
    divergence_guard,
    kraken_cl_ord_id,
    staleness_guard,
)

TS = 1_763_900_000_000
D = Decimal


def raw_levels(venue: str, symbol: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    raw = json.loads((FIX / venue / (symbol.replace("/", "-") + ".json")).read_text())
    if venue == "binance":
        return [tuple(x[:2]) for x in raw["bids"]], [tuple(x[:2]) for x in raw["asks"]]
    if venue == "coinbase":
        pb = raw["pricebook"]
        return [(x["price"], x["size"]) for x in pb["bids"]], [(x["price"], x["size"]) for x in pb["asks"]]
    if venue == "okx":
        d = raw["data"][0]
        return [tuple(x[:2]) for x in d["bids"]], [tuple(x[:2]) for x in d["asks"]]
    (v,) = raw["result"].values()
    return [tuple(x[:2]) for x in v["bids"]], [tuple(x[:2]) for x in v["asks"]]


@pytest.fixture(scope="module")
def books() -> dict[str, Book]:
    out = {}
    for v in CCXT_VENUES:
        venue = CcxtVenue(v, transport=RawTransport(FixtureResponder(FIX, v)), clock=lambda: TS)
        out[v] = venue.fetch_order_book("BTC/USDT")
        out[v].ts_ms = TS
    return out


@pytest.mark.parametrize("venue", CCXT_VENUES)
@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_ccxt_parses_raw_fixtures_exactly(venue, symbol):
    transport = RawTransport(FixtureResponder(FIX, venue))
    book = CcxtVenue(venue, transport=transport, clock=lambda: TS).fetch_order_book(symbol)
    bids, asks = raw_levels(venue, symbol)
    assert [(lv.price, lv.size) for lv in book.bids] == [(D(p), D(s)) for p, s in bids]
    assert [(lv.price, lv.size) for lv in book.asks] == [(D(p), D(s)) for p, s in asks]
    assert all(isinstance(lv.price, Decimal) and isinstance(lv.size, Decimal) for lv in book.bids + book.asks)
    assert book.best_bid < book.best_ask
    assert book.fee_bps > 0
    big = D(3000) if symbol == "ETH/USDT" else D(200)
    assert sum(lv.size for lv in book.asks) >= big and sum(lv.size for lv in book.bids) >= big
    # ccxt went through the exchange's own endpoints (markets first, then the book), never the network
    assert any("depth" in u.lower() or "book" in u.lower() for _, u in transport.requests)


def test_unknown_symbol_is_a_venue_error():
    venue = CcxtVenue("okx", transport=RawTransport(FixtureResponder(FIX, "okx")), clock=lambda: TS)
    with pytest.raises(Exception, match="okx"):
        venue.fetch_order_book("DOGE/USDT")


def test_staleness_and_divergence_guards(books):
    old = Book("stale", "BTC/USDT", books["okx"].bids, books["okx"].asks, TS - 10_000, D(10))
    res = staleness_guard([*books.values(), old], TS, 5_000)
    assert [v for v, _ in res.dropped] == ["stale"] and len(res.kept) == 4
    shifted = Book(
        "rogue",
        "BTC/USDT",
        tuple(Level(lv.price * D("1.01"), lv.size) for lv in books["binance"].bids),
        tuple(Level(lv.price * D("1.01"), lv.size) for lv in books["binance"].asks),
        TS,
        D(10),
    )
    res = divergence_guard([*books.values(), shifted], 50)
    assert [v for v, _ in res.dropped] == ["rogue"]
    assert len(divergence_guard([*books.values(), shifted], 150).kept) == 5
    res = apply_guards([*books.values(), shifted, old], TS, 5_000, 50)
    assert sorted(v for v, _ in res.dropped) == ["rogue", "stale"]


def test_replay_venue_serves_latest_snapshot_at_clock(tmp_path, books):
    path = tmp_path / "rec.jsonl"
    clock = SimClock(TS)
    sim = SimVenue("binance", [books["binance"]], clock, seed=1)
    ReplayVenue.record(sim, ["BTC/USDT"], path, depth=50)
    clock.sleep(60_000)
    ReplayVenue.record(sim, ["BTC/USDT"], path, depth=50)
    now = [TS + 1]
    replay = ReplayVenue.load(path, clock=lambda: now[0])
    first = replay.fetch_order_book("BTC/USDT")
    assert first.ts_ms == TS and len(first.asks) == 50
    now[0] = TS + 60_000
    assert replay.fetch_order_book("BTC/USDT").ts_ms == TS + 60_000


def test_consolidated_vwap_is_fee_adjusted(books):
    cb = consolidate(list(books.values()))
    prepared = [PreparedBook.of(b) for b in books.values()]
    best = min(books.values(), key=lambda b: b.asks[0].price * (1 + b.fee_bps / 10_000))
    tiny = D("0.00001")
    assert cb.vwap(Side.BUY, tiny) == best.asks[0].price * (1 + best.fee_bps / 10_000)
    for size in (D("0.5"), D(37), D(200)):
        for side in Side:
            assert walk_vwap(prepared, side, size) == cb.vwap(side, size)
    assert cb.vwap(Side.BUY, D(200)) > cb.vwap(Side.BUY, D(200), fee_adjusted=False)
    with pytest.raises(InsufficientDepthError):
        cb.vwap(Side.BUY, cb.depth(Side.BUY) + 1)


@pytest.fixture
def clock():
    return SimClock(TS)


@pytest.fixture
def engine(books, clock):
    return QuoteEngine(books=lambda s: list(books.values()), clock=clock)


def test_quote_200_btc_and_components(engine):
    q = engine.quote(RFQ("r1", "buyer", "BTC/USDT", Side.BUY, D(200), TS))
    assert q.state is QuoteState.QUOTED and q.price == q.ask and q.bid < q.mid < q.ask
    assert q.ask >= q.components.ask_vwap and q.bid <= q.components.bid_vwap
    assert q.ask.as_tuple().exponent >= -8 and q.components.spread_bps == D(10)


def test_inventory_skew_shifts_both_sides(engine):
    flat = engine.quote(RFQ("r", "buyer", "BTC/USDT", Side.BUY, D(10), TS))
    engine.inventory["BTC"] = D(500)
    long = engine.quote(RFQ("r", "buyer", "BTC/USDT", Side.BUY, D(10), TS))
    assert long.ask < flat.ask and long.bid < flat.bid and long.components.skew_bps == D(-10)


def test_quote_beyond_depth_refused(engine, books):
    depth = consolidate(list(books.values())).depth(Side.BUY)
    with pytest.raises(SizeBeyondDepthError, match="exceeds the depth"):
        engine.quote(RFQ("r", "buyer", "BTC/USDT", Side.BUY, depth + D("0.00000001"), TS))


def test_quote_life_cycle_and_illegal_transitions(engine, clock):
    q = engine.quote(RFQ("r", "buyer", "BTC/USDT", Side.SELL, D(5), TS))
    engine.counter(q, q.price + 1)
    assert q.state is QuoteState.COUNTERED
    engine.requote(q)
    assert q.state is QuoteState.QUOTED and q.counter_price is None
    engine.accept(q)
    assert q.state is QuoteState.ACCEPTED
    for action in (engine.accept, engine.reject, lambda x: engine.counter(x, D(1))):
        with pytest.raises(IllegalTransitionError):
            action(q)
    q3 = engine.quote(RFQ("r3", "buyer", "BTC/USDT", Side.BUY, D(5), TS))
    engine.reject(q3, "client walked")
    with pytest.raises(IllegalTransitionError):
        engine.requote(q3)
    q2 = engine.quote(RFQ("r2", "buyer", "BTC/USDT", Side.BUY, D(5), TS))
    clock.sleep(q2.ttl_ms)
    assert not engine.expire(q2)  # valid up to and including its last millisecond
    clock.sleep(1)
    with pytest.raises(QuoteExpiredError):
        engine.accept(q2)
    assert q2.state is QuoteState.EXPIRED
    # the books are now older than the staleness limit: no quote at all
    with pytest.raises(NoMarketDataError, match="stale"):
        engine.quote(RFQ("r4", "buyer", "BTC/USDT", Side.BUY, D(5), TS))


def sims(books, clock, seed=1, late=0.0):
    return {v: SimVenue(v, [b], clock, seed=seed, params=SimParams(late_fill_prob=late)) for v, b in books.items()}


def test_twap_schedule_caps_and_progress(books, tmp_path):
    clock = SimClock(TS)
    out = io.StringIO()
    ex = HedgeExecutor(sims(books, clock, late=0.3), clock=clock, sleep=clock.sleep, console=Console(file=out))
    plan = HedgePlan(
        "h1",
        "BTC/USDT",
        Side.BUY,
        D(200),
        10,
        60_000,
        TS,
        venue_caps={"binance": D(60)},
        participation_cap=D("0.5"),
    )
    st = ex.start(plan)
    ex.run(st)
    assert st.status is HedgeStatus.DONE and st.filled == D(200)
    assert st.venue_filled["binance"] <= D(60)
    clips = sorted({o.clip for o in st.orders})
    assert clips == list(range(10))
    for o in st.orders:
        assert o.ts_ms == TS + o.clip * 60_000
    assert len({f.key for f in st.fills}) == len(st.fills)
    assert sum(o.filled for o in st.orders) == st.filled
    assert "hedge h1" in out.getvalue()
    # TCA on it: the decomposition sums to the total exactly; CSV + PNG written
    r = tca(st, decision_mid=st.arrival_mid - 5)
    assert r.is_delay + r.is_execution + r.is_opportunity + r.is_fees == r.is_total
    assert r.is_delay > 0 and r.is_fees == st.fees and r.is_opportunity == 0
    csv_path = write_tca_csv([r], tmp_path / "tca.csv")
    assert "arrival_slippage_bps" in csv_path.read_text().splitlines()[0]
    png = plot_trade(st, tmp_path / "h1.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_twap_beats_sweep_on_a_seed(books):
    res = {}
    for clips in (20, 1):
        clock = SimClock(TS)
        ex = HedgeExecutor(sims(books, clock), clock=clock, sleep=clock.sleep, book_depth=300)
        st = ex.start(HedgePlan(f"h{clips}", "BTC/USDT", Side.BUY, D(200), clips, 60_000 if clips > 1 else 0, TS))
        ex.run(st, poll_ms=60_000)
        res[clips] = (st.avg_price - st.arrival_mid) / st.arrival_mid
    assert res[20] < res[1] / 2


def test_resume_after_kill_neither_resends_nor_double_counts(books):
    clock = SimClock(TS)
    venues = sims(books, clock, late=0.5)
    saved = []
    ex = HedgeExecutor(venues, clock=clock, sleep=clock.sleep, on_change=lambda s: saved.append(json.dumps(to_dict(s))))
    st = ex.start(HedgePlan("hk", "BTC/USDT", Side.BUY, D(50), 5, 60_000, TS))
    ex.step(st)
    clock.sleep(60_000)
    # "kill" right after clip 1's orders were persisted as NEW, before they were sent
    sent_before = sum(len(v._orders) for v in venues.values())
    real_send = ex._send
    ex._send = lambda state, order: None  # the process dies before sending
    ex.step(st)
    ex._send = real_send
    snapshot = saved[-1]
    assert sum(len(v._orders) for v in venues.values()) == sent_before
    restored = from_dict(HedgeState, json.loads(snapshot))
    assert any(not o.order_id for o in restored.orders)
    ex2 = HedgeExecutor(venues, clock=clock, sleep=clock.sleep)
    ex2.resume(restored)
    ex2.resume(restored)  # resuming twice changes nothing
    ex2.run(restored)
    assert restored.status is HedgeStatus.DONE and restored.filled == D(50)
    sent = [a for v in venues.values() for a in v._orders.values()]
    assert len({a.client_order_id for a in sent}) == len(sent) == len(restored.orders)
    venue_total = sum((a.filled for a in sent), D(0))
    assert venue_total == restored.filled == sum(f.size for f in restored.fills)


class LaggingVenue:
    """A SimVenue whose exchange clock runs ``lag_ms`` behind ours: its trades carry earlier times. Records the
    ``since`` of every trade-list read."""

    def __init__(self, sim, lag_ms):
        self.sim, self.lag_ms, self.since = sim, lag_ms, []

    def __getattr__(self, name):
        return getattr(self.sim, name)

    def fetch_my_trades(self, symbol, since_ms=None):
        self.since.append(since_ms)
        shifted = [replace(f, ts_ms=f.ts_ms - self.lag_ms) for f in self.sim.fetch_my_trades(symbol, None)]
        return [f for f in shifted if since_ms is None or f.ts_ms >= since_ms]


@pytest.mark.parametrize("lag_ms", [0, 30_000])
def test_trades_are_read_from_the_earliest_order_waiting_for_fills(books, lag_ms):
    """Each poll reads a venue's trades from its earliest order still waiting for fills (less the clock-skew
    allowance), not from the hedge's start: the read window moves forward as orders complete, nothing is read
    once all are, and every fill still arrives, late fills and a venue clock 30 s behind ours included."""
    clock = SimClock(TS)
    venues = {v: LaggingVenue(sim, lag_ms) for v, sim in sims(books, clock, late=0.5).items()}
    ex = HedgeExecutor(venues, clock=clock, sleep=clock.sleep)
    st = ex.start(HedgePlan("hw", "BTC/USDT", Side.BUY, D(60), 6, 60_000, TS))
    ex.run(st)
    assert st.status is HedgeStatus.DONE and st.filled == D(60)
    assert sum(f.size for f in st.fills) == sum(a.filled for v in venues.values() for a in v.sim._orders.values())
    reads = [s for v in venues.values() for s in v.since]
    assert min(reads) == TS - ex.clock_skew_ms
    assert max(reads) >= TS + 5 * 60_000 - ex.clock_skew_ms  # the window followed the last clip
    assert all(ex.trades_since(st, v) is None for v in venues)
    before = len(reads)
    assert ex.poll(st) == 0 and sum(len(v.since) for v in venues.values()) == before  # nothing left to read
    if lag_ms:  # without the allowance, the fills stamped before their orders' (local) send times are lost
        clock2 = SimClock(TS)
        venues2 = {v: LaggingVenue(sim, lag_ms) for v, sim in sims(books, clock2, late=0.5).items()}
        ex2 = HedgeExecutor(venues2, clock=clock2, sleep=clock2.sleep)
        ex2.clock_skew_ms = 0
        st2 = ex2.start(HedgePlan("hw", "BTC/USDT", Side.BUY, D(60), 6, 60_000, TS))
        ex2.run(st2)
        assert st2.status is HedgeStatus.STOPPED and st2.filled < D(60)


def ccxt_venue(exchange, transport, clock):
    """Binance and OKX in sandbox mode; Coinbase Advanced Trade and Kraken spot have none (no test URLs in ccxt):
    they run against the real hosts, every request answered by the transport."""
    return CcxtVenue(
        exchange,
        transport=transport,
        sandbox=exchange in ("binance", "okx"),
        api_key="key",
        secret=SECRET,
        password="pass",
        clock=clock,
    )


def paths(transport, start=0):
    return [(m, urlsplit(u).path) for m, u in transport.requests[start:]]


#: the page of Binance's and OKX's own-trades lists in the paging tests (the exchanges': Binance 500 by default and
#: 1000 at most, OKX 100): a short hedge then has several pages of trades
PAGE = 10
DAY = 24 * 3_600_000


def small_pages(emulator, venue):
    if isinstance(emulator, BinanceSandboxEmulator):
        emulator.trades_limit, emulator.trades_limit_max = PAGE // 2, PAGE
    else:
        emulator.fills_limit = PAGE
    venue.trades_page_size = PAGE


def trade_queries(transport, exchange, start=0):
    """The query of every own-trades request from ``start`` on."""
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(u).query).items()}
        for _, u in transport.requests[start:]
        if urlsplit(u).path == TRADE_PATHS[exchange]
    ]


@pytest.mark.parametrize("exchange", ["binance", "okx"])
def test_ccxt_sandbox_execution_path(books, exchange):
    """The hedge runs through CcxtVenue in sandbox mode: ccxt builds and signs the requests and parses the raw
    order / trade responses. Binance acknowledges with the order's fills, OKX without (fills only by polling).
    Both list trades a page at a time (Binance oldest first, paged by fromId; OKX most recent first, paged by
    billId): with pages of 10 the hedge has several pages of trades, every one is read, and so are the first
    clip's fills, made at the very millisecond the hedge starts (the emulated OKX takes begin as exclusive)."""
    clock = SimClock(TS)
    sim, emulator = emulated(books, exchange, clock)
    transport = RawTransport(emulator)
    venue = ccxt_venue(exchange, transport, clock)
    small_pages(emulator, venue)
    ex = HedgeExecutor({exchange: venue}, clock=clock, sleep=clock.sleep)
    st = ex.start(HedgePlan("hs", "BTC/USDT", Side.BUY, D(20), 4, 60_000, TS))
    ex.run(st)
    assert st.status is HedgeStatus.DONE and st.filled == D(20)
    assert {urlsplit(u).hostname for _, u in transport.requests} == {HOSTS[exchange]}
    assert paths(transport).count(("POST", ORDER_PATHS[exchange])) == len(st.orders) == 4
    assert ("GET", TRADE_PATHS[exchange]) in paths(transport)
    assert len(sim._trades) > 3 * PAGE
    assert len(st.fills) == len(sim._trades)
    assert sorted(f.size for f in st.fills) == sorted(t.fill.size for t in sim._trades)
    assert sum(f.size for f in st.fills) == sum(a.filled for a in sim._orders.values())
    assert min(f.ts_ms for f in st.fills) == TS == st.plan.start_ms
    assert all(o.client_order_id.isalnum() and len(o.client_order_id) <= 32 for o in st.orders)
    first = st.orders[0]
    assert venue.fetch_order("BTC/USDT", first.client_order_id).order_id == first.order_id
    assert venue.fetch_order("BTC/USDT", "neverSent") is None
    # one call reads every page, with each venue's cursor
    ids = sorted(f.trade_id for f in st.fills)
    start = len(transport.requests)
    assert sorted(f.trade_id for f in venue.fetch_my_trades("BTC/USDT", TS)) == ids
    queries = trade_queries(transport, exchange, start)
    assert len(queries) == len(ids) // PAGE + 1 and all(q["limit"] == str(PAGE) for q in queries)
    if exchange == "binance":  # startTime (inclusive) and endTime 24 h apart at most, then fromId without a time
        assert (queries[0]["startTime"], queries[0]["endTime"]) == (str(TS), str(TS + DAY - 1))
        assert all("fromId" in q and "startTime" not in q and "endTime" not in q for q in queries[1:])
    else:  # begin from the millisecond before (OKX does not say whether it is inclusive), then after = a billId
        assert queries[0]["begin"] == str(TS - 1) and "after" not in queries[0]
        assert all(q["after"].isdigit() and q["begin"] == str(TS - 1) for q in queries[1:])
    # from three days back: Binance walks empty 24-hour windows up to the first trade
    start = len(transport.requests)
    assert sorted(f.trade_id for f in venue.fetch_my_trades("BTC/USDT", TS - 3 * DAY)) == ids
    if exchange == "binance":
        starts = [int(q["startTime"]) for q in trade_queries(transport, exchange, start) if "startTime" in q]
        assert starts == [TS - 3 * DAY, TS - 2 * DAY, TS - DAY, TS]
    assert venue.fetch_my_trades("BTC/USDT", clock() + 1) == []
    # more pages than max_pages: an error, never a silently short list
    venue.max_pages = len(ids) // PAGE
    with pytest.raises(VenueError, match="pages of trades"):
        venue.fetch_my_trades("BTC/USDT", TS)


@pytest.mark.parametrize("exchange", ["coinbase", "kraken"])
def test_ccxt_execution_path_coinbase_kraken(books, exchange):
    """The hedge runs through CcxtVenue against Coinbase's and Kraken's real hosts, answered by their emulators.
    Both acknowledge an order with its id only (state and fills come by polling). Coinbase cannot look an order
    up by client order id: the venue keeps the order id from create_order, and a restarted process lists the
    recent orders. Kraken takes a UUID as cl_ord_id and filters its order lists by it. Both list trades a page at
    a time: the hedge has more trades than a page."""
    assert getattr(ccxt, exchange)().urls.get("test") is None  # no sandbox
    clock = SimClock(TS)
    sim, emulator = emulated(books, exchange, clock)
    transport = RawTransport(emulator)
    venue = ccxt_venue(exchange, transport, clock)
    venue.page_size = 25  # Coinbase: several pages of fills (Kraken's pages are 50 trades whatever is asked)
    ex = HedgeExecutor({exchange: venue}, clock=clock, sleep=clock.sleep)
    st = ex.start(HedgePlan("rfq-20251123-0001", "BTC/USDT", Side.BUY, D(20), 4, 60_000, TS))
    ex.run(st)
    assert st.status is HedgeStatus.DONE and st.filled == D(20)
    assert all(18 < len(o.client_order_id) <= 32 and o.client_order_id.isalnum() for o in st.orders)
    assert {urlsplit(u).hostname for _, u in transport.requests} == {HOSTS[exchange]}
    assert paths(transport).count(("POST", ORDER_PATHS[exchange])) == len(st.orders) == 4
    assert ("GET" if exchange == "coinbase" else "POST", TRADE_PATHS[exchange]) in paths(transport)
    assert len(sim._trades) > 50
    assert sorted(f.size for f in st.fills) == sorted(t.fill.size for t in sim._trades)
    assert sum(f.size for f in st.fills) == sum(a.filled for a in sim._orders.values())
    venue_ids = [kraken_cl_ord_id(o.client_order_id) if exchange == "kraken" else o.client_order_id for o in st.orders]
    assert sorted(sim._orders) == sorted(venue_ids)  # the desk's ids reached the venue (ccxt's own were not used)
    first = st.orders[0]
    start = len(transport.requests)
    assert venue.fetch_order("BTC/USDT", first.client_order_id).order_id == first.order_id
    if exchange == "coinbase":  # the process that placed an order uses the order id it kept, never the list
        assert paths(transport, start) == [("GET", f"/api/v3/brokerage/orders/historical/{first.order_id}")]
        assert ("GET", "/api/v3/brokerage/orders/historical/batch") not in paths(transport)
    assert venue.fetch_order("BTC/USDT", "neverSent") is None
    # a restarted process: a fresh venue with nothing kept from create_order, over the same exchange
    start = len(transport.requests)
    fresh = ccxt_venue(exchange, transport, clock)
    fresh.page_size = 2  # Coinbase: the first order is on the second page of the order list
    ack = fresh.fetch_order("BTC/USDT", first.client_order_id)
    assert (ack.order_id, ack.client_order_id, ack.filled) == (first.order_id, first.client_order_id, first.size)
    assert ack.status is OrderStatus.FILLED
    assert fresh.fetch_order("BTC/USDT", "neverSent") is None
    # one call reads every page of trades (Kraken: 50 a page; Coinbase: 2 a page here)
    assert sorted(f.trade_id for f in fresh.fetch_my_trades("BTC/USDT", TS)) == sorted(f.trade_id for f in st.fills)
    lookup = "/api/v3/brokerage/orders/historical/batch" if exchange == "coinbase" else "/0/private/ClosedOrders"
    assert lookup in {p for _, p in paths(transport, start)}
    if exchange == "kraken":  # the desk's id as it is (over 18 characters, not a UUID) is refused as a cl_ord_id
        with pytest.raises(ccxt.ExchangeError, match="cl_ord_id"):
            fresh.exchange.create_order(
                "BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": first.client_order_id}
            )


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_ccxt_resume_adopts_an_order_sent_before_the_crash(books, exchange):
    """The process dies after the venue took a clip's order but before the acknowledgement was persisted. A
    restarted process (a fresh CcxtVenue: nothing kept in memory) finds the order by its client order id and
    adopts it: nothing is sent twice, nothing is rejected, the hedge completes."""
    clock = SimClock(TS)
    sim, emulator = emulated(books, exchange, clock)
    transport = RawTransport(emulator)
    saved = []
    venue = ccxt_venue(exchange, transport, clock)
    ex = HedgeExecutor(
        {exchange: venue}, clock=clock, sleep=clock.sleep, on_change=lambda s: saved.append(json.dumps(to_dict(s)))
    )
    st = ex.start(HedgePlan("rfq-20251123-0002", "BTC/USDT", Side.BUY, D(20), 4, 60_000, TS))
    ex.step(st)
    clock.sleep(60_000)

    def send_then_die(state, order):  # the venue takes the order; the process dies before adopting the answer
        venue.create_order(order.symbol, order.side, order.size, order.limit_price, order.client_order_id)

    ex._send = send_then_die
    ex.step(st)
    restored = from_dict(HedgeState, json.loads(saved[-1]))
    assert [o.order_id for o in restored.orders if o.clip == 1] == [""]
    assert len(sim._orders) == 2
    ex2 = HedgeExecutor({exchange: ccxt_venue(exchange, transport, clock)}, clock=clock, sleep=clock.sleep)
    ex2.resume(restored)
    ex2.run(restored)
    assert restored.status is HedgeStatus.DONE and restored.filled == D(20)
    assert paths(transport).count(("POST", ORDER_PATHS[exchange])) == len(sim._orders) == len(restored.orders) == 4
    assert all(o.order_id and o.status is not OrderStatus.REJECTED for o in restored.orders)
    assert sum(f.size for f in restored.fills) == sum(a.filled for a in sim._orders.values())


def test_reconciliation_classifies_every_break(tmp_path, books):
    clock = SimClock(TS)
    ex = HedgeExecutor(sims(books, clock), clock=clock, sleep=clock.sleep)
    st = ex.start(HedgePlan("hr", "BTC/USDT", Side.BUY, D(5), 1, 0, TS))
    ex.run(st)
    fills = st.fills
    assert len(fills) >= 6
    bk = [
        Booking(
            f"b{i}", BookingKind.HEDGE, f"{f.venue}:{f.trade_id}", f.symbol, f.side, f.size, f.price, f.fee, f.ts_ms
        )
        for i, f in enumerate(fills)
    ]
    bk[0] = Booking(
        bk[0].booking_id,
        bk[0].kind,
        bk[0].ref,
        bk[0].symbol,
        bk[0].side,
        bk[0].size + D("0.00000001"),
        bk[0].price,
        bk[0].fee,
        bk[0].ts_ms,
    )
    bk[1] = Booking(
        bk[1].booking_id,
        bk[1].kind,
        bk[1].ref,
        bk[1].symbol,
        bk[1].side,
        bk[1].size,
        bk[1].price + 1,
        bk[1].fee,
        bk[1].ts_ms,
    )
    bk[2] = Booking(
        bk[2].booking_id,
        bk[2].kind,
        bk[2].ref,
        bk[2].symbol,
        bk[2].side,
        bk[2].size,
        bk[2].price,
        bk[2].fee + D("0.01"),
        bk[2].ts_ms,
    )
    bk[3] = Booking(
        bk[3].booking_id,
        bk[3].kind,
        bk[3].ref,
        bk[3].symbol,
        bk[3].side,
        bk[3].size,
        bk[3].price,
        bk[3].fee,
        bk[3].ts_ms + 60_000,
    )
    del bk[4]  # a fill nobody booked
    bk.append(Booking("ghost", BookingKind.HEDGE, "binance:nope", "BTC/USDT", Side.BUY, D(1), D(1), D(0), TS))
    tx = "0x" + "ab" * 32
    bk.append(Booking("s1", BookingKind.SETTLEMENT, "q1/0", "BTC/USDT", Side.BUY, D(200), D(65000), D(100), TS, tx))
    bk.append(Booking("s2", BookingKind.SETTLEMENT, "q1/1", "BTC/USDT", Side.BUY, D(1), D(65000), D(0), TS, tx))
    chain = [
        SettlementRecord("q1/0", D(200), D(13_000_000), D(100), TS + 1000, "0x" + "cd" * 32),
        SettlementRecord("q1/9", D(1), D(65000), D(0), TS, tx),
    ]
    rep = reconcile(bk, fills + fills[:3], chain)  # duplicated fills count once
    kinds = sorted((b.kind.value, b.ref) for b in rep.breaks)
    f = fills
    assert (BreakKind.QUANTITY.value, f"{f[0].venue}:{f[0].trade_id}") in kinds
    assert (BreakKind.PRICE.value, f"{f[1].venue}:{f[1].trade_id}") in kinds
    assert (BreakKind.FEE.value, f"{f[2].venue}:{f[2].trade_id}") in kinds
    assert (BreakKind.TIMESTAMP_SKEW.value, f"{f[3].venue}:{f[3].trade_id}") in kinds
    assert (BreakKind.MISSING.value, f"{f[4].venue}:{f[4].trade_id}") in kinds
    assert (BreakKind.MISSING.value, "binance:nope") in kinds
    assert (BreakKind.TX_HASH.value, "q1/0") in kinds
    assert (BreakKind.MISSING.value, "q1/1") in kinds and (BreakKind.MISSING.value, "q1/9") in kinds
    assert len(rep.breaks) == 9
    assert rep.matched == len(fills) - 5
    assert write_breaks_csv(rep, tmp_path / "breaks.csv").read_text().count("\n") == 10


def test_routing_by_fee_adjusted_price_and_participation_cap(books):
    clock = SimClock(TS)
    venues = sims(books, clock)
    cb = consolidate(list(books.values()))
    best = min(books.values(), key=lambda b: b.asks[0].price * (1 + b.fee_bps / 10_000)).venue
    ex = HedgeExecutor(venues, clock=clock, sleep=clock.sleep)
    st = ex.start(HedgePlan("hsmall", "BTC/USDT", Side.BUY, D("0.01"), 1, 0, TS))
    ex.run(st)
    assert [o.venue for o in st.orders] == [best]  # a small clip goes to the cheapest venue after fees
    # kraken's top-of-book ask is not the cheapest after its 40 bps fee: a 5 BTC buy never touches it
    st = ex.start(HedgePlan("h5", "BTC/USDT", Side.BUY, D(5), 1, 0, TS))
    ex.run(st)
    assert "kraken" not in {o.venue for o in st.orders}
    # participation cap: each clip at most 1% of the depth within 50 bps of the mid
    clock2 = SimClock(TS)
    ex2 = HedgeExecutor(sims(books, clock2), clock=clock2, sleep=clock2.sleep)
    cap = D("0.01")
    st = ex2.start(HedgePlan("hcap", "BTC/USDT", Side.BUY, D(200), 4, 60_000, TS, participation_cap=cap))
    ex2.run(st)
    first = sum(o.size for o in st.orders if o.clip == 0)
    assert first <= cap * cb.depth_within(Side.BUY, D(50)) < D(50)
    assert st.status is HedgeStatus.PARTIAL and st.filled < D(200)  # the cap left the rest unhedged: a residual
    r = tca(st)
    assert r.is_opportunity != 0 and r.filled == st.filled


def test_tca_hand_computed_example():
    plan = HedgePlan("hx", "BTC/USDT", Side.BUY, D(10), 2, 60_000, TS)
    state = HedgeState(plan=plan, arrival_mid=D(101), mids=[(TS, D(101)), (TS + 60_000, D(104))])
    state.fills = [
        Fill("t1", "o1", "v", Side.BUY, D(4), D(102), D(1), "USDT", TS),
        Fill("t2", "o2", "v", Side.BUY, D(4), D(103), D(1), "USDT", TS + 60_000),
    ]
    recompute_totals(state)
    mids = [*state.mids, (TS + 120_000, D(105)), (TS + 360_000, D(100))]
    r = tca(
        state,
        decision_mid=D(100),
        mids=mids,
        prints=[(TS, D(101), D(1)), (TS + 30_000, D(103), D(1))],
        markout_ms=(60_000, 300_000, 10**9),
    )
    assert (r.is_delay, r.is_execution, r.is_opportunity, r.is_fees, r.is_total) == (8, 12, 8, 2, 30)
    assert r.is_total_bps == 300 and r.end_mid == 104 and r.avg_price == D("102.5")
    assert r.arrival_slippage_bps == D("1.5") / 101 * 10_000
    assert r.interval_vwap == 102 and r.interval_vwap_slippage_bps == D("0.5") / 102 * 10_000
    assert r.markouts_bps == ((60_000, D("2.5") / D("102.5") * 10_000), (300_000, D("-2.5") / D("102.5") * 10_000))
    assert r.components_bps() == {"delay": 80, "execution": 120, "opportunity": 80, "fees": 20}
    # a SELL mirrors the signs: selling below the decision mid is a cost
    plan_s = HedgePlan("hs", "BTC/USDT", Side.SELL, D(4), 1, 0, TS)
    sell = HedgeState(plan=plan_s, arrival_mid=D(99), mids=[(TS, D(99))])
    sell.fills = [Fill("t3", "o3", "v", Side.SELL, D(4), D(98), D(1), "USDT", TS)]
    recompute_totals(sell)
    rs = tca(sell, decision_mid=D(100))
    assert (rs.is_delay, rs.is_execution, rs.is_opportunity, rs.is_total) == (4, 4, 0, 9)


def test_realised_vol_and_decimal_context():
    assert realised_vol_bps([D(100)] * 5) == 0
    assert realised_vol_bps([D(100), D(101)]) == 0  # too few points
    # returns +100 bps, -100 bps (approximately), +100 bps: a sample sd close to 115 bps
    vol = realised_vol_bps([D(100), D(101), D(100), D(101)])
    assert D(114) < vol < D(117)
    import decimal

    assert decimal.getcontext().prec == 50
    assert D("1") / D("3") * 3 != 1 and len(str(D("1") / D("3"))) == 52


def test_requested_then_quoted_or_rejected(engine, books):
    pending = engine.request(RFQ("r5", "buyer", "BTC/USDT", Side.BUY, D(20), TS))
    assert pending.state is QuoteState.REQUESTED and pending.price == 0
    with pytest.raises(IllegalTransitionError):
        engine.accept(pending)  # nothing to accept before it is priced
    engine.respond(pending)
    direct = engine.quote(RFQ("r6", "buyer", "BTC/USDT", Side.BUY, D(20), TS))
    assert pending.state is QuoteState.QUOTED and (pending.bid, pending.ask) == (direct.bid, direct.ask)
    with pytest.raises(IllegalTransitionError):
        engine.respond(pending)
    huge = engine.request(RFQ("r7", "buyer", "BTC/USDT", Side.SELL, D(10**6), TS))
    with pytest.raises(SizeBeyondDepthError):
        engine.respond(huge)
    assert huge.state is QuoteState.REJECTED and "exceeds the depth" in huge.reason
