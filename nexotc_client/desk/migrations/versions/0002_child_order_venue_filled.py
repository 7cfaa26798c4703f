"""Child orders keep the filled quantity the venue reported (fills may arrive later than the acknowledgement).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nexotc_client.desk.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("child_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("venue_filled", nexotc_client.desk.db.Amount(length=96), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("child_orders", schema=None) as batch_op:
        batch_op.drop_column("venue_filled")
