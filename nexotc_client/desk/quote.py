"""The quote engine: a two-way quote for an RFQ, and its FIX-like life cycle.

For an RFQ of ``size`` (base units) the engine walks the consolidated venue books (fee-adjusted VWAP of the whole
size on each side), then widens each side by the size tier's half-spread and the volatility add-on and shifts both
sides by the inventory skew::

    ask = VWAP_buy(size)  + mid × (half_spread_bps(size) + vol_addon_bps + skew_bps) / 10 000   (rounded up)
    bid = VWAP_sell(size) − mid × (half_spread_bps(size) + vol_addon_bps − skew_bps) / 10 000   (rounded down)

``skew_bps = −clamp(inventory × skew_bps_per_unit, ±max_skew_bps)``: a long desk lowers both prices (it would
rather sell). The skew moves both sides by the same amount, so the quoted spread (ask − bid) only depends on
the size: the walk's VWAPs separate as size grows, the tiers never decrease, and rounding is monotone — the
spread never narrows as the size grows. A size beyond the available depth on either side is refused
(:class:`SizeBeyondDepthError`).

States (FIX QuoteStatus-like; :meth:`QuoteEngine.request` + :meth:`QuoteEngine.respond`, or
:meth:`QuoteEngine.quote` in one call): REQUESTED → QUOTED → ACCEPTED | COUNTERED | EXPIRED | REJECTED; COUNTERED →
QUOTED (re-quote) | ACCEPTED (the desk takes the counter) | EXPIRED | REJECTED. Any other move raises
:class:`IllegalTransitionError`; accepting after the TTL expires the quote and raises :class:`QuoteExpiredError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from nexotc_client.desk.aggregator import InsufficientDepthError, PreparedBook, walk_vwap
from nexotc_client.desk.models import RFQ, Book, Quote, QuoteComponents, QuoteState, Side
from nexotc_client.desk.money import BPS, MAX_DECIMALS, MAX_INTEGER_DIGITS, PRICE_DP, D, in_range, quantize_price
from nexotc_client.desk.venues import apply_guards

__all__ = [
    "IllegalTransitionError",
    "NoMarketDataError",
    "QuoteConfig",
    "QuoteEngine",
    "QuoteError",
    "QuoteExpiredError",
    "CounterOutsideToleranceError",
    "SizeBeyondDepthError",
    "counter_giveaway_bps",
    "utc_ms",
    "TRANSITIONS",
    "realised_vol_bps",
]


class QuoteError(RuntimeError):
    """Base of the quote engine's named errors."""


class SizeBeyondDepthError(QuoteError):
    """The RFQ's size exceeds the depth the guarded venues show on one side."""


class NoMarketDataError(QuoteError):
    """No venue book passed the staleness and divergence guards."""


class IllegalTransitionError(QuoteError):
    """A quote state change that the life cycle does not allow (e.g. accepting a rejected quote)."""


class QuoteExpiredError(QuoteError):
    """The quote's TTL passed before the action."""


class CounterOutsideToleranceError(QuoteError):
    """The desk was asked to accept a client's counter that gives away more than its tolerance."""


TRANSITIONS: dict[QuoteState, frozenset[QuoteState]] = {
    QuoteState.REQUESTED: frozenset({QuoteState.QUOTED, QuoteState.REJECTED}),
    QuoteState.QUOTED: frozenset({QuoteState.ACCEPTED, QuoteState.COUNTERED, QuoteState.EXPIRED, QuoteState.REJECTED}),
    QuoteState.COUNTERED: frozenset({QuoteState.QUOTED, QuoteState.ACCEPTED, QuoteState.EXPIRED, QuoteState.REJECTED}),
    QuoteState.ACCEPTED: frozenset(),
    QuoteState.EXPIRED: frozenset(),
    QuoteState.REJECTED: frozenset(),
}


@dataclass(slots=True)
class QuoteConfig:
    """``tiers``: (minimum size, half-spread bps) ascending in size with non-decreasing spreads;
    ``vol_coef``: the add-on per bp of realised volatility; ``skew_bps_per_unit``: skew per base unit of
    inventory, capped at ``max_skew_bps``; ``ttl_ms``: the quote's life; guards as in the aggregator."""

    tiers: tuple[tuple[Decimal, Decimal], ...] = (
        (Decimal(0), Decimal(2)),
        (Decimal(10), Decimal(4)),
        (Decimal(50), Decimal(7)),
        (Decimal(100), Decimal(10)),
        (Decimal(250), Decimal(15)),
    )
    vol_coef: Decimal = Decimal("0.5")
    skew_bps_per_unit: Decimal = Decimal("0.02")
    max_skew_bps: Decimal = Decimal(10)
    ttl_ms: int = 15_000
    max_age_ms: int = 5_000
    max_divergence_bps: Decimal = Decimal(50)

    def __post_init__(self) -> None:
        sizes = [t[0] for t in self.tiers]
        spreads = [t[1] for t in self.tiers]
        if not self.tiers or sizes[0] != 0 or sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
            raise ValueError("tiers must start at size 0 and ascend strictly in size")
        if any(b < a for a, b in itertools.pairwise(spreads)) or spreads[0] < 0:
            raise ValueError("tier spreads must be non-negative and never decrease with size")

    def half_spread_bps(self, size: Decimal) -> Decimal:
        out = self.tiers[0][1]
        for min_size, bps in self.tiers:
            if size >= min_size:
                out = bps
        return out


