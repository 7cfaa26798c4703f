"""The offers the desk engine signs (quote lock offers, match invites) are kept with their makers' nonces, so a
new offer gets a nonce no earlier offer of the same maker holds, and a re-locked quote re-uses its untaken
offer's nonce (``supersedes``: at most one of the two can be filled).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_offers",
        sa.Column("offer_hash", sa.String(length=66), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("factory", sa.String(length=42), nullable=False),
        sa.Column("maker", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("supersedes", sa.String(length=66), nullable=False),
        sa.Column("quote_id", sa.String(length=64), nullable=True),
        sa.Column("match_id", sa.String(length=64), nullable=True),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("leg_token", sa.String(length=42), nullable=True),
        sa.Column("leg_amount", sa.String(length=78), nullable=True),
        sa.PrimaryKeyConstraint("offer_hash"),
        sa.UniqueConstraint("chain_id", "factory", "maker", "nonce", "supersedes", name="uq_signed_offers_nonce"),
    )
    with op.batch_alter_table("signed_offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signed_offers_match_id"), ["match_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_signed_offers_quote_id"), ["quote_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signed_offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signed_offers_quote_id"))
        batch_op.drop_index(batch_op.f("ix_signed_offers_match_id"))
    op.drop_table("signed_offers")
