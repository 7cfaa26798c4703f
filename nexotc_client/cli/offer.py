"""`nexotc offer ...`: signed offers (EIP-712), counter-offers, negotiation threads and invite links.

    nexotc offer create --terms FILE.yaml --account MAKER [--taker ADDR|--public] [--expires +1d]
                        [--nonce N] [--salt S] [--set KEY=VALUE]... [--approve] [--out FILE]
    nexotc offer counter FILE|LINK --terms NEW.yaml --account MAKER [...same options] [--fresh-times]
    nexotc offer diff A B                  what changed, field by field (offline)
    nexotc offer thread FILE...            checks the chain of `previous` hashes, shows every change (offline)
    nexotc offer invite FILE [--out F]     the URL-safe invite link (signed offer + invited taker)
    nexotc offer open LINK|FILE            verifies it on the connected chain and shows what accepting takes
    nexotc offer accept LINK|FILE --account TAKER [--fund]
    nexotc offer cancel [FILE...] --nonce N... --account MAKER

Every offer made, countered, opened or accepted is also kept in the nexotc home (offers/<hash>.json),
so `offer thread` finds a counter's predecessors there. A counter's relative times ("+1d") count from
the time base of the offer it answers, so only what was really changed shows in the diff
(--fresh-times counts from now instead).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address
from nexotc_client.offers import INVITE_PREFIX, ZERO32, Offer, OfferError, SignedOffer, Thread, diff
from nexotc_client.terms import ZERO_ADDRESS, Party, Terms

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.offers import OfferStatus
    from nexotc_client.cli.render import LegMeta

STORE_DIR = "offers"
FILE_KEYS = ("offer_hash", "digest", "time_base", "name")
_LINK_BODY = re.compile(r"^[A-Za-z0-9_-]{40,}$")


# ------------------------------------------------------------------ files
@contextmanager
def offer_errors(source: str = "") -> Iterator[None]:
    """OfferError (malformed offer, broken thread) as a one-line NexotcError."""
    try:
        yield
    except OfferError as exc:
        raise NexotcError(f"{source}: {exc}" if source else str(exc)) from exc


def read_offer(ref: str) -> tuple[SignedOffer, dict[str, Any]]:
    """A signed offer from an offer file (JSON), a file holding an invite link, or a link itself.
    Returns it with the file's data (time base, name...; empty for a link)."""
    text = ref.strip()
    if text.startswith(INVITE_PREFIX):
        with offer_errors("invite link"):
            return SignedOffer.from_link(text), {}
    path = Path(text).expanduser()
    if path.is_file():
        try:
            content = path.read_text().strip()
        except OSError as exc:
            raise NexotcError(f"cannot read {path}: {exc}") from exc
        if content.startswith(INVITE_PREFIX) or _LINK_BODY.match(content):
            with offer_errors(str(path)):
                return SignedOffer.from_link(content), {}
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise NexotcError(f"{path}: not an offer file (invalid JSON: {exc})") from exc
        if not isinstance(data, dict):
            raise NexotcError(f"{path}: not an offer file")
        with offer_errors(str(path)):
            return SignedOffer.from_json(data), data
    if _LINK_BODY.match(text):
        with offer_errors("invite link"):
            return SignedOffer.from_link(text), {}
    raise NexotcError(f"no offer file or invite link: {ref}")


def hash_hex(offer: Offer) -> str:
    return "0x" + offer.offer_hash().hex()


def offer_document(signed: SignedOffer, **notes: Any) -> dict[str, Any]:
    """What an offer file holds: the signed offer, plus notes for humans and tools (not signed)."""
    offer = signed.offer
    data = signed.to_json()
    data["offer_hash"] = hash_hex(offer)
    data["digest"] = "0x" + offer.digest(signed.chain_id, signed.factory).hex()
    data.update({k: v for k, v in notes.items() if v is not None})
    return data


def store_path(app: App, offer: Offer) -> Path:
    return app.home / STORE_DIR / f"{hash_hex(offer)}.json"


