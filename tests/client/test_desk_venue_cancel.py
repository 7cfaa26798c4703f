"""Cancelling an order through ccxt (CcxtVenue.cancel_order, and `hedge cancel`: HedgeExecutor.cancel) on the four
exchanges, each answered by its emulator's cancel endpoint: an order that already filled is answered filled (the
exchange refuses its cancel and nothing changes), an order the venue does not know is None, and an order resting on
the book (a good-till-cancelled limit order that filled in part) is cancelled with its partial fill."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import ccxt
import pytest

from nexotc_client.desk.emulators import BinanceSandboxEmulator, CoinbaseEmulator, KrakenEmulator, OkxSandboxEmulator
from nexotc_client.desk.hedge import HedgeExecutor
from nexotc_client.desk.models import Book, HedgePlan, HedgeState, HedgeStatus, OrderStatus, Side, from_dict, to_dict
from nexotc_client.desk.sim import SimClock, SimParams, SimVenue
from nexotc_client.desk.venues import (
    CCXT_VENUES,
    CcxtVenue,
    FixtureResponder,
    RawTransport,
    VenueError,
    kraken_cl_ord_id,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "venues"
TS = 1_763_900_000_000
D = Decimal
SYMBOL = "BTC/USDT"
#: 64 bytes in base64: Kraken's and Coinbase's secrets are base64 (ccxt signs with the decoded bytes)
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="

#: each exchange's cancel request, as ccxt sends it
CANCEL = {
    "binance": ("DELETE", "/api/v3/order"),
    "okx": ("POST", "/api/v5/trade/cancel-order"),
    "coinbase": ("POST", "/api/v3/brokerage/orders/batch_cancel"),
    "kraken": ("POST", "/0/private/CancelOrder"),
}
#: an order id of each exchange's form that the venue never issued
UNKNOWN_ORDER_ID = {
    "binance": "987654321",
    "okx": "987654321",
    "coinbase": "00000000-0000-5000-8000-000000000000",
    "kraken": "OAAAAA-BBBBB-CCCCCC",
}


@pytest.fixture(scope="module")
def books() -> dict[str, Book]:
    out = {}
    for v in CCXT_VENUES:
        venue = CcxtVenue(v, transport=RawTransport(FixtureResponder(FIX, v)), clock=lambda: TS)
        out[v] = venue.fetch_order_book(SYMBOL)
        out[v].ts_ms = TS
    return out


def emulated(books, exchange, clock):
    """A simulated venue (BTC/USDT) and the emulator of its exchange's raw REST API."""
    markets = json.loads((FIX / exchange / "markets.json").read_text())
    price_dp = 1 if exchange in ("okx", "kraken") else 2  # the price ticks of BTC/USDT: OKX and Kraken 0.1, else 0.01
    sim = SimVenue(exchange, [books[exchange]], clock, seed=3, params=SimParams(price_dp=price_dp))
    if exchange == "binance":
        return BinanceSandboxEmulator(sim, markets, {"BTCUSDT": SYMBOL})
    if exchange == "okx":
        return OkxSandboxEmulator(sim, markets)
    if exchange == "coinbase":
        return CoinbaseEmulator(sim, markets)
    return KrakenEmulator(sim, markets, {"XBTUSDT": SYMBOL})


def ccxt_venue(exchange, transport, clock):
    return CcxtVenue(
        exchange,
        transport=transport,
        sandbox=exchange in ("binance", "okx"),
        api_key="key",
        secret=SECRET,
        password="pass",
        clock=clock,
    )


def setup(books, exchange):
    clock = SimClock(TS)
    transport = RawTransport(emulated(books, exchange, clock))
    return clock, transport, ccxt_venue(exchange, transport, clock)


def cancels(transport, exchange, start=0):
    """How many cancel requests reached the exchange from ``start`` on."""
    return [(m, urlsplit(u).path) for m, u in transport.requests[start:]].count(CANCEL[exchange])


def rest(venue, cid, size):
    """A good-till-cancelled limit buy of ``size`` at the best ask, placed through ccxt under the client order id
    ``cid`` as CcxtVenue sends it (Kraken: its UUID): it takes the best ask's level and rests with the remainder.
    Answers the size it filled."""
    top = venue.fetch_order_book(SYMBOL).asks[0]
    assert size > top.size
    if venue.name == "coinbase":
        params = {"client_order_id": cid}
    else:
        params = {"clientOrderId": kraken_cl_ord_id(cid) if venue.name == "kraken" else cid}
    venue.exchange.create_order(SYMBOL, "limit", "buy", float(size), float(top.price), params)
    return top.size


