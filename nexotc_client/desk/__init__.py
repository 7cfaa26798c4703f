"""The desk engine: market data, price aggregation, quotes, hedging, reconciliation and TCA.

Pure Python and exact arithmetic (``Decimal`` with the context in :mod:`nexotc_client.desk.money`, or integer
minor units); no float ever carries a money amount. One module per concept:

- :mod:`.money`      exact arithmetic helpers and asset decimals
- :mod:`.models`     the plain dataclasses shared by every module (and persisted by the store)
- :mod:`.venues`     the venue protocol, the ccxt adapter, the replay venue, staleness/divergence guards
- :mod:`.aggregator` the consolidated book with per-venue taker fees
- :mod:`.quote`      the RFQ quote engine with FIX-like states
- :mod:`.sim`        a simulated matching venue
- :mod:`.hedge`      the TWAP hedge executor with multi-venue routing
- :mod:`.tca`        reconciliation (breaks) and transaction-cost analysis
"""

from nexotc_client.desk.models import (
    RFQ,
    Book,
    Booking,
    Break,
    BreakKind,
    ChildOrder,
    Fill,
    HedgePlan,
    HedgeState,
    Level,
    OrderStatus,
    Quote,
    QuoteComponents,
    QuoteState,
    SettlementRecord,
    Side,
)

__all__ = [
    "RFQ",
    "Book",
    "Booking",
    "Break",
    "BreakKind",
    "ChildOrder",
    "Fill",
    "HedgePlan",
    "HedgeState",
    "Level",
    "OrderStatus",
    "Quote",
    "QuoteComponents",
    "QuoteState",
    "SettlementRecord",
    "Side",
]
