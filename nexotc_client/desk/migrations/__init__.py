"""Alembic migrations of the desk database, run programmatically (no alembic.ini).

    upgrade(engine)              # to the newest revision ("head"); what `Database.open` does
    current_revision(engine)     # the revision the database is at (None: empty)

A new revision goes in `versions/` (`NNNN_what.py`, `down_revision` = the previous one); `alembic_config()`
gives a Config for Alembic's own commands (e.g. `command.revision(cfg, autogenerate=True)` in a shell).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]
