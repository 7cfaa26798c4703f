"""The desk's database: SQLAlchemy 2 models and Alembic migrations (SQLite file by default, PostgreSQL by URL).

    db = Database.open("sqlite:///.nexotc/desk.db")        # or postgresql+psycopg://user@host:5432/desk
    with db.session() as s: ...                            # one transaction, committed on success

`Database.open` upgrades the schema to the newest migration itself (programmatic Alembic configuration over
the migration scripts shipped in :mod:`nexotc_client.desk.migrations`; no alembic.ini). Money is exact on
both back ends: :class:`Amount` is ``NUMERIC`` (unbounded precision) on PostgreSQL and a canonical decimal
string on SQLite, read back as ``Decimal``; never a float.

Tables: rfqs, quotes (with the price lock: deal, offer hash, tx), hedges (plan and state as JSON),
child_orders, fills (unique per venue and trade id: a fill is stored once however often it is reported),
bookings, settlement_records (unique per tx hash and log index), settlement_marks (off-chain legs),
book_offers, preferences and matches (the matchmaking book), signed_offers (every offer the desk engine signed:
a quote's lock offers and the match invites, with their makers' nonces).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DEFAULT_FILE = "desk.db"
ENV_URL = "NEXOTC_DESK_DB"


class DatabaseError(Exception):
    """The desk database cannot be opened or migrated (bad URL, server down)."""


class Amount(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, a canonical string on SQLite (whose NUMERIC is a float)."""

    impl = String(96)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(96))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money is never a float: pass a Decimal, an int or a decimal string")
        number = Decimal(value) if not isinstance(value, Decimal) else value
        if not number.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        return number if dialect.name == "postgresql" else canonical(number)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value


def canonical(number: Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros ("1.5", "200", "0.00000001")."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class Base(DeclarativeBase):
    type_annotation_map = {Decimal: Amount(), dict[str, Any]: JSON(), list[Any]: JSON()}


# ------------------------------------------------------------------ RFQ / quotes
class RfqRow(Base):
    __tablename__ = "rfqs"

    rfq_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    size: Mapped[Decimal]
    ts_ms: Mapped[int] = mapped_column(BigInteger)


class QuoteRow(Base):
    __tablename__ = "quotes"

    quote_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rfq_id: Mapped[str] = mapped_column(ForeignKey("rfqs.rfq_id"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    size: Mapped[Decimal]
    bid: Mapped[Decimal]
    ask: Mapped[Decimal]
    price: Mapped[Decimal]
    mid: Mapped[Decimal]
    components: Mapped[dict[str, Any]]
    created_ms: Mapped[int] = mapped_column(BigInteger)
    ttl_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    counter_price: Mapped[Decimal | None] = mapped_column(default=None)
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    # the price lock: the on-chain deal made from the accepted quote (quote id in the signed offer's salt)
    deal_address: Mapped[str | None] = mapped_column(String(42), default=None, index=True)
    offer_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    lock_tx: Mapped[str | None] = mapped_column(String(66), default=None)
    chain_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


# ------------------------------------------------------------------ hedging
class HedgeRow(Base):
    """One hedge: its plan and progress (`HedgeState` without its orders and fills, which have their tables)."""

    __tablename__ = "hedges"

    parent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quote_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    target: Mapped[Decimal]
    filled: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[dict[str, Any]]
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class ChildOrderRow(Base):
    __tablename__ = "child_orders"

    # keyed by the client order id: deterministic and known before the venue answers (the venue's order id
    # is empty until then)
    client_order_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(96), index=True)
    parent_id: Mapped[str] = mapped_column(ForeignKey("hedges.parent_id"), index=True)
    venue: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    size: Mapped[Decimal]
    limit_price: Mapped[Decimal | None] = mapped_column(default=None)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(24))
    clip: Mapped[int] = mapped_column(Integer, default=0)
    filled: Mapped[Decimal] = mapped_column(default=Decimal(0))
    notional: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fees: Mapped[Decimal] = mapped_column(default=Decimal(0))
    venue_filled: Mapped[Decimal] = mapped_column(default=Decimal(0))
    seq: Mapped[int] = mapped_column(Integer, default=0)


class FillRow(Base):
    __tablename__ = "fills"
    # a venue's trade ids are unique per symbol (Binance numbers each symbol's trades), not per venue
    __table_args__ = (UniqueConstraint("venue", "symbol", "trade_id", name="uq_fills_venue_symbol_trade"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trade_id: Mapped[str] = mapped_column(String(96))
    order_id: Mapped[str] = mapped_column(String(96), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    venue: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32), default="")
    side: Mapped[str] = mapped_column(String(8))
    size: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_asset: Mapped[str] = mapped_column(String(16))
    ts_ms: Mapped[int] = mapped_column(BigInteger)


# ------------------------------------------------------------------ post-trade
class BookingRow(Base):
    __tablename__ = "bookings"

    booking_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(160), index=True)
    quote_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    size: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), default="")


