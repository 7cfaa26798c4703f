"""Alembic environment: runs on the connection handed over by `nexotc_client.desk.migrations`."""

from __future__ import annotations

from alembic import context

from nexotc_client.desk.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not used
    raise RuntimeError("run desk migrations through nexotc_client.desk.migrations.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