def state(ack):
    return None if ack is None else (ack.order_id, ack.client_order_id, ack.status, ack.filled)


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_cancel_of_a_filled_order_answers_it_filled(books, exchange):
    """The order filled at once (IOC). With its order id (as `hedge cancel` sends it) the cancel reaches the
    exchange, which refuses it as the real one does (ccxt: OrderNotFound; Coinbase answers HTTP 200 with
    ``success: false``, on which ccxt raises a bare BadRequest): the venue answers the order filled and nothing at
    the exchange changed, however often it is asked. Without the order id the lookup finds it filled and no cancel
    is sent at all."""
    clock, transport, venue = setup(books, exchange)
    limit = venue.fetch_order_book(SYMBOL).asks[5].price
    ack = venue.create_order(SYMBOL, Side.BUY, D("0.5"), limit, "fill1")
    filled = (ack.order_id, "fill1", OrderStatus.FILLED, D("0.5"))
    assert state(venue.fetch_order(SYMBOL, "fill1")) == filled
    for _ in range(2):
        start = len(transport.requests)
        assert state(venue.cancel_order(SYMBOL, "fill1", ack.order_id)) == filled
        assert cancels(transport, exchange, start) == 1
    assert state(venue.fetch_order(SYMBOL, "fill1")) == filled
    start = len(transport.requests)
    assert state(venue.cancel_order(SYMBOL, "fill1")) == filled
    assert cancels(transport, exchange, start) == 0
    # what the exchange answers, through ccxt
    if exchange == "coinbase":
        raw = venue.exchange.v3PrivatePostBrokerageOrdersBatchCancel({"order_ids": [ack.order_id]})
        assert raw["results"] == [
            {"success": False, "failure_reason": "ORDER_IS_FULLY_FILLED", "order_id": ack.order_id}
        ]
        with pytest.raises(ccxt.BadRequest):
            venue.exchange.cancel_order(ack.order_id, SYMBOL)
    else:
        reason = {"binance": '"code": -2011', "okx": '"sCode": "51400"', "kraken": "EOrder:Unknown order"}[exchange]
        with pytest.raises(ccxt.OrderNotFound, match=reason):
            venue.exchange.cancel_order(ack.order_id, SYMBOL)
    assert state(venue.fetch_order(SYMBOL, "fill1")) == filled


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_cancel_of_an_unknown_order_answers_none(books, exchange):
    """A client order id the venue never saw: None, with no cancel sent (the lookup finds nothing), and None too
    when an order id is given that the exchange does not know (the cancel is sent and refused)."""
    clock, transport, venue = setup(books, exchange)
    limit = venue.fetch_order_book(SYMBOL).asks[3].price
    venue.create_order(SYMBOL, Side.BUY, D("0.1"), limit, "other1")  # the venue has orders, not this one
    start = len(transport.requests)
    assert venue.cancel_order(SYMBOL, "neverSent") is None
    assert cancels(transport, exchange, start) == 0
    start = len(transport.requests)
    assert venue.cancel_order(SYMBOL, "neverSent", UNKNOWN_ORDER_ID[exchange]) is None
    assert cancels(transport, exchange, start) == 1
    if exchange == "coinbase":
        raw = venue.exchange.v3PrivatePostBrokerageOrdersBatchCancel({"order_ids": [UNKNOWN_ORDER_ID[exchange]]})
        assert [(r["success"], r["failure_reason"]) for r in raw["results"]] == [(False, "UNKNOWN_CANCEL_ORDER")]
    else:
        with pytest.raises(ccxt.OrderNotFound):
            venue.exchange.cancel_order(UNKNOWN_ORDER_ID[exchange], SYMBOL)


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_cancel_of_a_resting_order_answers_it_cancelled_with_its_partial_fill(books, exchange):
    """A good-till-cancelled limit order took the best ask's level and rests with the remainder. The cancel
    (looked up by client order id, one cancel request) answers it CANCELED with its partial fill; fetch_order
    agrees, so does a restarted process, and the partial fill's trades are listed. Cancelled again (with its
    order id), it is answered as it is."""
    clock, transport, venue = setup(books, exchange)
    part = rest(venue, "rest1", D(2))
    before = venue.fetch_order(SYMBOL, "rest1")
    assert (before.status, before.filled) == (OrderStatus.PARTIALLY_FILLED, part) and part > 0
    assert state(venue.cancel_order(SYMBOL, "neverSent")) is None  # nothing else is touched
    start = len(transport.requests)
    cancelled = (before.order_id, "rest1", OrderStatus.CANCELED, part)
    assert state(venue.cancel_order(SYMBOL, "rest1")) == cancelled
    assert cancels(transport, exchange, start) == 1
    assert state(venue.fetch_order(SYMBOL, "rest1")) == cancelled
    assert state(ccxt_venue(exchange, transport, clock).fetch_order(SYMBOL, "rest1")) == cancelled
    trades = [f for f in venue.fetch_my_trades(SYMBOL, TS) if f.order_id == before.order_id]
    assert trades and sum(f.size for f in trades) == part
    start = len(transport.requests)
    assert state(venue.cancel_order(SYMBOL, "rest1", before.order_id)) == cancelled
    assert cancels(transport, exchange, start) == 1  # sent, and refused: the order is not open any more
    assert state(venue.fetch_order(SYMBOL, "rest1")) == cancelled


