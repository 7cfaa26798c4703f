"""The desk engine's commands: `nexotc rfq | quote | hedge | settle | recon | match` over the desk database.

    nexotc rfq new --client NAME --symbol BTC/USDT --side buy --size 200 [--id R1] | list | show ID
    nexotc quote new RFQ [--ttl 15s] [--fixtures DIR | --live]        two-way quote from the venues' books
    nexotc quote accept Q | counter Q --price P | reject Q | show Q | list [--rfq R]
    nexotc quote lock Q --account DESK --client ADDR --platform ADDR --resolver ADDR [--tranches N]
                     [--offchain-base] [--out FILE]        the desk signs the deal offer (quote id in its salt)
    nexotc quote take LINK|FILE --account CLIENT [--fund]  the client accepts it: the escrow is the price lock
    nexotc hedge start Q [--clips 8] [--interval 1s] [--participation 0.1] [--venue-cap okx=50] [--seed N]
    nexotc hedge resume H | show H | list                  (a killed hedge resumes from the database)
    nexotc settle track DEAL [--confirmations N] [--sla-funding 1h] [--sla-release 1d] [--sla-offchain 12h]
    nexotc settle status DEAL | mark DEAL T --milestone delivered --evidence TXID [--on-chain --account M]
    nexotc settle release DEAL T --account A               release a tranche and book the settlement
    nexotc recon Q [--out DIR]                             bookings vs fills vs settlement, TCA, CSV + PNG
    nexotc match offer ... | want ... | rank PREF [--offline] | invite MATCH --account MAKER ... | list

The database: --db URL (sqlite:///FILE or postgresql+psycopg://...), else $NEXOTC_DESK_DB, else
<home>/desk.db; it is created and migrated on first use. Books come from the recorded venue fixtures (raw
exchange responses parsed by ccxt; offline) unless --live. Hedges run on simulated venues whose journals
live in <home>/exchange/<hedge id>/ (the exchange's own record, so a resumed hedge finds what was executed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.desk.models import Quote
    from nexotc_client.desk.store import DeskStore

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)?$")
_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1_000}


def parse_ms(text: str, what: str) -> int:
    m = _DURATION.match(text.strip())
    if not m:
        raise NexotcError(f"{what}: {text!r} is not a duration (e.g. 500ms, 30s, 5m, 1h, 1d)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise NexotcError(f"{what}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise NexotcError(f"{what}: {text!r} is not a finite number")
    return value


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


def open_store(app: App, db_url: str | None) -> DeskStore:
    from nexotc_client.desk.db import Database
    from nexotc_client.desk.store import DeskStore

    with desk_errors():
        return DeskStore(Database.open(db_url, home=app.home))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
    """Record a client's RFQ."""
    from nexotc_client.desk.models import RFQ, Side

    amount = parse_decimal(size, "size")
    if amount <= 0:
        raise NexotcError("size: must be positive")
    store = open_store(app, db_url)
    now = _now_ms()
    request = RFQ(rfq_id or f"R-{now}", client, symbol.upper(), Side(side), amount, now)
    with desk_errors():
        store.save_rfq(request)
    app.emit(_jsonable(request), lambda c: c.print(f"RFQ {request.rfq_id}: {client} {side}s {amount} {symbol}"))


@rfq.command("list")
@db_option
@shared_options
@click.pass_obj
def rfq_list(app: App, db_url: str | None) -> None:
    """Every RFQ."""
    rows = [_jsonable(r) for r in open_store(app, db_url).rfqs()]

    def render(c: Console) -> None:
        for r in rows:
            c.print(f"{r['rfq_id']}  {r['client']}  {r['side']} {r['size']} {r['symbol']}")

    app.emit(rows, render)


@rfq.command("show")
@click.argument("rfq_id")
@db_option
@shared_options
@click.pass_obj
def rfq_show(app: App, rfq_id: str, db_url: str | None) -> None:
    """One RFQ and its quotes."""
    store = open_store(app, db_url)
    with desk_errors():
        request = store.get_rfq(rfq_id)
        quotes = store.quotes(rfq_id=rfq_id)
    data = {**_jsonable(request), "quotes": [_jsonable(q) for q in quotes]}
    app.emit(data, lambda c: c.print(data))


# ===================================================================== quote
@click.group()
def quote() -> None:
    """Two-way quotes, their life cycle (accept / counter / reject) and the on-chain price lock."""


