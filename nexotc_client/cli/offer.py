"""`nexotc offer ...`: signed offers (EIP-712), counter-offers, negotiation threads and invite links.

    nexotc offer create --terms FILE.yaml --account MAKER [--taker ADDR|--public] [--expires +1d]
                        [--nonce N] [--salt S] [--set KEY=VALUE]... [--approve] [--out FILE [--force]]
    nexotc offer counter FILE|LINK --terms NEW.yaml --account MAKER [...same options] [--fresh-times]
    nexotc offer diff A B                  what changed, field by field
    nexotc offer thread FILE...            checks the chain of `previous` hashes (any order), shows every change
                                           and, when the chain is reachable, which offers are void or superseded
    nexotc offer invite FILE [--out F]     the URL-safe invite link (signed offer + invited taker)
    nexotc offer open LINK|FILE            verifies it on the connected chain and shows what accepting takes
    nexotc offer approve LINK|FILE --account MAKER     approves the factory for the maker's leg of that offer
    nexotc offer accept LINK|FILE --account TAKER [--fund] [--keep-own-offers] [--short-attestation-ok]
    nexotc offer cancel [FILE...] --nonce N... --account MAKER

Nonces in a negotiation: a counter by a maker who already has an offer in the thread reuses that offer's
nonce (the factory's nonce bitmap then lets at most one of that maker's offers in the thread be filled);
accepting first cancels the taker's own earlier offers in the thread (--keep-own-offers: don't).

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.agreement import off_chain_leg
from nexotc_client.agreement import rows as agreement_rows
from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address
from nexotc_client.offers import (
    INVITE_PREFIX,
    ZERO32,
    Offer,
    OfferError,
    SignedOffer,
    Thread,
    ancestors,
    diff,
    later_by_maker,
    order_offers,
    read_link,
)
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
            return read_link(text)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            content = path.read_text().strip()
        except OSError as exc:
            raise NexotcError(f"cannot read {path}: {exc}") from exc
        if content.startswith(INVITE_PREFIX) or _LINK_BODY.match(content):
            with offer_errors(str(path)):
                return read_link(content)
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
            return read_link(text)
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
    notes = {
        k: v for k, v in (extra or {}).items() if k in FILE_KEYS and k not in ("offer_hash", "digest") and v is not None
    }
    stored = store_path(app, signed.offer)
    if stored.is_file():  # a copy read from a link or a bare file keeps the notes kept before (time base, name)
        try:
            before = json.loads(stored.read_text())
        except (OSError, ValueError):
            before = {}
        if isinstance(before, dict):
            notes = {**{k: before[k] for k in ("time_base", "name") if before.get(k) is not None}, **notes}
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


def accepted_offer(
    app: App, deal: Any, ref: str | None = None, known: dict[str, str] | None = None
) -> tuple[str | None, SignedOffer | None, str | None]:
    """The hash of the signed offer that made `deal` (its `OfferAccepted` event; None for a deal created
    directly), that offer (`ref`, a file or link, refused unless it is that offer; else the copy in the
    home's store when there is one) and a warning when the home's copy does not match the recorded hash.
    `known`: `Factory.accepted_offer_hashes()` read once for many deals."""
    offer_hash = known.get(deal.address) if known is not None else deal.factory.accepted_offer_hash(deal.address)
    if offer_hash is None:
        if ref is not None:
            raise NexotcError(f"--offer: deal {deal.address} was not made from a signed offer")
        return None, None, None
    if ref is not None:
        signed = read_offer(ref)[0]
        if hash_hex(signed.offer) != offer_hash:
            raise NexotcError(
                f"--offer: {hash_hex(signed.offer)} is not the offer that made deal {deal.address} ({offer_hash})"
            )
        return offer_hash, signed, None
    stored = app.home / STORE_DIR / f"{offer_hash}.json"
    if not stored.is_file():
        return offer_hash, None, None
    try:
        signed = read_offer(str(stored))[0]
    except NexotcError as exc:
        return offer_hash, None, f"the copy of offer {offer_hash} in {stored} is unreadable ({exc}): not used"
    if hash_hex(signed.offer) != offer_hash:
        return (
            offer_hash,
            None,
            (
                f"the copy of offer {offer_hash} in {stored} was changed (it hashes to "
                f"{hash_hex(signed.offer)}): not used"
            ),
        )
    return offer_hash, signed, None


def _stored(app: App) -> list[tuple[SignedOffer, dict[str, Any]]]:
    folder = app.home / STORE_DIR
    out = []
    for path in sorted(folder.glob("0x*.json")) if folder.is_dir() else []:
        try:
            out.append(read_offer(str(path)))
        except NexotcError:
            continue
    return out


def home_offer_nonces(app: App, chain_id: int, factory: str, maker: str) -> list[int]:
    """Nonces of `maker`'s offers on `factory` kept in the home's offer store (`offer create|counter`)."""
    return sorted(
        {
            s.offer.nonce
            for s, _ in _stored(app)
            if s.chain_id == chain_id
            and s.factory.lower() == factory.lower()
            and s.offer.maker.lower() == maker.lower()
        }
    )


def desk_offer_nonces(app: App, chain_id: int, factory: str, maker: str) -> list[int]:
    """Nonces of `maker`'s offers on `factory` that the desk engine signed (`quote lock`, `match invite`), from
    the desk database of this home ($NEXOTC_DESK_DB or <home>/desk.db) when there is one."""
    from nexotc_client.cli.desk_checks import desk_store

    try:
        store = desk_store(app, None)
    except NexotcError:
        return []  # no desk database: the desk engine signed nothing here
    try:
        return store.offer_nonces(chain_id, factory, maker)
    finally:
        store.db.close()


def _known(app: App, *extra: SignedOffer) -> dict[bytes, SignedOffer]:
    """Every offer of the home's store (and `extra`), by offer hash: the locally known threads."""
    known = {s.offer.offer_hash(): s for s, _ in _stored(app)}
    for signed in extra:
        known.setdefault(signed.offer.offer_hash(), signed)
    return known


def _same_domain(a: SignedOffer, b: SignedOffer) -> bool:
    return a.chain_id == b.chain_id and a.factory.lower() == b.factory.lower()


def _refuse_overwrite(out: Path | None, force: bool) -> None:
    if out is not None and out.exists() and not force:
        raise NexotcError(f"{out} already exists: pass --force to overwrite it (nothing was signed or sent)")


# ------------------------------------------------------- the offer's factory
@dataclass(frozen=True)
class OfferFactory:
    """The factory an offer is used with: the one recorded in the home ("home"), or, when the home records
    none for the network, the one the offer was signed for, checked on chain ("offer"; `note` says so)."""

    factory: Factory
    source: str  # "home" | "offer"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"factory_source": self.source, "factory_note": self.note}

    def render(self, console: Console) -> None:
        if self.note:
            console.print(_cell_text(f"note: {self.note}"))


def checked_offer_factory(address: str, what: str = "the offer") -> Factory:
    """The factory at `address` (named by an offer, not by this home), refused unless it is an EscrowFactory
    (`is_factory`, the check `deploy` uses) that runs this version's code, deal and deposit implementations
    included (`Factory.checked`)."""
    from ape import chain

    from nexotc_client.chain.deployment import is_factory
    from nexotc_client.chain.errors import reverts_as_errors
    from nexotc_client.chain.factory import Factory, creation_block

    connected = int(chain.chain_id)
    refused = "refused, nothing sent"
    if not is_factory(address):
        with reverts_as_errors("reading the offer's factory"):
            has_code = bool(chain.provider.get_code(address))
        held = "another contract, not an EscrowFactory" if has_code else "no contract"
        raise NexotcError(f"{what} names the factory {address}, but chain {connected} holds {held} there: {refused}")
    try:
        factory = Factory.checked(address, start_block=creation_block(address))
    except NexotcError as exc:
        raise NexotcError(f"{what} names the factory {address}: {exc}: {refused}") from exc
    return factory


def offer_factory(app: App, signed: SignedOffer, what: str = "the offer") -> OfferFactory:
    """The factory to use `signed` with on the connected chain, checked before anything is read or sent: its
    chain id must be the connected chain's; the factory recorded in the home for the network must be the one it
    was signed for (refused otherwise, naming both); with none recorded, the offer's own factory, once checked on
    chain (`checked_offer_factory`). Everything else the commands need (the desk registry, the KYC registry)
    is read from that factory on chain."""
    from ape import chain

    from nexotc_client.chain.deployment import network_key

    app.connect()
    connected = int(chain.chain_id)
    if signed.chain_id != connected:
        raise NexotcError(
            f"{what} was signed for chain {signed.chain_id}, but the connected chain is {connected}: connect to "
            f"chain {signed.chain_id} (--network / --rpc); nothing sent"
        )
    key = network_key()
    recorded = app.recorded_deployment()
    if recorded is not None:
        factory = app.factory()  # the record, checked against the chain
        if factory.address.lower() != signed.factory.lower():
            replaced = any(a.lower() == signed.factory.lower() for a, _ in recorded.previous)
            raise NexotcError(
                f"{what} was signed for the factory {signed.factory}, but this home records the factory "
                f"{factory.address} for {key} ({app.home / 'deployments.json'}"
                + ("; the offer's factory is one it replaced" if replaced else "")
                + "): nothing sent; to use the offer's factory, run the command with a home that records no factory "
                "for this network (--home NEW_DIR: the offer's factory is then checked on chain and used), or ask "
                f"for an offer signed for {factory.address}"
            )
        return OfferFactory(factory, "home")
    factory = checked_offer_factory(signed.factory, what)
    note = (
        f"using the offer's factory {factory.address} (none recorded in this home for {key}; checked on chain: "
        "nexotc's EscrowFactory, DealEscrow and DepositWallet code)"
    )
    return OfferFactory(factory, "offer", note)


def _reachable_factory(app: App, offers: list[SignedOffer]) -> OfferFactory | None:
    """The factory the offers were signed for (`offer_factory`: the home's, else the offer's own, checked),
    when a chain is named for the command (`App.node_configured`) and answers on their chain; None otherwise
    (commands that work offline then skip the chain)."""
    if not offers or not app.node_configured():
        return None
    try:
        return offer_factory(app, offers[0])
    except NexotcError:
        return None


def negotiation(signed: SignedOffer, known: dict[bytes, SignedOffer]) -> list[SignedOffer]:
    """Every offer of `signed`'s negotiation that `known` holds, on any branch: its thread up to it (oldest
    first), then every other known offer that answers the same opening offer (e.g. a sibling counter)."""
    thread_ = [*ancestors(signed, known), signed]
    root = thread_[0].offer.offer_hash()
    seen = {s.offer.offer_hash() for s in thread_}
    others = []
    for other in known.values():
        h = other.offer.offer_hash()
        if h in seen:
            continue
        chain_ = ancestors(other, known)
        if chain_ and chain_[0].offer.offer_hash() == root:
            others.append((len(chain_), other))
            seen.add(h)
    return thread_ + [o for _, o in sorted(others, key=lambda pair: pair[0])]


def _account_ref(app: App, address: str) -> str:
    return app.account or address


def _lag_warnings(signed: SignedOffer, later: list[SignedOffer], used: bool | None, account: str) -> list[str]:
    """What to tell about an offer whose maker has made later offers in its negotiation."""
    if not later or used:
        return []
    o = signed.offer
    warnings = []
    same = [s for s in later if s.offer.nonce == o.nonce]
    other = [s for s in later if s.offer.nonce != o.nonce]
    if same:
        warnings.append(
            f"superseded: the maker made a later offer {hash_hex(same[-1].offer)} in this negotiation with the "
            f"same nonce {o.nonce}: once either is accepted, the other is void"
        )
    if other:
        warnings.append(
            f"superseded: the maker made a later offer {hash_hex(other[-1].offer)} in this negotiation with "
            f"another nonce ({other[-1].offer.nonce}), yet this one (nonce {o.nonce}) can still be accepted: the "
            f"maker withdraws it with `nexotc offer cancel --nonce {o.nonce} --account {account}`"
        )
    return warnings


# ---------------------------------------------------------------- rendering
def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def changes(a: Offer, b: Offer) -> list[dict[str, Any]]:
    """`offers.diff` as JSON-friendly rows."""
    return [{"field": f, "old": _plain(old), "new": _plain(new)} for f, old, new in diff(a, b)]


def _cell(value: Any, full: bool = False) -> str:
    """A table cell, as literal text (never read as markup); long values shortened unless `full` (the
    agreement's text, where a change in the middle must show). Text is quoted when it looks like a number
    or a boolean, so that 10 and "10" (different signed values) look different."""
    from rich.markup import escape

    if value is None:
        return "—"
    if isinstance(value, str) and (value in ("true", "false", "null") or _NUMERIC.match(value)) and full:
        return escape(json.dumps(value, ensure_ascii=False))
    text = str(value) if not isinstance(value, bool | dict | list) or not full else json.dumps(value)
    if not full and len(text) > 50:
        text = f"{text[:22]}…{text[-8:]}"
    return escape(text)


_NUMERIC = re.compile(r"^-?\d[\d_.,eE+-]*$")


_AMOUNT_FIELD = re.compile(r"^terms\.(?:tranches\[\d+\]\.)?(base|quote)_amount$")
_TIME_FIELD = re.compile(
    r"^(?:expiry|terms\.(?:funding_deadline|final_expiry|tranches\[\d+\]\.(?:unlock_time|deadline)))$"
)
_DURATION_FIELD = re.compile(r"^terms\.(?:approval_window|dispute_timeout)$")
Metas = dict[tuple[str, bool], "LegMeta"]


def leg_metas(app: App, offers: list[SignedOffer], factory: Factory | None = None, look_up: bool = True) -> Metas:
    """Symbol and decimals of every on-chain leg token in `offers`, read from the chain when it is reachable
    (`factory`, else looked up unless `look_up` is false; else "units", raw but grouped). Off-chain legs are each
    offer's own (`offer_leg_metas`)."""
    from nexotc_client.cli.render import LegMeta, leg_meta

    if factory is None and look_up:
        reached = _reachable_factory(app, offers)
        factory = reached.factory if reached is not None else None
    metas: Metas = {}
    for signed in offers:
        for leg in (signed.offer.terms.base, signed.offer.terms.quote):
            key = (leg.token, leg.on_chain)
            if not leg.on_chain:
                continue
            if key not in metas:
                metas[key] = leg_meta(leg.token, leg.on_chain) if factory is not None else LegMeta("units", None)
    return metas


def offer_leg_metas(offer: Offer) -> tuple[LegMeta, LegMeta]:
    """Symbol and decimals of the offer's two legs: on-chain tokens read from the chain, an off-chain
    leg as its signed agreement names it."""
    from nexotc_client.cli.render import leg_meta

    base, quote = offer.terms.base, offer.terms.quote
    return (
        leg_meta(base.token, base.on_chain, None if base.on_chain else off_chain_leg(offer.agreement, "base")),
        leg_meta(quote.token, quote.on_chain, None if quote.on_chain else off_chain_leg(offer.agreement, "quote")),
    )


def render_agreement(console: Console, offer: Offer, title: str = "agreement") -> None:
    """The offer's agreement document as signed (its hash is part of the offer), if it has one."""
    from rich.table import Table

    if not offer.agreement:
        return
    table = Table(title=f"{title} (signed by hash 0x{offer.agreement_hash.hex()[:16]}…)", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in agreement_rows(offer.agreement):
        table.add_row(_cell(key, full=True), _cell(value, full=True))
    console.print(table)


def _amount_text(field: str, value: Any, offer: Offer, metas: Metas) -> str:
    """A diff cell: amounts of a leg in human units with the token's symbol, anything else as is."""
    match = _AMOUNT_FIELD.match(field)
    if isinstance(value, int) and not isinstance(value, bool) and match is None:
        return _cell_text(_time_text(field, value))
    if match is None or not isinstance(value, int) or isinstance(value, bool):
        return _cell(value, full=field.startswith("agreement"))
    leg = offer.terms.base if match.group(1) == "base" else offer.terms.quote
    if not leg.on_chain:  # in this offer's own signed asset and decimals
        meta = offer_leg_metas(offer)[0 if match.group(1) == "base" else 1]
    else:
        meta = metas.get((leg.token, leg.on_chain))
    return _cell_text(meta.fmt(value)) if meta is not None else _cell(value)


def _time_text(field: str, value: int) -> str:
    """A diff cell for a signed time or duration: UTC time or duration, then the signed integer itself
    (a change of a few seconds must show)."""
    from nexotc_client.spec import fmt_duration, fmt_time

    try:
        if _TIME_FIELD.match(field) and value > 0:
            return f"{fmt_time(value)} ({value})"
        if _DURATION_FIELD.match(field) and value > 0:
            return f"{fmt_duration(value)} ({value:,} s)"
    except (OverflowError, ValueError, OSError):  # beyond the calendar: the integer as signed
        pass
    return str(value)


def _cell_text(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def render_changes(
    console: Console,
    rows: list[dict[str, Any]],
    title: str,
    pair: tuple[Offer, Offer] | None = None,
    metas: Metas | None = None,
) -> None:
    """The diff as a table; with the two offers and their legs' metadata, amounts in human units."""
    from rich.table import Table

    if not rows:
        console.print(f"{title}: no change")
        return
    table = Table(title=title)
    for column in ("field", "before", "after"):
        table.add_column(column)
    for row in rows:
        if pair is not None and metas is not None:
            before = _amount_text(row["field"], row["old"], pair[0], metas)
            after = _amount_text(row["field"], row["new"], pair[1], metas)
        else:
            full = row["field"].startswith("agreement")
            before, after = _cell(row["old"], full), _cell(row["new"], full)
        table.add_row(_cell(row["field"], full=True), before, after)
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
        "desk_id": o.desk_id,
        "agreement_hash": "0x" + o.agreement_hash.hex(),
        "agreement": o.agreement_document() or None,
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
        click.option(
            "--nonce",
            type=click.IntRange(0, 2**256 - 1),
            default=None,
            help="Default: a counter reuses your nonce in the thread (at most one of your offers in it can be "
            "filled), else the next unused one. Refused if used or cancelled on chain.",
        ),
        click.option("--salt", default=None, help="Offer salt (hex or text; default: the file's salt, else zero)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Fill a placeholder or set a field."),
        click.option("--approve", is_flag=True, help="Also approve the factory for your leg if short (a transaction)."),
        click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the offer here."),
        click.option("--force", is_flag=True, help="Overwrite the --out file if it exists."),
        click.option(
            "--maker",
            "maker_wallet",
            default=None,
            help="Make the offer for this nexotc MultiSig (--account is one of its owners): the owners' signatures "
            "are its EIP-1271 signature; the others add theirs with `nexotc offer sign`.",
        ),
        click.option(
            "--desk",
            "desk_id",
            type=click.IntRange(0, 2**256 - 1),
            default=None,
            help="Make the deal a desk deal of this desk id (its rules are checked now and on acceptance; a desk "
            "trader must be the maker or the taker). A counter keeps the desk of the offer countered; 0: none.",
        ),
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
    force: bool = False,
    previous: tuple[SignedOffer, dict[str, Any]] | None = None,
    fresh_times: bool = False,
    desk_id: int | None = None,
    maker_wallet: str | None = None,
) -> None:
    from ape import chain

    from nexotc_client.chain.encoding import to_salt
    from nexotc_client.chain.offers import (
        approve_leg,
        maker_side,
        next_nonce,
        nonce_used,
        sign_offer,
        sign_offer_for_wallet,
        validate_offer_terms,
    )
    from nexotc_client.cli.deal import _parse_sets, _token_decimals
    from nexotc_client.spec import check_document, load_document, parse_spec, parse_time

    _refuse_overwrite(out, force)
    document = load_document(terms_file)
    check_document(document)
    pairs = _parse_sets(sets)
    resolved: OfferFactory | None = None
    from_offer: dict[str, str] = {}  # token placeholders filled from the offer countered (no deployment here)
    if previous is not None:  # the factory of the offer countered (the home's, else the offer's own, checked)
        resolved = offer_factory(app, previous[0], "the offer countered")
        factory = resolved.factory
        recorded = app.recorded_deployment()
        from_offer = offer_tokens(previous[0]) if recorded is None else {}
        variables = recorded.tokens if recorded is not None else from_offer
    else:
        factory = app.factory()
        variables = app.deployment().tokens
    sender = app.sender()
    now = int(chain.pending_timestamp)
    chain_id = int(chain.chain_id)
    maker = sender.address
    multisig = None
    if maker_wallet is not None:
        from nexotc_client.chain.multisig import MultiSigWallet

        multisig = MultiSigWallet.at(wallet_address(maker_wallet))
        if sender.address.lower() not in {o.lower() for o in multisig.owners()}:
            raise NexotcError(f"--account {sender.address} is not an owner of the multisig {multisig.address}")
        maker = multisig.address
        if approve:
            raise NexotcError(
                f"--approve: the maker {maker} is a multisig, it approves the factory for its leg itself (an "
                f"execution: `nexotc msig propose {maker} --call 'TOKEN.approve({factory.address}, AMOUNT)'`)"
            )

    if previous is not None:
        prev, prev_data = previous
        if prev.chain_id != chain_id or prev.factory.lower() != factory.address.lower():
            raise NexotcError(
                f"the offer countered was signed for chain {prev.chain_id} and factory {prev.factory}, "
                f"not this network's (chain {chain_id}, factory {factory.address})"
            )
        from nexotc_client.chain.offers import WalletSignaturesMissing, verify_maker_signature

        try:  # a counter references exactly what its maker signed (an incomplete multisig offer may be countered)
            verify_maker_signature(prev)
        except WalletSignaturesMissing:
            pass
        except NexotcError as exc:
            raise NexotcError(f"the offer countered does not verify: {exc}") from exc
        if prev.offer.maker.lower() == maker.lower():
            raise NexotcError(
                f"{maker} made the offer countered: a counter-offer comes from the other side "
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
        variables=variables,
        sets=pairs,
    )
    terms = spec.terms
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
    warnings: list[str] = []
    known = _known(app)
    mine: list[SignedOffer] = []  # the maker's own offers in this negotiation, on any branch
    if previous is not None:
        mine = [
            s
            for s in negotiation(previous[0], known)
            if s.offer.maker.lower() == maker.lower() and _same_domain(s, previous[0])
        ]
    if nonce is not None:
        if nonce_used(factory, maker, nonce):
            raise NexotcError(f"nonce {nonce} already used or cancelled for {maker}: pick another (or omit --nonce)")
    elif mine:
        latest = mine[-1]
        nonce = latest.offer.nonce
        if nonce_used(factory, maker, nonce):
            raise NexotcError(
                f"your nonce {nonce} in this negotiation (offer {hash_hex(latest.offer)}) is already used or "
                "cancelled: one of your offers in it was accepted or you withdrew them, so a counter with it could "
                "never be filled (pass --nonce N for a new, independent offer)"
            )
    else:
        own = [
            s.offer.nonce
            for s in known.values()
            if s.offer.maker.lower() == maker.lower() and s.factory.lower() == factory.address.lower()
        ]
        # and the offers the desk engine signed from this wallet: an untaken one must not share the nonce
        own += desk_offer_nonces(app, chain_id, factory.address, maker)
        nonce = next_nonce(factory, maker, own)
    open_mine = [
        n for n in sorted({s.offer.nonce for s in mine if s.offer.nonce != nonce}) if not nonce_used(factory, maker, n)
    ]
    if open_mine:
        listed = " ".join(f"--nonce {n}" for n in open_mine)
        warnings.append(
            f"your earlier offer(s) in this negotiation (nonce {', '.join(map(str, open_mine))}) stay acceptable "
            f"next to this one: withdraw them with `nexotc offer cancel {listed} --account {_account_ref(app, maker)}`"
        )
    offer_ = Offer(
        terms=terms,
        maker=maker,
        taker=invited,
        expiry=expiry,
        nonce=nonce,
        previous=previous[0].offer.offer_hash() if previous is not None else ZERO32,
        salt=raw_salt,
        desk_id=desk_id if desk_id is not None else previous[0].offer.desk_id if previous is not None else 0,
        agreement=spec.agreement,
    )
    validate_offer_terms(factory, offer_)

    approval = None
    if approve:
        from nexotc_client.chain.offers import filled_terms

        with step(app, "approving the factory for your leg"):
            approval = approve_leg(filled_terms(offer_, None), maker_role, sender, factory.address)
    if multisig is not None:
        signed = sign_offer_for_wallet(offer_, sender, chain_id, factory.address)
    else:
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
        "replaces": [hash_hex(s.offer) for s in mine if s.offer.nonce == nonce],
        "warnings": warnings,
    }
    if rows is not None:
        data["changes"] = rows
    if resolved is not None:
        data.update(resolved.to_dict())
        data["tokens_from_offer"] = from_offer
    held = None
    if multisig is not None:
        from nexotc_client.chain.offers import wallet_offer_signatures

        held = wallet_offer_signatures(signed)
        data["multisig"] = held.to_dict() if held is not None else None

    def render(console: Console) -> None:
        from nexotc_client.cli.render import fmt_time

        kind = "counter-offer" if previous is not None else "offer"
        if resolved is not None:
            resolved.render(console)
        console.print(f"signed {kind} {data['offer_hash']} → {path}")
        console.print(f"  digest {data['digest']} (EIP-712, chain {chain_id}, factory {factory.address})")
        summary = _summary(offer_, spec_meta(spec.base), spec_meta(spec.quote))
        console.print(_cell_text(f"  {summary}{'  (' + spec.name + ')' if spec.name else ''}"))
        console.print(f"  nonce {nonce}, expires {fmt_time(expiry, now)}")
        if offer_.desk_id:
            console.print(f"  desk #{offer_.desk_id}: a desk deal (the desk's rules are checked again on acceptance)")
        if offer_.agreement:
            fields = ", ".join(key for key, _ in agreement_rows(offer_.agreement))
            console.print(f"  agreement 0x{offer_.agreement_hash.hex()} signed with the terms: {_cell_text(fields)}")
        if previous is not None:
            console.print(f"  counters {hash_hex(previous[0].offer)}")
        if from_offer:
            named = ", ".join(f"{symbol}={address}" for symbol, address in sorted(from_offer.items()))
            console.print(
                _cell_text(f"  token placeholders from the offer countered (no tokens recorded in this home): {named}")
            )
        if data["replaces"]:
            console.print(
                f"  same nonce {nonce} as your earlier offer(s) {', '.join(data['replaces'])} in this negotiation: "
                "at most one of them can be accepted"
            )
        if approval is not None:
            console.print(f"  approved the factory for your {maker_role} leg (tx {approval.tx_hash})")
        elif needs_approval and multisig is not None and maker_leg is not None:
            from nexotc_client.chain.offers import multisig_approval_hint

            hint = multisig_approval_hint(maker, maker_leg[1], factory.address, maker_leg[2])
            console.print(f"  note: the factory cannot move the multisig's leg yet: {hint}")
        elif needs_approval:
            console.print("  note: the factory cannot move your leg yet: run with --approve before it is accepted")
        if held is not None:
            console.print(
                f"  maker: the multisig {held.wallet}; owner signatures {len(held.signers)} of {held.threshold}"
                + (
                    f": {held.missing} more owner(s) run `nexotc offer sign {path} --account OWNER`"
                    if held.missing
                    else " (complete: the offer can be accepted)"
                )
            )
        if rows is not None and previous is not None:
            metas = leg_metas(app, [previous[0], signed], factory)
            render_changes(console, rows, "changes from the offer countered", (previous[0].offer, offer_), metas)
        for warning in warnings:
            console.print(f"[yellow]warning: {warning}[/]")

    app.emit(data, render)


_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


def offer_tokens(signed: SignedOffer) -> dict[str, str]:
    """Symbol => address of the offer's on-chain leg tokens (their `symbol()` read on chain): the token
    placeholders (`${WBTC}`) of a counter's terms file when the home records no deployment (no mock tokens).
    A symbol that is no placeholder name, or that two legs share, is left out (`--set NAME=0x…` fills it)."""
    from nexotc_client.chain.contracts import erc20

    found: dict[str, set[str]] = {}
    for leg in (signed.offer.terms.base, signed.offer.terms.quote):
        if not leg.on_chain:
            continue
        try:
            symbol = str(erc20(leg.token).symbol())
        except Exception:  # a token without symbol(): its placeholder is set by hand
            continue
        if _PLACEHOLDER.match(symbol):
            found.setdefault(symbol, set()).add(leg.token)
    return {symbol: next(iter(tokens)) for symbol, tokens in found.items() if len(tokens) == 1}


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
    force: bool,
    maker_wallet: str | None,
    desk_id: int | None,
    public: bool,
) -> None:
    """Sign an offer of the terms in FILE.yaml (you are its buyer or seller); prints its digest.
    --nonce N is refused when N is already used or cancelled on chain; --out refuses an existing file
    unless --force."""
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
        force=force,
        desk_id=desk_id,
        maker_wallet=maker_wallet,
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
    force: bool,
    maker_wallet: str | None,
    desk_id: int | None,
    fresh_times: bool,
) -> None:
    """Answer an offer with new terms: a new signed offer referencing its hash; prints the changes.
    If you already made an offer in this negotiation, the counter reuses its nonce, so at most one of
    your offers in it can ever be accepted (refused when that nonce is already used or cancelled;
    --nonce N makes an independent offer, and warns that your earlier ones stay acceptable)."""
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
        force=force,
        previous=previous,
        fresh_times=fresh_times,
        desk_id=desk_id,
        maker_wallet=maker_wallet,
    )