def refusal(exchange, body):
    """The exchange's answer to a cancel it refuses (its not-open answer; Coinbase: the matching engine's refusal)."""
    if exchange == "binance":
        return 400, {"code": -2011, "msg": "Unknown order sent."}
    if exchange == "okx":
        fail = {
            "sCode": "51400",
            "sMsg": "Cancellation failed as the order has been filled, canceled or does not exist.",
        }
        return 200, {"code": "1", "msg": "All operations failed", "data": [fail]}
    if exchange == "coinbase":
        (oid,) = json.loads(body)["order_ids"]
        return 200, {
            "results": [{"success": False, "failure_reason": "COMMANDER_REJECTED_CANCEL_ORDER", "order_id": oid}]
        }
    return 200, {"error": ["EOrder:Unknown order"]}


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_a_cancel_that_fails_while_the_order_stays_open_is_a_venue_error(books, exchange):
    """The exchange refuses the cancel (or the request fails: HTTP 503) and the order is still open afterwards:
    a VenueError, never an answer that would pass for the state after a cancel. The order is left as it was, and
    a cancel that goes through then cancels it."""
    clock = SimClock(TS)
    emulator = emulated(books, exchange, clock)
    answers = []

    def responder(method, url, body):
        if (method, urlsplit(url).path) == CANCEL[exchange] and answers:
            return answers.pop(0)(body)
        return emulator(method, url, body)

    venue = ccxt_venue(exchange, RawTransport(responder), clock)
    part = rest(venue, "rest2", D(2))
    answers[:] = [lambda body: refusal(exchange, body), lambda body: (503, {"error": "unavailable"})]
    for _ in range(2):
        with pytest.raises(VenueError, match=f"{exchange} cancel_order"):
            venue.cancel_order(SYMBOL, "rest2")
        after = venue.fetch_order(SYMBOL, "rest2")
        assert (after.status, after.filled) == (OrderStatus.PARTIALLY_FILLED, part)
    assert venue.cancel_order(SYMBOL, "rest2").status is OrderStatus.CANCELED


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_hedge_cancel_cancels_an_order_still_open(books, exchange):
    """`hedge cancel` on a ccxt venue. The process died after the venue took clip 1's order, before its
    acknowledgement was persisted; the order rests on the book, in part filled (placed here as a good-till-cancelled
    limit order at the best ask: the emulators' open order). A restarted process cancels the hedge: it finds the
    order by client order id, cancels it (one cancel request; clip 0's order, filled, is left alone), ingests the
    partial fill, and the hedge is CANCELLED with nothing left open at the venue."""
    clock, transport, venue = setup(books, exchange)
    saved = []
    ex = HedgeExecutor(
        {exchange: venue}, clock=clock, sleep=clock.sleep, on_change=lambda s: saved.append(json.dumps(to_dict(s)))
    )
    st = ex.start(HedgePlan("rfq-20251124-0007", SYMBOL, Side.BUY, D(20), 4, 60_000, TS))
    ex.step(st)
    clock.sleep(60_000)
    parts = []

    def send_then_die(state, order):  # the venue takes the order, which rests; the process dies before adopting it
        parts.append(rest(venue, order.client_order_id, order.size))

    ex._send = send_then_die
    ex.step(st)
    restored = from_dict(HedgeState, json.loads(saved[-1]))
    clip0, clip1 = restored.orders
    assert clip1.order_id == "" and clip1.status is OrderStatus.NEW
    fresh = ccxt_venue(exchange, transport, clock)
    assert fresh.fetch_order(SYMBOL, clip1.client_order_id).status is OrderStatus.PARTIALLY_FILLED
    start = len(transport.requests)
    HedgeExecutor({exchange: fresh}, clock=clock, sleep=clock.sleep).cancel(restored)
    assert cancels(transport, exchange, start) == 1
    assert restored.status is HedgeStatus.CANCELLED
    assert (clip1.status, clip1.venue_filled, clip1.filled) == (OrderStatus.CANCELED, parts[0], parts[0])
    assert clip1.order_id and clip1.order_id == fresh.fetch_order(SYMBOL, clip1.client_order_id).order_id
    assert clip0.status is OrderStatus.FILLED and clip0.filled == clip0.size
    assert restored.filled == clip0.size + parts[0] == sum(f.size for f in restored.fills)
    after = [fresh.fetch_order(SYMBOL, o.client_order_id) for o in restored.orders]
    assert [a.status for a in after] == [OrderStatus.FILLED, OrderStatus.CANCELED]


