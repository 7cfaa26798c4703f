"""The consolidated order book across venues, with each venue's taker fee.

Every level carries its raw price and its *fee-adjusted* price (what a taker really pays or receives per base
unit: ``price × (1 + fee)`` on the asks, ``price × (1 − fee)`` on the bids); each side is sorted best
fee-adjusted price first, and cumulative size and cost arrays are precomputed once per book so that the
fee-adjusted VWAP of any size is a binary search plus one multiplication.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from nexotc_client.desk.models import Book, Side
from nexotc_client.desk.money import BPS, D
from nexotc_client.desk.venues import GuardResult, Venue, apply_guards

__all__ = [
    "Aggregator",
    "ConsolidatedBook",
    "InsufficientDepthError",
    "PreparedBook",
    "Slice",
    "consolidate",
    "walk_vwap",
]


class InsufficientDepthError(ValueError):
    """The consolidated book cannot fill the size on that side."""

    def __init__(self, side: Side, size: Decimal, available: Decimal) -> None:
        super().__init__(f"{side.value} {size} exceeds the available depth {available}")
        self.side, self.size, self.available = side, size, available


@dataclass(frozen=True, slots=True)
class Slice:
    """Part of a sweep: ``size`` from ``venue`` at raw ``price`` (fee-adjusted ``eff_price``)."""

    venue: str
    price: Decimal
    eff_price: Decimal
    size: Decimal


@dataclass(slots=True)
class _Side:
    eff: list[Decimal]  # fee-adjusted prices, best first
    price: list[Decimal]
    size: list[Decimal]
    venue: list[str]
    cum_size: list[Decimal]  # cum_size[i] = sum(size[:i+1])
    cum_cost: list[Decimal]  # fee-adjusted notional
    cum_raw: list[Decimal]  # raw notional

    @property
    def total(self) -> Decimal:
        return self.cum_size[-1] if self.cum_size else Decimal(0)


def _build(levels: list[tuple[Decimal, Decimal, Decimal, str]], descending: bool) -> _Side:
    levels.sort(key=lambda x: x[0], reverse=descending)
    eff = [x[0] for x in levels]
    price = [x[1] for x in levels]
    size = [x[2] for x in levels]
    venue = [x[3] for x in levels]
    cum_size, cum_cost, cum_raw = [], [], []
    s = c = r = Decimal(0)
    for e, p, q in zip(eff, price, size, strict=True):
        s += q
        c += e * q
        r += p * q
        cum_size.append(s)
        cum_cost.append(c)
        cum_raw.append(r)
    return _Side(eff, price, size, venue, cum_size, cum_cost, cum_raw)


@dataclass(slots=True)
class ConsolidatedBook:
    symbol: str
    ts_ms: int
    books: list[Book]
    asks: _Side = field(repr=False)
    bids: _Side = field(repr=False)

    def _side(self, taker: Side) -> _Side:
        return self.asks if taker is Side.BUY else self.bids

    @property
    def best_bid(self) -> Decimal | None:
        """The highest raw bid across venues."""
        return max((b.bids[0].price for b in self.books if b.bids), default=None)

    @property
    def best_ask(self) -> Decimal | None:
        return min((b.asks[0].price for b in self.books if b.asks), default=None)

    @property
    def mid(self) -> Decimal:
        """(best raw bid + best raw ask) / 2 across venues."""
        bid, ask = self.best_bid, self.best_ask
        if bid is None or ask is None:
            raise InsufficientDepthError(Side.BUY if ask is None else Side.SELL, Decimal(0), Decimal(0))
        return (bid + ask) / 2

    def depth(self, taker: Side) -> Decimal:
        """Total size a taker on ``taker`` side can consume."""
        return self._side(taker).total

    def depth_within(self, taker: Side, bps: Decimal) -> Decimal:
        """Displayed size within ``bps`` of the mid (raw prices) on the side a taker consumes."""
        side = self._side(taker)
        mid = self.mid
        if taker is Side.BUY:
            limit = mid * (1 + D(bps) / BPS)
            return sum((q for p, q in zip(side.price, side.size, strict=True) if p <= limit), Decimal(0))
        limit = mid * (1 - D(bps) / BPS)
        return sum((q for p, q in zip(side.price, side.size, strict=True) if p >= limit), Decimal(0))

    def vwap(self, taker: Side, size: Decimal, fee_adjusted: bool = True) -> Decimal:
        """The (fee-adjusted) volume-weighted average price of taking ``size`` on ``taker`` side
        (O(log n): binary search in the cumulative depth). Raises :class:`InsufficientDepthError`."""
        side = self._side(taker)
        if size <= 0:
            raise ValueError("size must be positive")
        i = bisect.bisect_left(side.cum_size, size)
        if i >= len(side.cum_size):
            raise InsufficientDepthError(taker, size, side.total)
        cum = side.cum_cost if fee_adjusted else side.cum_raw
        prices = side.eff if fee_adjusted else side.price
        before_size = side.cum_size[i - 1] if i else Decimal(0)
        before_cost = cum[i - 1] if i else Decimal(0)
        return (before_cost + (size - before_size) * prices[i]) / size

    def sweep(self, taker: Side, size: Decimal, venue_room: dict[str, Decimal] | None = None) -> list[Slice]:
        """The cheapest (fee-adjusted) way to take ``size``: slices per level, best first, merged per venue and
        price; ``venue_room`` caps each venue's total (venues absent from it are uncapped)."""
        side = self._side(taker)
        room = dict(venue_room or {})
        left = size
        out: list[Slice] = []
        for e, p, q, v in zip(side.eff, side.price, side.size, side.venue, strict=True):
            if left <= 0:
                break
            take = min(q, left)
            if v in room:
                take = min(take, room[v])
                if take <= 0:
                    continue
                room[v] -= take
            out.append(Slice(v, p, e, take))
            left -= take
        if left > 0:
            raise InsufficientDepthError(taker, size, size - left)
        return out