@offer.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@shared_options
@click.pass_obj
def diff_cmd(app: App, a: str, b: str) -> None:
    """What changed from offer A to offer B, field by field (files or links; no chain needed, amounts
    in token units when the chain is reachable)."""
    first, _ = read_offer(a)
    second, _ = read_offer(b)
    rows = changes(first.offer, second.offer)
    counters = second.offer.previous == first.offer.offer_hash()
    data = {"a": hash_hex(first.offer), "b": hash_hex(second.offer), "b_counters_a": counters, "changes": rows}

    def render(console: Console) -> None:
        relation = "counters" if counters else "does not counter"
        console.print(f"B {data['b']} {relation} A {data['a']}")
        reached = _reachable_factory(app, [first, second])
        if reached is not None:
            reached.render(console)
        metas = leg_metas(app, [first, second], reached.factory if reached is not None else None, look_up=False)
        render_changes(console, rows, "changes from A to B", (first.offer, second.offer), metas)

    app.emit(data, render)


@offer.command("thread")
@click.argument("refs", nargs=-1, required=True, metavar="FILE...")
@click.option("--offline", is_flag=True, help="Do not read the offers' nonces from the chain.")
@shared_options
@click.pass_obj
def thread(app: App, refs: tuple[str, ...], offline: bool) -> None:
    """Check a negotiation: each offer counters the one before (the offers given are put in order by
    their links; earlier ones are looked up in the home's store when not given); shows every change.
    When the chain is reachable (a deployment recorded in the home, a node of this home or --rpc/--network;
    the home's factory, else the offers' own once checked on chain; not with --offline), marks offers
    whose maker's nonce is used or cancelled as VOID, and warns about offers their maker has moved past
    (a later offer by the same maker) that can still be accepted."""
    given = [read_offer(r)[0] for r in refs]
    with offer_errors():
        ordered = order_offers(given)
    known = _known(app, *given)
    chain_ = [*ancestors(ordered[0], known), *ordered]
    if chain_[0].offer.previous != ZERO32:
        raise NexotcError(
            f"the thread starts with a counter-offer: its previous offer 0x{chain_[0].offer.previous.hex()} "
            "is neither given nor in the local store (pass its file too)"
        )
    t = Thread()
    for i, signed in enumerate(chain_, start=1):
        if not _same_domain(signed, chain_[0]):
            raise NexotcError(f"offer {i} was signed for another chain or factory than offer 1")
        with offer_errors(f"offer {i} ({hash_hex(signed.offer)[:12]}…)"):
            t.add(signed)
    reached = None if offline else _reachable_factory(app, t.offers)
    factory = reached.factory if reached is not None else None
    pool = [*known.values()]
    entries = []
    for signed in t.offers:
        try:
            eoa = signed.signer().lower() == signed.offer.maker.lower()
        except Exception:  # garbage signature bytes
            eoa = False
        role = _role(signed.offer, signed.offer.maker)
        used: bool | None = None
        if factory is not None:
            from nexotc_client.chain.offers import nonce_used

            used = nonce_used(factory, signed.offer.maker, signed.offer.nonce)
        later = [s for s in later_by_maker(signed, pool) if _same_domain(s, signed)]
        state = "unknown" if used is None else "void" if used else "open"
        if later and not used:
            state = "superseded"
        entries.append(
            {
                **_offer_data(signed),
                "maker_role": role,
                "eoa_signed": eoa,
                "nonce_used": used,
                "void": used,
                "state": state,
                "superseded_by": [hash_hex(s.offer) for s in later],
                "warnings": _lag_warnings(signed, later, used, signed.offer.maker),
            }
        )
    steps = [changes(a.offer, b.offer) for a, b in zip(t.offers, t.offers[1:], strict=False)]
    data = {
        "valid": True,
        "chain_checked": factory is not None,
        "factory_source": reached.source if reached is not None else None,
        "factory_note": reached.note if reached is not None else None,
        "offers": entries,
        "changes": steps,
    }

    def render(console: Console) -> None:
        from nexotc_client.cli.render import fmt_time

        metas = leg_metas(app, t.offers, factory, look_up=False)
        console.print(f"negotiation of {len(entries)} offer(s); each counters the one before")
        if reached is not None:
            reached.render(console)
        if factory is None:
            console.print("  (nonces not checked on chain: no reachable factory for these offers)")
        for i, entry in enumerate(entries):
            sig = "signed by the maker" if entry["eoa_signed"] else "no EOA signature of the maker (see `offer open`)"
            mark = {
                "void": "  VOID (nonce used or cancelled)",
                "superseded": "  SUPERSEDED",
                "open": "  open",
                "unknown": "",
            }[entry["state"]]
            console.print(
                f"{i + 1}. {entry['offer_hash']}  {entry['maker_role']} {entry['maker']}  nonce {entry['nonce']}  "
                f"expires {fmt_time(entry['expiry'])}  {sig}{mark}"
            )
            for warning in entry["warnings"]:
                console.print(f"   [yellow]warning: {warning}[/]")
            if i:
                pair = (t.offers[i - 1].offer, t.offers[i].offer)
                render_changes(console, steps[i - 1], f"changes in offer {i + 1}", pair, metas)

    app.emit(data, render)


