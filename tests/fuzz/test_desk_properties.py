"""Property and replay tests of the desk engine (Hypothesis, modest example counts; pure Python)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexotc_client.desk.aggregator import consolidate
from nexotc_client.desk.hedge import HedgeExecutor, recompute_totals
from nexotc_client.desk.models import (
    RFQ,
    Book,
    Booking,
    BookingKind,
    BreakKind,
    ChildOrder,
    Fill,
    HedgePlan,
    HedgeState,
    Level,
    Side,
    from_dict,
    to_dict,
)
from nexotc_client.desk.money import D, MoneyError, bps_of, from_minor, quantize, to_minor
from nexotc_client.desk.quote import QuoteEngine, SizeBeyondDepthError
from nexotc_client.desk.tca import reconcile, tca

TS = 1_763_900_000_000
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_books(seed: int, venues: int = 3, levels: int = 30) -> list[Book]:
    rng = random.Random(seed)
    out = []
    for v in range(venues):
        mid = Decimal(65_000_00 + rng.randint(-300, 300)) / 100
        bids, asks = [], []
        for side, sign in ((asks, 1), (bids, -1)):
            price = mid + sign * Decimal(rng.randint(1, 50)) / 100
            for _ in range(levels):
                side.append(Level(price, Decimal(rng.randint(1, 5 * 10**8)) / 10**8))
                price += sign * Decimal(rng.randint(1, 2000)) / 100
        out.append(Book(f"v{v}", "BTC/USDT", tuple(bids), tuple(asks), TS, Decimal(rng.randint(0, 40))))
    return out


sizes = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(60), places=8)


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    a=sizes,
    b=sizes,
    inventory=st.decimals(min_value=-1000, max_value=1000, places=8),
    vol=st.decimals(min_value=0, max_value=50, places=4),
)
def test_spread_never_narrows_as_size_grows(seed, a, b, inventory, vol):
    books = random_books(seed)
    engine = QuoteEngine(
        books=lambda s: books, clock=lambda: TS, inventory={"BTC": inventory}, vol_bps={"BTC/USDT": vol}
    )
    small, large = sorted((a, b))
    depth = min(consolidate(books).depth(Side.BUY), consolidate(books).depth(Side.SELL))
    if large > depth:
        with pytest.raises(SizeBeyondDepthError):
            engine.quote(RFQ("r", "c", "BTC/USDT", Side.BUY, large, TS))
        return
    q1 = engine.quote(RFQ("r1", "c", "BTC/USDT", Side.BUY, small, TS))
    q2 = engine.quote(RFQ("r2", "c", "BTC/USDT", Side.SELL, large, TS))
    assert q2.ask - q2.bid >= q1.ask - q1.bid
    assert q2.ask >= q1.ask and q2.bid <= q1.bid  # for a fixed inventory, each side only worsens with size


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    extra=st.decimals(min_value=Decimal("0.00000001"), max_value=100, places=8),
    side=st.sampled_from(list(Side)),
)
def test_quotes_beyond_depth_are_refused_and_within_depth_served(seed, extra, side):
    books = random_books(seed)
    engine = QuoteEngine(books=lambda s: books, clock=lambda: TS)
    cb = consolidate(books)
    depth = min(cb.depth(Side.BUY), cb.depth(Side.SELL))
    with pytest.raises(SizeBeyondDepthError):
        engine.quote(RFQ("r", "c", "BTC/USDT", side, depth + extra, TS))
    q = engine.quote(RFQ("r", "c", "BTC/USDT", side, depth, TS))
    assert q.bid < q.ask


@SETTINGS
@given(
    units=st.integers(0, 10**30),
    dp=st.sampled_from([6, 8, 18]),
    bps=st.integers(0, 10_000),
    parts=st.lists(st.integers(0, 10**20), min_size=1, max_size=20),
)
def test_money_arithmetic_is_exact(units, dp, bps, parts):
    amount = from_minor(units, dp)
    assert to_minor(amount, dp) == units
    assert bps_of(amount, bps) * 10_000 == amount * bps
    total = sum((from_minor(p, dp) for p in parts), Decimal(0))
    assert to_minor(total, dp) == sum(parts)
    fee = quantize(bps_of(amount, bps), dp, "ROUND_DOWN")
    assert fee + (amount - fee) == amount and fee <= amount
    for bad in (0.1, float("nan")):
        with pytest.raises(MoneyError):
            D(bad)


def make_state(n_orders: int, fills_per_order: int, seed: int) -> tuple[HedgeState, list[Fill]]:
    rng = random.Random(seed)
    plan = HedgePlan("hp", "BTC/USDT", Side.BUY, Decimal(1000), n_orders, 60_000, TS)
    state = HedgeState(plan=plan, arrival_mid=Decimal(65000))
    state.mids.append((TS, Decimal(65000)))
    fills = []
    for o in range(n_orders):
        venue = f"v{o % 3}"
        order = ChildOrder(f"o{o}", "hp", venue, "BTC/USDT", Side.BUY, Decimal(100), None, TS + o * 60_000, clip=o)
        state.orders.append(order)
        for k in range(fills_per_order):
            fills.append(
                Fill(
                    f"t{o}-{k}",
                    f"o{o}",
                    venue,
                    Side.BUY,
                    Decimal(rng.randint(1, 10**8)) / 10**8,
                    Decimal(rng.randint(6_499_000, 6_501_000)) / 100,
                    Decimal(rng.randint(0, 10**6)) / 10**6,
                    "USDT",
                    TS + o * 60_000 + k,
                )
            )
    return state, fills


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    n_orders=st.integers(1, 6),
    per=st.integers(1, 8),
    dup=st.integers(0, 30),
    cut=st.floats(0, 1),
)
def test_replay_duplicated_out_of_order_late_fills_lose_or_double_nothing(seed, n_orders, per, dup, cut):
    state, fills = make_state(n_orders, per, seed)
    rng = random.Random(seed)
    stream = fills + [rng.choice(fills) for _ in range(dup)]  # duplicates
    rng.shuffle(stream)  # out of order
    late = [fills[i] for i in rng.sample(range(len(fills)), k=len(fills) // 3)]  # arrive again, later
    stream += late
    stream.append(Fill("alien", "other-order", "v0", Side.BUY, Decimal(1), Decimal(1), Decimal(0), "USDT", TS))
    ex = HedgeExecutor({}, clock=lambda: TS, sleep=lambda ms: None)
    split = int(len(stream) * cut)
    ex.ingest(state, stream[:split])
    # a kill and restart in the middle: persist, reload, rebuild, continue
    restored = from_dict(HedgeState, json.loads(json.dumps(to_dict(state))))
    ex2 = HedgeExecutor({}, clock=lambda: TS, sleep=lambda ms: None)
    recompute_totals(restored)
    ex2.ingest(restored, stream[split:])
    ex2.ingest(restored, stream)  # and the whole stream replayed once more
    assert sorted(f.key for f in restored.fills) == sorted(f.key for f in fills)
    assert restored.filled == sum(f.size for f in fills)
    assert restored.notional == sum(f.size * f.price for f in fills)
    assert restored.fees == sum(f.fee for f in fills)
    for o in restored.orders:
        assert o.filled == sum(f.size for f in fills if f.order_id == o.order_id)
    snapshot = (restored.filled, restored.notional, restored.fees)
    recompute_totals(restored)
    assert (restored.filled, restored.notional, restored.fees) == snapshot


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    n_orders=st.integers(1, 5),
    per=st.integers(1, 6),
    side=st.sampled_from(list(Side)),
    decision=st.integers(6_490_000, 6_510_000),
    end=st.integers(6_490_000, 6_510_000),
    target=st.integers(1, 2000),
)
def test_tca_decomposition_sums_to_total_shortfall(seed, n_orders, per, side, decision, end, target):
    state, fills = make_state(n_orders, per, seed)
    state.plan.side = side
    state.plan.target_size = Decimal(target)
    ex = HedgeExecutor({}, clock=lambda: TS, sleep=lambda ms: None)
    ex.ingest(
        state,
        [Fill(f.trade_id, f.order_id, f.venue, side, f.size, f.price, f.fee, f.fee_asset, f.ts_ms) for f in fills],
    )
    r = tca(state, decision_mid=Decimal(decision) / 100, end_mid=Decimal(end) / 100)
    assert r.is_delay + r.is_execution + r.is_opportunity + r.is_fees == r.is_total
    assert sum(r.components_bps().values()) - r.is_total_bps < Decimal("1e-30")
    s = side.sign
    paper = s * (sum(f.size * f.price for f in state.fills) - state.filled * r.decision_mid)
    assert r.is_total == paper + s * (state.plan.target_size - state.filled) * (r.end_mid - r.decision_mid) + r.fees


@SETTINGS
@given(
    seed=st.integers(0, 10**6), kind=st.sampled_from(["quantity", "price", "fee", "timestamp_skew", "missing", "none"])
)
def test_reconciliation_classifies_one_injected_break(seed, kind):
    _, fills = make_state(3, 4, seed)
    rng = random.Random(seed)
    victim = rng.randrange(len(fills))
    bookings = []
    for i, f in enumerate(fills):
        size, price, fee, ts = f.size, f.price, f.fee, f.ts_ms
        if i == victim:
            if kind == "missing":
                continue
            size += Decimal("0.00000001") if kind == "quantity" else 0
            price += Decimal("0.01") if kind == "price" else 0
            fee += Decimal("0.00000001") if kind == "fee" else 0
            ts += 5_001 if kind == "timestamp_skew" else 0
        bookings.append(
            Booking(f"b{i}", BookingKind.HEDGE, f"{f.venue}:{f.trade_id}", "BTC/USDT", f.side, size, price, fee, ts)
        )
    rep = reconcile(bookings, fills)
    if kind == "none":
        assert rep.breaks == [] and rep.matched == len(fills)
    else:
        assert [b.kind for b in rep.breaks] == [BreakKind(kind)]
        assert rep.breaks[0].ref == f"{fills[victim].venue}:{fills[victim].trade_id}"
        assert rep.matched == len(fills) - 1
