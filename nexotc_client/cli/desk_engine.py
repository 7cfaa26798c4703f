"""The desk engine's commands: `nexotc rfq | quote | hedge | settle | recon | match` over the desk database.

    nexotc rfq new --client NAME --symbol BTC/USDT --side buy --size 200 [--id R1] | list | show ID
    nexotc quote new RFQ [--ttl 15s] [--fixtures DIR | --live [--sandbox] [--venues V,..] [--proxy-url URL]]
                                                           two-way quote from the venues' books
    nexotc quote accept Q | counter Q --price P | reject Q | show Q | list [--rfq R]
    nexotc quote lock Q --account DESK --client ADDR --platform ADDR --resolver ADDR [--tranches N]
                     [--offchain-base] [--out FILE]        the desk signs the deal offer (quote id in its salt)
    nexotc quote take LINK|FILE --account CLIENT [--fund]  the client accepts it: the escrow is the price lock
    nexotc hedge start Q [--clips 8] [--interval 1s] [--participation 0.1] [--venue-cap okx=50] [--seed N]
    nexotc hedge start Q --live [--sandbox] [--venues binance,okx] [--proxy-url URL]   on the real exchanges
    nexotc hedge resume H | cancel H [--proxy-url URL | --no-proxy] | show H | list
                                                           (a killed hedge resumes from the database)
    nexotc settle track DEAL [--confirmations N] [--sla-funding 1h] [--sla-release 1d] [--sla-offchain 12h]
    nexotc settle status DEAL | mark DEAL T --milestone delivered --evidence TXID [--on-chain --account M]
    nexotc settle release DEAL T --account A               release a tranche and book the settlement
    nexotc recon Q [--out DIR]                             bookings vs fills vs settlement, TCA, CSV + PNG
    nexotc match offer ... | want ... | rank PREF [--offline] | invite MATCH --account MAKER ... [--out FILE] | list

The database: --db URL (sqlite:///FILE or postgresql+psycopg://...), else $NEXOTC_DESK_DB, else
<home>/desk.db; it is created (and migrated) only by rfq new, match offer | want and settle track, every
other command (hedge ones included) refuses a missing one. Books come from the recorded venue fixtures (raw
exchange responses parsed by ccxt; offline) unless --live. Hedges run on simulated venues whose journals
live in <home>/exchange/<hedge id>/ (the exchange's own record, so a resumed hedge finds what was executed), or
with `hedge start --live` on the exchanges through ccxt, credentials from the environment only
(NEXOTC_<VENUE>_API_KEY, _SECRET, and _PASSWORD for OKX); <home>/exchange/<hedge id>/venues.json then records the
venues, sandbox and proxy URL (never a secret) for `hedge resume | cancel`.

Typed numbers (sizes, prices, bps, caps) are plain decimals in ASCII digits (an exponent is fine: 2E1; no '_'
separators, no other scripts' digits) below 10**24 with at most 18 decimals; durations (TTL, interval, SLA,
settlement window) are at most a year (365d). Anything else is refused before anything is recorded. A quote whose
TTL passed shows as expired ("effective_state" in --json; "state" keeps what is recorded until someone acts on it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.desk.exchange import LiveVenues
    from nexotc_client.desk.models import Quote
    from nexotc_client.desk.store import DeskStore

_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)?")
_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1_000}
_PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: the longest duration any option takes (a TTL, an SLA, an interval, a settlement window): a year
MAX_DURATION_MS = 365 * 86_400_000


def parse_ms(text: str, what: str, limit_ms: int = MAX_DURATION_MS) -> int:
    """A typed duration in milliseconds (ASCII digits and a unit: 500ms, 30s, 5m, 1h, 1d; no unit: seconds), at
    most `limit_ms` (default a year, 365d)."""
    m = _DURATION.fullmatch(text.strip())
    if not m:
        raise NexotcError(f"{what}: {text!r} is not a duration (e.g. 500ms, 30s, 5m, 1h, 1d)")
    ms = int(m.group(1)) * _UNITS[m.group(2)]
    if ms > limit_ms:
        raise NexotcError(f"{what}: {text!r} is too long (at most {_duration_text(limit_ms)})")
    return ms


def _duration_text(ms: int) -> str:
    """A limit for people in the largest unit that divides it (365d, 24h, 90s)."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNITS[unit] == 0:
            return f"{ms // _UNITS[unit]}{unit}"
    return f"{ms}ms"


def parse_decimal(text: str, what: str) -> Decimal:
    """A typed decimal, exactly, in plain form (2E1 -> 20, 1.50 -> 1.5): what is echoed, recorded and shown as
    JSON never carries an exponent. ASCII digits only (no '_' separators, no other scripts' digits), in the
    desk's range (:func:`~nexotc_client.desk.money.in_range`: below 10**24, at most 18 decimals)."""
    from nexotc_client.desk.db import canonical
    from nexotc_client.desk.money import MAX_DECIMALS, MAX_INTEGER_DIGITS, in_range

    stripped = text.strip()
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise NexotcError(f"{what}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise NexotcError(f"{what}: {text!r} is not a finite number")
    if not _PLAIN_DECIMAL.fullmatch(stripped):
        raise NexotcError(f"{what}: {text!r} is not a plain decimal number (ASCII digits 0-9, no '_' separators)")
    if not in_range(value):
        raise NexotcError(
            f"{what}: {text!r} is out of range (at most {MAX_INTEGER_DIGITS} digits before the decimal point and "
            f"{MAX_DECIMALS} after)"
        )
    return Decimal(canonical(value))


def desk_wallet(ref: str, option: str) -> str:
    """A wallet typed for the desk book or an offer (`option` names it): an address or an account, never the
    zero address (no one can sign for it, and an offer naming it could never be taken)."""
    from nexotc_client.terms import ZERO_ADDRESS

    address = wallet_address(ref.strip())
    if address == ZERO_ADDRESS:
        raise NexotcError(f"{option}: the zero address is not a wallet")
    return address


@contextmanager
def desk_errors() -> Iterator[None]:
    """The desk modules' named errors as one-line NexotcErrors."""
    from nexotc_client.desk.db import DatabaseError
    from nexotc_client.desk.hedge import HedgeError
    from nexotc_client.desk.match import MatchError
    from nexotc_client.desk.money import MoneyError
    from nexotc_client.desk.quote import QuoteError
    from nexotc_client.desk.store import StoreError
    from nexotc_client.desk.venues import VenueError

    try:
        yield
    except NexotcError:
        raise
    except (DatabaseError, HedgeError, MatchError, MoneyError, QuoteError, StoreError, VenueError) as exc:
        raise NexotcError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise NexotcError(str(exc)) from exc


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "db_url", default=None, help="Desk database URL (env NEXOTC_DESK_DB; default <home>/desk.db)."
    )(func)