def _books(symbol: str, fixtures: str | None, live: bool) -> list:
    from nexotc_client.desk.engine import fixture_books, live_books

    with desk_errors():
        if live:
            return live_books(symbol)
        return fixture_books(symbol, Path(fixtures) if fixtures else None)


def _render_quote(q: Quote) -> Callable[[Console], None]:
    def render(c: Console) -> None:
        comp = q.components
        c.print(
            f"quote {q.quote_id} ({q.state.value}) for {q.side.value} {q.size} {q.symbol}: "
            f"bid {q.bid} / ask {q.ask} → price {q.price} (mid {q.mid})\n"
            f"  VWAP {comp.vwap} · half-spread {comp.spread_bps} bps · vol add-on {comp.vol_addon_bps} bps · "
            f"skew {comp.skew_bps} bps · TTL {q.ttl_ms} ms"
        )

    return render


@quote.command("new")
@click.argument("rfq_id")
@click.option("--ttl", default="15s", show_default=True, help="Quote life (e.g. 15s, 2m).")
@click.option("--fixtures", default=None, help="Directory of recorded venue responses (default: the bundled ones).")
@click.option("--live", is_flag=True, help="Fetch the books from the exchanges through ccxt (network).")
@db_option
@shared_options
@click.pass_obj
def quote_new(app: App, rfq_id: str, ttl: str, fixtures: str | None, live: bool, db_url: str | None) -> None:
    """Quote an RFQ two-way from the consolidated venue books."""
    from nexotc_client.desk.engine import quote_engine
    from nexotc_client.desk.quote import QuoteConfig

    store = open_store(app, db_url)
    with desk_errors():
        request = store.get_rfq(rfq_id)
        engine = quote_engine(_books(request.symbol, fixtures, live), QuoteConfig(ttl_ms=parse_ms(ttl, "ttl")))
        q = engine.quote(request)
        q.quote_id = f"{rfq_id}-q{len(store.quotes(rfq_id=rfq_id)) + 1}"
        store.save_quote(q)
    app.emit(_jsonable(q), _render_quote(q))


def _transition(app: App, db_url: str | None, quote_id: str, action: str, **kw: Any) -> None:
    from nexotc_client.desk.engine import quote_engine

    store = open_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
        engine = quote_engine([])
        try:
            if action == "accept":
                engine.accept(q)
            elif action == "counter":
                engine.counter(q, kw["price"])
            else:
                engine.reject(q, kw.get("reason", ""))
        finally:
            store.save_quote(q)  # an expiry found on the way is recorded too
    app.emit(_jsonable(q), _render_quote(q))


@quote.command("accept")
@click.argument("quote_id")
@db_option
@shared_options
@click.pass_obj
def quote_accept(app: App, quote_id: str, db_url: str | None) -> None:
    """The client accepts the quote within its TTL."""
    _transition(app, db_url, quote_id, "accept")


@quote.command("counter")
@click.argument("quote_id")
@click.option("--price", required=True)
@db_option
@shared_options
@click.pass_obj
def quote_counter(app: App, quote_id: str, price: str, db_url: str | None) -> None:
    """The client counters with a price."""
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
    store = open_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
        lock = store.lock_of(quote_id)
    data = {**_jsonable(q), "lock": lock.to_dict() if lock else None}
    app.emit(data, _render_quote(q))


@quote.command("list")
@click.option("--rfq", "rfq_id", default=None)
@db_option
@shared_options
@click.pass_obj
def quote_list(app: App, rfq_id: str | None, db_url: str | None) -> None:
    """Every quote (of one RFQ)."""
    quotes = open_store(app, db_url).quotes(rfq_id=rfq_id)
    app.emit(
        [_jsonable(q) for q in quotes],
        lambda c: [c.print(f"{q.quote_id}  {q.state.value}  {q.side.value} {q.size} @ {q.price}") for q in quotes],
    )


def _token(app: App, ref: str) -> str:
    from eth_utils import to_checksum_address

    from nexotc_client.chain.encoding import is_valid_address

    if is_valid_address(ref):
        return to_checksum_address(ref)
    tokens = app.deployment().tokens
    for symbol, address in tokens.items():
        if symbol.lower() == ref.lower():
            return address
    raise NexotcError(f"unknown token {ref!r}: an address or a symbol of `nexotc deploy --mock-tokens`")