@offer.command("invite")
@click.argument("ref", metavar="FILE")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the link to this file.")
@shared_options
@click.pass_obj
def invite(app: App, ref: str, out: Path | None) -> None:
    """Print the URL-safe invite link of a signed offer (only its taker can accept a private one). Works
    offline: a maker signature that is no EOA signature of this offer (changed after signing, or a contract
    wallet's, which `offer open` checks on chain) is warned about."""
    signed, notes = read_offer(ref)
    warnings = []
    try:
        signed.verify_eoa()
    except (OfferError, ValueError):
        warnings.append(
            "the maker's signature is no EOA signature of this offer: it was changed after signing, or the maker "
            "is a contract wallet (`nexotc offer open` checks that on chain)"
        )
    link = signed.to_link(notes)  # with the file's time base: a counter from the link keeps the times
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
        "warnings": warnings,
    }

    def render(console: Console) -> None:
        click.echo(link)
        who = "anyone (public offer)" if o.taker == ZERO_ADDRESS else f"only {o.taker}"
        console.print(f"invite to offer {data['offer_hash']}: {who} can accept it")
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)

    app.emit(data, render)


def _factory(app: App) -> Factory:
    return app.factory()


@offer.command("open")
@click.argument("ref", metavar="LINK|FILE")
@shared_options
@click.pass_obj
def open_cmd(app: App, ref: str) -> None:
    """Verify an offer on the connected chain (maker's signature: EOA or EIP-1271; chain and factory;
    expiry; nonce) and show its terms and what the taker must fund and approve. --account: who
    would accept (default: the invited taker); an account that cannot accept (not the invited taker,
    or the maker) is told so. An offer whose maker's nonce is used or cancelled is VOID; one its maker
    has moved past (a later offer by the same maker in the locally known negotiation) is flagged
    superseded. Exits 1 when it cannot be accepted now (by --account)."""
    from nexotc_client.cli.render import terms_dict

    signed, data_file = read_offer(ref)
    from nexotc_client.chain.offers import inspect_offer

    taker = wallet_address(app.account) if app.account else None
    resolved = offer_factory(app, signed)
    status = inspect_offer(resolved.factory, signed, taker=taker)
    keep(app, signed, data_file)
    later = [s for s in later_by_maker(signed, _known(app).values()) if _same_domain(s, signed)]
    warnings = [*status.warnings, *_lag_warnings(signed, later, status.nonce_used, signed.offer.maker)]
    terms = status.terms
    base, quote = offer_leg_metas(signed.offer)
    data = {**status.to_dict(), "terms": terms_dict(terms)}
    data["agreement_hash"] = "0x" + signed.offer.agreement_hash.hex()
    data["agreement"] = signed.offer.agreement_document() or None
    data["funding"] = [
        {**f.to_dict(), "formatted": (base if f.leg == "base" else quote).fmt(f.amount)} for f in status.funding
    ]
    data["superseded_by"] = [hash_hex(s.offer) for s in later]
    data["warnings"] = warnings
    data.update(resolved.to_dict())

    def render(console: Console) -> None:
        resolved.render(console)
        render_status(console, status, base, quote)
        for warning in warnings:
            console.print(f"[yellow]warning: {warning}[/]")

    app.emit(data, render)
    if status.problems:
        raise NexotcError(f"this offer cannot be accepted now: {status.problems[0]}")