def realised_vol_bps(mids: Sequence[Decimal]) -> Decimal:
    """The standard deviation of successive mid returns, in bps (0 with fewer than 3 mids); exact Decimal
    arithmetic up to the final square root (``Decimal.sqrt``)."""
    if len(mids) < 3:
        return Decimal(0)
    rets = [(b - a) / a * BPS for a, b in itertools.pairwise(mids)]
    mean = sum(rets, Decimal(0)) / len(rets)
    var = sum(((r - mean) ** 2 for r in rets), Decimal(0)) / (len(rets) - 1)
    return var.sqrt()


def utc_ms(ms: int) -> str:
    """Epoch milliseconds as an ISO-8601 UTC time with milliseconds (``2024-05-01T12:00:00.250Z``); a time beyond
    the calendar's years 1 to 9999 (a record written before TTLs were bounded) as the bound it passes."""
    from datetime import UTC, datetime, timedelta

    try:
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError:
        return "after 9999-12-31T23:59:59.999Z" if ms > 0 else "before 0001-01-01T00:00:00.000Z"
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _bps_text(value: Decimal) -> str:
    """Basis points to 2 decimals for a message, however large (a counter far off the quoted price)."""
    try:
        return str(value.quantize(Decimal("0.01"), context=Context(prec=60, rounding=ROUND_HALF_EVEN)))
    except InvalidOperation:
        return f"{value:.2E}"


#: a counter this far (bps) in the desk's favour is worse for the client than its own quote by a margin no
#: client asks for on purpose: `quote counter` and `quote accept` warn (a fat finger, e.g. 2E3 for 3,400)
FAT_FINGER_BPS = Decimal(500)


def counter_giveaway_bps(quote: Quote) -> Decimal:
    """How far the client's counter is from the desk's quoted price, in bps of that price, in the client's
    favour (positive: the desk gives that much away; negative: the counter is better for the desk).
    A client BUY countering below the ask, or a client SELL countering above the bid, gives away."""
    if quote.counter_price is None:
        return Decimal(0)
    if quote.price <= 0:
        raise QuoteError(f"quote {quote.quote_id} has no price to compare the counter with")
    moved = quote.price - quote.counter_price if quote.side is Side.BUY else quote.counter_price - quote.price
    return moved / quote.price * BPS


