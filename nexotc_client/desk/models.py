"""Plain dataclasses shared by the desk engine's modules (and persisted as they are by the desk store).

Every money field is a ``Decimal`` (see :mod:`nexotc_client.desk.money`); every time is integer
milliseconds since the epoch (``*_ms``). :func:`to_dict` / :func:`from_dict` turn any of these into JSON-safe
dicts (Decimal as str, enums as their value) and back, losslessly.

Sides are from the point of view of whoever sends the message: an :class:`RFQ`'s side is the client's (BUY:
the client buys, the desk sells and hedges by buying on venues); a :class:`ChildOrder`'s or a :class:`Fill`'s
side is the desk's on the venue.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

__all__ = [
    "RFQ",
    "Book",
    "Booking",
    "BookingKind",
    "Break",
    "BreakKind",
    "ChildOrder",
    "Fill",
    "HedgePlan",
    "HedgeState",
    "HedgeStatus",
    "Level",
    "OrderStatus",
    "Quote",
    "QuoteComponents",
    "QuoteState",
    "SettlementRecord",
    "Side",
    "from_dict",
    "to_dict",
]


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL (a cost is ``sign × (price − reference)``)."""
        return 1 if self is Side.BUY else -1


@dataclass(frozen=True, slots=True)
class Level:
    """One price level: ``size`` base units at ``price`` quote units per base unit."""

    price: Decimal
    size: Decimal


@dataclass(slots=True)
class Book:
    """One venue's order book for one symbol (``"BTC/USDT"``): bids best (highest) first, asks best (lowest)
    first; ``fee_bps`` is the venue's taker fee."""

    venue: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_ms: int
    fee_bps: Decimal = Decimal(0)

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) / 2

    def side_levels(self, taker_side: Side) -> tuple[Level, ...]:
        """The levels a taker on ``taker_side`` consumes (asks for a BUY, bids for a SELL)."""
        return self.asks if taker_side is Side.BUY else self.bids


@dataclass(frozen=True, slots=True)
class RFQ:
    """A client's request for quote: the client wants to ``side`` ``size`` of ``symbol``'s base asset."""

    rfq_id: str
    client: str
    symbol: str
    side: Side
    size: Decimal
    ts_ms: int


class QuoteState(enum.StrEnum):
    """FIX-like quote states (QuoteStatus): REQUESTED → QUOTED → ACCEPTED | COUNTERED | EXPIRED | REJECTED;
    COUNTERED → QUOTED (re-quoted) | ACCEPTED | REJECTED | EXPIRED."""

    REQUESTED = "requested"
    QUOTED = "quoted"
    ACCEPTED = "accepted"
    COUNTERED = "countered"
    EXPIRED = "expired"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class QuoteComponents:
    """How a quote was built. ``vwap`` is the fee-adjusted VWAP of the hedge side for the size;
    ``spread_bps`` the size tier's half-spread, ``vol_addon_bps`` the volatility add-on, ``skew_bps`` the
    inventory skew (added to both sides' prices: negative when the desk is long and would rather sell)."""

    vwap: Decimal
    spread_bps: Decimal
    vol_addon_bps: Decimal
    skew_bps: Decimal
    bid_vwap: Decimal = Decimal(0)
    ask_vwap: Decimal = Decimal(0)


@dataclass(slots=True)
class Quote:
    """A two-way quote for an RFQ. ``price`` is the price on the RFQ's side (the ask for a client BUY, the bid
    for a client SELL); ``counter_price`` the client's counter, if any."""

    quote_id: str
    rfq_id: str
    symbol: str
    side: Side
    size: Decimal
    bid: Decimal
    ask: Decimal
    price: Decimal
    mid: Decimal
    components: QuoteComponents
    created_ms: int
    ttl_ms: int
    state: QuoteState = QuoteState.QUOTED
    counter_price: Decimal | None = None
    updated_ms: int = 0
    reason: str = ""

    @property
    def expires_ms(self) -> int:
        return self.created_ms + self.ttl_ms

    def state_at(self, now_ms: int) -> QuoteState:
        """The state as of `now_ms`, read only: a QUOTED or COUNTERED quote whose TTL passed is EXPIRED (the
        stored state says so once someone acts on it: the engine then records the expiry)."""
        if self.state in (QuoteState.QUOTED, QuoteState.COUNTERED) and now_ms > self.expires_ms:
            return QuoteState.EXPIRED
        return self.state