def render_status(console: Console, status: OfferStatus, base: LegMeta, quote: LegMeta) -> None:
    from rich.table import Table

    from nexotc_client.cli.render import fmt_duration, fmt_time, fmt_when, role_names

    o = status.signed.offer
    terms = status.terms
    now = status.now
    if status.account is not None and status.account_can_accept is False:
        console.print(f"[bold red]{status.problems[0]}[/]")
    if status.void:
        console.print(
            f"[bold red]VOID: the maker's nonce {o.nonce} is used or cancelled; this offer can never be accepted[/]"
        )
    head = Table(show_header=False, box=None, pad_edge=False)
    signature = (
        "EOA signature ✓"
        if status.maker_kind == "eoa"
        else "contract wallet, EIP-1271 ✓"
        if status.maker_signed
        else "multisig, owner signatures incomplete ✗"
    )
    taker = "anyone (public offer)" if status.public else f"{o.taker} ({_role(o, o.taker)})"
    for key, value in (
        ("offer", "0x" + status.offer_hash.hex()),
        ("digest", "0x" + status.digest.hex()),
        ("chain / factory", f"{status.signed.chain_id} / {status.signed.factory} ✓"),
        ("maker", f"{o.maker} ({status.maker_role}), {signature}"),
        ("taker", taker),
        *(
            [("your account", f"{status.account}: cannot accept this offer")]
            if status.account is not None and status.account_can_accept is False
            else []
        ),
        ("expiry", fmt_time(o.expiry, now) + ("  EXPIRED" if status.expired else "")),
        ("nonce", f"{o.nonce}" + ("  USED OR CANCELLED" if status.nonce_used else " (unused)")),
        ("counters", "0x" + o.previous.hex() if o.previous != ZERO32 else "— (opening offer)"),
        ("deal address", status.deal or "— (set by whoever accepts)"),
        (
            "desk",
            f"#{o.desk_id}: a desk deal (the desk registry checks its rules on acceptance)" if o.desk_id else "none",
        ),
        ("mode", terms.mode.name),
        (
            "compliance",
            f"policy #{terms.policy_id}: buyer and seller must each hold an attestation in the deal's scope "
            f"({status.deal or 'the deal address'})"
            if terms.policy_id
            else "none",
        ),
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
        legs.add_row(
            name, f"{meta.label} {leg.token}" if leg.on_chain else f"{meta.label} (off chain)", meta.fmt(leg.amount)
        )
    console.print(legs)
    render_agreement(console, o)

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
        who = f"the {f.side} {f.wallet}" if f.wallet else "whoever accepts"
        line = f"  {who} ({f.role}) deposits the {f.leg} leg: {meta.fmt(f.amount)}"
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


@offer.command("sign")
@click.argument("ref", metavar="FILE|LINK")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the signed offer here instead.")
@click.option("--force", is_flag=True, help="Overwrite the --out file if it exists.")
@shared_options
@click.pass_obj
def sign_cmd(app: App, ref: str, out: Path | None, force: bool) -> None:
    """An owner (--account) of the nexotc MultiSig that makes the offer adds its signature (EIP-712
    `Message(bytes32 hash)` of the wallet over the offer's digest); with `threshold` of them the offer is
    the multisig's signed offer. An offer FILE is updated in place (unless --out); a LINK's offer is kept in
    the home. Prints the updated invite link."""
    from nexotc_client.chain.offers import check_domain, sign_offer_for_wallet, wallet_offer_signatures

    _refuse_overwrite(out, force)
    signed, data = read_offer(ref)
    resolved = offer_factory(app, signed)
    check_domain(signed, resolved.factory)
    before = wallet_offer_signatures(signed)
    if before is None:
        raise NexotcError(
            f"the maker {signed.offer.maker} is not a nexotc multisig: only a multisig's offer collects owner "
            "signatures (an account signs its own offer with `nexotc offer create`)"
        )
    sender = app.sender()
    if sender.address in before.signers:
        raise NexotcError(
            f"{sender.address} has already signed this offer ({len(before.signers)} of {before.threshold}): nothing "
            "written"
        )
    updated = sign_offer_for_wallet(signed, sender, signed.chain_id, signed.factory)
    held = wallet_offer_signatures(updated)
    assert held is not None
    source = Path(ref).expanduser()
    in_place = out is None and source.is_file() and isinstance(data, dict) and "signature" in data
    path = keep(app, updated, data, source if in_place else out)
    link = updated.to_link({k: data.get(k) for k in ("time_base", "name")} if isinstance(data, dict) else None)
    result = {
        "offer_hash": hash_hex(updated.offer),
        "file": str(path),
        "link": link,
        "multisig": held.to_dict(),
        **resolved.to_dict(),
    }

    def render(console: Console) -> None:
        resolved.render(console)
        state = (
            "complete: the offer can be accepted"
            if not held.missing
            else f"{held.missing} more owner signature(s) needed (`nexotc offer sign {path} --account OWNER`)"
        )
        console.print(
            f"signed offer {result['offer_hash']} for the multisig {held.wallet} as {sender.address}: "
            f"{len(held.signers)} of {held.threshold}, {state} → {path} (its terms: `nexotc offer open {path}`)"
        )
        console.print(link, soft_wrap=True, markup=False, emoji=False, highlight=False)

    app.emit(result, render)


@offer.command("approve")
@click.argument("ref", metavar="LINK|FILE")
@shared_options
@click.pass_obj
def approve(app: App, ref: str) -> None:
    """The maker of an existing offer approves the factory for exactly its leg of that offer (a
    transaction; nothing is signed anew). Nothing is sent when the allowance already covers it."""
    from nexotc_client.chain.offers import approve_maker_leg, filled_terms, leg_of, maker_side

    signed, _ = read_offer(ref)
    sender = app.sender()
    resolved = offer_factory(app, signed)
    factory = resolved.factory
    with step(app, "approving the factory for your leg"):
        result = approve_maker_leg(factory, signed, sender)
    role = maker_side(signed.offer)[0]
    leg = leg_of(filled_terms(signed.offer, None), role)
    assert leg is not None  # approve_maker_leg refuses a maker without an on-chain leg
    from nexotc_client.chain.offers import fmt_amount

    data = {
        "offer_hash": hash_hex(signed.offer),
        "maker": sender.address,
        "maker_role": role,
        "leg": leg[0].name.lower(),
        "token": leg[1],
        "amount": leg[2],
        "formatted": fmt_amount(leg[1], leg[2]),
        "approval_tx": result.tx_hash if result else None,
        "already_approved": result is None,
        "factory": factory.address,
        **resolved.to_dict(),
    }

    def render(console: Console) -> None:
        resolved.render(console)
        if result is None:
            console.print(f"the factory may already move your {data['leg']} leg ({data['formatted']}): nothing sent")
        else:
            console.print(
                f"approved the factory for your {data['leg']} leg of offer {data['offer_hash']}: {data['formatted']} "
                f"(tx {result.tx_hash})"
            )

    app.emit(data, render)


def _filled_own_offers(factory: Any, mine: list[SignedOffer]) -> list[str]:
    """Which of the caller's own offers in a negotiation the factory already made into a deal, each named
    with its nonce and deal (from the factory's OfferAccepted events)."""
    deals = {offer_hash: deal for deal, offer_hash in factory.accepted_offer_hashes().items()}
    found = [(s, deals.get(hash_hex(s.offer).lower())) for s in mine]
    return [
        f"your offer {hash_hex(s.offer)} (nonce {s.offer.nonce}) in this negotiation was accepted: deal {deal}"
        for s, deal in found
        if deal is not None
    ]


@offer.command("accept")
@click.argument("ref", metavar="LINK|FILE")
@click.option("--fund", is_flag=True, help="Deposit both legs in the same transaction (from approvals to the factory).")
@click.option(
    "--keep-own-offers",
    is_flag=True,
    help="Do not cancel your own earlier offers in this negotiation (they stay acceptable: you are warned).",
)
@click.option(
    "--short-attestation-ok",
    is_flag=True,
    help="Accept an ESCROWED offer although a principal's attestation ends before its final expiry (releases "
    "are blocked after it; refused otherwise).",
)
@shared_options
@click.pass_obj
def accept(app: App, ref: str, fund: bool, keep_own_offers: bool, short_attestation_ok: bool) -> None:
    """Accept an offer: deploys the deal with exactly the signed terms. Approves the factory for your
    leg first if short. Only the invited taker can accept a private offer; the maker never its own.

    Your own offers in this negotiation, on any branch (e.g. your counter that this offer answers, or a
    counter you made to it; found in the home's store) would stay acceptable after this deal, so the
    other side could fill one of them too: once every check passes, their nonces are cancelled in a
    transaction sent just BEFORE the acceptance. The factory refuses to cancel a nonce already used, so if
    the other side fills one of them first, the cancellation fails and nothing is accepted; one already
    made into a deal is refused up front. --keep-own-offers skips all this (accepts anyway) and prints the
    command to cancel them later.

    A gated offer whose buyer's or seller's attestation ends before the final expiry is warned about; an
    ESCROWED one is refused (an off-chain delivery after that could not be paid) unless
    --short-attestation-ok."""
    from nexotc_client.chain.offers import (
        accept_offer,
        cancel_nonces,
        inspect_offer,
        require_invited,
        short_attestation_refusal,
        used_nonces,
    )
    from nexotc_client.cli.render import deal_amounts, render_tx

    signed, data_file = read_offer(ref)
    sender = app.sender()
    require_invited(signed, sender.address)  # before anything is read or sent
    resolved = offer_factory(app, signed)  # checked before anything is sent
    factory = resolved.factory
    mine = [
        s
        for s in negotiation(signed, _known(app, signed))  # on any branch: a counter to this offer too
        if s.offer.maker.lower() == sender.address.lower() and _same_domain(s, signed)
    ]
    candidates = sorted({s.offer.nonce for s in mine})
    done = set(used_nonces(factory, sender.address, candidates))
    own_open = [n for n in candidates if n not in done]
    flags = " ".join(f"--nonce {n}" for n in own_open)
    cancel_command = f"nexotc offer cancel {flags} --account {_account_ref(app, sender.address)}"
    if mine and not keep_own_offers:
        filled = _filled_own_offers(factory, mine)
        if filled:
            raise NexotcError(
                f"not accepted: {filled[0]}; accepting this offer too would make a second deal "
                "(--keep-own-offers accepts it anyway)"
            )
    cancelled = None
    if own_open and not keep_own_offers:
        status = inspect_offer(factory, signed, taker=sender.address)
        if status.problems:
            raise NexotcError(f"cannot accept this offer: {status.problems[0]}")
        refusal = None if short_attestation_ok else short_attestation_refusal(status)
        if refusal is not None:
            raise NexotcError(f"not accepted: {refusal}")
        with step(app, "cancelling your earlier offers in this negotiation"):
            try:
                cancelled = cancel_nonces(factory, own_open, sender)
            except NexotcError as exc:  # the factory refuses to cancel a nonce used (filled) just before
                filled = _filled_own_offers(factory, mine)
                cause = filled[0] if filled else f"the cancellation failed: {exc}"
                raise NexotcError(f"not accepted: {cause}; nothing else was sent") from exc
    try:
        with step(app, "accepting the offer"):
            accepted = accept_offer(factory, signed, sender, fund=fund, short_attestation_ok=short_attestation_ok)
    except NexotcError as exc:
        if cancelled is None:
            raise
        raise NexotcError(
            f"{exc} (your earlier offers in this negotiation were cancelled first: nonce(s) "
            f"{', '.join(map(str, own_open))}, tx {cancelled.tx_hash})"
        ) from exc
    keep(app, signed, data_file)
    phase = accepted.deal.phase().name.lower()
    warnings = list(accepted.status.warnings)
    if own_open and cancelled is None:
        warnings.append(
            f"your earlier offer(s) in this negotiation (nonce {', '.join(map(str, own_open))}) can still be "
            f"accepted by the other side, making a second deal: cancel them with `{cancel_command}`"
        )
    data = {
        **accepted.to_dict(),
        "taker": sender.address,
        "funded": fund,
        "phase": phase,
        "own_offers": [hash_hex(s.offer) for s in mine],
        "cancelled_nonces": own_open if cancelled is not None else [],
        "cancel_tx": cancelled.tx_hash if cancelled is not None else None,
        "agreement_hash": "0x" + signed.offer.agreement_hash.hex(),
        "agreement": signed.offer.agreement_document() or None,
        "warnings": warnings,
        "factory": factory.address,
        **resolved.to_dict(),
    }

    def render(console: Console) -> None:
        resolved.render(console)
        console.print(f"deal {accepted.deal.address} ({phase}) from offer {data['offer_hash']}")
        if signed.offer.agreement:
            console.print(
                f"  agreement 0x{signed.offer.agreement_hash.hex()[:16]}… is part of the offer hash the factory "
                f"recorded (OfferAccepted); the offer file is kept in {store_path(app, signed.offer)}"
            )
        if cancelled is not None:
            console.print(
                f"  cancelled your earlier offer(s) in this negotiation first: nonce(s) "
                f"{', '.join(map(str, own_open))} (tx {cancelled.tx_hash})"
            )
        if accepted.approval is not None:
            console.print(f"  approved the factory for your leg (tx {accepted.approval.tx_hash})")
        amounts = deal_amounts(accepted.deal.terms, accepted.result.events)
        render_tx(console, "accepted" + (" and funded" if fund else ""), accepted.result, amounts)
        for warning in warnings:
            console.print(f"[yellow]warning: {warning}[/]")

    app.emit(data, render)


@offer.command("cancel")
@click.argument("refs", nargs=-1, metavar="[FILE...]")
@click.option("--nonce", "nonces", multiple=True, type=click.IntRange(0, 2**256 - 1), help="A nonce to cancel.")
@shared_options
@click.pass_obj
def cancel(app: App, refs: tuple[str, ...], nonces: tuple[int, ...]) -> None:
    """Withdraw your offers: cancel their nonces (--nonce N, repeatable, or the offers' FILEs). Nonces
    already used or cancelled on chain are reported and skipped; when none is left, nothing is sent
    and it exits 1."""
    from nexotc_client.chain.offers import cancel_nonces, used_nonces
    from nexotc_client.cli.render import render_tx

    sender = app.sender()
    values = list(nonces)
    offers: list[SignedOffer] = []
    for ref in refs:
        signed, _ = read_offer(ref)
        if signed.offer.maker.lower() != sender.address.lower():
            raise NexotcError(f"{ref}: made by {signed.offer.maker}, not by {sender.address}")
        if offers and not _same_domain(signed, offers[0]):
            raise NexotcError(
                f"{ref}: signed for another chain or factory than {refs[0]} (cancel each factory's offers apart)"
            )
        offers.append(signed)
        values.append(signed.offer.nonce)
    if not values:
        raise click.UsageError("give --nonce N or offer FILEs to cancel")
    # the offers' factory (the home's, else theirs, checked): a nonce cancelled on another factory voids nothing
    resolved = offer_factory(app, offers[0]) if offers else None
    factory = resolved.factory if resolved is not None else _factory(app)
    skipped = used_nonces(factory, sender.address, values)
    remaining = sorted(set(values) - set(skipped))
    if not remaining:
        raise NexotcError(
            f"nonce {', '.join(map(str, skipped))} already used or cancelled: nothing left to cancel, nothing sent"
        )
    with step(app, "cancelling"):
        result = cancel_nonces(factory, remaining, sender)
    data = {"maker": sender.address, "nonces": remaining, "already_used": skipped, **result.to_dict()}
    if resolved is not None:
        data.update(resolved.to_dict())

    def render(console: Console) -> None:
        if resolved is not None:
            resolved.render(console)
        if skipped:
            console.print(f"nonce {', '.join(map(str, skipped))} already used or cancelled: skipped")
        render_tx(console, f"cancelled nonce(s) {', '.join(map(str, remaining))}", result)

    app.emit(data, render)


__all__ = ["offer", "offer_document", "read_offer"]