class TrackedDealRow(Base):
    """A deal the settlement tracker follows: its network, confirmation threshold and SLA."""

    __tablename__ = "tracked_deals"

    deal_address: Mapped[str] = mapped_column(String(42), primary_key=True)
    quote_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    network: Mapped[str] = mapped_column(String(64))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    confirmations: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    base_decimals: Mapped[int] = mapped_column(Integer)
    quote_decimals: Mapped[int] = mapped_column(Integer)
    tranches: Mapped[list[Any]]
    sla: Mapped[dict[str, Any]]
    last_block: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[int] = mapped_column(BigInteger)


class SettlementRow(Base):
    """One on-chain event of a tracked deal (Funded, Marked, Released, Refunded, ...) as the tracker saw it."""

    __tablename__ = "settlement_records"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_settlement_tx_log"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deal_address: Mapped[str] = mapped_column(ForeignKey("tracked_deals.deal_address"), index=True)
    ref: Mapped[str] = mapped_column(String(160))
    event: Mapped[str] = mapped_column(String(32))
    tranche: Mapped[int | None] = mapped_column(Integer, default=None)
    base_amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    quote_amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(BigInteger)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SettlementMarkRow(Base):
    """The off-chain leg of a tranche (BTC on another chain, a fiat wire): a milestone with its evidence."""

    __tablename__ = "settlement_marks"
    __table_args__ = (UniqueConstraint("deal_address", "tranche", "milestone", name="uq_mark_milestone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deal_address: Mapped[str] = mapped_column(ForeignKey("tracked_deals.deal_address"), index=True)
    tranche: Mapped[int] = mapped_column(Integer)
    milestone: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(Text)
    evidence_hash: Mapped[str] = mapped_column(String(66))
    ts: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)


# ------------------------------------------------------------------ matchmaking
class BookOfferRow(Base):
    __tablename__ = "book_offers"

    offer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    maker: Mapped[str] = mapped_column(String(42), index=True)
    pair: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(8))
    size_min: Mapped[Decimal]
    size_max: Mapped[Decimal]
    price: Mapped[Decimal]
    settlement_window_s: Mapped[int] = mapped_column(BigInteger)
    kyc_level: Mapped[int] = mapped_column(Integer)
    created: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")


class PreferenceRow(Base):
    __tablename__ = "preferences"

    pref_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    taker: Mapped[str] = mapped_column(String(42), index=True)
    pair: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    size_min: Mapped[Decimal]
    size_max: Mapped[Decimal]
    reference_price: Mapped[Decimal]
    price_tolerance_bps: Mapped[Decimal]
    settlement_window_s: Mapped[int] = mapped_column(BigInteger)
    min_kyc_level: Mapped[int] = mapped_column(Integer)
    avoid: Mapped[list[Any]] = mapped_column(default=list)
    created: Mapped[int] = mapped_column(BigInteger)