def keep(app: App, signed: SignedOffer, extra: dict[str, Any] | None = None, out: Path | None = None) -> Path:
    """Write the offer to the home's store (and to `out`); returns where the user should look."""
    notes = {k: v for k, v in (extra or {}).items() if k in FILE_KEYS and k not in ("offer_hash", "digest")}
    data = offer_document(signed, **notes)
    text = json.dumps(data, indent=2) + "\n"
    targets = [store_path(app, signed.offer)] + ([out] if out is not None else [])
    for target in targets:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        except OSError as exc:
            raise NexotcError(f"cannot write {target}: {exc}") from exc
    return out if out is not None else targets[0]


def _stored(app: App) -> list[tuple[SignedOffer, dict[str, Any]]]:
    folder = app.home / STORE_DIR
    out = []
    for path in sorted(folder.glob("0x*.json")) if folder.is_dir() else []:
        try:
            out.append(read_offer(str(path)))
        except NexotcError:
            continue
    return out


# ---------------------------------------------------------------- rendering
def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def changes(a: Offer, b: Offer) -> list[dict[str, Any]]:
    """`offers.diff` as JSON-friendly rows."""
    return [{"field": f, "old": _plain(old), "new": _plain(new)} for f, old, new in diff(a, b)]


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    text = str(value)
    return text if len(text) <= 50 else f"{text[:22]}…{text[-8:]}"


def render_changes(console: Console, rows: list[dict[str, Any]], title: str) -> None:
    from rich.table import Table

    if not rows:
        console.print(f"{title}: no change")
        return
    table = Table(title=title)
    for column in ("field", "before", "after"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["field"], _cell(row["old"]), _cell(row["new"]))
    console.print(table)


def _role(offer: Offer, wallet: str) -> str:
    roles = offer.terms.roles_of(wallet)
    from nexotc_client.cli.render import role_names

    names = [n for n in role_names(roles) if n in ("buyer", "seller")]
    return names[0] if names else "?"


def _summary(offer: Offer, base: LegMeta | None = None, quote: LegMeta | None = None) -> str:
    t = offer.terms
    base_text = base.fmt(t.base.amount) if base else f"{t.base.amount:,} base units"
    quote_text = quote.fmt(t.quote.amount) if quote else f"{t.quote.amount:,} quote units"
    to = "anyone (public offer)" if offer.taker == ZERO_ADDRESS else f"{offer.taker} ({_role(offer, offer.taker)})"
    return (
        f"{t.mode.name}: {base_text} against {quote_text} in {len(t.tranches)} tranche(s), "
        f"from {offer.maker} ({_role(offer, offer.maker)}) to {to}"
    )


def _offer_data(signed: SignedOffer) -> dict[str, Any]:
    from nexotc_client.cli.render import terms_dict

    o = signed.offer
    return {
        "offer_hash": hash_hex(o),
        "digest": "0x" + o.digest(signed.chain_id, signed.factory).hex(),
        "chain_id": signed.chain_id,
        "factory": signed.factory,
        "maker": o.maker,
        "taker": o.taker,
        "public": o.taker == ZERO_ADDRESS,
        "expiry": o.expiry,
        "nonce": o.nonce,
        "previous": "0x" + o.previous.hex() if o.previous != ZERO32 else None,
        "salt": "0x" + o.salt.hex(),
        "terms": terms_dict(o.terms),
    }


# ------------------------------------------------------------------ group
@click.group()
def offer() -> None:
    """Signed offers: create, counter, compare, invite, open, accept, cancel."""


