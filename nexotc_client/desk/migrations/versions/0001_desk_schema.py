"""The desk schema: rfqs, quotes (price lock), hedges, child orders, fills (unique per venue + trade id),
bookings, tracked deals, settlement records and marks, the match book (offers, preferences, matches).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nexotc_client.desk.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "book_offers",
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("maker", sa.String(length=42), nullable=False),
        sa.Column("pair", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size_min", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("size_max", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("price", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("settlement_window_s", sa.BigInteger(), nullable=False),
        sa.Column("kyc_level", sa.Integer(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("offer_id"),
    )
    with op.batch_alter_table("book_offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_book_offers_maker"), ["maker"], unique=False)
        batch_op.create_index(batch_op.f("ix_book_offers_pair"), ["pair"], unique=False)

    op.create_table(
        "bookings",
        sa.Column("booking_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=160), nullable=False),
        sa.Column("quote_id", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("price", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("fee", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("booking_id"),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bookings_quote_id"), ["quote_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bookings_ref"), ["ref"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trade_id", sa.String(length=96), nullable=False),
        sa.Column("order_id", sa.String(length=96), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("price", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("fee", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("fee_asset", sa.String(length=16), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("venue", "trade_id", name="uq_fills_venue_trade"),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fills_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "hedges",
        sa.Column("parent_id", sa.String(length=64), nullable=False),
        sa.Column("quote_id", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("target", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("filled", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("parent_id"),
    )
    with op.batch_alter_table("hedges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hedges_quote_id"), ["quote_id"], unique=False)

    op.create_table(
        "preferences",
        sa.Column("pref_id", sa.String(length=64), nullable=False),
        sa.Column("taker", sa.String(length=42), nullable=False),
        sa.Column("pair", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size_min", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("size_max", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("reference_price", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("price_tolerance_bps", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("settlement_window_s", sa.BigInteger(), nullable=False),
        sa.Column("min_kyc_level", sa.Integer(), nullable=False),
        sa.Column("avoid", sa.JSON(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pref_id"),
    )
    with op.batch_alter_table("preferences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_preferences_taker"), ["taker"], unique=False)

    op.create_table(
        "rfqs",
        sa.Column("rfq_id", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rfq_id"),
    )
    op.create_table(
        "tracked_deals",
        sa.Column("deal_address", sa.String(length=42), nullable=False),
        sa.Column("quote_id", sa.String(length=64), nullable=True),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("base_decimals", sa.Integer(), nullable=False),
        sa.Column("quote_decimals", sa.Integer(), nullable=False),
        sa.Column("tranches", sa.JSON(), nullable=False),
        sa.Column("sla", sa.JSON(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("deal_address"),
    )
    with op.batch_alter_table("tracked_deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracked_deals_quote_id"), ["quote_id"], unique=False)

    op.create_table(
        "child_orders",
        sa.Column("order_id", sa.String(length=96), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("limit_price", nexotc_client.desk.db.Amount(length=96), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("clip", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=96), nullable=False),
        sa.Column("filled", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("notional", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("fees", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["hedges.parent_id"],
        ),
        sa.PrimaryKeyConstraint("client_order_id"),
    )
    with op.batch_alter_table("child_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_child_orders_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_child_orders_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "matches",
        sa.Column("match_id", sa.String(length=64), nullable=False),
        sa.Column("pref_id", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("score", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("invite", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["book_offers.offer_id"],
        ),
        sa.ForeignKeyConstraint(
            ["pref_id"],
            ["preferences.pref_id"],
        ),
        sa.PrimaryKeyConstraint("match_id"),
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matches_pref_id"), ["pref_id"], unique=False)

    op.create_table(
        "quotes",
        sa.Column("quote_id", sa.String(length=64), nullable=False),
        sa.Column("rfq_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("bid", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("ask", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("price", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("mid", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("ttl_ms", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("counter_price", nexotc_client.desk.db.Amount(length=96), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deal_address", sa.String(length=42), nullable=True),
        sa.Column("offer_hash", sa.String(length=66), nullable=True),
        sa.Column("lock_tx", sa.String(length=66), nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rfq_id"],
            ["rfqs.rfq_id"],
        ),
        sa.PrimaryKeyConstraint("quote_id"),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_deal_address"), ["deal_address"], unique=False)
        batch_op.create_index(batch_op.f("ix_quotes_rfq_id"), ["rfq_id"], unique=False)

    op.create_table(
        "settlement_marks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deal_address", sa.String(length=42), nullable=False),
        sa.Column("tranche", sa.Integer(), nullable=False),
        sa.Column("milestone", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("evidence_hash", sa.String(length=66), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.ForeignKeyConstraint(
            ["deal_address"],
            ["tracked_deals.deal_address"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deal_address", "tranche", "milestone", name="uq_mark_milestone"),
    )
    with op.batch_alter_table("settlement_marks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_marks_deal_address"), ["deal_address"], unique=False)

    op.create_table(
        "settlement_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deal_address", sa.String(length=42), nullable=False),
        sa.Column("ref", sa.String(length=160), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("tranche", sa.Integer(), nullable=True),
        sa.Column("base_amount", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("quote_amount", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("fee", nexotc_client.desk.db.Amount(length=96), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_address"],
            ["tracked_deals.deal_address"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_settlement_tx_log"),
    )
    with op.batch_alter_table("settlement_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_records_deal_address"), ["deal_address"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("settlement_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_records_deal_address"))

    op.drop_table("settlement_records")
    with op.batch_alter_table("settlement_marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_marks_deal_address"))

    op.drop_table("settlement_marks")
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_rfq_id"))
        batch_op.drop_index(batch_op.f("ix_quotes_deal_address"))

    op.drop_table("quotes")
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_pref_id"))

    op.drop_table("matches")
    with op.batch_alter_table("child_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_child_orders_parent_id"))
        batch_op.drop_index(batch_op.f("ix_child_orders_client_order_id"))

    op.drop_table("child_orders")
    with op.batch_alter_table("tracked_deals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracked_deals_quote_id"))

    op.drop_table("tracked_deals")
    op.drop_table("rfqs")
    with op.batch_alter_table("preferences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_preferences_taker"))

    op.drop_table("preferences")
    with op.batch_alter_table("hedges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hedges_quote_id"))

    op.drop_table("hedges")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_parent_id"))
        batch_op.drop_index(batch_op.f("ix_fills_order_id"))

    op.drop_table("fills")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bookings_ref"))
        batch_op.drop_index(batch_op.f("ix_bookings_quote_id"))

    op.drop_table("bookings")
    with op.batch_alter_table("book_offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_book_offers_pair"))
        batch_op.drop_index(batch_op.f("ix_book_offers_maker"))

    op.drop_table("book_offers")