class MatchRow(Base):
    __tablename__ = "matches"

    match_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pref_id: Mapped[str] = mapped_column(ForeignKey("preferences.pref_id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("book_offers.offer_id"))
    score: Mapped[Decimal]
    features: Mapped[dict[str, Any]]
    invite: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    created: Mapped[int] = mapped_column(BigInteger)


# ------------------------------------------------------------------ signed offers
class SignedOfferRow(Base):
    """An offer the desk engine signed (a quote's lock offer or a match invite), kept for its maker's nonce.

    Offers of one maker never share a nonce unless one re-issues the other (a quote re-locked while its earlier
    offer is untaken: ``supersedes`` is then the earlier offer's hash, so the factory's nonce bitmap lets at most
    one of them be filled). The unique key makes that a chain: one first offer per nonce (``supersedes`` empty)
    and at most one successor per offer, whatever processes sign at the same time."""

    __tablename__ = "signed_offers"
    __table_args__ = (
        UniqueConstraint("chain_id", "factory", "maker", "nonce", "supersedes", name="uq_signed_offers_nonce"),
    )

    offer_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    factory: Mapped[str] = mapped_column(String(42))  # lower case, as maker
    maker: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[str] = mapped_column(String(78))  # a uint256 in decimal
    supersedes: Mapped[str] = mapped_column(String(66), default="")  # "": the first offer with this nonce
    quote_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    match_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    expiry: Mapped[int] = mapped_column(BigInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    # the maker's on-chain leg (None: it deposits nothing on chain): what its allowance to the factory must cover
    leg_token: Mapped[str | None] = mapped_column(String(42), default=None)
    leg_amount: Mapped[str | None] = mapped_column(String(78), default=None)  # token units, decimal


def hedge_booking_id(parent_id: str, venue: str, trade_id: str) -> str:
    """The booking id of one hedge fill: ``HB-<hedge>-<venue>-<trade id>`` (a hash when longer than the column),
    so two hedges' bookings never share a key whatever the venues' trade ids."""
    readable = f"HB-{parent_id}-{venue}-{trade_id}"
    if len(readable) <= 128:
        return readable
    digest = hashlib.sha256(f"{parent_id}\x00{venue}\x00{trade_id}".encode()).hexdigest()[:40]
    return f"HB-{parent_id[:40]}-{digest}"


# ------------------------------------------------------------------ engine
def default_url(home: Path | str | None = None) -> str:
    """$NEXOTC_DESK_DB, else a SQLite file in the nexotc home (./.nexotc/desk.db)."""
    env = os.environ.get(ENV_URL, "").strip()
    if env:
        return env
    base = Path(home) if home is not None else Path(os.environ.get("NEXOTC_HOME") or ".nexotc")
    return f"sqlite:///{(base / DEFAULT_FILE).resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """An engine and a session factory over an upgraded schema."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None, home: Path | str | None = None, migrate: bool = True) -> Database:
        """Connect to `url` (default: see :func:`default_url`) and upgrade the schema to the newest migration."""
        url = url or default_url(home)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise DatabaseError(f"not a database URL: {url!r}") from exc
        if parsed.drivername.startswith("sqlite"):
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed)
            event.listen(engine, "connect", _sqlite_pragmas)
        elif parsed.drivername in ("postgresql", "postgresql+psycopg"):
            engine = create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
        else:
            raise DatabaseError(f"unsupported database {parsed.drivername!r}: use sqlite:///FILE or postgresql://...")
        db = cls(engine)
        if migrate:
            db.upgrade()
        return db

    def upgrade(self, revision: str = "head") -> None:
        from nexotc_client.desk.migrations import upgrade

        try:
            upgrade(self.engine, revision)
        except OperationalError as exc:
            raise DatabaseError(f"cannot open the desk database: {str(exc.orig).strip().splitlines()[0]}") from exc

    def revision(self) -> str | None:
        from nexotc_client.desk.migrations import current_revision

        return current_revision(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


__all__ = [
    "Amount",
    "Base",
    "BookOfferRow",
    "BookingRow",
    "ChildOrderRow",
    "Database",
    "DatabaseError",
    "FillRow",
    "HedgeRow",
    "MatchRow",
    "PreferenceRow",
    "QuoteRow",
    "RfqRow",
    "SettlementMarkRow",
    "SettlementRow",
    "SignedOfferRow",
    "TrackedDealRow",
    "canonical",
    "default_url",
    "hedge_booking_id",
]