def desk_deal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--desk` and `--policy` of the commands that sign an offer for the desk engine (quote lock, match invite)."""
    func = click.option(
        "--policy",
        "policy_id",
        type=click.IntRange(0, 2**32 - 1),
        default=None,
        help="KYC policy id the deal is gated on (default: the --desk's policy when it is a KYC policy, else none).",
    )(func)
    return click.option(
        "--desk",
        "desk_id",
        type=click.IntRange(0, 2**256 - 1),
        default=0,
        help="Make the deal a desk deal of this desk (the signing wallet must be one of its traders; the desk "
        "registry checks the terms now and on acceptance).",
    )(func)


def desk_deal_ids(factory: Any, desk_id: int, policy_id: int | None) -> tuple[int, int]:
    """The (desk id, KYC policy id) a desk-engine offer carries: with a desk and no --policy, the desk's own
    policy when it is a KYC policy id (the registry requires a desk deal to carry it)."""
    if not desk_id:
        return 0, policy_id or 0
    from nexotc_client.chain.desk import desk_registry_of

    registry = desk_registry_of(factory.address)
    if not registry.exists(desk_id):
        raise NexotcError(f"--desk {desk_id}: no such desk in the desk registry {registry.address}")
    if policy_id is None:
        policy_id = registry.desk(desk_id, lists=False).kyc_policy
    return desk_id, policy_id


def _hedge_store(app: App, db_url: str | None) -> DeskStore:
    """The desk store of the hedge commands: an existing database only (a hedge hedges a recorded quote, so a
    missing database is a mistyped --db, never created)."""
    from nexotc_client.cli.desk_checks import desk_store

    return desk_store(app, db_url)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _quote_json(q: Quote, now_ms: int) -> dict[str, Any]:
    """A quote as --json shows it: the stored fields ("state" as recorded) and "effective_state", the state as of
    now (a quoted or countered quote whose TTL passed is "expired" there, before anyone records it)."""
    return {**_jsonable(q), "effective_state": q.state_at(now_ms).value}


def _jsonable(value: Any) -> Any:
    from nexotc_client.desk.models import to_dict

    if hasattr(value, "__dataclass_fields__"):
        return to_dict(value)
    return value


# ===================================================================== rfq
@click.group()
def rfq() -> None:
    """Client requests for quote."""


@rfq.command("new")
@click.option("--client", required=True, help="Who asks (a name or a wallet).")
@click.option("--symbol", default="BTC/USDT", show_default=True)
@click.option("--side", type=click.Choice(["buy", "sell"]), required=True, help="The client's side.")
@click.option("--size", required=True, help="Base units, e.g. 200.")
@click.option("--id", "rfq_id", default=None, help="RFQ id (default: R-<time>).")
@db_option
@shared_options
@click.pass_obj
def rfq_new(app: App, client: str, symbol: str, side: str, size: str, rfq_id: str | None, db_url: str | None) -> None:
    """Record a client's RFQ (an existing id is refused, never overwritten)."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import check_pair, check_rfq, insert_rfq
    from nexotc_client.desk.models import RFQ, Side

    amount = parse_decimal(size, "size")
    now = _now_ms()
    request = check_rfq(RFQ(rfq_id or f"R-{now}", client.strip(), check_pair(symbol), Side(side), amount, now))
    store = desk_store(app, db_url, create=True)
    with desk_errors():
        insert_rfq(store, request)
    app.emit(
        _jsonable(request),
        lambda c: c.print(f"RFQ {request.rfq_id}: {request.client} {side}s {_amount(request.size)} {request.symbol}"),
    )


@rfq.command("list")
@db_option
@shared_options
@click.pass_obj
def rfq_list(app: App, db_url: str | None) -> None:
    """Every RFQ."""
    from nexotc_client.cli.desk_checks import desk_store

    rows = [_jsonable(r) for r in desk_store(app, db_url).rfqs()]

    def render(c: Console) -> None:
        for r in rows:
            c.print(f"{r['rfq_id']}  {r['client']}  {r['side']} {_amount(Decimal(r['size']))} {r['symbol']}")

    app.emit(rows, render)


@rfq.command("show")
@click.argument("rfq_id")
@db_option
@shared_options
@click.pass_obj
def rfq_show(app: App, rfq_id: str, db_url: str | None) -> None:
    """One RFQ and its quotes."""
    from nexotc_client.cli.desk_checks import desk_store

    store = desk_store(app, db_url)
    with desk_errors():
        request = store.get_rfq(rfq_id)
        quotes = store.quotes(rfq_id=rfq_id)
    now = _now_ms()
    data = {**_jsonable(request), "quotes": [_quote_json(q, now) for q in quotes]}

    def render(c: Console) -> None:
        c.print(
            f"RFQ {request.rfq_id}: {request.client} {request.side.value}s {_amount(request.size)} {request.symbol}"
        )
        if not quotes:
            c.print("  no quotes yet")
        for q in quotes:
            prices = f"price {_price(q.price)} (bid {_price(q.bid)} / ask {_price(q.ask)})"
            c.print(f"  {q.quote_id}  {q.state_at(now).value:<9} {prices}")

    app.emit(data, render)


def live_venue_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--sandbox, --venues and --proxy-url: which exchanges a --live command reads or trades on (`_live_venues`)."""
    for option in reversed(
        (
            click.option("--sandbox", is_flag=True, help="With --live: the exchanges' sandbox (testnet) environments."),
            click.option(
                "--venues",
                default=None,
                help="With --live: comma-separated venues (default: binance,coinbase,okx,kraken; with --sandbox "
                "binance,okx).",
            ),
            click.option(
                "--proxy-url",
                default=None,
                help="With --live: ccxt's proxy_url (an egress gateway), e.g. http://gw:8080/.",
            ),
        )
    ):
        command = option(command)
    return command


# ===================================================================== quote
@click.group()
def quote() -> None:
    """Two-way quotes, their life cycle (accept / counter / reject) and the on-chain price lock."""


def _books(symbol: str, fixtures: str | None, live: LiveVenues | None = None) -> list:
    """The venues' books of `symbol`: from the recorded responses, or (`live`) the exchanges' public books."""
    from nexotc_client.desk.engine import fixture_books, live_books

    if fixtures and not Path(fixtures).is_dir():
        raise NexotcError(f"--fixtures: no directory {fixtures} (recorded venue responses: one folder per venue)")
    with desk_errors():
        if live is not None:
            return live_books(symbol, live.names, sandbox=live.sandbox, proxy_url=live.proxy_url)
        try:
            return fixture_books(symbol, Path(fixtures) if fixtures else None)
        except FileNotFoundError as exc:
            raise NexotcError(f"--fixtures: no recorded response {exc.filename} for {symbol}") from None


def _render_quote(q: Quote, now_ms: int) -> Callable[[Console], None]:
    from nexotc_client.cli.desk_checks import duration, num
    from nexotc_client.desk.quote import utc_ms

    state = q.state_at(now_ms)

    def render(c: Console) -> None:
        comp = q.components
        c.print(
            f"quote {q.quote_id} ({state.value}) for {q.side.value} {num(q.size)} {q.symbol}: "
            f"bid {_price(q.bid)} / ask {_price(q.ask)} → price {_price(q.price)} (mid {_price(q.mid)})\n"
            f"  VWAP {_price(comp.vwap)} · half-spread {_bps(comp.spread_bps)} bps · vol add-on "
            f"{_bps(comp.vol_addon_bps)} bps · skew {_bps(comp.skew_bps)} bps · TTL {duration(q.ttl_ms)} "
            f"(expires {utc_ms(q.expires_ms)})"
        )
        if state is not q.state:
            c.print(f"  its TTL passed (recorded as {q.state.value} until someone acts on it)")
        if q.counter_price is not None and state.value == "countered":
            counter = _price(q.counter_price)
            c.print(f"  client counter {counter}: the desk decides (`nexotc quote accept {q.quote_id}`)")
        if q.reason:
            c.print(f"  {_human_reason(q.reason)}")

    return render


#: the reason `quote accept` records when the desk takes a counter (desk/quote.py), exact prices in it
_COUNTER_REASON = re.compile(
    r"desk accepted the counter (\S+) \(quoted (\S+); (override|within (\S+) bps|(\S+) bps in the desk's favour)\)"
)


def _human_reason(reason: str) -> str:
    """A quote's reason for people: the prices of a taken counter to cents, its tolerance to 2 decimals (the
    stored reason, and --json, keep the exact values)."""
    m = _COUNTER_REASON.fullmatch(reason)
    if m is None:
        return reason
    try:
        counter, quoted = _price(Decimal(m.group(1))), _price(Decimal(m.group(2)))
        if m.group(5) is not None:
            how = f"{_bps(m.group(5))} bps in the desk's favour"
        else:
            how = "override" if m.group(4) is None else f"within {_bps(m.group(4))} bps"
    except InvalidOperation:
        return reason
    return f"desk accepted the counter {counter} (quoted {quoted}; {how})"


@quote.command("new")
@click.argument("rfq_id")
@click.option("--ttl", default="15s", show_default=True, help="Quote life (e.g. 15s, 2m; at most 365d).")
@click.option("--fixtures", default=None, help="Directory of recorded venue responses (default: the bundled ones).")
@click.option("--live", is_flag=True, help="Fetch the books from the exchanges through ccxt (network).")
@live_venue_options
@db_option
@shared_options
@click.pass_obj
def quote_new(
    app: App,
    rfq_id: str,
    ttl: str,
    fixtures: str | None,
    live: bool,
    sandbox: bool,
    venues: str | None,
    proxy_url: str | None,
    db_url: str | None,
) -> None:
    """Quote an RFQ two-way from the consolidated venue books, skewed by the desk's inventory (accepted client
    trades and hedge fills in the database)."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import filled_by, insert_quote, inventory, quote_engine
    from nexotc_client.desk.quote import QuoteConfig

    ttl_ms = parse_ms(ttl, "ttl")
    if ttl_ms <= 0:
        raise NexotcError(f"ttl: {ttl!r} must be positive")
    # public books need no credentials; the venues are the ones `hedge start --live` would take
    record = _live_venues(live, sandbox, venues, proxy_url, fixtures, seed_given=False, credentials=False)
    store = desk_store(app, db_url)
    with desk_errors():
        request = store.get_rfq(rfq_id)
        done = filled_by(store, rfq_id)
        if done is not None:
            raise NexotcError(f"RFQ {rfq_id} is filled by {done.quote_id} ({done.state.value}): no new quote")
        try:
            books = _books(request.symbol, fixtures, record)
        except Exception as exc:  # ccxt's network and exchange errors when --live
            if type(exc).__module__.startswith("ccxt"):
                detail = " ".join(str(exc).split())[:200]
                raise NexotcError(f"venue books unavailable ({type(exc).__name__}): {detail}") from exc
            raise
        engine = quote_engine(books, QuoteConfig(ttl_ms=ttl_ms), inventory=inventory(store))
        q = insert_quote(store, engine.quote(request))
    now = _now_ms()
    app.emit(_quote_json(q, now), _render_quote(q, now))


def _transition(app: App, db_url: str | None, quote_id: str, action: str, **kw: Any) -> None:
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import filled_by, quote_engine

    store = desk_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
        if action == "accept":
            other = filled_by(store, q.rfq_id, other_than=q.quote_id)
            if other is not None:
                raise NexotcError(
                    f"RFQ {q.rfq_id} already has an accepted quote ({other.quote_id}): one quote fills an RFQ"
                )
        engine = quote_engine([])
        warnings = _fat_finger(q) if action == "accept" else []  # the accepted quote takes the counter's price
        try:
            if action == "accept":
                engine.accept(q, kw.get("max_giveaway_bps"), kw.get("override_price"))
            elif action == "counter":
                engine.counter(q, kw["price"])
            else:
                engine.reject(q, kw.get("reason", ""))
        finally:
            store.save_quote(q)  # an expiry found on the way is recorded too
    now = _now_ms()
    if action == "counter":
        warnings = _fat_finger(q)
    show = _render_quote(q, now)

    def render(c: Console) -> None:
        show(c)
        for warning in warnings:
            c.print(f"[yellow]warning: {warning}[/]")

    app.emit({**_quote_json(q, now), "warnings": warnings}, render)


def _fat_finger(q: Quote) -> list[str]:
    """A warning when the client's counter is far worse for the client than the desk's own quote."""
    from nexotc_client.desk.quote import FAT_FINGER_BPS, counter_giveaway_bps

    if q.counter_price is None or q.price <= 0:
        return []
    favour = -counter_giveaway_bps(q)
    if favour < FAT_FINGER_BPS:
        return []
    return [
        f"the counter {_price(q.counter_price)} is {_bps(favour)} bps worse for the client than the desk's quote "
        f"{_price(q.price)} (a client {q.side.value} at {_price(q.counter_price)}): check it is not a typing mistake"
    ]


@quote.command("accept")
@click.argument("quote_id")
@click.option(
    "--max-giveaway-bps",
    default=None,
    help="Countered quote: the most the desk gives away against its quoted price (default: the quote's half-spread).",
)
@click.option(
    "--override-price",
    default=None,
    help="Countered quote: take a counter beyond the tolerance; must name the counter price exactly.",
)
@db_option
@shared_options
@click.pass_obj
def quote_accept(
    app: App, quote_id: str, max_giveaway_bps: str | None, override_price: str | None, db_url: str | None
) -> None:
    """Accept a quote within its TTL. A QUOTED quote: the client accepts the desk's price. A COUNTERED quote: the
    desk accepts the client's counter, only if it gives away at most --max-giveaway-bps of the quoted price
    (default: the quote's half-spread) or with --override-price naming the counter price (an explicit desk
    decision, recorded in the quote's reason). One accepted quote per RFQ."""
    _transition(
        app,
        db_url,
        quote_id,
        "accept",
        max_giveaway_bps=parse_decimal(max_giveaway_bps, "max-giveaway-bps") if max_giveaway_bps else None,
        override_price=parse_decimal(override_price, "override-price") if override_price else None,
    )


@quote.command("counter")
@click.argument("quote_id")
@click.option("--price", required=True)
@db_option
@shared_options
@click.pass_obj
def quote_counter(app: App, quote_id: str, price: str, db_url: str | None) -> None:
    """The client counters with a price (per base unit); the desk then decides with `quote accept` (within its
    tolerance or with --override-price), `quote reject`, or a new quote."""
    _transition(app, db_url, quote_id, "counter", price=parse_decimal(price, "price"))


@quote.command("reject")
@click.argument("quote_id")
@click.option("--reason", default="")
@db_option
@shared_options
@click.pass_obj
def quote_reject(app: App, quote_id: str, reason: str, db_url: str | None) -> None:
    """Reject the quote."""
    _transition(app, db_url, quote_id, "reject", reason=reason)


@quote.command("show")
@click.argument("quote_id")
@db_option
@shared_options
@click.pass_obj
def quote_show(app: App, quote_id: str, db_url: str | None) -> None:
    """One quote, with its price lock if any."""
    from nexotc_client.cli.desk_checks import desk_store

    store = desk_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
        lock = store.lock_of(quote_id)
    now = _now_ms()
    data = {**_quote_json(q, now), "lock": lock.to_dict() if lock else None}
    base = _render_quote(q, now)

    def render(c: Console) -> None:
        base(c)
        if lock is not None:
            c.print(f"  locked into deal {lock.deal} (tx {lock.tx_hash})")

    app.emit(data, render)


@quote.command("list")
@click.option("--rfq", "rfq_id", default=None)
@db_option
@shared_options
@click.pass_obj
def quote_list(app: App, rfq_id: str | None, db_url: str | None) -> None:
    """Every quote (of one RFQ)."""
    from nexotc_client.cli.desk_checks import desk_store, num

    store = desk_store(app, db_url)
    with desk_errors():
        if rfq_id is not None:
            store.get_rfq(rfq_id)  # an unknown RFQ is an error, not an empty list
        quotes = store.quotes(rfq_id=rfq_id)

    def render(c: Console) -> None:
        if not quotes:
            c.print("no quotes" + (f" for RFQ {rfq_id}" if rfq_id else ""))
        for q in quotes:
            c.print(f"{q.quote_id}  {q.state_at(now).value}  {q.side.value} {num(q.size)} @ {_price(q.price)}")

    now = _now_ms()
    app.emit([_quote_json(q, now) for q in quotes], render)


@quote.command("lock")
@click.argument("quote_id")
@click.option("--client", required=True, help="The client's wallet (the only taker of the offer).")
@click.option("--platform", required=True, help="The desk's fee wallet (distinct from --account).")
@click.option("--resolver", required=True)
@click.option("--base-token", default=None, help="Default: the recorded token of the pair's base (BTC: WBTC).")
@click.option("--quote-token", default=None, help="Default: the recorded token of the pair's quote asset.")
@click.option("--tranches", default=1, show_default=True, type=click.IntRange(1, 32))
@click.option("--interval", default="0s", show_default=True, help="Between tranche unlocks.")
@click.option("--offchain-base", is_flag=True, help="The base leg settles off chain (an ESCROWED deal).")
@click.option("--desk-fee-bps", default=0, show_default=True, type=click.IntRange(0, 1000))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the offer file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@desk_deal_options
@db_option
@shared_options
@click.pass_obj
def quote_lock(
    app: App,
    quote_id: str,
    client: str,
    platform: str,
    resolver: str,
    base_token: str | None,
    quote_token: str | None,
    tranches: int,
    interval: str,
    offchain_base: bool,
    desk_fee_bps: int,
    out: Path | None,
    force: bool,
    desk_id: int,
    policy_id: int | None,
    db_url: str | None,
) -> None:
    """The desk (--account) signs the accepted quote's deal as an offer to the client only (once per quote: a
    locked quote is refused). The tokens must carry the RFQ's pair (read on chain); --client must be the RFQ's
    client when the RFQ names a wallet. The offer is recorded in the desk database with a nonce no other offer
    of the desk's wallet holds; locking the quote again while its earlier offer is untaken re-uses that offer's
    nonce (it supersedes it: at most one of them can be accepted); once the earlier offer was accepted, it is
    refused."""

    from nexotc_client.chain.contracts import erc20
    from nexotc_client.cli.desk_checks import desk_store, pair_token
    from nexotc_client.desk.lock import LockParams, sign_quote_lock
    from nexotc_client.desk.models import QuoteState
    from nexotc_client.desk.money import asset_decimals
    from nexotc_client.terms import ZERO_ADDRESS

    store = desk_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
        request = store.get_rfq(q.rfq_id)
        lock = store.lock_of(quote_id)
    if lock is not None:
        raise NexotcError(f"quote {quote_id} is already locked into deal {lock.deal}: no second offer")
    if q.state is not QuoteState.ACCEPTED:
        raise NexotcError(f"quote {quote_id} is {q.state.value}: only an accepted quote is locked")
    if out is not None and out.exists() and not force:
        raise NexotcError(f"{out} exists: the offer file is not overwritten without --force")
    if out is not None and not out.parent.is_dir():
        raise NexotcError(f"--out {out}: no directory {out.parent}")
    client_address = desk_wallet(client, "--client")
    try:
        rfq_client = wallet_address(request.client)
    except NexotcError:
        rfq_client = None  # the RFQ names the client, not its wallet: nothing to compare
    if rfq_client is not None and rfq_client.lower() != client_address.lower():
        raise NexotcError(f"--client {client_address} is not RFQ {request.rfq_id}'s client {rfq_client}")
    factory = app.factory()
    desk, policy = desk_deal_ids(factory, desk_id, policy_id)
    sender = app.sender()
    roles = {
        "--account (the desk's trading wallet)": sender.address,
        "--client": client_address,
        "--platform (the desk's fee wallet)": desk_wallet(platform, "--platform"),
        "--resolver": desk_wallet(resolver, "--resolver"),
    }
    seen: dict[str, str] = {}
    for role, address in roles.items():
        if address.lower() in seen:
            raise NexotcError(f"{role} is the same wallet as {seen[address.lower()]} ({address}): use distinct wallets")
        seen[address.lower()] = role
    base_asset, quote_asset = q.symbol.split("/")
    quote_addr = pair_token(app, quote_token, quote_asset, "quote")
    if offchain_base and base_token is None:
        base, base_decimals = ZERO_ADDRESS, asset_decimals(base_asset)
    else:
        base = pair_token(app, base_token, base_asset, "base")
        base_decimals = int(erc20(base).decimals())
    params = LockParams(
        base_token=base,
        quote_token=quote_addr,
        desk=sender.address,
        client=client_address,
        platform=roles["--platform (the desk's fee wallet)"],
        resolver=roles["--resolver"],
        base_decimals=base_decimals,
        quote_decimals=int(erc20(quote_addr).decimals()),
        base_on_chain=not offchain_base,
        tranches=tranches,
        interval_s=parse_ms(interval, "interval") // 1000,
        desk_fee_bps=desk_fee_bps,
        desk_id=desk, policy_id=policy,
    )  # fmt: skip
    from ape import chain

    from nexotc_client.cli.offer import home_offer_nonces

    # the wallet's offers made with `offer create` in this home hold nonces too: never share one
    own = home_offer_nonces(app, int(chain.chain_id), factory.address, sender.address)
    with step(app, "signing the lock offer"), desk_errors():
        locked = sign_quote_lock(factory, store, q, params, sender, extra_known=own)
    signed = locked.signed
    link = signed.to_link()
    data = {
        "quote_id": quote_id,
        "offer_hash": locked.offer_hash,
        "maker": signed.offer.maker,
        "taker": signed.offer.taker,
        "nonce": locked.nonce,
        "desk_id": desk,
        "policy_id": policy,
        "supersedes": locked.supersedes,
        "salt": "0x" + signed.offer.salt.hex(),
        "base_amount": signed.offer.terms.base.amount,
        "quote_amount": signed.offer.terms.quote.amount,
        "link": link,
    }
    if out is not None:
        data["file"] = _write_offer_file(out, signed, link, quote_id=quote_id)

    def render(c: Console) -> None:
        c.print(f"lock offer for {quote_id} signed by {sender.address} (nonce {locked.nonce})")
        c.print(f"offer {locked.offer_hash}")
        if locked.supersedes:
            c.print(f"supersedes {locked.supersedes}: same nonce, at most one of the two can be accepted")
        if desk:
            gate = f", gated on KYC policy #{policy}" if policy else ""
            c.print(f"desk #{desk}: a desk deal once the client accepts{gate}")
        _echo_link(c, link)

    app.emit(data, render)


@quote.command("take")
@click.argument("ref")
@click.option("--fund", is_flag=True, help="Deposit both legs in the same transaction.")
@db_option
@shared_options
@click.pass_obj
def quote_take(app: App, ref: str, fund: bool, db_url: str | None) -> None:
    """The client (--account) accepts a lock offer: the deal is deployed and the lock recorded."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.cli.offer import read_offer
    from nexotc_client.desk.lock import accept_lock

    signed, _ = read_offer(ref)
    store = desk_store(app, db_url)
    factory = app.factory()
    client = app.sender()
    with step(app, "accepting the lock offer"), desk_errors():
        lock, accepted = accept_lock(factory, signed, client, store, fund=fund)
    data = {**lock.to_dict(), "funded": fund, "gas_used": accepted.result.gas_used}
    app.emit(data, lambda c: c.print(f"quote {lock.quote_id} locked: deal {lock.deal} (tx {lock.tx_hash})"))


# ===================================================================== hedge
#: `hedge start | resume` exit code when the hedge ended PARTIAL (or STOPPED): a residual is left unhedged
EXIT_HEDGE_PARTIAL = 3
_HEDGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@click.group()
def hedge() -> None:
    """TWAP hedges of accepted quotes on simulated venues, or with --live on the exchanges themselves (through
    ccxt, credentials from the environment), persisted and resumable."""


def _journal(app: App, parent_id: str) -> Path:
    return app.home / "exchange" / parent_id


def _hedge_lock(app: App, parent_id: str) -> Any:
    from nexotc_client.desk.hedge import HedgeLock

    return HedgeLock(_journal(app, parent_id) / "hedge.lock", f"hedge {parent_id}")


def _process(app: App, parent_id: str, status: str) -> dict[str, Any] | None:
    """Whether an active hedge really runs: its lock is held by a live process (the kernel releases it when the
    process dies), else its "running" status is stale (killed, Ctrl-C: `hedge resume` or `hedge cancel` it)."""
    from nexotc_client.desk.hedge import HedgeLock
    from nexotc_client.desk.models import HedgeStatus

    if not HedgeStatus(status).active:
        return None
    pid = HedgeLock.holder(_journal(app, parent_id) / "hedge.lock")
    return {"running": pid is not None, "pid": pid or None, "stale": pid is None}


def _amount(value: Decimal | None) -> str:
    """A size or fee for people: plain digits, no exponent, no trailing zeros (1E+3 -> 1000, 1E-9 -> 0.000000001)."""
    from nexotc_client.desk.db import canonical

    return "-" if value is None else canonical(value)


#: the context amounts are rounded in for display: wide enough for any product of two in-range values (48
#: integer digits and 2 decimals); what is wider still is shown with an exponent
_WIDE = Context(prec=60)


def _cents(value: Decimal) -> str:
    """Two decimals (half to even, whatever the process's decimal context says: ccxt changes it), thousands
    grouped with commas, never a negative zero ("-0.004" -> "0.00", "65030.475" -> "65,030.48")."""
    try:
        rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN, context=_WIDE)
    except InvalidOperation:  # beyond what the CLI takes (a record written before typed values were bounded)
        return f"{value:.2E}"
    return format(rounded.copy_abs() if rounded == 0 else rounded, ",f")


def _price(value: Decimal | None) -> str:
    """A price for people: cents at or above 1, else 8 significant digits (never an exponent)."""
    from nexotc_client.desk.db import canonical

    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1:
        return _cents(value)
    return canonical(value.quantize(Decimal(1).scaleb(value.adjusted() - 7), rounding=ROUND_HALF_EVEN, context=_WIDE))


def _money(value: Decimal | None) -> str:
    """A fee or notional (quote currency) for people: cents."""
    return "-" if value is None else _cents(value)


def _bps(value: str | Decimal) -> str:
    """Basis points for people: two decimals."""
    return _cents(Decimal(value))


def _echo_link(c: Console, link: str) -> None:
    """An invite link on one line: never wrapped at the console's width (160 columns when stdout is not a
    terminal), so a link copied from the screen or read back from redirected output is whole."""
    c.print(link, soft_wrap=True, markup=False, emoji=False, highlight=False)


def _venues_of(app: App, parent_id: str) -> dict[str, Any]:
    """What a hedge trades on: {"mode": "live" | "simulated", "venues", "sandbox", "proxy_url"} (never a secret)."""
    from nexotc_client.desk.exchange import venues_info

    return venues_info(_journal(app, parent_id))


def _venues_text(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    names = ", ".join(info["venues"]) or "-"
    if info["mode"] != "live":
        return f"simulated {names}"
    via = f" via {info['proxy_url']}" if info.get("proxy_url") else ""
    return f"live{' sandbox' if info.get('sandbox') else ''} {names}{via}"


def _hedge_summary(
    state: Any, process: dict[str, Any] | None = None, venues: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The --json view: exact decimal strings (no exponent)."""
    from nexotc_client.desk.db import canonical

    return {
        "parent_id": state.plan.parent_id,
        "status": state.status.value,
        "side": state.plan.side.value,
        "target": canonical(state.plan.target_size),
        "filled": canonical(state.filled),
        "residual": canonical(state.plan.target_size - state.filled),
        "avg_price": str(state.avg_price) if state.avg_price is not None else None,
        "fees": canonical(state.fees),
        "arrival_mid": canonical(state.arrival_mid) if state.arrival_mid is not None else None,
        "clips_sent": state.next_clip,
        "clips": state.plan.clips,
        "orders": len(state.orders),
        "fills": len(state.fills),
        "venue_filled": {k: canonical(v) for k, v in sorted(state.venue_filled.items())},
        "process": process,
        "venues": venues,
    }


def _status_text(status: str, process: dict[str, Any] | None) -> str:
    if process is None:
        return status
    if process["stale"]:
        return f"{status} (stale: no process runs it)"
    return f"{status} (process {process['pid']})" if process["pid"] else f"{status} (a process runs it)"


def _render_hedge(data: dict[str, Any]) -> Callable[[Console], None]:
    def render(c: Console) -> None:
        avg = _price(Decimal(data["avg_price"])) if data["avg_price"] is not None else "-"
        mid = _price(Decimal(data["arrival_mid"])) if data["arrival_mid"] is not None else "-"
        c.print(
            f"hedge {data['parent_id']} {_status_text(data['status'], data['process'])}: {data['side']} "
            f"{_amount(Decimal(data['filled']))}/{_amount(Decimal(data['target']))} avg {avg} (arrival mid {mid}), "
            f"fees {_money(Decimal(data['fees']))}, {data['orders']} orders, {data['fills']} fills, "
            f"clips {data['clips_sent']}/{data['clips']}"
        )
        if data.get("venues") and data["venues"]["mode"] == "live":
            c.print(f"  on {_venues_text(data['venues'])}", soft_wrap=True, markup=False, highlight=False)
        for venue, size in data["venue_filled"].items():
            c.print(f"  {venue}: {_amount(Decimal(size))}")
        residual = Decimal(data["residual"])
        if data["status"] in ("partial", "stopped", "cancelled") and residual > 0:
            c.print(f"  [yellow]residual {_amount(residual)} unhedged[/yellow]")
        if data["process"] and data["process"]["stale"]:
            c.print(f"  `nexotc hedge resume {data['parent_id']}` or `nexotc hedge cancel {data['parent_id']}`")

    return render


def _emit_finished(app: App, state: Any, quote_id: str | None, store: DeskStore | None = None) -> None:
    """Print a finished start/resume; a hedge that ended with a residual (PARTIAL, STOPPED) exits 3 with a
    warning on stderr naming the residual and how to hedge it (what the quote's hedges, this one and any later
    one, still leave)."""
    from nexotc_client.desk.hedge import committed_size
    from nexotc_client.desk.models import HedgeStatus

    data = _hedge_summary(state, venues=_venues_of(app, state.plan.parent_id))
    app.emit(data, _render_hedge(data))
    if state.status in (HedgeStatus.PARTIAL, HedgeStatus.STOPPED):
        residual = _amount(state.plan.target_size - state.filled)
        hint = f": `nexotc hedge start {quote_id} --residual`" if quote_id else ""
        if quote_id and store is not None:
            states = [store.load_hedge(h["parent_id"]) for h in store.hedges() if h["quote_id"] == quote_id]
            others = [s.plan.parent_id for s in states if s.plan.parent_id != state.plan.parent_id]
            left = store.get_quote(quote_id).size - sum((max(committed_size(s), s.filled) for s in states), Decimal(0))
            if others and left <= 0:
                hint = f"; quote {quote_id} is fully hedged with {', '.join(others)}"
            elif others:
                hint = f"; quote {quote_id} has {_amount(left)} left after {', '.join(others)}{hint}"
        click.echo(
            f"warning: hedge {state.plan.parent_id} {state.status.value}, {residual} left unhedged{hint}", err=True
        )
        click.get_current_context().exit(EXIT_HEDGE_PARTIAL)


def _console(app: App) -> Any:
    import sys

    if app.json:
        return None
    from rich.console import Console

    return Console(stderr=True, force_terminal=sys.stderr.isatty())


def _write_offer_file(out: Path, signed: Any, link: str, **notes: str) -> str:
    """The signed offer file of `--out` (what `offer open` and `quote take` read), with `notes` (quote or match
    id); a failed write still shows the link, since the offer is signed."""
    import json

    try:
        out.write_text(json.dumps({**signed.to_json(), **notes}, indent=2))
    except OSError as exc:
        raise NexotcError(f"--out {out}: {exc.strerror or exc} (the offer is signed: {link})") from exc
    return str(out)


def _hedge_target(app: App, store: DeskStore, q: Quote, residual: bool) -> tuple[Decimal, list[str]]:
    """What a new hedge of `q` may buy or sell: the quote's size when it has no hedge yet; with --residual, what
    its earlier (finished) hedges left. A hedge of it still active (pending/running) always refuses."""
    from nexotc_client.desk.hedge import HedgeLock, committed_size

    states = [store.load_hedge(h["parent_id"]) for h in store.hedges() if h["quote_id"] == q.quote_id]
    for s in states:
        if s.status.active:
            pid = s.plan.parent_id
            holder = HedgeLock.holder(_journal(app, pid) / "hedge.lock")
            advice = (
                f"it is running in process {holder}: wait for it, or stop that process and `nexotc hedge cancel {pid}`"
                if holder
                else f"`nexotc hedge resume {pid}` or `nexotc hedge cancel {pid}` first"
            )
            raise NexotcError(
                f"quote {q.quote_id} is already being hedged by {pid} ({s.status.value}, "
                f"{_amount(s.filled)}/{_amount(s.plan.target_size)}): {advice}"
            )
    hedged = sum((max(committed_size(s), s.filled) for s in states), Decimal(0))
    names = [s.plan.parent_id for s in states]
    if not residual:
        if hedged > 0:
            raise NexotcError(
                f"quote {q.quote_id} was hedged by {', '.join(names)} ({_amount(hedged)}/{_amount(q.size)}): "
                f"`--residual` hedges the {_amount(max(q.size - hedged, Decimal(0)))} left"
            )
        return q.size, names
    left = q.size - hedged
    if left <= 0:
        raise NexotcError(
            f"quote {q.quote_id} is fully hedged ({_amount(hedged)}/{_amount(q.size)} by {', '.join(names)}): "
            "nothing left"
        )
    return left, names


def _clear_orphan_journals(journal: Path, parent_id: str) -> None:
    """Venue journals under a hedge id the database does not know: those of a start that died before it
    sent an order (no order in them) are removed; any with an order are refused (another database's hedge?)."""
    import json

    files = sorted(journal.glob("*.jsonl"))
    for path in files:
        for line in path.read_text().splitlines()[1:]:
            try:
                method = json.loads(line).get("m")
            except ValueError:
                continue
            if method in ("order", "cancel"):
                raise NexotcError(
                    f"{journal} holds venue journals with orders but this database has no hedge {parent_id} "
                    "(another --db?): use another --id"
                )
    for path in files:
        path.unlink()


def _live_venues(
    live: bool,
    sandbox: bool,
    venues: str | None,
    proxy_url: str | None,
    fixtures: str | None,
    seed_given: bool,
    credentials: bool = True,
) -> LiveVenues | None:
    """The live venues of `hedge start --live` or `quote new --live` (a LiveVenues), or None without --live;
    every option and (`credentials`: a hedge trades, a quote only reads public books) the credentials in the
    environment are checked here, before anything is created."""
    import os

    from nexotc_client.desk.exchange import LiveVenues, check_proxy_url
    from nexotc_client.desk.venues import CCXT_VENUES, VenueError, has_sandbox

    if not live:
        given = [name for name, on in (("--sandbox", sandbox), ("--venues", venues), ("--proxy-url", proxy_url)) if on]
        if given:
            raise NexotcError(f"{', '.join(given)}: only with --live (the exchanges themselves)")
        return None
    if fixtures:
        raise NexotcError("--live and --fixtures exclude each other (--live reads the exchanges' books)")
    if seed_given:
        raise NexotcError("--live and --seed exclude each other (the seed is the simulated venues')")
    if venues is not None:
        names = [v.strip().lower() for v in venues.split(",")]
        if not all(names):
            known = ", ".join(CCXT_VENUES)
            raise NexotcError(f"--venues {venues!r}: venue names separated by commas (venues: {known})")
        unknown = [v for v in names if v not in CCXT_VENUES]
        if unknown:
            raise NexotcError(f"--venues: unknown venue {', '.join(unknown)} (venues: {', '.join(CCXT_VENUES)})")
        if len(set(names)) != len(names):
            raise NexotcError(f"--venues {venues!r}: a venue named twice")
    else:
        names = [v for v in CCXT_VENUES if has_sandbox(v)] if sandbox else list(CCXT_VENUES)
    if sandbox:
        without = [v for v in names if not has_sandbox(v)]
        if without:
            raise NexotcError(
                f"--sandbox: {', '.join(without)} {'has' if len(without) == 1 else 'have'} no sandbox in ccxt "
                f"(sandboxes: {', '.join(v for v in CCXT_VENUES if has_sandbox(v))})"
            )
    try:
        record = LiveVenues(tuple(names), sandbox, check_proxy_url(proxy_url) if proxy_url is not None else None)
    except VenueError as exc:
        raise NexotcError(str(exc)) from exc
    missing = record.missing_credentials(os.environ) if credentials else []
    if missing:
        raise NexotcError(
            f"--live: missing credentials {', '.join(missing)} (set them in the environment; they are never "
            "read from the command line or a file)"
        )
    return record


@contextmanager
def _no_secrets() -> Iterator[None]:
    """A user error of a live hedge with every venue credential of the environment masked (an exchange's error
    message should never carry one, but it is not ours to trust)."""
    import os

    from nexotc_client.desk.venues import CCXT_VENUES, credential_vars

    try:
        yield
    except NexotcError as exc:
        text = str(exc)
        secrets = [os.environ.get(var, "").strip() for v in CCXT_VENUES for var in credential_vars(v).values()]
        masked = text
        for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
            masked = masked.replace(secret, "***")
        if masked == text:
            raise
        raise NexotcError(masked) from None


@hedge.command("start")
@click.argument("quote_id")
@click.option("--clips", default=8, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--interval", default="1s", show_default=True, help="Between clips (e.g. 250ms, 30s).")
@click.option("--participation", default=None, help="Cap a clip to this fraction (0, 1] of the displayed depth.")
@click.option("--venue-cap", multiple=True, help="VENUE=SIZE: at most SIZE (>= 0) on that venue.")
@click.option("--limit-bps", default=None, help="Bound child prices this far through the arrival mid.")
@click.option("--seed", default=0, show_default=True, type=int, help="The simulated venues' seed.")
@click.option("--fixtures", default=None, help="Directory of recorded venue responses.")
@click.option(
    "--id", "parent_id", default=None, help="Hedge id (default: H-<quote id>, H-<quote id>-N for a residual)."
)
@click.option(
    "--residual", is_flag=True, help="Hedge what the quote's finished or cancelled hedges left (size capped to it)."
)
@click.option(
    "--live",
    is_flag=True,
    help="Hedge on the exchanges through ccxt (credentials from NEXOTC_<VENUE>_API_KEY / _SECRET / _PASSWORD).",
)
@live_venue_options
@db_option
@shared_options
@click.pass_obj
def hedge_start(app: App, **options: Any) -> None:
    """Hedge an accepted quote: TWAP clips routed across the venues by fee-adjusted price, on simulated venues or
    (--live) on the exchanges. Exits 3 when the hedge ends with a residual (status partial); a quote already hedged
    is refused unless --residual."""
    with _no_secrets():
        _hedge_start(app, **options)


def _hedge_start(
    app: App,
    quote_id: str,
    clips: int,
    interval: str,
    participation: str | None,
    venue_cap: tuple[str, ...],
    limit_bps: str | None,
    seed: int,
    fixtures: str | None,
    parent_id: str | None,
    residual: bool,
    live: bool,
    sandbox: bool,
    venues: str | None,
    proxy_url: str | None,
    db_url: str | None,
) -> None:
    import hashlib
    import os
    import shutil
    from dataclasses import replace

    from nexotc_client.desk.engine import hedge_plan, run_hedge, venue_books
    from nexotc_client.desk.exchange import VENUES_FILE
    from nexotc_client.desk.hedge import HedgeLock, validate_plan
    from nexotc_client.desk.models import QuoteState

    # everything typed is checked before anything is created (no journal, no lock file, no row)
    interval_ms = parse_ms(interval, "--interval")
    cap_participation = parse_decimal(participation, "--participation") if participation is not None else None
    caps: dict[str, Decimal] = {}
    for item in venue_cap:
        venue, sep, size = item.partition("=")
        if not sep or not venue.strip():
            raise NexotcError(f"--venue-cap {item!r}: VENUE=SIZE")
        caps[venue.strip()] = parse_decimal(size, f"--venue-cap {venue.strip()}")
    limit = parse_decimal(limit_bps, "--limit-bps") if limit_bps is not None else None
    if parent_id is not None and not _HEDGE_ID.match(parent_id):
        raise NexotcError(f"--id {parent_id!r}: letters, digits, '.', '_', '-' (at most 64, not starting with . _ -)")
    seed_given = click.get_current_context().get_parameter_source("seed") is not click.core.ParameterSource.DEFAULT
    live_record = _live_venues(live, sandbox, venues, proxy_url, fixtures, seed_given)
    store = _hedge_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
    if q.state is not QuoteState.ACCEPTED:
        raise NexotcError(f"quote {quote_id} is {q.state.value}: only an accepted quote is hedged")
    live_venues = None
    if live_record is None:
        books = _books(q.symbol, fixtures)
    else:
        with desk_errors():  # the books of the plan: from the exchanges (nothing is created before they answer)
            live_venues = live_record.open(os.environ)
            books = venue_books(live_venues, q.symbol)
    plan = hedge_plan(
        q,
        clips=clips,
        interval_ms=interval_ms,
        start_ms=_now_ms(),
        parent_id=parent_id,
        participation_cap=cap_participation,
        venue_caps=caps,
        limit_bps=limit,
    )
    with desk_errors():
        validate_plan(plan, {b.venue for b in books})
        # one `hedge start` of a quote at a time: the check of its other hedges and the new one are atomic
        digest = hashlib.sha256(quote_id.encode()).hexdigest()[:24]
        quote_lock = HedgeLock(app.home / "exchange" / ".quotes" / f"{digest}.lock", f"a hedge start of {quote_id}")
        with quote_lock:
            target, earlier = _hedge_target(app, store, q, residual)
            if parent_id is None and earlier:
                n = len(earlier) + 1
                while f"H-{quote_id}-{n}" in earlier or _journal(app, f"H-{quote_id}-{n}").exists():
                    n += 1
                plan = replace(plan, parent_id=f"H-{quote_id}-{n}")
            if not _HEDGE_ID.match(plan.parent_id):
                raise NexotcError(f"hedge id {plan.parent_id!r} is not a valid id: pass --id")
            plan = replace(plan, target_size=target)
            validate_plan(plan, {b.venue for b in books})
            journal = _journal(app, plan.parent_id)
            created = not journal.exists()
            with _hedge_lock(app, plan.parent_id):
                try:
                    store.load_hedge(plan.parent_id)
                except LookupError:
                    pass
                else:
                    raise NexotcError(f"hedge {plan.parent_id} exists: `nexotc hedge resume {plan.parent_id}`")
                _clear_orphan_journals(journal, plan.parent_id)
                try:
                    state = run_hedge(
                        store,
                        plan,
                        journal,
                        books,
                        quote_id=quote_id,
                        seed=seed,
                        console=_console(app),
                        # the hedge is in the database: other starts of the quote now see it (and refuse)
                        on_started=lambda _state: quote_lock.release(),
                        venues=live_venues,
                        live=live_record,
                    )
                except BaseException:
                    try:
                        store.load_hedge(plan.parent_id)
                    except LookupError:  # never created: leave nothing behind
                        for path in journal.glob("*.jsonl"):
                            path.unlink()
                        (journal / VENUES_FILE).unlink(missing_ok=True)
                        if created:
                            shutil.rmtree(journal, ignore_errors=True)
                    raise
    _emit_finished(app, state, quote_id)


def proxy_change_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--proxy-url and --no-proxy of `hedge resume | cancel`: a live hedge's exchanges reached through another
    egress gateway (or none) from now on, recorded in its venues.json (`_new_proxy`, `_rerouted`)."""
    for option in reversed(
        (
            click.option(
                "--proxy-url",
                default=None,
                help="A live hedge: reach its exchanges through this proxy URL (ccxt's proxy_url) from now on, e.g. "
                "when the egress gateway moved (recorded with the hedge).",
            ),
            click.option(
                "--no-proxy",
                is_flag=True,
                help="A live hedge: reach its exchanges directly, without a proxy, from now on (recorded).",
            ),
        )
    ):
        command = option(command)
    return command


#: the proxy a `hedge resume | cancel` moves a live hedge to: (the option that says so, the checked URL or None)
_NewProxy = tuple[str, str | None]


def _new_proxy(proxy_url: str | None, no_proxy: bool) -> _NewProxy | None:
    """--proxy-url / --no-proxy as typed, checked (None: neither, the recorded proxy stays)."""
    from nexotc_client.desk.exchange import check_proxy_url

    if proxy_url is not None and no_proxy:
        raise NexotcError("--proxy-url and --no-proxy exclude each other")
    if no_proxy:
        return ("--no-proxy", None)
    if proxy_url is None:
        return None
    with desk_errors():
        return ("--proxy-url", check_proxy_url(proxy_url))


def _rerouted(app: App, parent_id: str, new: _NewProxy | None) -> LiveVenues | None:
    """The live venues record of hedge `parent_id` with the `new` proxy (None without a change); a hedge on
    simulated venues refuses. Nothing is written here: `_save_rerouted` does, once the command's checks passed."""
    from nexotc_client.desk.exchange import LiveVenues

    if new is None:
        return None
    option, url = new
    with desk_errors():
        live = LiveVenues.load(_journal(app, parent_id))
        if live is None:
            raise NexotcError(f"{option}: only for a live hedge (hedge {parent_id} trades on simulated venues)")
        return live.via(url)


def _save_rerouted(app: App, parent_id: str, record: LiveVenues | None) -> None:
    """Record the new route of a live hedge (atomically), under the hedge's lock and once the command's checks
    passed: the credentials of its venues must be in the environment (else nothing is written)."""
    import os

    from nexotc_client.desk.exchange import LiveVenues

    if record is None:
        return
    with desk_errors():
        record.require_credentials(os.environ)
        journal = _journal(app, parent_id)
        if LiveVenues.load(journal) != record:
            record.save(journal)


@hedge.command("resume")
@click.argument("parent_id")
@proxy_change_options
@db_option
@shared_options
@click.pass_obj
def hedge_resume(app: App, parent_id: str, proxy_url: str | None, no_proxy: bool, db_url: str | None) -> None:
    """Continue a hedge after a crash, from the database and the venues' journals (exit 3: it ended partial). A
    live hedge's exchanges can be reached through a new egress gateway (--proxy-url) or none (--no-proxy)."""
    from nexotc_client.desk.engine import resume_hedge
    from nexotc_client.desk.models import HedgeStatus

    new = _new_proxy(proxy_url, no_proxy)
    store = _hedge_store(app, db_url)
    with _no_secrets(), desk_errors():
        quote_id = store.hedge_quote_id(parent_id)
        record = _rerouted(app, parent_id, new)
        with _hedge_lock(app, parent_id):
            if record is not None and store.load_hedge(parent_id).status is HedgeStatus.CANCELLED:
                raise NexotcError(f"hedge {parent_id} was cancelled: it cannot be resumed")
            _save_rerouted(app, parent_id, record)
            state = resume_hedge(store, parent_id, _journal(app, parent_id), console=_console(app))
    _emit_finished(app, state, quote_id, store)


@hedge.command("cancel")
@click.argument("parent_id")
@proxy_change_options
@db_option
@shared_options
@click.pass_obj
def hedge_cancel(app: App, parent_id: str, proxy_url: str | None, no_proxy: bool, db_url: str | None) -> None:
    """Cancel a hedge: its open orders are cancelled at the venues, nothing more is sent, it is marked
    cancelled (idempotent; a running hedge's process must be stopped first). A live hedge's exchanges can be
    reached through a new egress gateway (--proxy-url) or none (--no-proxy)."""
    from nexotc_client.desk.engine import cancel_hedge
    from nexotc_client.desk.hedge import HedgeBusyError
    from nexotc_client.desk.models import HedgeStatus

    new = _new_proxy(proxy_url, no_proxy)
    store = _hedge_store(app, db_url)
    with _no_secrets(), desk_errors():
        state = store.load_hedge(parent_id)
        record = _rerouted(app, parent_id, new)
        if state.status in (HedgeStatus.DONE, HedgeStatus.PARTIAL):
            raise NexotcError(f"hedge {parent_id} is already finished ({state.status.value}): nothing to cancel")
        already = state.status is HedgeStatus.CANCELLED  # nothing is sent again: its record stays as it is
        if not already:
            try:
                lock = _hedge_lock(app, parent_id).acquire()
            except HedgeBusyError as exc:
                raise NexotcError(f"{exc}: stop it (Ctrl-C) first, then cancel") from exc
            try:
                _save_rerouted(app, parent_id, record)
                state = cancel_hedge(store, parent_id, _journal(app, parent_id))
            finally:
                lock.release()
    data = {**_hedge_summary(state, venues=_venues_of(app, parent_id)), "already_cancelled": already}

    def render(c: Console) -> None:
        if already:
            c.print(f"hedge {parent_id} was already cancelled")
        _render_hedge(data)(c)

    app.emit(data, render)


@hedge.command("show")
@click.argument("parent_id")
@db_option
@shared_options
@click.pass_obj
def hedge_show(app: App, parent_id: str, db_url: str | None) -> None:
    """A hedge's progress as persisted (and whether a process runs it)."""
    store = _hedge_store(app, db_url)
    with desk_errors():
        state = store.load_hedge(parent_id)
    data = _hedge_summary(state, _process(app, parent_id, state.status.value), _venues_of(app, parent_id))
    app.emit(data, _render_hedge(data))


@hedge.command("list")
@db_option
@shared_options
@click.pass_obj
def hedge_list(app: App, db_url: str | None) -> None:
    """Every hedge; a "running" one no process runs any more is marked stale."""
    from nexotc_client.desk.db import canonical

    rows = [
        {
            **{k: canonical(v) if isinstance(v, Decimal) else v for k, v in r.items()},
            "process": _process(app, r["parent_id"], r["status"]),
            "venues": _venues_of(app, r["parent_id"]),
        }
        for r in _hedge_store(app, db_url).hedges()
    ]

    def render(c: Console) -> None:
        for r in rows:
            c.print(
                f"{r['parent_id']}  {_status_text(r['status'], r['process'])}  {r['side']} {r['filled']}/{r['target']}"
                f"  {_venues_text(r['venues'])}",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )

    app.emit(rows, render)


# ===================================================================== settle
@click.group()
def settle() -> None:
    """Settlement tracking of locked deals: confirmations, off-chain milestones, SLA breaches."""


def _network_name(app: App) -> str:
    from ape import networks

    app.connect()
    provider = networks.provider
    return f"{provider.network.ecosystem.name}:{provider.network.name}"


def _settle_deal(factory: Any, ref: str) -> Any:
    """The deal a settle command names: an address, or the factory's creation number (`1` or `#1`, as `deal
    list` shows), resolved the same way by every settle command."""
    with desk_errors():
        return factory.deal(ref.strip())


@settle.command("track")
@click.argument("deal_address")
@click.option("--confirmations", default=None, type=click.IntRange(1, 10_000), help="Default: the network's.")
@click.option("--sla-funding", default="1h", show_default=True)
@click.option("--sla-release", default="1d", show_default=True)
@click.option("--sla-offchain", default="12h", show_default=True)
@click.option("--quote", "quote_id", default=None, help="The quote the deal locks (default: from the lock).")
@db_option
@shared_options
@click.pass_obj
def settle_track(
    app: App,
    deal_address: str,
    confirmations: int | None,
    sla_funding: str,
    sla_release: str,
    sla_offchain: str,
    quote_id: str | None,
    db_url: str | None,
) -> None:
    """Start tracking a deal's settlement. --quote must be a quote of the database that the deal locks (its offer
    salt names it); by default, the quote recorded by the lock or named on chain."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.settlement import SettlementTracker, Sla

    store = desk_store(app, db_url, create=True)
    network = _network_name(app)
    factory = app.factory()
    sla = Sla(
        parse_ms(sla_funding, "sla-funding") // 1000,
        parse_ms(sla_release, "sla-release") // 1000,
        parse_ms(sla_offchain, "sla-offchain") // 1000,
    )
    deal = _settle_deal(factory, deal_address)
    with desk_errors():
        row = SettlementTracker(store, factory, network).track(deal, quote_id, sla, confirmations)
    data = {
        "deal": row.deal_address,
        "quote_id": row.quote_id,
        "network": row.network,
        "confirmations": row.confirmations,
        "mode": row.mode,
        "sla": row.sla,
    }
    from nexotc_client.cli.desk_checks import plural

    app.emit(
        data,
        lambda c: c.print(
            f"tracking {row.deal_address} ({row.mode}, quote {row.quote_id or 'none'}, "
            f"{plural(row.confirmations, 'confirmation')})"
        ),
    )


@settle.command("status")
@click.argument("deal_address")
@db_option
@shared_options
@click.pass_obj
def settle_status(app: App, deal_address: str, db_url: str | None) -> None:
    """Poll the deal: confirmed events stored, pending ones shown, SLA breaches flagged (exit 4 on a breach)."""
    from datetime import UTC, datetime

    from nexotc_client.cli.desk_checks import desk_store, plural
    from nexotc_client.desk.settlement import SettlementTracker

    store = desk_store(app, db_url)
    network = _network_name(app)
    factory = app.factory()
    deal = _settle_deal(factory, deal_address)
    with desk_errors():
        view = SettlementTracker(store, factory, network).poll(deal.address)
    data = view.to_dict()

    def when(ts: int) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def render(c: Console) -> None:
        quote_part = f"quote {view.quote_id}" if view.quote_id else "no desk quote"
        c.print(f"deal {view.deal} ({view.phase}, {quote_part}): {plural(view.new_events, 'new confirmed event')}")
        for t in view.tranches:
            parts = [t.status]
            if t.settled_tx:
                parts.append(f"settled in {t.settled_tx}")
            if t.offchain:
                parts.append("off-chain leg: " + ", ".join(t.offchain))
            c.print(f"  tranche {t.index}: {'; '.join(parts)}")
        for p in view.pending:
            c.print(f"  pending {p.name} ({p.confirmations}/{plural(view.confirmations, 'confirmation')}) {p.tx_hash}")
        for b in view.breaches:
            where = f" tranche {b.tranche}" if b.tranche is not None else ""
            c.print(f"  [red]SLA breach[/red] {b.kind}{where}: {b.detail} (due {when(b.due)})")

    app.emit(data, render)
    if view.breaches:
        click.get_current_context().exit(4)


@settle.command("mark")
@click.argument("deal_address")
@click.argument("tranche", type=int)
@click.option("--milestone", required=True, type=click.Choice(["initiated", "sent", "delivered", "confirmed"]))
@click.option("--evidence", required=True, help="A txid on the other chain, a wire reference.")
@click.option("--on-chain", is_flag=True, help="ESCROWED 'delivered': also mark on chain from --account.")
@db_option
@shared_options
@click.pass_obj
def settle_mark(
    app: App, deal_address: str, tranche: int, milestone: str, evidence: str, on_chain: bool, db_url: str | None
) -> None:
    """Record a milestone of the off-chain leg, with its evidence. With --on-chain ('delivered' only) the marker
    also marks the tranche on chain; an identical off-chain record is then upgraded with the transaction."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.settlement import SettlementTracker

    store = desk_store(app, db_url)
    network = _network_name(app)
    factory = app.factory()
    deal = _settle_deal(factory, deal_address)
    marker = app.sender() if on_chain else None
    with desk_errors():
        row = SettlementTracker(store, factory, network).mark_offchain(
            deal.address, tranche, milestone, evidence, marker
        )
    data = {
        "deal": row.deal_address,
        "tranche": row.tranche,
        "milestone": row.milestone,
        "evidence_hash": row.evidence_hash,
        "tx_hash": row.tx_hash,
    }
    app.emit(
        data,
        lambda c: c.print(
            f"tranche {tranche}: {milestone} (evidence hash {row.evidence_hash})"
            + (f", marked on chain in {row.tx_hash}" if row.tx_hash else ", recorded off chain")
        ),
    )


@settle.command("release")
@click.argument("deal_address")
@click.argument("tranche", type=int)
@db_option
@shared_options
@click.pass_obj
def settle_release(app: App, deal_address: str, tranche: int, db_url: str | None) -> None:
    """Release a tranche of a locked deal from --account and book the settlement (ref <quote id>/<tranche>). A
    call that only records the account's release signature (the tranche is not payable yet) books nothing."""
    from nexotc_client.chain.contracts import erc20
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import book_settlement

    store = desk_store(app, db_url)
    factory = app.factory()
    deal = _settle_deal(factory, deal_address)
    with desk_errors():
        q = store.quote_for_deal(deal.address)
        if q is None:
            raise NexotcError(f"deal {deal.address} locks no quote of this desk database")
    sender = app.sender()
    with step(app, f"releasing tranche {tranche}"):
        result = deal.release(tranche, sender)
    if not any(e.name == "Released" for e in result.events):
        # a release signer's call before the tranche's conditions hold (unlock time, approvals, the other
        # signatures) only records the signature: nothing was paid out, so nothing is booked
        signed = [e for e in result.events if e.name == "Signed"]
        what = f"signature {signed[-1].args.get('signatures')} recorded" if signed else "nothing paid out"
        data = {**result.to_dict(), "released": False, "booking": None}
        app.emit(
            data,
            lambda c: c.print(
                f"tranche {tranche} not released yet ({what} in {result.tx_hash}): nothing booked; release it "
                "again once it is unlocked, approved and signed"
            ),
        )
        return
    from nexotc_client.desk.money import asset_decimals

    terms = deal.terms
    # a leg settled off chain counts in its asset's units, as the lock wrote the terms (BTC: 8)
    assets = q.symbol.split("/")
    decimals = [
        int(erc20(leg.token).decimals()) if leg.on_chain else asset_decimals(asset)
        for leg, asset in zip((terms.base, terms.quote), assets, strict=True)
    ]
    ts = max((e.timestamp for e in result.events), default=0) * 1000
    with desk_errors():
        booking = book_settlement(store, q, terms, tranche, result.tx_hash, ts, decimals[0], decimals[1])
    data = {**result.to_dict(), "released": True, "booking": _jsonable(booking)}
    app.emit(data, lambda c: c.print(f"tranche {tranche} released ({result.tx_hash}), booked {booking.ref}"))


# ===================================================================== recon
@click.command()
@click.argument("quote_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: <home>/reports.")
@db_option
@shared_options
@click.pass_obj
def recon(app: App, quote_id: str, out: Path | None, db_url: str | None) -> None:
    """Reconcile a client trade (bookings vs hedge fills vs on-chain settlement) with its TCA; CSV + PNG
    (exit 5 when there are breaks)."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import reconcile_quote

    store = desk_store(app, db_url)
    out_dir = out or app.home / "reports"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NexotcError(f"--out {out_dir}: cannot create the report directory: {exc.strerror or exc}") from exc
    with desk_errors():
        try:
            result = reconcile_quote(store, quote_id, out_dir)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and exc.filename is None:
                raise
            raise NexotcError(f"--out {out_dir}: cannot write the reports: {exc.strerror or exc}") from exc
    data = result.to_dict()

    def render(c: Console) -> None:
        state = [] if result.hedged else ["not hedged"]
        if not result.locked:
            state.append("not locked on chain")
        c.print(
            f"reconciliation of {quote_id}: {result.report.matched}/{result.report.compared} matched"
            + (f" ({', '.join(state)})" if state else "")
        )
        for kind, count in sorted(result.report.by_kind().items()):
            c.print(f"  [red]{count} {kind} break(s)[/red]")
        several = len(data["hedges"]) > 1
        for t in data["hedges"]:
            parts = ", ".join(f"{k} {_bps(v)}" for k, v in t["shortfall_bps"].items())
            c.print(
                f"  TCA{' of ' + t['hedge'] if several else ''}: filled {_amount(Decimal(t['filled']))} avg "
                f"{_price(Decimal(t['avg_price']))}, arrival slippage {_bps(t['arrival_slippage_bps'])} bps, "
                f"interval-VWAP slippage {_bps(t['interval_vwap_slippage_bps'])} bps, shortfall "
                f"{_bps(t['shortfall_total_bps'])} bps ({parts})"
            )
        for name, path in data["files"].items():
            c.print(f"  {name}: {path}")

    app.emit(data, render)
    if result.report.breaks:
        click.get_current_context().exit(5)


# ===================================================================== match
@click.group()
def match() -> None:
    """Matchmaking: maker offers, taker preferences, ranked proposals, private invites."""


def _size_range(text: str) -> tuple[Decimal, Decimal]:
    low, sep, high = text.partition("-")
    lo = parse_decimal(low, "size")
    return (lo, parse_decimal(high, "size") if sep else lo)


@match.command("offer")
@click.option("--maker", required=True)
@click.option("--pair", default="BTC/USDT", show_default=True)
@click.option("--side", type=click.Choice(["buy", "sell"]), required=True, help="The maker's side.")
@click.option("--size", required=True, help="MIN-MAX base units (or one size).")
@click.option("--price", required=True)
@click.option("--window", default="1h", show_default=True, help="Settlement window the maker commits to.")
@click.option("--kyc", default=1, show_default=True, type=int)
@click.option("--id", "offer_id", default=None)
@db_option
@shared_options
@click.pass_obj
def match_offer(
    app: App,
    maker: str,
    pair: str,
    side: str,
    size: str,
    price: str,
    window: str,
    kyc: int,
    offer_id: str | None,
    db_url: str | None,
) -> None:
    """A maker posts an offer to the book."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import check_pair
    from nexotc_client.desk.match import MakerOffer, MatchBook
    from nexotc_client.desk.models import Side

    lo, hi = _size_range(size)
    now = _now_ms()
    with desk_errors():
        offer = MakerOffer(
            offer_id or f"O-{now}",
            desk_wallet(maker, "--maker"),
            check_pair(pair, "pair"),
            Side(side),
            lo,
            hi,
            parse_decimal(price, "price"),
            parse_ms(window, "window") // 1000,
            kyc,
            now,
        )
        MatchBook(desk_store(app, db_url, create=True)).post_offer(offer)
    app.emit(offer.to_dict(), lambda c: c.print(f"offer {offer.offer_id} posted"))


@match.command("want")
@click.option("--taker", required=True)
@click.option("--pair", default="BTC/USDT", show_default=True)
@click.option("--side", type=click.Choice(["buy", "sell"]), required=True, help="The taker's side.")
@click.option("--size", required=True, help="MIN-MAX base units.")
@click.option("--ref-price", required=True)
@click.option("--tolerance-bps", default="25", show_default=True)
@click.option("--window", default="1d", show_default=True, help="Longest acceptable settlement.")
@click.option("--min-kyc", default=0, show_default=True, type=int)
@click.option("--avoid", multiple=True, help="A counterparty to avoid (repeatable).")
@click.option("--id", "pref_id", default=None)
@db_option
@shared_options
@click.pass_obj
def match_want(
    app: App,
    taker: str,
    pair: str,
    side: str,
    size: str,
    ref_price: str,
    tolerance_bps: str,
    window: str,
    min_kyc: int,
    avoid: tuple[str, ...],
    pref_id: str | None,
    db_url: str | None,
) -> None:
    """A taker posts preferences."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.engine import check_pair
    from nexotc_client.desk.match import MatchBook, Preference
    from nexotc_client.desk.models import Side

    lo, hi = _size_range(size)
    now = _now_ms()
    with desk_errors():
        pref = Preference(
            pref_id or f"P-{now}",
            desk_wallet(taker, "--taker"),
            check_pair(pair, "pair"),
            Side(side),
            lo,
            hi,
            parse_decimal(ref_price, "ref-price"),
            parse_decimal(tolerance_bps, "tolerance-bps"),
            parse_ms(window, "window") // 1000,
            min_kyc,
            tuple(desk_wallet(a, "--avoid") for a in avoid),
            now,
        )
        MatchBook(desk_store(app, db_url, create=True)).post_preference(pref)
    app.emit(pref.to_dict(), lambda c: c.print(f"preference {pref.pref_id} posted"))


@match.command("rank")
@click.argument("pref_id")
@click.option("--limit", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option("--offline", is_flag=True, help="No chain: every maker's reputation is the neutral prior.")
@db_option
@shared_options
@click.pass_obj
def match_rank(app: App, pref_id: str, limit: int, offline: bool, db_url: str | None) -> None:
    """Rank the book's offers for a preference, with each feature, weight and exclusion reason."""
    from nexotc_client.cli.desk_checks import desk_store
    from nexotc_client.desk.match import MatchBook, reputations_from_chain

    book = MatchBook(desk_store(app, db_url))
    reps = None
    with desk_errors():
        book.preference(pref_id)
        if not offline:
            reps = reputations_from_chain(app.factory(), [o.maker for o in book.offers()])
        ranking, rows = book.propose(pref_id, reputations=reps, limit=limit, now=_now_ms())
    data = {**ranking.to_dict(), "matches": [r.match_id for r in rows]}

    def render(c: Console) -> None:
        c.print(f"preference {pref_id}: weights {', '.join(f'{k} {v}' for k, v in ranking.weights.items())}")
        for row, cand in zip(rows, ranking.candidates, strict=True):
            c.print(f"  {row.match_id}  offer {cand.offer.offer_id} by {cand.offer.maker}: score {row.score}")
            for f in cand.features:
                c.print(f"      {f.name:<10} {f.value:.4f} × {f.weight} = {f.contribution:.4f}  ({f.detail})")
        for offer_id, reason in ranking.excluded:
            c.print(f"  excluded {offer_id}: {reason}")

    app.emit(data, render)


@match.command("invite")
@click.argument("match_id")
@click.option("--platform", required=True)
@click.option("--resolver", required=True)
@click.option("--base-token", default=None, help="Default: the recorded token of the pair's base (BTC: WBTC).")
@click.option("--quote-token", default=None, help="Default: the recorded token of the pair's quote asset.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the offer file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@desk_deal_options
@db_option
@shared_options
@click.pass_obj
def match_invite(
    app: App,
    match_id: str,
    platform: str,
    resolver: str,
    base_token: str | None,
    quote_token: str | None,
    out: Path | None,
    force: bool,
    desk_id: int,
    policy_id: int | None,
    db_url: str | None,
) -> None:
    """The maker (--account) turns a chosen match into a private invite link for the taker (with --out, also
    the signed offer file, as `quote lock --out` writes)."""

    from nexotc_client.chain.contracts import erc20
    from nexotc_client.cli.desk_checks import desk_store, pair_token
    from nexotc_client.desk.lock import LockParams
    from nexotc_client.desk.match import MatchBook, invite_offer

    book = MatchBook(desk_store(app, db_url))
    with desk_errors():
        row = book.match(match_id)
        pref = book.preference(row.pref_id)
        live = book.live_invite(row.offer_id)
        if row.status != "proposed":
            raise NexotcError(f"match {match_id} is {row.status}, not proposed")
        if live is not None:
            raise NexotcError(f"offer {row.offer_id} already has a live invite (match {live.match_id})")
    if out is not None and out.exists() and not force:
        raise NexotcError(f"{out} exists: the offer file is not overwritten without --force")
    if out is not None and not out.parent.is_dir():
        raise NexotcError(f"--out {out}: no directory {out.parent}")
    factory = app.factory()
    desk, policy = desk_deal_ids(factory, desk_id, policy_id)
    maker = app.sender()
    base_asset, quote_asset = pref.pair.split("/")
    base, quote_addr = (
        pair_token(app, base_token, base_asset, "base"),
        pair_token(app, quote_token, quote_asset, "quote"),
    )
    params = LockParams(
        base_token=base,
        quote_token=quote_addr,
        desk=maker.address,
        client=pref.taker,
        platform=desk_wallet(platform, "--platform"),
        resolver=desk_wallet(resolver, "--resolver"),
        base_decimals=int(erc20(base).decimals()),
        quote_decimals=int(erc20(quote_addr).decimals()),
        desk_id=desk,
        policy_id=policy,
    )
    from ape import chain

    from nexotc_client.cli.offer import home_offer_nonces

    own = home_offer_nonces(app, int(chain.chain_id), factory.address, maker.address)
    with desk_errors():
        signed, link = invite_offer(factory, book, match_id, maker, params, extra_known=own)
    data = {
        "match_id": match_id,
        "offer_hash": "0x" + signed.offer.offer_hash().hex(),
        "taker": signed.offer.taker,
        "nonce": signed.offer.nonce,
        "desk_id": desk,
        "policy_id": policy,
        "link": link,
    }
    if out is not None:
        data["file"] = _write_offer_file(out, signed, link, match_id=match_id)

    def render(c: Console) -> None:
        c.print(f"invite for {signed.offer.taker} (nonce {signed.offer.nonce}):")
        if desk:
            gate = f", gated on KYC policy #{policy}" if policy else ""
            c.print(f"desk #{desk}: a desk deal once the taker accepts{gate}")
        _echo_link(c, link)

    app.emit(data, render)


@match.command("list")
@db_option
@shared_options
@click.pass_obj
def match_list(app: App, db_url: str | None) -> None:
    """The open offers, the preferences and the proposed matches."""
    from nexotc_client.cli.desk_checks import desk_store, duration, num
    from nexotc_client.desk.match import MatchBook

    store = desk_store(app, db_url)
    book = MatchBook(store)
    data = {
        "offers": [o.to_dict() for o in book.offers()],
        "preferences": [p.to_dict() for p in book.preferences()],
        "matches": [
            {
                "match_id": m.match_id,
                "pref_id": m.pref_id,
                "offer_id": m.offer_id,
                "score": str(m.score),
                "status": m.status,
                "link": m.invite,  # the invite link of an invited match (null while proposed)
            }
            for m in store.matches()
        ],
    }
    offers, prefs = book.offers(), book.preferences()

    def render(c: Console) -> None:
        c.print(f"offers ({len(offers)} open):")
        for o in offers:
            c.print(
                f"  {o.offer_id}  {o.maker} {o.side.value}s {num(o.size_min)}-{num(o.size_max)} {o.pair} @ "
                f"{_price(o.price)}, settles within {duration(o.settlement_window_s * 1000)}, KYC {o.kyc_level}"
            )
        c.print(f"preferences ({len(prefs)}):")
        for p in prefs:
            c.print(
                f"  {p.pref_id}  {p.taker} {p.side.value}s {num(p.size_min)}-{num(p.size_max)} {p.pair} ref "
                f"{_price(p.reference_price)} ±{_bps(p.price_tolerance_bps)} bps, KYC >= {p.min_kyc_level}"
            )
        c.print(f"matches ({len(data['matches'])}):")
        for m in data["matches"]:
            c.print(f"  {m['match_id']}  {m['pref_id']} ← {m['offer_id']}  score {m['score']}  {m['status']}")

    app.emit(data, render)


__all__ = ["hedge", "match", "quote", "recon", "rfq", "settle"]
