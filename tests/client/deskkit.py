"""Desk-engine test helpers shared by the lock tests: an accepted quote saved straight into a store."""

from __future__ import annotations

from decimal import Decimal

from nexotc_client.desk.models import RFQ, Quote, QuoteComponents, QuoteState, Side
from nexotc_client.desk.store import DeskStore

PRICE = Decimal("65150.87654321")


def accepted_quote(
    store: DeskStore, quote_id: str, size: str = "200", side: Side = Side.BUY, client: str = "client-a"
) -> Quote:
    """An ACCEPTED quote `quote_id` of `size` BTC/USDT at PRICE (bid PRICE - 100), with its RFQ (R-<quote_id>)."""
    rfq = RFQ("R-" + quote_id, client, "BTC/USDT", side, Decimal(size), 1)
    store.save_rfq(rfq)
    q = Quote(
        quote_id=quote_id,
        rfq_id=rfq.rfq_id,
        symbol="BTC/USDT",
        side=side,
        size=Decimal(size),
        bid=PRICE - 100,
        ask=PRICE,
        price=PRICE if side is Side.BUY else PRICE - 100,
        mid=PRICE - 50,
        components=QuoteComponents(PRICE - 60, Decimal(10), Decimal(2), Decimal(0)),
        created_ms=1,
        ttl_ms=30_000,
        state=QuoteState.ACCEPTED,
    )
    store.save_quote(q)
    return q