class OrderStatus(enum.StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


@dataclass(slots=True)
class ChildOrder:
    """One order the hedge executor sent to a venue (``side`` is the desk's side on the venue).
    ``filled``/``notional``/``fees`` are sums over its distinct fills (fees in the quote asset)."""

    order_id: str
    parent_id: str
    venue: str
    symbol: str
    side: Side
    size: Decimal
    limit_price: Decimal | None
    ts_ms: int
    status: OrderStatus = OrderStatus.NEW
    clip: int = 0
    client_order_id: str = ""
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    venue_filled: Decimal = Decimal(0)  # the filled quantity the venue reported for the order (fills may lag)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution reported by a venue; ``trade_id`` is unique per venue (dedupe key: venue + trade_id)."""

    trade_id: str
    order_id: str
    venue: str
    side: Side
    size: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    ts_ms: int
    symbol: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.trade_id)


@dataclass(slots=True)
class HedgePlan:
    """What to hedge and how: ``target_size`` base units on ``side`` (the desk's side on venues), in
    ``clips`` TWAP slices every ``interval_ms`` from ``start_ms``. ``participation_cap`` (e.g. 0.1) caps a
    clip to that fraction of the displayed depth within ``participation_band_bps`` of the mid across the
    venues; ``venue_caps`` caps each venue's total size; ``limit_bps`` bounds each child order's price to that
    far through the arrival mid (None: no limit)."""

    parent_id: str
    symbol: str
    side: Side
    target_size: Decimal
    clips: int
    interval_ms: int
    start_ms: int
    venues: tuple[str, ...] = ()
    participation_cap: Decimal | None = None
    participation_band_bps: Decimal = Decimal(50)
    venue_caps: dict[str, Decimal] = field(default_factory=dict)
    limit_bps: Decimal | None = None


class HedgeStatus(enum.StrEnum):
    """PENDING/RUNNING: active (resumable). The rest are terminal: DONE (the target filled), PARTIAL (every clip
    sent and settled, a residual left unfilled), STOPPED (reported fills never arrived within the wait),
    CANCELLED (by `nexotc hedge cancel`: open orders cancelled, nothing more is sent)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    STOPPED = "stopped"
    PARTIAL = "partial"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (HedgeStatus.PENDING, HedgeStatus.RUNNING)


@dataclass(slots=True)
class HedgeState:
    """The whole state of one hedge: its plan, progress, child orders and distinct fills. Persist it (plus
    its orders and fills) after each step and :meth:`nexotc_client.desk.hedge.HedgeExecutor.resume` continues
    without re-sending an order or counting a fill twice."""

    plan: HedgePlan
    status: HedgeStatus = HedgeStatus.PENDING
    next_clip: int = 0
    arrival_mid: Decimal | None = None
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    orders: list[ChildOrder] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    venue_filled: dict[str, Decimal] = field(default_factory=dict)
    mids: list[tuple[int, Decimal]] = field(default_factory=list)
    updated_ms: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.plan.target_size - self.filled

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None


class BookingKind(enum.StrEnum):
    HEDGE = "hedge"  # the desk's booking of one hedge fill (ref = the venue trade id)
    SETTLEMENT = "settlement"  # the desk's booking of one client settlement leg (ref = deal/tranche ref)


@dataclass(frozen=True, slots=True)
class Booking:
    """An internal booking. HEDGE: ref is ``venue:trade_id`` of the fill it books. SETTLEMENT: ref names the
    settlement (e.g. ``quote_id/tranche``) and ``tx_hash`` is the transaction the desk expects on chain."""

    booking_id: str
    kind: BookingKind
    ref: str
    symbol: str
    side: Side
    size: Decimal
    price: Decimal
    fee: Decimal
    ts_ms: int
    tx_hash: str = ""


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """An on-chain settlement observed on chain: ``base_amount`` against ``quote_amount`` (decimal units),
    ``fee`` taken in the fee leg, in ``tx_hash`` at ``ts_ms``."""

    ref: str
    base_amount: Decimal
    quote_amount: Decimal
    fee: Decimal
    ts_ms: int
    tx_hash: str
    chain_id: int = 0
    deal: str = ""
    block: int = 0


class BreakKind(enum.StrEnum):
    MISSING = "missing"
    QUANTITY = "quantity"
    PRICE = "price"
    FEE = "fee"
    TIMESTAMP_SKEW = "timestamp_skew"
    TX_HASH = "tx_hash"


@dataclass(frozen=True, slots=True)
class Break:
    """One reconciliation break: ``ref`` disagrees between ``left`` and ``right`` sources on ``kind``."""

    kind: BreakKind
    ref: str
    left: str
    right: str
    expected: str
    actual: str
    detail: str = ""


# --- (de)serialisation ------------------------------------------------------------------------------------

T = TypeVar("T")


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-safe dict of a desk dataclass (Decimal → str, enum → value, nested dataclasses as dicts)."""
    return _encode(obj)


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], value)
    if tp is Decimal:
        return Decimal(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return [_decode(arg, v) for v in value]
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return {_decode(kt, k): _decode(vt, v) for k, v in value.items()}
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of :func:`to_dict` for a desk dataclass type."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _decode(hints[k], v) for k, v in data.items() if k in names})
