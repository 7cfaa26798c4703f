"""Rendering for humans (rich) and for machines (plain dicts for --json)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nexotc_client.chain.encoding import bytes32_text
from nexotc_client.spec import fmt_duration, fmt_time, format_units
from nexotc_client.terms import LegId, Mode, Terms, TrancheStatus, role_names

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.chain.deal import DealEvent, DealStatus, TxResult


@dataclass(frozen=True)
class LegMeta:
    """How to print a leg: its symbol and decimals (None: raw units). An off-chain leg's label and
    decimals are not on chain: known only from its terms file, else shown as raw units."""

    label: str
    decimals: int | None
    off_chain: bool = False

    def fmt(self, units: int, short: bool = False) -> str:
        """`short`: without the off-chain note (a table that explains it once)."""
        if self.decimals is None:
            return f"{units:,} units (off-chain asset)" if self.off_chain and not short else f"{units:,} units"
        text = f"{format_units(units, self.decimals)} {self.label}"
        return f"{text} (off chain, {self.decimals} decimals)" if self.off_chain and not short else text


def safe_label(text: str, fallback: str) -> str:
    """`text` as a label printed in tables, or `fallback` when it could mislead or break the output: a token's
    symbol and an off-chain asset's name are chosen by others (no brackets, which rich reads as markup, no
    control characters, at most 32 characters)."""
    ok = 0 < len(text) <= 32 and not any(c in "[]" or ord(c) < 32 or ord(c) == 127 for c in text)
    return text if ok else fallback


def leg_meta(token: str, on_chain: bool, off_chain: tuple[str, int] | None = None) -> LegMeta:
    """Symbol and decimals read from the token (best effort: falls back to the address); for an
    off-chain leg, `off_chain` = (label, decimals) when known from the terms file or a signed agreement."""
    if not on_chain:
        if off_chain is not None:
            return LegMeta(safe_label(off_chain[0], "off-chain asset"), off_chain[1], off_chain=True)
        return LegMeta("off chain", None, off_chain=True)
    from nexotc_client.chain.contracts import erc20

    try:
        contract = erc20(token)
        return LegMeta(safe_label(str(contract.symbol()), token[:10]), int(contract.decimals()))
    except Exception:  # a token without symbol()/decimals(): show raw units
        return LegMeta(token[:10], None)


@dataclass(frozen=True)
class Amounts:
    """What the amounts in a deal's events are in: the legs, the fee leg, the on-chain tokens."""

    base: LegMeta
    quote: LegMeta
    fee_leg: LegId
    tokens: dict[str, LegMeta]
    """lower-case token address => its meta (for Claimed / PaymentDeferred)."""
    value: LegMeta | None = None
    """The token whose ERC-20 `Transfer` / `Approval` events these amounts print (their `value`)."""

    @classmethod
    def of(cls, terms: Terms, base: LegMeta, quote: LegMeta) -> Amounts:
        tokens = {leg.token.lower(): meta for leg, meta in ((terms.base, base), (terms.quote, quote)) if leg.on_chain}
        return cls(base, quote, terms.fee_leg, tokens)

    def meta(self, event: str, name: str, args: dict[str, Any]) -> LegMeta | None:
        if event in ("Transfer", "Approval"):  # an ERC-20's own event: only its value is an amount (of itself)
            return self.value if name == "value" else None
        if name == "base_amount" or (event == "Resolved" and name == "base"):
            return self.base
        if name == "quote_amount" or (event == "Resolved" and name == "quote"):
            return self.quote
        if name == "fees":
            return self.base if self.fee_leg == LegId.BASE else self.quote
        if name == "amount" and event == "Funded":
            return self.base if int(args.get("leg", 0)) == int(LegId.BASE) else self.quote
        if name == "amount" and isinstance(args.get("token"), str):
            return self.tokens.get(str(args["token"]).lower())
        return None


def deal_amounts(terms: Terms, events: Iterable[Any] = ()) -> Amounts:
    """How to print the amounts of a deal's events (token symbols and decimals, read on chain), including the
    other tokens `events` name (a stray token returned from a deposit address; the zero address is ETH)."""
    amounts = Amounts.of(
        terms, leg_meta(terms.base.token, terms.base.on_chain), leg_meta(terms.quote.token, terms.quote.on_chain)
    )
    metas = _token_metas(events, set(amounts.tokens))
    return replace(amounts, tokens={**amounts.tokens, **metas}) if metas else amounts


