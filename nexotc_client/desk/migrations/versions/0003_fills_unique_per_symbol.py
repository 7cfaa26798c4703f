"""Fills are unique per venue, symbol and trade id (a venue's trade ids are unique per symbol, not per venue), and
hedge bookings are keyed by their hedge (``HB-<hedge>-<venue>-<trade id>``) so two hedges never share one.

Hedge bookings written before this revision (``HB-<venue>-<trade id>``) are re-keyed when exactly one hedge of
the booking's quote has the fill; any other is left as it was (``nexotc recon`` reports it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fills_venue_trade", type_="unique")
        batch_op.create_unique_constraint("uq_fills_venue_symbol_trade", ["venue", "symbol", "trade_id"])
    _rekey_hedge_bookings()


def _rekey_hedge_bookings() -> None:
    from nexotc_client.desk.db import hedge_booking_id

    bind = op.get_bind()
    bookings = bind.execute(
        sa.text("SELECT booking_id, ref, quote_id FROM bookings WHERE kind = 'hedge' AND quote_id IS NOT NULL")
    ).all()
    for booking_id, ref, quote_id in bookings:
        venue, sep, trade_id = str(ref).partition(":")
        if not sep or booking_id != f"HB-{venue}-{trade_id}":
            continue
        parents = bind.execute(
            sa.text(
                "SELECT DISTINCT f.parent_id FROM fills f JOIN hedges h ON h.parent_id = f.parent_id "
                "WHERE f.venue = :venue AND f.trade_id = :trade AND h.quote_id = :quote"
            ),
            {"venue": venue, "trade": trade_id, "quote": quote_id},
        ).all()
        if len(parents) != 1:
            continue
        bind.execute(
            sa.text("UPDATE bookings SET booking_id = :new WHERE booking_id = :old"),
            {"new": hedge_booking_id(parents[0][0], venue, trade_id), "old": booking_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fills_venue_symbol_trade", type_="unique")
        batch_op.create_unique_constraint("uq_fills_venue_trade", ["venue", "trade_id"])