@quote.command("lock")
@click.argument("quote_id")
@click.option("--client", required=True, help="The client's wallet (the only taker of the offer).")
@click.option("--platform", required=True, help="The desk's fee wallet (distinct from --account).")
@click.option("--resolver", required=True)
@click.option("--base-token", default="WBTC", show_default=True)
@click.option("--quote-token", default="USDT", show_default=True)
@click.option("--tranches", default=1, show_default=True, type=click.IntRange(1, 32))
@click.option("--interval", default="0s", show_default=True, help="Between tranche unlocks.")
@click.option("--offchain-base", is_flag=True, help="The base leg settles off chain (an ESCROWED deal).")
@click.option("--desk-fee-bps", default=0, show_default=True, type=click.IntRange(0, 1000))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the offer file.")
@db_option
@shared_options
@click.pass_obj
def quote_lock(
    app: App,
    quote_id: str,
    client: str,
    platform: str,
    resolver: str,
    base_token: str,
    quote_token: str,
    tranches: int,
    interval: str,
    offchain_base: bool,
    desk_fee_bps: int,
    out: Path | None,
    db_url: str | None,
) -> None:
    """The desk (--account) signs the accepted quote's deal as an offer to the client only."""
    import json

    from nexotc_client.chain.contracts import erc20
    from nexotc_client.desk.lock import LockParams, sign_lock

    store = open_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
    factory = app.factory()
    sender = app.sender()
    base, quote_addr = _token(app, base_token), _token(app, quote_token)
    params = LockParams(
        base_token=base,
        quote_token=quote_addr,
        desk=sender.address,
        client=wallet_address(client),
        platform=wallet_address(platform),
        resolver=wallet_address(resolver),
        base_decimals=int(erc20(base).decimals()),
        quote_decimals=int(erc20(quote_addr).decimals()),
        base_on_chain=not offchain_base,
        tranches=tranches,
        interval_s=parse_ms(interval, "interval") // 1000,
        desk_fee_bps=desk_fee_bps,
    )
    with step(app, "signing the lock offer"):
        signed = sign_lock(factory, q, params, sender)
    link = signed.to_link()
    data = {
        "quote_id": quote_id,
        "offer_hash": "0x" + signed.offer.offer_hash().hex(),
        "maker": signed.offer.maker,
        "taker": signed.offer.taker,
        "salt": "0x" + signed.offer.salt.hex(),
        "base_amount": signed.offer.terms.base.amount,
        "quote_amount": signed.offer.terms.quote.amount,
        "link": link,
    }
    if out is not None:
        out.write_text(json.dumps({**signed.to_json(), "quote_id": quote_id}, indent=2))
        data["file"] = str(out)
    app.emit(data, lambda c: c.print(f"lock offer for {quote_id} signed by {sender.address}\n{link}"))


@quote.command("take")
@click.argument("ref")
@click.option("--fund", is_flag=True, help="Deposit both legs in the same transaction.")
@db_option
@shared_options
@click.pass_obj
def quote_take(app: App, ref: str, fund: bool, db_url: str | None) -> None:
    """The client (--account) accepts a lock offer: the deal is deployed and the lock recorded."""
    from nexotc_client.cli.offer import read_offer
    from nexotc_client.desk.lock import accept_lock

    signed, _ = read_offer(ref)
    store = open_store(app, db_url)
    factory = app.factory()
    client = app.sender()
    with step(app, "accepting the lock offer"), desk_errors():
        lock, accepted = accept_lock(factory, signed, client, store, fund=fund)
    data = {**lock.to_dict(), "funded": fund, "gas_used": accepted.result.gas_used}
    app.emit(data, lambda c: c.print(f"quote {lock.quote_id} locked: deal {lock.deal} (tx {lock.tx_hash})"))


# ===================================================================== hedge
@click.group()
def hedge() -> None:
    """TWAP hedges of accepted quotes on (simulated) venues, persisted and resumable."""


def _journal(app: App, parent_id: str) -> Path:
    return app.home / "exchange" / parent_id


def _hedge_summary(state: Any) -> dict[str, Any]:
    return {
        "parent_id": state.plan.parent_id,
        "status": state.status.value,
        "side": state.plan.side.value,
        "target": str(state.plan.target_size),
        "filled": str(state.filled),
        "avg_price": str(state.avg_price) if state.avg_price is not None else None,
        "fees": str(state.fees),
        "arrival_mid": str(state.arrival_mid),
        "clips_sent": state.next_clip,
        "clips": state.plan.clips,
        "orders": len(state.orders),
        "fills": len(state.fills),
        "venue_filled": {k: str(v) for k, v in sorted(state.venue_filled.items())},
    }