def token_amounts(events: Iterable[Any]) -> Amounts:
    """How to print the token amounts `events` name when no deal's terms are at hand (a deposit returned for an
    address that is not a deal)."""
    raw = LegMeta("units", None)
    return Amounts(raw, raw, LegId.QUOTE, _token_metas(events, set()))


def emitter_amounts(events: Iterable[DealEvent], deal_terms: Callable[[str], Terms | None]) -> dict[str, Amounts]:
    """How to print the amounts of a transaction's events by who emitted them (lower-case address => Amounts), when
    they come from several contracts (a multisig execution): a deal's events in its legs' tokens (`deal_terms`
    gives a deal's terms, None for an address that is no deal), a token's `Transfer` / `Approval` in that token,
    and other events naming a `token` (the factory's deposit events) in it. An emitter that none of these covers
    is left out: its amounts stay raw."""
    events = list(events)
    out: dict[str, Amounts] = {}
    for emitter in dict.fromkeys(e.address for e in events):
        own = [e for e in events if e.address == emitter]
        terms = deal_terms(emitter)
        if terms is not None:
            out[emitter.lower()] = deal_amounts(terms, own)
            continue
        named = _token_metas(own, set())
        value = None
        if any(e.name in ("Transfer", "Approval") for e in own):
            meta = leg_meta(emitter, True)
            value = meta if meta.decimals is not None else None
        if value is not None or named:
            raw = LegMeta("units", None)
            out[emitter.lower()] = Amounts(raw, raw, LegId.QUOTE, named, value)
    return out


def token_meta(token: str) -> LegMeta:
    """A token's symbol and decimals (the zero address: ether)."""
    return LegMeta("ETH", 18) if int(token, 16) == 0 else leg_meta(token, True)


def _token_metas(events: Iterable[Any], known: set[str]) -> dict[str, LegMeta]:
    named = {str(e.args["token"]) for e in events if isinstance(e.args.get("token"), str)}
    return {t.lower(): token_meta(t) for t in named if t.lower() not in known}


def terms_dict(terms: Terms) -> dict[str, Any]:
    """Terms as JSON-friendly data (names for enums and roles)."""
    return {
        "mode": terms.mode.name.lower(),
        "base": {"token": terms.base.token, "amount": terms.base.amount, "on_chain": terms.base.on_chain},
        "quote": {"token": terms.quote.token, "amount": terms.quote.amount, "on_chain": terms.quote.on_chain},
        "parties": [{"wallet": p.wallet, "roles": role_names(p.roles), "bps": p.bps} for p in terms.parties],
        "approval_threshold": terms.approval_threshold,
        "release_threshold": terms.release_threshold,
        "desk_fee_bps": terms.desk_fee_bps,
        "fee_leg": terms.fee_leg.name.lower(),
        "resolver_fee_bps": terms.resolver_fee_bps,
        "funding_deadline": terms.funding_deadline,
        "approval_window": terms.approval_window,
        "dispute_timeout": terms.dispute_timeout,
        "dispute_default": terms.dispute_default.name.lower(),
        "final_expiry": terms.final_expiry,
        "policy_id": terms.policy_id,
        "tranches": [
            {
                "base_amount": t.base_amount,
                "quote_amount": t.quote_amount,
                "unlock_time": t.unlock_time,
                "deadline": t.deadline,
            }
            for t in terms.tranches
        ],
        "terms_hash": "0x" + terms.terms_hash().hex(),
    }


def fmt_when(ts: int, now: int) -> str:
    """Compact time for tables: "2025-11-24 08:37 (in 23h59m)"."""
    if not ts:
        return "-"
    text = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")
    delta = ts - now
    return f"{text} ({'in ' + fmt_duration(delta) if delta > 0 else fmt_duration(-delta) + ' ago'})"


