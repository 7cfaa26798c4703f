"""Checks shared by the desk engine's rfq / quote / settle / recon / match commands (`desk_engine.py`).

The desk database: only the commands that record something new (``rfq new``, ``match offer``, ``match want``,
``settle track``) create it; every other command refuses a database that does not exist (a mistyped ``--db``
would otherwise show an empty book), and a file that is not a database is a one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nexotc_client.chain.errors import NexotcError

if TYPE_CHECKING:
    from nexotc_client.cli.app import App
    from nexotc_client.desk.store import DeskStore

CREATORS = "rfq new, match offer, match want or settle track"


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # Database.open names the bad URL
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def desk_store(app: App, db_url: str | None, create: bool = False) -> DeskStore:
    """The desk store at `db_url` (default: $NEXOTC_DESK_DB, else <home>/desk.db). Without `create`, a SQLite
    file that does not exist is refused; a file that is not a SQLite database is a one-line error."""
    from sqlalchemy.exc import SQLAlchemyError

    from nexotc_client.desk.db import Database, DatabaseError, default_url
    from nexotc_client.desk.store import DeskStore

    url = db_url or default_url(app.home)
    path = _sqlite_file(url)
    if path is not None and not create and not path.exists():
        raise NexotcError(f"no desk database at {path} (check --db; it is created by {CREATORS})")
    if path is not None and path.exists() and not path.is_file():
        raise NexotcError(f"desk database {path} is not a file")
    try:
        return DeskStore(Database.open(url, home=app.home))
    except DatabaseError as exc:
        raise NexotcError(str(exc)) from exc
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
        raise NexotcError(f"cannot open the desk database {path or url}: {detail[0] if detail else exc}") from exc
    except OSError as exc:
        raise NexotcError(f"cannot open the desk database {path or url}: {exc.strerror or exc}") from exc


def num(value: object) -> str:
    """A decimal for people: no exponent, no trailing zeros (65000.9000000000 -> 65000.9)."""
    from decimal import Decimal

    if isinstance(value, Decimal) and value.is_finite():
        text = f"{value.normalize():f}"
        return text
    return str(value)


def duration(ms: int) -> str:
    """Milliseconds for people: 500ms, 15s, 10m, 2h30m, 1d."""
    if ms % 1000 or ms < 1000:
        return f"{ms}ms"
    s = ms // 1000
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def token_matches(asset: str, symbol: str) -> bool:
    """Whether an ERC-20 `symbol` carries the pair's `asset` (the asset itself or its wrapped token: BTC ~ WBTC)."""
    a, s = asset.upper(), symbol.upper()
    return s == a or s == f"W{a}"


def pair_token(app: App, ref: str | None, asset: str, role: str) -> str:
    """The token of the pair's `asset` (`role`: base or quote): `ref` (an address or a recorded symbol), checked
    on chain against the asset (its `symbol()`), or, without `ref`, the recorded token whose symbol matches."""
    from eth_utils import to_checksum_address

    from nexotc_client.chain.contracts import erc20
    from nexotc_client.chain.encoding import is_valid_address

    if ref is None:
        tokens = app.deployment().tokens
        found = [address for symbol, address in tokens.items() if token_matches(asset, symbol)]
        if not found:
            raise NexotcError(
                f"no recorded token for {asset} (the {role} asset): pass --{role}-token ADDRESS of a {asset} token"
            )
        address = found[0]
    elif is_valid_address(ref):
        address = to_checksum_address(ref)
    else:
        tokens = app.deployment().tokens
        match = [a for s, a in tokens.items() if s.lower() == ref.lower()]
        if not match:
            raise NexotcError(f"unknown token {ref!r}: an address or a symbol of `nexotc deploy --mock-tokens`")
        address = match[0]
    try:
        symbol = str(erc20(address).symbol())
    except Exception as exc:  # no code, not an ERC-20: the chain says no
        raise NexotcError(
            f"--{role}-token {address}: not an ERC-20 token on this chain ({type(exc).__name__})"
        ) from exc
    if not token_matches(asset, symbol):
        raise NexotcError(f"--{role}-token {address} is {symbol}, but the quote's {role} asset is {asset}")
    return address


__all__ = ["CREATORS", "desk_store", "duration", "num", "pair_token", "plural", "token_matches"]