def _render_hedge(data: dict[str, Any]) -> Callable[[Console], None]:
    def render(c: Console) -> None:
        c.print(
            f"hedge {data['parent_id']} {data['status']}: {data['side']} {data['filled']}/{data['target']} "
            f"avg {data['avg_price']} (arrival mid {data['arrival_mid']}), fees {data['fees']}, "
            f"{data['orders']} orders, {data['fills']} fills, clips {data['clips_sent']}/{data['clips']}"
        )
        for venue, size in data["venue_filled"].items():
            c.print(f"  {venue}: {size}")

    return render


def _console(app: App) -> Any:
    import sys

    if app.json:
        return None
    from rich.console import Console

    return Console(stderr=True, force_terminal=sys.stderr.isatty())


@hedge.command("start")
@click.argument("quote_id")
@click.option("--clips", default=8, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--interval", default="1s", show_default=True, help="Between clips (e.g. 250ms, 30s).")
@click.option("--participation", default=None, help="Cap a clip to this fraction of the displayed depth.")
@click.option("--venue-cap", multiple=True, help="VENUE=SIZE: at most SIZE on that venue.")
@click.option("--limit-bps", default=None, help="Bound child prices this far through the arrival mid.")
@click.option("--seed", default=0, show_default=True, type=int, help="The simulated venues' seed.")
@click.option("--fixtures", default=None, help="Directory of recorded venue responses.")
@click.option("--id", "parent_id", default=None, help="Hedge id (default: H-<quote id>).")
@db_option
@shared_options
@click.pass_obj
def hedge_start(
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
    db_url: str | None,
) -> None:
    """Hedge an accepted quote: TWAP clips routed across the venues by fee-adjusted price."""
    from nexotc_client.desk.engine import hedge_plan, run_hedge
    from nexotc_client.desk.models import QuoteState

    store = open_store(app, db_url)
    with desk_errors():
        q = store.get_quote(quote_id)
    if q.state is not QuoteState.ACCEPTED:
        raise NexotcError(f"quote {quote_id} is {q.state.value}: only an accepted quote is hedged")
    caps = {}
    for item in venue_cap:
        venue, sep, size = item.partition("=")
        if not sep:
            raise NexotcError(f"--venue-cap {item!r}: VENUE=SIZE")
        caps[venue.strip()] = parse_decimal(size, f"--venue-cap {venue}")
    plan = hedge_plan(
        q,
        clips=clips,
        interval_ms=parse_ms(interval, "interval"),
        start_ms=_now_ms(),
        parent_id=parent_id,
        participation_cap=parse_decimal(participation, "participation") if participation else None,
        venue_caps=caps,
        limit_bps=parse_decimal(limit_bps, "limit-bps") if limit_bps else None,
    )
    journal = _journal(app, plan.parent_id)
    with desk_errors():
        try:
            store.load_hedge(plan.parent_id)
        except LookupError:
            pass
        else:
            raise NexotcError(f"hedge {plan.parent_id} exists: `nexotc hedge resume {plan.parent_id}`")
        if journal.exists() and any(journal.iterdir()):
            raise NexotcError(f"{journal} holds another hedge's venue journals")
        books = _books(q.symbol, fixtures, live=False)
        state = run_hedge(store, plan, journal, books, quote_id=quote_id, seed=seed, console=_console(app))
    data = _hedge_summary(state)
    app.emit(data, _render_hedge(data))


@hedge.command("resume")
@click.argument("parent_id")
@db_option
@shared_options
@click.pass_obj
def hedge_resume(app: App, parent_id: str, db_url: str | None) -> None:
    """Continue a hedge after a crash, from the database and the venues' journals."""
    from nexotc_client.desk.engine import resume_hedge

    store = open_store(app, db_url)
    with desk_errors():
        state = resume_hedge(store, parent_id, _journal(app, parent_id), console=_console(app))
    data = _hedge_summary(state)
    app.emit(data, _render_hedge(data))


@hedge.command("show")
@click.argument("parent_id")
@db_option
@shared_options
@click.pass_obj
def hedge_show(app: App, parent_id: str, db_url: str | None) -> None:
    """A hedge's progress as persisted."""
    store = open_store(app, db_url)
    with desk_errors():
        state = store.load_hedge(parent_id)
    data = _hedge_summary(state)
    app.emit(data, _render_hedge(data))


@hedge.command("list")
@db_option
@shared_options
@click.pass_obj
def hedge_list(app: App, db_url: str | None) -> None:
    """Every hedge."""
    rows = [
        {k: str(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in open_store(app, db_url).hedges()
    ]
    app.emit(
        rows,
        lambda c: [c.print(f"{r['parent_id']}  {r['status']}  {r['side']} {r['filled']}/{r['target']}") for r in rows],
    )


# ===================================================================== settle
@click.group()
def settle() -> None:
    """Settlement tracking of locked deals: confirmations, off-chain milestones, SLA breaches."""


def _network_name(app: App) -> str:
    from ape import networks

    app.connect()
    provider = networks.provider
    return f"{provider.network.ecosystem.name}:{provider.network.name}"


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
    """Start tracking a deal's settlement."""
    from nexotc_client.desk.settlement import SettlementTracker, Sla

    store = open_store(app, db_url)
    network = _network_name(app)
    factory = app.factory()
    sla = Sla(
        parse_ms(sla_funding, "sla-funding") // 1000,
        parse_ms(sla_release, "sla-release") // 1000,
        parse_ms(sla_offchain, "sla-offchain") // 1000,
    )
    with desk_errors():
        row = SettlementTracker(store, factory, network).track(factory.deal(deal_address), quote_id, sla, confirmations)
    data = {
        "deal": row.deal_address,
        "quote_id": row.quote_id,
        "network": row.network,
        "confirmations": row.confirmations,
        "mode": row.mode,
        "sla": row.sla,
    }
    app.emit(data, lambda c: c.print(f"tracking {row.deal_address} ({row.mode}, {row.confirmations} confirmations)"))


@settle.command("status")
@click.argument("deal_address")
@db_option
@shared_options
@click.pass_obj
def settle_status(app: App, deal_address: str, db_url: str | None) -> None:
    """Poll the deal: confirmed events stored, pending ones shown, SLA breaches flagged (exit 4 on a breach)."""
    from nexotc_client.desk.settlement import SettlementTracker

    store = open_store(app, db_url)
    network = _network_name(app)
    with desk_errors():
        view = SettlementTracker(store, app.factory(), network).poll(deal_address)
    data = view.to_dict()

    def render(c: Console) -> None:
        c.print(f"deal {view.deal} ({view.phase}) quote {view.quote_id}: {view.new_events} new confirmed events")
        for t in view.tranches:
            c.print(f"  tranche {t.index}: {t.status} settled_tx={t.settled_tx} off-chain={list(t.offchain)}")
        for p in view.pending:
            c.print(f"  pending {p.name} ({p.confirmations}/{view.confirmations} confirmations) {p.tx_hash}")
        for b in view.breaches:
            c.print(f"  [red]SLA breach[/red] {b.kind} tranche {b.tranche}: {b.detail} (due {b.due})")

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
    """Record a milestone of the off-chain leg, with its evidence."""
    from nexotc_client.desk.settlement import SettlementTracker

    store = open_store(app, db_url)
    network = _network_name(app)
    marker = app.sender() if on_chain else None
    with desk_errors():
        row = SettlementTracker(store, app.factory(), network).mark_offchain(
            deal_address, tranche, milestone, evidence, marker
        )
    data = {
        "deal": row.deal_address,
        "tranche": row.tranche,
        "milestone": row.milestone,
        "evidence_hash": row.evidence_hash,
        "tx_hash": row.tx_hash,
    }
    app.emit(data, lambda c: c.print(f"tranche {tranche}: {milestone} ({row.evidence_hash})"))


@settle.command("release")
@click.argument("deal_address")
@click.argument("tranche", type=int)
@db_option
@shared_options
@click.pass_obj
def settle_release(app: App, deal_address: str, tranche: int, db_url: str | None) -> None:
    """Release a tranche of a locked deal from --account and book the settlement (ref <quote id>/<tranche>)."""
    from nexotc_client.chain.contracts import erc20
    from nexotc_client.desk.engine import book_settlement

    store = open_store(app, db_url)
    factory = app.factory()
    deal = factory.deal(deal_address)
    with desk_errors():
        q = store.quote_for_deal(deal.address)
        if q is None:
            raise NexotcError(f"deal {deal.address} locks no quote of this desk database")
    sender = app.sender()
    with step(app, f"releasing tranche {tranche}"):
        result = deal.release(tranche, sender)
    terms = deal.terms
    decimals = [int(erc20(leg.token).decimals()) if leg.on_chain else 8 for leg in (terms.base, terms.quote)]
    ts = max((e.timestamp for e in result.events), default=0) * 1000
    with desk_errors():
        booking = book_settlement(store, q, terms, tranche, result.tx_hash, ts, decimals[0], decimals[1])
    data = {**result.to_dict(), "booking": _jsonable(booking)}
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
    from nexotc_client.desk.engine import reconcile_quote

    store = open_store(app, db_url)
    with desk_errors():
        result = reconcile_quote(store, quote_id, out or app.home / "reports")
    data = result.to_dict()

    def render(c: Console) -> None:
        c.print(f"reconciliation of {quote_id}: {result.report.matched}/{result.report.compared} matched")
        for kind, count in sorted(result.report.by_kind().items()):
            c.print(f"  [red]{count} {kind} break(s)[/red]")
        if data["tca"]:
            t = data["tca"]
            c.print(
                f"  TCA: filled {t['filled']} avg {t['avg_price']}, arrival slippage {t['arrival_slippage_bps']} bps, "
                f"interval-VWAP slippage {t['interval_vwap_slippage_bps']} bps, shortfall {t['shortfall_total_bps']} "
                f"bps {t['shortfall_bps']}"
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
    from nexotc_client.desk.match import MakerOffer, MatchBook
    from nexotc_client.desk.models import Side

    lo, hi = _size_range(size)
    now = _now_ms()
    with desk_errors():
        offer = MakerOffer(
            offer_id or f"O-{now}",
            wallet_address(maker),
            pair.upper(),
            Side(side),
            lo,
            hi,
            parse_decimal(price, "price"),
            parse_ms(window, "window") // 1000,
            kyc,
            now,
        )
        MatchBook(open_store(app, db_url)).post_offer(offer)
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
    from nexotc_client.desk.match import MatchBook, Preference
    from nexotc_client.desk.models import Side

    lo, hi = _size_range(size)
    now = _now_ms()
    with desk_errors():
        pref = Preference(
            pref_id or f"P-{now}",
            wallet_address(taker),
            pair.upper(),
            Side(side),
            lo,
            hi,
            parse_decimal(ref_price, "ref-price"),
            parse_decimal(tolerance_bps, "tolerance-bps"),
            parse_ms(window, "window") // 1000,
            min_kyc,
            tuple(wallet_address(a) for a in avoid),
            now,
        )
        MatchBook(open_store(app, db_url)).post_preference(pref)
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
    from nexotc_client.desk.match import MatchBook, reputations_from_chain

    book = MatchBook(open_store(app, db_url))
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
@click.option("--base-token", default="WBTC", show_default=True)
@click.option("--quote-token", default="USDT", show_default=True)
@db_option
@shared_options
@click.pass_obj
def match_invite(
    app: App, match_id: str, platform: str, resolver: str, base_token: str, quote_token: str, db_url: str | None
) -> None:
    """The maker (--account) turns a chosen match into a private invite link for the taker."""
    from nexotc_client.chain.contracts import erc20
    from nexotc_client.desk.lock import LockParams
    from nexotc_client.desk.match import MatchBook, invite_offer

    book = MatchBook(open_store(app, db_url))
    with desk_errors():
        row = book.match(match_id)
        pref = book.preference(row.pref_id)
    factory = app.factory()
    maker = app.sender()
    base, quote_addr = _token(app, base_token), _token(app, quote_token)
    params = LockParams(
        base_token=base,
        quote_token=quote_addr,
        desk=maker.address,
        client=pref.taker,
        platform=wallet_address(platform),
        resolver=wallet_address(resolver),
        base_decimals=int(erc20(base).decimals()),
        quote_decimals=int(erc20(quote_addr).decimals()),
    )
    with desk_errors():
        signed, link = invite_offer(factory, book, match_id, maker, params)
    data = {"match_id": match_id, "taker": signed.offer.taker, "link": link}
    app.emit(data, lambda c: c.print(f"invite for {signed.offer.taker}:\n{link}"))


@match.command("list")
@db_option
@shared_options
@click.pass_obj
def match_list(app: App, db_url: str | None) -> None:
    """The open offers, the preferences and the proposed matches."""
    from nexotc_client.desk.match import MatchBook

    store = open_store(app, db_url)
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
            }
            for m in store.matches()
        ],
    }
    app.emit(data, lambda c: c.print(data))


__all__ = ["hedge", "match", "quote", "recon", "rfq", "settle"]