@pytest.mark.parametrize("exchange", ["okx", "coinbase", "kraken"])  # Binance acknowledges with the state
def test_hedge_cancel_of_an_order_acknowledged_but_already_filled(books, exchange):
    """OKX, Coinbase and Kraken acknowledge an order without its state, so the hedge persists it NEW although it
    filled at once. `hedge cancel` from that state sends the cancel, which the exchange refuses (Coinbase in the
    body of an HTTP 200), and takes the order as the venue reports it: FILLED, its fills ingested, the hedge
    CANCELLED."""
    clock, transport, venue = setup(books, exchange)
    saved = []
    ex = HedgeExecutor(
        {exchange: venue}, clock=clock, sleep=clock.sleep, on_change=lambda s: saved.append(json.dumps(to_dict(s)))
    )
    st = ex.start(HedgePlan("rfq-20251124-0008", SYMBOL, Side.BUY, D(20), 4, 60_000, TS))
    ex.step(st)
    restored = from_dict(HedgeState, json.loads(saved[-1]))
    (order,) = restored.orders
    assert order.status is OrderStatus.NEW and order.order_id
    start = len(transport.requests)
    HedgeExecutor({exchange: ccxt_venue(exchange, transport, clock)}, clock=clock, sleep=clock.sleep).cancel(restored)
    assert cancels(transport, exchange, start) == 1
    assert restored.status is HedgeStatus.CANCELLED
    assert (order.status, order.venue_filled, order.filled) == (OrderStatus.FILLED, order.size, order.size)
    assert restored.filled == order.size == sum(f.size for f in restored.fills)


def test_venue_calls_leave_the_decimal_context_alone(books):
    """ccxt's number formatting (an order's amount and price) sets the thread's decimal context to round half up
    and to trap underflow; a venue call must not leak that into the desk's own roundings afterwards."""
    import decimal

    with decimal.localcontext() as ctx:  # Python's defaults, whatever earlier direct ccxt calls left
        ctx.rounding, ctx.traps[decimal.Underflow] = decimal.ROUND_HALF_EVEN, False
        _, _, venue = setup(books, "binance")
        limit = venue.fetch_order_book(SYMBOL).asks[5].price
        venue.create_order(SYMBOL, Side.BUY, D("0.5"), limit, "ctx1")
        venue.cancel_order(SYMBOL, "ctx1")
        after = decimal.getcontext()
        assert (after.rounding, after.traps[decimal.Underflow]) == (decimal.ROUND_HALF_EVEN, False)
        assert Decimal("12.345").quantize(Decimal("0.01")) == Decimal("12.34")
