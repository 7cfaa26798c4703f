"""A simulated matching venue (:class:`SimVenue`) and a simulated clock. The exchange emulators that serve a
simulated venue through each exchange's raw REST formats are in :mod:`nexotc_client.desk.emulators`.

Model (seeded, deterministic for a seed): the venue's book is a set of levels at fixed offsets from a *fair mid*;
each level has a resting size. A taker order walks the levels best first up to its limit, one fill per level
(IOC: the rest is cancelled). Consumed size **replenishes** toward the level's original size exponentially with
time constant ``replenish_ms``. Each execution pushes the fair mid by a **temporary impact** of
``impact_bps_per_unit`` bps per base unit traded (in the trade's direction) that decays with time constant
``impact_decay_ms``, and moves the fair mid for good by a **permanent impact** of ``permanent_bps_per_unit``.
The fair mid also follows a random walk of ``vol_bps_per_min`` bps per √minute (integer
ppm steps drawn from the seeded RNG; all prices and sizes are exact Decimals). ``late_fill_prob`` withholds
fills from the order's acknowledgement: they appear only in :meth:`SimVenue.fetch_my_trades`, ``late_ms`` later,
which also returns every earlier trade again (duplicates) in shuffled order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from nexotc_client.desk.models import Book, Fill, Level, OrderStatus, Side
from nexotc_client.desk.money import BPS, D, quantize
from nexotc_client.desk.venues import OrderAck, VenueError

__all__ = [
    "SimClock",
    "SimParams",
    "SimVenue",
]

PPM = Decimal(1_000_000)


class SimClock:
    """A simulated clock in milliseconds: call it for the time, :meth:`sleep` to advance it (no real sleep)."""

    def __init__(self, now_ms: int = 0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, ms: int) -> None:
        self.now_ms += max(0, int(ms))


@dataclass(slots=True)
class SimParams:
    replenish_ms: int = 20_000
    impact_bps_per_unit: Decimal = Decimal("0.15")
    impact_decay_ms: int = 30_000
    permanent_bps_per_unit: Decimal = Decimal("0.05")
    vol_bps_per_min: Decimal = Decimal(3)
    late_fill_prob: float = 0.0
    late_ms: int = 2_000
    size_dp: int = 8
    #: prices are on a tick of 10^-price_dp (Kraken's BTC/USDT tick is 0.1: price_dp=1)
    price_dp: int = 2


@dataclass(slots=True)
class _Trade:
    fill: Fill
    visible_ms: int


@dataclass(slots=True)
class _SymbolState:
    fair_mid: Decimal
    impact: Decimal  # temporary impact, a relative price shift (fraction)
    ask_off: list[Decimal]  # relative offsets from the fair mid (ask: positive)
    bid_off: list[Decimal]  # (bid: positive, subtracted)
    ask_orig: list[Decimal]
    bid_orig: list[Decimal]
    ask_size: list[Decimal]
    bid_size: list[Decimal]
    t_ms: int
    depleted: dict[str, set[int]] = field(default_factory=lambda: {"ask": set(), "bid": set()})


@dataclass
class SimVenue:
    """A seeded simulated venue built from initial books (one per symbol)."""

    name: str
    books: list[Book]
    clock: Callable[[], int]
    seed: int = 0
    params: SimParams = field(default_factory=SimParams)
    fee_bps: Decimal | None = None
    #: the account's id at the venue: order and trade ids are ``<name>-<account>-o<n>`` / ``-t<n>``, unique
    #: across every simulated venue instance that has its own account (as a real venue's are across sessions);
    #: empty: ``<name>-o<n>`` (ids then restart with every instance)
    account: str = ""

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.name}/{self.seed}")
        self._sym: dict[str, _SymbolState] = {}
        self._fee = {b.symbol: (self.fee_bps if self.fee_bps is not None else b.fee_bps) for b in self.books}
        now = self.clock()
        for b in self.books:
            mid = b.mid
            if mid is None:
                raise VenueError(f"{self.name}: one-sided initial book for {b.symbol}")
            self._sym[b.symbol] = _SymbolState(
                fair_mid=mid,
                impact=Decimal(0),
                ask_off=[(lv.price - mid) / mid for lv in b.asks],
                bid_off=[(mid - lv.price) / mid for lv in b.bids],
                ask_orig=[lv.size for lv in b.asks],
                bid_orig=[lv.size for lv in b.bids],
                ask_size=[lv.size for lv in b.asks],
                bid_size=[lv.size for lv in b.bids],
                t_ms=now,
            )
        self._orders: dict[str, OrderAck] = {}
        self._trades: list[_Trade] = []
        self._seq = 0
        self._id_prefix = f"{self.name}-{self.account}-" if self.account else f"{self.name}-"

    # dynamics -----------------------------------------------------------------------------------------------

    def _advance(self, symbol: str) -> _SymbolState:
        st = self._sym.get(symbol)
        if st is None:
            raise VenueError(f"{self.name}: unknown symbol {symbol}")
        now = self.clock()
        dt = now - st.t_ms
        if dt <= 0:
            return st
        p = self.params
        # random walk: sigma (ppm) = vol_bps × 100 × sqrt(dt / 60 000); integer ppm step from the seeded RNG
        sigma_ppm = float(p.vol_bps_per_min) * 100 * (dt / 60_000) ** 0.5
        step = int(round(self.rng.gauss(0.0, sigma_ppm))) if sigma_ppm > 0 else 0
        st.fair_mid = st.fair_mid * (1 + Decimal(step) / PPM)
        decay_imp = (Decimal(-dt) / Decimal(p.impact_decay_ms)).exp()
        st.impact = st.impact * decay_imp
        keep = (Decimal(-dt) / Decimal(p.replenish_ms)).exp()
        q = Decimal(1).scaleb(-p.size_dp)
        for name, sizes, orig in (("ask", st.ask_size, st.ask_orig), ("bid", st.bid_size, st.bid_orig)):
            dep = st.depleted[name]
            for i in list(dep):
                o = orig[i]
                sizes[i] = (o - (o - sizes[i]) * keep).quantize(q)
                if sizes[i] >= o:
                    sizes[i] = o
                    dep.discard(i)
        st.t_ms = now
        return st

    def mid(self, symbol: str) -> Decimal:
        st = self._advance(symbol)
        return st.fair_mid * (1 + st.impact)

    def fetch_order_book(self, symbol: str, depth: int | None = None) -> Book:
        st = self._advance(symbol)
        m = st.fair_mid * (1 + st.impact)
        n = depth or len(st.ask_off)
        dp = self.params.price_dp
        asks = tuple(
            Level(quantize(m * (1 + o), dp), s) for o, s in zip(st.ask_off[:n], st.ask_size[:n], strict=True) if s > 0
        )
        bids = tuple(
            Level(quantize(m * (1 - o), dp), s) for o, s in zip(st.bid_off[:n], st.bid_size[:n], strict=True) if s > 0
        )
        return Book(self.name, symbol, bids, asks, self.clock(), self._fee[symbol])

    # execution ----------------------------------------------------------------------------------------------

    def create_order(
        self, symbol: str, side: Side, size: Decimal, limit_price: Decimal | None, client_order_id: str
    ) -> OrderAck:
        if client_order_id in self._orders:
            raise VenueError(f"{self.name}: duplicate client order id {client_order_id}")
        size = D(size)
        if size <= 0:
            raise VenueError(f"{self.name}: size must be positive")
        st = self._advance(symbol)
        now = self.clock()
        self._seq += 1
        order_id = f"{self._id_prefix}o{self._seq}"
        m = st.fair_mid * (1 + st.impact)
        offs, sizes = (st.ask_off, st.ask_size) if side is Side.BUY else (st.bid_off, st.bid_size)
        dep = st.depleted["ask" if side is Side.BUY else "bid"]
        left = size
        fills: list[Fill] = []
        late: list[Fill] = []
        fee_rate = self._fee[symbol] / BPS
        for i, o in enumerate(offs):
            if left <= 0:
                break
            avail = sizes[i]
            if avail <= 0:
                continue
            price = quantize(m * (1 + o) if side is Side.BUY else m * (1 - o), self.params.price_dp)
            if limit_price is not None and (price > limit_price if side is Side.BUY else price < limit_price):
                break
            take = min(avail, left)
            sizes[i] = avail - take
            dep.add(i)
            left -= take
            self._seq += 1
            f = Fill(
                trade_id=f"{self._id_prefix}t{self._seq}",
                order_id=order_id,
                venue=self.name,
                side=side,
                size=take,
                price=price,
                fee=quantize(take * price * fee_rate, 8),
                fee_asset=symbol.split("/")[1],
                ts_ms=now,
                symbol=symbol,
            )
            if self.params.late_fill_prob and self.rng.random() < self.params.late_fill_prob:
                late.append(f)
                self._trades.append(_Trade(f, now + self.params.late_ms))
            else:
                fills.append(f)
                self._trades.append(_Trade(f, now))
        filled = size - left
        # temporary impact in the trade's direction
        st.impact += side.sign * self.params.impact_bps_per_unit * filled / BPS
        st.fair_mid *= 1 + side.sign * self.params.permanent_bps_per_unit * filled / BPS
        status = OrderStatus.FILLED if left == 0 else OrderStatus.CANCELED
        ack = OrderAck(order_id, client_order_id, status, filled, fills)
        self._orders[client_order_id] = ack
        return ack

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderAck | None:
        ack = self._orders.get(client_order_id)
        if ack is None:
            return None
        return OrderAck(ack.order_id, ack.client_order_id, ack.status, ack.filled, list(ack.fills))

    def cancel_order(self, symbol: str, client_order_id: str, order_id: str | None = None) -> OrderAck | None:
        """Cancel an order still open (the simulated orders are immediate-or-cancel: none stays open, so this
        answers the order's final state); None when the venue does not know the order."""
        ack = self._orders.get(client_order_id)
        if ack is None:
            return None
        if ack.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            ack.status = OrderStatus.CANCELED
        return self.fetch_order(symbol, client_order_id)

    def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        """Every visible trade of the symbol since ``since_ms`` (duplicates of acknowledged fills, shuffled)."""
        now = self.clock()
        out = [
            t.fill
            for t in self._trades
            if t.visible_ms <= now and t.fill.symbol == symbol and (since_ms is None or t.fill.ts_ms >= since_ms)
        ]
        self.rng.shuffle(out)
        return out