@dataclass(slots=True)
class PreparedBook:
    """One venue book with its fee-adjusted levels precomputed (done once when the book arrives): ``asks`` as
    ``(eff, price, size, venue)`` ascending, ``bids`` as ``(-eff, price, size, venue)`` ascending, so both merge
    across venues with :func:`heapq.merge` best first."""

    book: Book
    asks: list[tuple[Decimal, Decimal, Decimal, str]]
    bids: list[tuple[Decimal, Decimal, Decimal, str]]

    @classmethod
    def of(cls, b: Book) -> PreparedBook:
        up = 1 + b.fee_bps / BPS
        down = 1 - b.fee_bps / BPS
        v = b.venue
        return cls(
            b,
            [(lv.price * up, lv.price, lv.size, v) for lv in b.asks],
            [(-(lv.price * down), lv.price, lv.size, v) for lv in b.bids],
        )


def walk_vwap(books: Sequence[PreparedBook], taker: Side, size: Decimal) -> Decimal:
    """Fee-adjusted VWAP of taking ``size`` on ``taker`` side across prepared venue books: a lazy k-way merge
    that stops as soon as the size is filled (touches only the levels it consumes)."""
    if size <= 0:
        raise ValueError("size must be positive")
    runs = [pb.asks for pb in books] if taker is Side.BUY else [pb.bids for pb in books]
    left = size
    cost = Decimal(0)
    for key, _price, q, _v in heapq.merge(*runs):
        if q >= left:
            cost += left * key
            left = Decimal(0)
            break
        cost += q * key
        left -= q
    if left > 0:
        raise InsufficientDepthError(taker, size, size - left)
    return cost / size if taker is Side.BUY else -cost / size


def consolidate(books: Sequence[Book], symbol: str | None = None) -> ConsolidatedBook:
    """Merge venue books into one consolidated book (fee-adjusted, best first)."""
    books = [b for b in books if symbol is None or b.symbol == symbol]
    asks: list[tuple[Decimal, Decimal, Decimal, str]] = []
    bids: list[tuple[Decimal, Decimal, Decimal, str]] = []
    for b in books:
        up = 1 + b.fee_bps / BPS
        down = 1 - b.fee_bps / BPS
        v = b.venue
        asks.extend((lv.price * up, lv.price, lv.size, v) for lv in b.asks)
        bids.extend((lv.price * down, lv.price, lv.size, v) for lv in b.bids)
    sym = symbol or (books[0].symbol if books else "")
    ts = max((b.ts_ms for b in books), default=0)
    return ConsolidatedBook(sym, ts, list(books), _build(asks, False), _build(bids, True))


class Aggregator:
    """Fetches every venue's book for a symbol, applies the staleness and divergence guards and consolidates.
    ``last_guard`` keeps which venues were dropped and why."""

    def __init__(
        self,
        venues: Iterable[Venue],
        *,
        clock: Callable[[], int],
        max_age_ms: int = 5_000,
        max_divergence_bps: Decimal = Decimal(50),
        depth: int | None = None,
    ) -> None:
        self.venues = list(venues)
        self.clock = clock
        self.max_age_ms = max_age_ms
        self.max_divergence_bps = max_divergence_bps
        self.depth = depth
        self.last_guard: GuardResult | None = None

    def books(self, symbol: str) -> list[Book]:
        return [v.fetch_order_book(symbol, self.depth) for v in self.venues]

    def consolidated(self, symbol: str) -> ConsolidatedBook:
        guard = apply_guards(self.books(symbol), self.clock(), self.max_age_ms, self.max_divergence_bps)
        self.last_guard = guard
        return consolidate(guard.kept, symbol)