@dataclass(slots=True)
class QuoteEngine:
    """``books``: returns the current venue books of a symbol; ``clock``: milliseconds; ``inventory``: the desk's
    position per base asset (signed base units); ``vol_bps``: the realised volatility per symbol (bps)."""

    books: Callable[[str], Sequence[Book]]
    clock: Callable[[], int]
    config: QuoteConfig = field(default_factory=QuoteConfig)
    inventory: dict[str, Decimal] = field(default_factory=dict)
    vol_bps: dict[str, Decimal] = field(default_factory=dict)
    _prepared: dict[tuple[str, str], tuple[int, int, PreparedBook]] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def _prepare(self, books: Sequence[Book]) -> list[PreparedBook]:
        out = []
        for b in books:
            key = (b.venue, b.symbol)
            hit = self._prepared.get(key)
            if hit is None or hit[0] != id(b) or hit[1] != b.ts_ms:
                hit = (id(b), b.ts_ms, PreparedBook.of(b))
                self._prepared[key] = hit
            out.append(hit[2])
        return out

    def skew_bps(self, symbol: str) -> Decimal:
        inv = self.inventory.get(symbol.split("/")[0], Decimal(0))
        cap = self.config.max_skew_bps
        return -max(-cap, min(cap, inv * self.config.skew_bps_per_unit))

    def price(self, symbol: str, size: Decimal) -> tuple[Decimal, Decimal, Decimal, QuoteComponents]:
        """(bid, ask, mid, components) of a two-way quote for ``size`` (raises :class:`SizeBeyondDepthError`)."""
        size = D(size)
        if size <= 0:
            raise QuoteError(f"size must be positive, not {size}")
        cfg = self.config
        guard = apply_guards(self.books(symbol), self.clock(), cfg.max_age_ms, cfg.max_divergence_bps)
        if not guard.kept:
            raise NoMarketDataError(f"{symbol}: no usable venue ({guard.dropped})")
        prepared = self._prepare(guard.kept)
        try:
            ask_vwap = walk_vwap(prepared, Side.BUY, size)
            bid_vwap = walk_vwap(prepared, Side.SELL, size)
        except InsufficientDepthError as exc:
            raise SizeBeyondDepthError(
                f"{symbol}: {size} exceeds the depth on the {'ask' if exc.side is Side.BUY else 'bid'} side "
                f"({exc.available} available on {len(prepared)} venues)"
            ) from exc
        best_bid = max(b.bids[0].price for b in guard.kept)
        best_ask = min(b.asks[0].price for b in guard.kept)
        mid = (best_bid + best_ask) / 2
        half = cfg.half_spread_bps(size)
        vol = cfg.vol_coef * self.vol_bps.get(symbol, Decimal(0))
        skew = self.skew_bps(symbol)
        ask = quantize_price(ask_vwap + mid * (half + vol + skew) / BPS, ROUND_CEILING)
        bid = quantize_price(bid_vwap - mid * (half + vol - skew) / BPS, ROUND_FLOOR)
        comps = QuoteComponents(
            vwap=Decimal(0), spread_bps=half, vol_addon_bps=vol, skew_bps=skew, bid_vwap=bid_vwap, ask_vwap=ask_vwap
        )
        return bid, ask, mid, comps

    def quote(self, rfq: RFQ) -> Quote:
        """A QUOTED two-way quote for the RFQ (``price``: the ask for a client BUY, the bid for a SELL)."""
        bid, ask, mid, comps = self.price(rfq.symbol, rfq.size)
        side_vwap = comps.ask_vwap if rfq.side is Side.BUY else comps.bid_vwap
        now = self.clock()
        return Quote(
            quote_id=f"{rfq.rfq_id}-q{next(self._seq)}",
            rfq_id=rfq.rfq_id,
            symbol=rfq.symbol,
            side=rfq.side,
            size=rfq.size,
            bid=bid,
            ask=ask,
            price=ask if rfq.side is Side.BUY else bid,
            mid=quantize_price(mid, dp=PRICE_DP + 2),
            components=replace(comps, vwap=side_vwap),
            created_ms=now,
            ttl_ms=self.config.ttl_ms,
            state=QuoteState.QUOTED,
            updated_ms=now,
        )

    def request(self, rfq: RFQ) -> Quote:
        """The RFQ received, not priced yet: a REQUESTED quote (no prices) to answer with :meth:`respond`."""
        now = self.clock()
        zero = Decimal(0)
        return Quote(
            quote_id=f"{rfq.rfq_id}-q{next(self._seq)}",
            rfq_id=rfq.rfq_id,
            symbol=rfq.symbol,
            side=rfq.side,
            size=rfq.size,
            bid=zero,
            ask=zero,
            price=zero,
            mid=zero,
            components=QuoteComponents(zero, zero, zero, zero),
            created_ms=now,
            ttl_ms=self.config.ttl_ms,
            state=QuoteState.REQUESTED,
            updated_ms=now,
        )

    def respond(self, quote: Quote) -> Quote:
        """Price a REQUESTED quote (→ QUOTED, its TTL starting now). A size the books cannot serve, or no usable
        market data, rejects it (→ REJECTED with the reason) and raises the named error."""
        now = self.clock()
        if quote.state is not QuoteState.REQUESTED:
            raise IllegalTransitionError(f"quote {quote.quote_id}: {quote.state.value} -> quoted is not allowed")
        try:
            bid, ask, mid, comps = self.price(quote.symbol, quote.size)
        except QuoteError as exc:
            self._move(quote, QuoteState.REJECTED, now, str(exc))
            raise
        self._move(quote, QuoteState.QUOTED, now)
        quote.bid, quote.ask, quote.mid = bid, ask, quantize_price(mid, dp=PRICE_DP + 2)
        quote.price = ask if quote.side is Side.BUY else bid
        quote.components = replace(comps, vwap=comps.ask_vwap if quote.side is Side.BUY else comps.bid_vwap)
        quote.created_ms = now
        return quote

    # life cycle -------------------------------------------------------------------------------------------

    @staticmethod
    def _move(quote: Quote, to: QuoteState, now: int, reason: str = "") -> Quote:
        if to not in TRANSITIONS[quote.state]:
            raise IllegalTransitionError(f"quote {quote.quote_id}: {quote.state.value} -> {to.value} is not allowed")
        quote.state = to
        quote.updated_ms = now
        if reason:
            quote.reason = reason
        return quote

    def _live(self, quote: Quote, now: int) -> None:
        if quote.state in (QuoteState.QUOTED, QuoteState.COUNTERED) and now > quote.expires_ms:
            self._move(quote, QuoteState.EXPIRED, now, "ttl")
            raise QuoteExpiredError(
                f"quote {quote.quote_id} expired at {utc_ms(quote.expires_ms)} ({now - quote.expires_ms} ms ago)"
            )

    def expire(self, quote: Quote) -> bool:
        """Expire the quote if its TTL passed; True if it is (now) EXPIRED."""
        now = self.clock()
        if quote.state in (QuoteState.QUOTED, QuoteState.COUNTERED) and now > quote.expires_ms:
            self._move(quote, QuoteState.EXPIRED, now, "ttl")
        return quote.state is QuoteState.EXPIRED

    def accept(
        self, quote: Quote, max_giveaway_bps: Decimal | None = None, override_price: Decimal | None = None
    ) -> Quote:
        """Within the TTL: a QUOTED quote is accepted by the client at the desk's price; a COUNTERED quote is
        the desk accepting the client's counter, which it does only when the counter gives away at most
        `max_giveaway_bps` of the quoted price (default: the quote's half-spread, the margin over the
        venues' cost) — or when `override_price` names exactly the counter price (an explicit desk decision).
        """
        now = self.clock()
        self._live(quote, now)
        if quote.state is QuoteState.COUNTERED and quote.counter_price is not None:
            if not in_range(quote.counter_price):  # recorded before counters were bounded: never lockable
                raise QuoteError(
                    f"quote {quote.quote_id}: the counter {quote.counter_price:.2E} is out of range (at most "
                    f"{MAX_INTEGER_DIGITS} digits before the decimal point and {MAX_DECIMALS} after): reject it"
                )
            giveaway = counter_giveaway_bps(quote)
            limit = quote.components.spread_bps if max_giveaway_bps is None else D(max_giveaway_bps)
            if limit < 0:
                raise QuoteError("the counter tolerance must not be negative")
            if override_price is not None and D(override_price) != quote.counter_price:
                raise QuoteError(
                    f"quote {quote.quote_id}: the override names {override_price} but the counter is "
                    f"{quote.counter_price}"
                )
            if giveaway > limit and override_price is None:
                raise CounterOutsideToleranceError(
                    f"quote {quote.quote_id}: the counter {quote.counter_price} is "
                    f"{_bps_text(giveaway)} bps through the desk's price {quote.price} "
                    f"(tolerance {limit} bps); to take it anyway: --override-price {quote.counter_price}"
                )
            self._move(quote, QuoteState.ACCEPTED, now)
            if giveaway < 0:  # the client's counter is better for the desk than its own price
                how = f"{_bps_text(-giveaway)} bps in the desk's favour"
            else:
                how = "override" if giveaway > limit else f"within {limit} bps"
            quote.reason = f"desk accepted the counter {quote.counter_price} (quoted {quote.price}; {how})"
            quote.price = quote.counter_price
            return quote
        self._move(quote, QuoteState.ACCEPTED, now)
        return quote

    def counter(self, quote: Quote, price: Decimal) -> Quote:
        """The client counters with ``price``."""
        now = self.clock()
        self._live(quote, now)
        price = D(price)
        if price <= 0:
            raise QuoteError("counter price must be positive")
        if not in_range(price):
            raise QuoteError(
                f"counter price out of range (at most {MAX_INTEGER_DIGITS} digits before the decimal point and "
                f"{MAX_DECIMALS} after)"
            )
        self._move(quote, QuoteState.COUNTERED, now)
        quote.counter_price = price
        return quote

    def requote(self, quote: Quote) -> Quote:
        """Answer a counter with fresh prices (back to QUOTED, a new TTL)."""
        now = self.clock()
        if QuoteState.QUOTED not in TRANSITIONS[quote.state]:
            raise IllegalTransitionError(f"quote {quote.quote_id}: {quote.state.value} -> quoted is not allowed")
        bid, ask, mid, comps = self.price(quote.symbol, quote.size)
        self._move(quote, QuoteState.QUOTED, now)
        quote.bid, quote.ask, quote.mid = bid, ask, quantize_price(mid, dp=PRICE_DP + 2)
        quote.price = ask if quote.side is Side.BUY else bid
        quote.components = replace(comps, vwap=comps.ask_vwap if quote.side is Side.BUY else comps.bid_vwap)
        quote.counter_price = None
        quote.created_ms = now
        return quote

    def reject(self, quote: Quote, reason: str = "") -> Quote:
        return self._move(quote, QuoteState.REJECTED, self.clock(), reason or "rejected")