def fmt_arg(name: str, value: Any) -> str:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66 and name in ("reason", "evidence"):
        text = bytes32_text(bytes.fromhex(value[2:]))
        return repr(text) if text is not None else _short(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={fmt_arg(k, v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and value.startswith("0x"):
        return _short(value)
    return str(value)


def _short(value: str) -> str:
    return value if len(value) <= 14 else f"{value[:8]}…{value[-4:]}"


def display_args(event: DealEvent) -> dict[str, Any]:
    """The event's arguments as nexotc shows them, in event lines and in --json alike: the `Resolved` of a default
    outcome (`by_default`) names its `caller`, not a `resolver`: anyone applies it after the dispute timeout, and
    the contract logs whoever sent it."""
    if event.name == "Resolved" and bool(event.args.get("by_default")):
        return {("caller" if k == "resolver" else k): v for k, v in event.args.items()}
    return dict(event.args)


def event_dict(event: DealEvent) -> dict[str, Any]:
    """An event for --json: as `DealEvent.to_dict`, with the arguments named as `display_args` names them."""
    return {**event.to_dict(), "args": display_args(event)}


def tx_dict(result: TxResult) -> dict[str, Any]:
    """A transaction for --json: as `TxResult.to_dict`, its events as `event_dict` shows them."""
    return {**result.to_dict(), "events": [event_dict(e) for e in result.events]}


def event_line(event: DealEvent, amounts: Amounts | None = None) -> str:
    """`Name(arg=value, ...)`; with `amounts`, token amounts in human units (symbol, decimals)."""
    parts = []
    for name, v in display_args(event).items():
        meta = amounts.meta(event.name, name, event.args) if amounts is not None else None
        if meta is not None and meta.off_chain and (v == 0 or (isinstance(v, dict) and not any(v.values()))):
            parts.append(f"{name}=(off chain)")  # the contract moves nothing of an off-chain leg
        elif meta is not None and isinstance(v, int) and not isinstance(v, bool):
            parts.append(f"{name}={meta.fmt(v)}")
        elif meta is not None and isinstance(v, dict):
            inner = ", ".join(
                f"{ik}={meta.fmt(iv) if isinstance(iv, int) and not isinstance(iv, bool) else fmt_arg(ik, iv)}"
                for ik, iv in v.items()
            )
            parts.append(f"{name}={{{inner}}}")
        else:
            parts.append(f"{name}={fmt_arg(name, v)}")
    return f"{event.name}({', '.join(parts)})"


def render_tx(
    console: Console,
    title: str,
    result: TxResult,
    amounts: Amounts | None = None,
    by_emitter: dict[str, Amounts] | None = None,
) -> None:
    """The transaction's line and one line per event; amounts with symbols from `amounts`, or per emitting
    contract from `by_emitter` (`emitter_amounts`: a transaction whose events come from several contracts)."""
    console.print(f"[bold]{title}[/]  tx {result.tx_hash}  block {result.block}  gas {result.gas_used:,}")
    for event in result.events:
        own = by_emitter.get(event.address.lower(), amounts) if by_emitter is not None else amounts
        console.print(f"  {event_line(event, own)}")


def render_events(console: Console, events: list[DealEvent], amounts: Amounts | None = None) -> None:
    from rich.table import Table

    table = Table(title="events")
    for column in ("block", "time", "event", "tx"):
        table.add_column(column)
    for event in events:
        table.add_row(str(event.block), fmt_time(event.timestamp), event_line(event, amounts), _short(event.tx_hash))
    console.print(table)


_OPEN = (TrancheStatus.PENDING, TrancheStatus.MARKED, TrancheStatus.DISPUTED)

_STATUS_STYLE = {
    TrancheStatus.PENDING: "yellow",
    TrancheStatus.MARKED: "cyan",
    TrancheStatus.DISPUTED: "red",
    TrancheStatus.RELEASED: "green",
    TrancheStatus.REFUNDED: "magenta",
    TrancheStatus.RESOLVED: "blue",
}


def render_deal(
    console: Console,
    address: str,
    factory: str,
    terms: Terms,
    status: DealStatus,
    base: LegMeta,
    quote: LegMeta,
) -> None:
    from rich.table import Table

    now = status.timestamp
    head = Table(show_header=False, box=None, pad_edge=False)
    for key, value in (
        ("deal", address),
        ("factory", factory),
        ("mode", terms.mode.name),
        ("phase", status.phase.name),
        ("terms hash", "0x" + terms.terms_hash().hex()),
        ("read at", f"block {status.block}, {fmt_time(now)}"),
        ("funding deadline", fmt_time(terms.funding_deadline, now)),
        ("final expiry", fmt_time(terms.final_expiry, now)),
        ("approval window", fmt_duration(terms.approval_window)),
        (
            "dispute timeout",
            f"{fmt_duration(terms.dispute_timeout)}, then {terms.dispute_default.name.lower()}",
        ),
        (
            "fees",
            f"desk {terms.desk_fee_bps} bps on the {terms.fee_leg.name.lower()} leg, "
            f"resolver cap {terms.resolver_fee_bps} bps",
        ),
        ("compliance", f"policy {terms.policy_id}" if terms.policy_id else "none"),
    ):
        head.add_row(f"[bold]{key}[/]", str(value))
    console.print(head)

    legs = Table(title="legs")
    for column in ("leg", "asset", "amount", "funded", "held"):
        legs.add_column(column)
    for name, leg, meta in (("base", status.base, base), ("quote", status.quote, quote)):
        legs.add_row(
            name,
            f"{meta.label} {leg.token}" if leg.on_chain else meta.label if meta.decimals is not None else "off chain",
            meta.fmt(leg.amount),
            ("yes" if leg.funded else "no") if leg.on_chain else "-",
            meta.fmt(leg.held) if leg.on_chain else "-",
        )
    console.print(legs)

    parties = Table(title="parties")
    for column in ("wallet", "roles", "bps"):
        parties.add_column(column)
    for p in terms.parties:
        parties.add_row(p.wallet, ", ".join(role_names(p.roles)), str(p.bps or ""))
    console.print(parties)

    tranches = Table(title="tranches")
    for column in (
        "#",
        "base",
        "quote",
        "unlock",
        "deadline",
        "status",
        "approvals",
        "signatures",
        "marked/disputed",
    ):
        tranches.add_column(column)
    for t in status.tranches:
        style = _STATUS_STYLE.get(t.status, "")
        marks = ", ".join(
            x
            for x in (
                f"marked {fmt_when(t.marked_at, now)}" if t.marked_at else "",
                f"disputed {fmt_when(t.disputed_at, now)}" if t.disputed_at else "",
            )
            if x
        )
        tranches.add_row(
            str(t.index),
            base.fmt(t.base_amount, short=True),
            quote.fmt(t.quote_amount, short=True),
            fmt_when(t.unlock_time, now),
            fmt_when(t.deadline, now),
            f"[{style}]{t.status.name.lower()}[/]",
            f"{t.approvals}/{terms.approval_threshold}" if t.status in _OPEN else "-",
            # a payout clears the signature record (the Signed events keep it)
            f"{t.signatures}/{terms.release_threshold}" if t.status in _OPEN else t.status.name.lower(),
            marks or "-",
        )
    console.print(tranches)
    for name, meta in (("base", base), ("quote", quote)):
        if meta.off_chain and meta.decimals is None:
            console.print(
                f"the {name} leg is off chain: its amounts are units of the off-chain asset (its name and decimals "
                "are not on chain: `--terms FILE` shows them)"
            )
    if terms.mode == Mode.ESCROWED:
        console.print("ESCROWED: a marker marks a tranche delivered; approvers accept; release signers release.")
    if status.claimable:
        claims = Table(title="claimable (pull balances)")
        for column in ("payee", "token", "amount"):
            claims.add_column(column)
        for payee, by_token in status.claimable.items():
            for token, amount in by_token.items():
                meta = base if token == status.base.token else quote
                claims.add_row(payee, f"{meta.label} {_short(token)}", meta.fmt(amount))
        console.print(claims)


__all__ = [
    "Amounts",
    "LegMeta",
    "deal_amounts",
    "display_args",
    "emitter_amounts",
    "event_dict",
    "event_line",
    "fmt_duration",
    "fmt_time",
    "fmt_when",
    "leg_meta",
    "render_deal",
    "render_events",
    "render_tx",
    "role_names",
    "terms_dict",
    "token_amounts",
    "token_meta",
    "tx_dict",
]