def _terms_options(func: Any) -> Any:
    options = [
        click.option("--terms", "terms_file", required=True, type=click.Path(path_type=Path), help="YAML terms file."),
        click.option("--taker", default=None, help="Invite this wallet (default: the terms' counterparty)."),
        click.option("--expires", default="+1d", show_default=True, help="Offer expiry: '+1h', unix time, ISO date."),
        click.option("--nonce", type=click.IntRange(0, 2**256 - 1), default=None, help="Default: next unused."),
        click.option("--salt", default=None, help="Offer salt (hex or text; default: the file's salt, else zero)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Fill a placeholder or set a field."),
        click.option("--approve", is_flag=True, help="Also approve the factory for your leg if short (a transaction)."),
        click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the offer here."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _with_counterparty(terms: Terms, index: int, wallet: str) -> Terms:
    current = terms.parties[index]
    if current.wallet.lower() == wallet.lower():
        return terms
    parties = tuple(Party(wallet, p.roles, p.bps) if i == index else p for i, p in enumerate(terms.parties))
    return replace(terms, parties=parties)


def _make_offer(
    app: App,
    *,
    terms_file: Path,
    taker: str | None,
    public: bool,
    expires: str,
    nonce: int | None,
    salt: str | None,
    sets: tuple[str, ...],
    approve: bool,
    out: Path | None,
    previous: tuple[SignedOffer, dict[str, Any]] | None = None,
    fresh_times: bool = False,
) -> None:
    from ape import chain

    from nexotc_client.chain.encoding import to_salt
    from nexotc_client.chain.offers import approve_leg, maker_side, next_nonce, sign_offer, validate_offer_terms
    from nexotc_client.cli.deal import _parse_sets, _token_decimals
    from nexotc_client.spec import check_document, load_document, parse_spec, parse_time

    document = load_document(terms_file)
    check_document(document)
    pairs = _parse_sets(sets)
    deployment = app.deployment()
    factory = app.factory()
    sender = app.sender()
    now = int(chain.pending_timestamp)
    chain_id = int(chain.chain_id)

    if previous is not None:
        prev, prev_data = previous
        if prev.chain_id != chain_id or prev.factory.lower() != factory.address.lower():
            raise NexotcError(
                f"the offer countered was signed for chain {prev.chain_id} and factory {prev.factory}, "
                f"not this network's (chain {chain_id}, factory {factory.address})"
            )
        if prev.offer.maker.lower() == sender.address.lower():
            raise NexotcError(
                f"{sender.address} made the offer countered: a counter-offer comes from the other side "
                "(to revise your own offer, cancel it and create a new one)"
            )
        base_time = prev_data.get("time_base")
        time_base = now if fresh_times or not isinstance(base_time, int) else base_time
    else:
        time_base = now

    spec = parse_spec(
        document,
        now=time_base,
        resolve_wallet=wallet_address,
        decimals_of=_token_decimals,
        variables=deployment.tokens,
        sets=pairs,
    )
    terms = spec.terms
    maker = sender.address
    probe = Offer(terms=terms, maker=maker, expiry=0, nonce=0)
    maker_role, taker_role = maker_side(probe)
    index = 0 if taker_role == "buyer" else 1
    if public:
        if taker is not None:
            raise click.UsageError("give either --taker or --public, not both")
        if previous is not None:
            raise click.UsageError("a counter-offer answers one party: --public does not apply")
        terms = _with_counterparty(terms, index, ZERO_ADDRESS)
        invited = ZERO_ADDRESS
    else:
        if taker is None and previous is not None:
            taker = previous[0].offer.maker
        invited = wallet_address(taker) if taker is not None else terms.parties[index].wallet
        if invited.lower() == maker.lower():
            raise NexotcError(f"the taker {invited} is the maker itself")
        terms = _with_counterparty(terms, index, invited)

    expiry = parse_time(expires, now, "--expires")
    if expiry <= now:
        raise NexotcError(f"--expires: {expiry} is not in the future (chain time {now})")
    raw_salt = to_salt(salt if salt is not None else spec.salt) if (salt or spec.salt) else ZERO32
    if nonce is None:
        known = [
            s.offer.nonce
            for s, _ in _stored(app)
            if s.offer.maker.lower() == maker.lower() and s.factory.lower() == factory.address.lower()
        ]
        nonce = next_nonce(factory, maker, known)
    offer_ = Offer(
        terms=terms,
        maker=maker,
        taker=invited,
        expiry=expiry,
        nonce=nonce,
        previous=previous[0].offer.offer_hash() if previous is not None else ZERO32,
        salt=raw_salt,
    )
    validate_offer_terms(factory, offer_)

    approval = None
    if approve:
        from nexotc_client.chain.offers import filled_terms

        with step(app, "approving the factory for your leg"):
            approval = approve_leg(filled_terms(offer_, None), maker_role, sender, factory.address)
    signed = sign_offer(offer_, sender, chain_id, factory.address)
    path = keep(app, signed, {"time_base": time_base, "name": spec.name}, out)

    from nexotc_client.chain.offers import leg_of

    maker_leg = leg_of(terms, maker_role)
    needs_approval = False
    if maker_leg is not None and approval is None:
        from nexotc_client.chain.contracts import erc20

        allowance = int(erc20(maker_leg[1]).allowance(maker, factory.address))
        needs_approval = allowance < maker_leg[2]
    rows = changes(previous[0].offer, offer_) if previous is not None else None
    data = {
        "file": str(path),
        "name": spec.name,
        "maker_role": maker_role,
        **_offer_data(signed),
        "approval_tx": approval.tx_hash if approval else None,
        "maker_leg_approved": not needs_approval,
        "time_base": time_base,
    }
    if rows is not None:
        data["changes"] = rows

    def render(console: Console) -> None:
        from nexotc_client.cli.render import fmt_time

        kind = "counter-offer" if previous is not None else "offer"
        console.print(f"signed {kind} {data['offer_hash']} → {path}")
        console.print(f"  digest {data['digest']} (EIP-712, chain {chain_id}, factory {factory.address})")
        summary = _summary(offer_, spec_meta(spec.base), spec_meta(spec.quote))
        console.print(f"  {summary}{'  (' + spec.name + ')' if spec.name else ''}")
        console.print(f"  nonce {nonce}, expires {fmt_time(expiry, now)}")
        if previous is not None:
            console.print(f"  counters {hash_hex(previous[0].offer)}")
        if approval is not None:
            console.print(f"  approved the factory for your {maker_role} leg (tx {approval.tx_hash})")
        elif needs_approval:
            console.print("  note: the factory cannot move your leg yet: run with --approve before it is accepted")
        if rows is not None:
            render_changes(console, rows, "changes from the offer countered")

    app.emit(data, render)


def spec_meta(leg: Any) -> LegMeta:
    from nexotc_client.cli.render import LegMeta

    return LegMeta(leg.label, leg.decimals)


@offer.command("create")
@_terms_options
@click.option("--public", is_flag=True, help="Anyone may accept: the counterparty's wallet is left open.")
@shared_options
@click.pass_obj
def create(
    app: App,
    terms_file: Path,
    taker: str | None,
    expires: str,
    nonce: int | None,
    salt: str | None,
    sets: tuple[str, ...],
    approve: bool,
    out: Path | None,
    public: bool,
) -> None:
    """Sign an offer of the terms in FILE.yaml (you are its buyer or seller); prints its digest."""
    _make_offer(
        app,
        terms_file=terms_file,
        taker=taker,
        public=public,
        expires=expires,
        nonce=nonce,
        salt=salt,
        sets=sets,
        approve=approve,
        out=out,
    )


@offer.command("counter")
@click.argument("ref", metavar="FILE|LINK")
@_terms_options
@click.option("--fresh-times", is_flag=True, help="Relative times count from now, not from the offer countered.")
@shared_options
@click.pass_obj
def counter(
    app: App,
    ref: str,
    terms_file: Path,
    taker: str | None,
    expires: str,
    nonce: int | None,
    salt: str | None,
    sets: tuple[str, ...],
    approve: bool,
    out: Path | None,
    fresh_times: bool,
) -> None:
    """Answer an offer with new terms: a new signed offer referencing its hash; prints the changes."""
    previous = read_offer(ref)
    _make_offer(
        app,
        terms_file=terms_file,
        taker=taker,
        public=False,
        expires=expires,
        nonce=nonce,
        salt=salt,
        sets=sets,
        approve=approve,
        out=out,
        previous=previous,
        fresh_times=fresh_times,
    )


@offer.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@shared_options
@click.pass_obj
def diff_cmd(app: App, a: str, b: str) -> None:
    """What changed from offer A to offer B, field by field (files or links; no chain needed)."""
    first, _ = read_offer(a)
    second, _ = read_offer(b)
    rows = changes(first.offer, second.offer)
    counters = second.offer.previous == first.offer.offer_hash()
    data = {"a": hash_hex(first.offer), "b": hash_hex(second.offer), "b_counters_a": counters, "changes": rows}

    def render(console: Console) -> None:
        relation = "counters" if counters else "does not counter"
        console.print(f"B {data['b']} {relation} A {data['a']}")
        render_changes(console, rows, "changes from A to B")

    app.emit(data, render)


@offer.command("thread")
@click.argument("refs", nargs=-1, required=True, metavar="FILE...")
@shared_options
@click.pass_obj
def thread(app: App, refs: tuple[str, ...]) -> None:
    """Check a negotiation: each offer counters the one before (earlier offers are looked up in the
    home's store when not given); shows every change. No chain needed."""
    given = [read_offer(r)[0] for r in refs]
    by_hash = {s.offer.offer_hash(): s for s, _ in _stored(app)}
    chain_: list[SignedOffer] = list(given)
    seen = {s.offer.offer_hash() for s in chain_}
    while chain_[0].offer.previous != ZERO32:
        earlier = by_hash.get(chain_[0].offer.previous)
        if earlier is None or earlier.offer.offer_hash() in seen:
            raise NexotcError(
                f"the thread starts with a counter-offer: its previous offer 0x{chain_[0].offer.previous.hex()} "
                "is neither given nor in the local store (pass its file first)"
            )
        chain_.insert(0, earlier)
        seen.add(earlier.offer.offer_hash())
    t = Thread()
    for i, signed in enumerate(chain_, start=1):
        if (signed.chain_id, signed.factory.lower()) != (chain_[0].chain_id, chain_[0].factory.lower()):
            raise NexotcError(f"offer {i} was signed for another chain or factory than offer 1")
        with offer_errors(f"offer {i} ({hash_hex(signed.offer)[:12]}…)"):
            t.add(signed)
    entries = []
    for signed in t.offers:
        try:
            eoa = signed.signer().lower() == signed.offer.maker.lower()
        except Exception:  # garbage signature bytes
            eoa = False
        role = _role(signed.offer, signed.offer.maker)
        entries.append({**_offer_data(signed), "maker_role": role, "eoa_signed": eoa})
    steps = [changes(a.offer, b.offer) for a, b in zip(t.offers, t.offers[1:], strict=False)]
    data = {"valid": True, "offers": entries, "changes": steps}

    def render(console: Console) -> None:
        from nexotc_client.cli.render import fmt_time

        console.print(f"negotiation of {len(entries)} offer(s); each counters the one before")
        for i, entry in enumerate(entries):
            sig = "signed by the maker" if entry["eoa_signed"] else "no EOA signature of the maker (see `offer open`)"
            console.print(
                f"{i + 1}. {entry['offer_hash']}  {entry['maker_role']} {entry['maker']}  nonce {entry['nonce']}  "
                f"expires {fmt_time(entry['expiry'])}  {sig}"
            )
            if i:
                render_changes(console, steps[i - 1], f"changes in offer {i + 1}")

    app.emit(data, render)


@offer.command("invite")
@click.argument("ref", metavar="FILE")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the link to this file.")
@shared_options
@click.pass_obj
def invite(app: App, ref: str, out: Path | None) -> None:
    """Print the URL-safe invite link of a signed offer (only its taker can accept a private one)."""
    signed, _ = read_offer(ref)
    link = signed.to_link()
    if out is not None:
        try:
            out.write_text(link + "\n")
        except OSError as exc:
            raise NexotcError(f"cannot write {out}: {exc}") from exc
    o = signed.offer
    data = {
        "link": link,
        "offer_hash": hash_hex(o),
        "taker": o.taker,
        "public": o.taker == ZERO_ADDRESS,
        "expiry": o.expiry,
        "file": str(out) if out else None,
    }

    def render(console: Console) -> None:
        click.echo(link)
        who = "anyone (public offer)" if o.taker == ZERO_ADDRESS else f"only {o.taker}"
        console.print(f"invite to offer {data['offer_hash']}: {who} can accept it")

    app.emit(data, render)


def _factory(app: App) -> Factory:
    return app.factory()


def _status(app: App, signed: SignedOffer, taker: str | None) -> OfferStatus:
    from nexotc_client.chain.offers import inspect_offer

    return inspect_offer(_factory(app), signed, taker=taker)


@offer.command("open")
@click.argument("ref", metavar="LINK|FILE")
@shared_options
@click.pass_obj
def open_cmd(app: App, ref: str) -> None:
    """Verify an offer on the connected chain (maker's signature: EOA or EIP-1271; chain and factory;
    expiry; nonce) and show its terms and what the taker must fund and approve. --account: who
    would accept (default: the invited taker). Exits 1 when it cannot be accepted now."""
    from nexotc_client.cli.render import leg_meta, terms_dict

    signed, data_file = read_offer(ref)
    taker = wallet_address(app.account) if app.account else None
    status = _status(app, signed, taker)
    keep(app, signed, data_file)
    terms = status.terms
    base = leg_meta(terms.base.token, terms.base.on_chain)
    quote = leg_meta(terms.quote.token, terms.quote.on_chain)
    data = {**status.to_dict(), "terms": terms_dict(terms)}
    data["funding"] = [
        {**f.to_dict(), "formatted": (base if f.leg == "base" else quote).fmt(f.amount)} for f in status.funding
    ]

    def render(console: Console) -> None:
        render_status(console, status, base, quote)

    app.emit(data, render)
    if status.problems:
        raise NexotcError(f"this offer cannot be accepted now: {status.problems[0]}")


def render_status(console: Console, status: OfferStatus, base: LegMeta, quote: LegMeta) -> None:
    from rich.table import Table

    from nexotc_client.cli.render import fmt_duration, fmt_time, fmt_when, role_names

    o = status.signed.offer
    terms = status.terms
    now = status.now
    head = Table(show_header=False, box=None, pad_edge=False)
    signature = "EOA signature ✓" if status.maker_kind == "eoa" else "contract wallet, EIP-1271 ✓"
    taker = "anyone (public offer)" if status.public else f"{o.taker} ({_role(o, o.taker)})"
    for key, value in (
        ("offer", "0x" + status.offer_hash.hex()),
        ("digest", "0x" + status.digest.hex()),
        ("chain / factory", f"{status.signed.chain_id} / {status.signed.factory} ✓"),
        ("maker", f"{o.maker} ({status.maker_role}), {signature}"),
        ("taker", taker),
        ("expiry", fmt_time(o.expiry, now) + ("  EXPIRED" if status.expired else "")),
        ("nonce", f"{o.nonce}" + ("  USED OR CANCELLED" if status.nonce_used else " (unused)")),
        ("counters", "0x" + o.previous.hex() if o.previous != ZERO32 else "— (opening offer)"),
        ("deal address", status.deal or "— (set by whoever accepts)"),
        ("mode", terms.mode.name),
        ("funding deadline", fmt_time(terms.funding_deadline, now)),
        ("final expiry", fmt_time(terms.final_expiry, now)),
        ("dispute timeout", f"{fmt_duration(terms.dispute_timeout)}, then {terms.dispute_default.name.lower()}"),
        (
            "fees",
            f"desk {terms.desk_fee_bps} bps on the {terms.fee_leg.name.lower()} leg, resolver cap "
            f"{terms.resolver_fee_bps} bps",
        ),
    ):
        head.add_row(f"[bold]{key}[/]", str(value))
    console.print(head)

    legs = Table(title="legs")
    for column in ("leg", "asset", "amount"):
        legs.add_column(column)
    for name, leg, meta in (("base", terms.base, base), ("quote", terms.quote, quote)):
        legs.add_row(name, f"{meta.label} {leg.token}" if leg.on_chain else "off chain", meta.fmt(leg.amount))
    console.print(legs)

    parties = Table(title="parties")
    for column in ("wallet", "roles", "bps"):
        parties.add_column(column)
    for p in terms.parties:
        parties.add_row(p.wallet, ", ".join(role_names(p.roles)), str(p.bps or ""))
    console.print(parties)

    tranches = Table(title="tranches")
    for column in ("#", "base", "quote", "unlock", "deadline"):
        tranches.add_column(column)
    for i, t in enumerate(terms.tranches):
        tranches.add_row(
            str(i),
            base.fmt(t.base_amount),
            quote.fmt(t.quote_amount),
            fmt_when(t.unlock_time, now),
            fmt_when(t.deadline, now),
        )
    console.print(tranches)

    console.print("[bold]to accept[/]")
    if not status.funding:
        console.print("  nobody deposits an on-chain leg")
    for f in status.funding:
        meta = base if f.leg == "base" else quote
        who = f.wallet or "the taker (whoever accepts)"
        line = f"  the {f.side} {who} ({f.role}) deposits the {f.leg} leg: {meta.fmt(f.amount)}"
        if f.balance is not None:
            line += f"; holds {meta.fmt(f.balance)}{' ✓' if f.balance_ok else ' ✗ SHORT'}"
        if f.allowance is not None:
            if f.allowance_ok:
                line += "; factory approved ✓"
            elif f.side == "taker":
                line += f"; `offer accept` approves the factory for {meta.fmt(f.amount)} first"
            else:
                line += "; the maker has not approved the factory ✗"
        console.print(line)
    console.print("  `nexotc offer accept ... --fund` deposits both legs in the acceptance transaction")
    for problem in status.problems:
        console.print(f"[red]✗ {problem}[/]")


@offer.command("accept")
@click.argument("ref", metavar="LINK|FILE")
@click.option("--fund", is_flag=True, help="Deposit both legs in the same transaction (from approvals to the factory).")
@shared_options
@click.pass_obj
def accept(app: App, ref: str, fund: bool) -> None:
    """Accept an offer: deploys the deal with exactly the signed terms. Approves the factory for your
    leg first if short. Only the invited taker can accept a private offer."""
    from nexotc_client.chain.offers import accept_offer, require_invited
    from nexotc_client.cli.render import render_tx

    signed, data_file = read_offer(ref)
    sender = app.sender()
    require_invited(signed, sender.address)  # before anything is read or sent
    factory = _factory(app)
    with step(app, "accepting the offer"):
        accepted = accept_offer(factory, signed, sender, fund=fund)
    keep(app, signed, data_file)
    phase = accepted.deal.phase().name.lower()
    data = {**accepted.to_dict(), "taker": sender.address, "funded": fund, "phase": phase}

    def render(console: Console) -> None:
        console.print(f"deal {accepted.deal.address} ({phase}) from offer {data['offer_hash']}")
        if accepted.approval is not None:
            console.print(f"  approved the factory for your leg (tx {accepted.approval.tx_hash})")
        render_tx(console, "accepted" + (" and funded" if fund else ""), accepted.result)

    app.emit(data, render)


@offer.command("cancel")
@click.argument("refs", nargs=-1, metavar="[FILE...]")
@click.option("--nonce", "nonces", multiple=True, type=click.IntRange(0, 2**256 - 1), help="A nonce to cancel.")
@shared_options
@click.pass_obj
def cancel(app: App, refs: tuple[str, ...], nonces: tuple[int, ...]) -> None:
    """Withdraw your offers: cancel their nonces (--nonce N, repeatable, or the offers' FILEs)."""
    from nexotc_client.chain.offers import cancel_nonces
    from nexotc_client.cli.render import render_tx

    sender = app.sender()
    values = list(nonces)
    for ref in refs:
        signed, _ = read_offer(ref)
        if signed.offer.maker.lower() != sender.address.lower():
            raise NexotcError(f"{ref}: made by {signed.offer.maker}, not by {sender.address}")
        values.append(signed.offer.nonce)
    if not values:
        raise click.UsageError("give --nonce N or offer FILEs to cancel")
    factory = _factory(app)
    with step(app, "cancelling"):
        result = cancel_nonces(factory, values, sender)
    data = {"maker": sender.address, "nonces": sorted(set(values)), **result.to_dict()}
    app.emit(data, lambda c: render_tx(c, f"cancelled nonce(s) {', '.join(map(str, data['nonces']))}", result))


__all__ = ["offer", "offer_document", "read_offer"]
