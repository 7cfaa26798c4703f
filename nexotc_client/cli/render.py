"""Rendering for humans (rich) and for machines (plain dicts for --json)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nexotc_client.chain.encoding import bytes32_text
from nexotc_client.spec import format_units
from nexotc_client.terms import Mode, Role, Terms, TrancheStatus

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.chain.deal import DealEvent, DealStatus, TxResult


@dataclass(frozen=True)
class LegMeta:
    """How to print a leg: its symbol and decimals (None: off chain, raw units)."""

    label: str
    decimals: int | None

    def fmt(self, units: int) -> str:
        if self.decimals is None:
            return f"{units:,} units"
        return f"{format_units(units, self.decimals)} {self.label}"


def leg_meta(token: str, on_chain: bool) -> LegMeta:
    """Symbol and decimals read from the token (best effort: falls back to the address)."""
    if not on_chain:
        return LegMeta("off chain", None)
    from nexotc_client.chain.contracts import erc20

    try:
        contract = erc20(token)
        return LegMeta(str(contract.symbol()), int(contract.decimals()))
    except Exception:  # a token without symbol()/decimals(): show raw units
        return LegMeta(token[:10], None)


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


def role_names(roles: Role) -> list[str]:
    return [r.name.lower() for r in Role if r.name and roles & r]


def fmt_time(ts: int, now: int | None = None) -> str:
    if not ts:
        return "-"
    text = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if now is None:
        return text
    delta = ts - now
    return f"{text} ({'in ' + fmt_duration(delta) if delta > 0 else fmt_duration(-delta) + ' ago'})"


def fmt_when(ts: int, now: int) -> str:
    """Compact time for tables: "11-24 08:37 (in 23h59m)"."""
    if not ts:
        return "-"
    text = datetime.fromtimestamp(ts, tz=UTC).strftime("%m-%d %H:%M")
    delta = ts - now
    return f"{text} ({'in ' + fmt_duration(delta) if delta > 0 else fmt_duration(-delta) + ' ago'})"


def fmt_duration(seconds: int) -> str:
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


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


def event_line(event: DealEvent) -> str:
    args = ", ".join(f"{k}={fmt_arg(k, v)}" for k, v in event.args.items())
    return f"{event.name}({args})"


def render_tx(console: Console, title: str, result: TxResult) -> None:
    console.print(f"[bold]{title}[/]  tx {result.tx_hash}  block {result.block}  gas {result.gas_used:,}")
    for event in result.events:
        console.print(f"  {event_line(event)}")


def render_events(console: Console, events: list[DealEvent]) -> None:
    from rich.table import Table

    table = Table(title="events")
    for column in ("block", "time", "event", "tx"):
        table.add_column(column)
    for event in events:
        table.add_row(str(event.block), fmt_time(event.timestamp), event_line(event), _short(event.tx_hash))
    console.print(table)


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
            f"{meta.label} {leg.token}" if leg.on_chain else "off chain",
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
            base.fmt(t.base_amount),
            quote.fmt(t.quote_amount),
            fmt_when(t.unlock_time, now),
            fmt_when(t.deadline, now),
            f"[{style}]{t.status.name.lower()}[/]",
            f"{t.approvals}/{terms.approval_threshold}",
            f"{t.signatures}/{terms.release_threshold}",
            marks or "-",
        )
    console.print(tranches)
    if terms.mode == Mode.ESCROWED:
        console.print("ESCROWED: a marker marks a tranche delivered; approvers accept; release signers release.")
    if status.claimable:
        claims = Table(title="claimable (pull balances)")
        for column in ("payee", "token", "amount"):
            claims.add_column(column)
        for payee, by_token in status.claimable.items():
            for token, amount in by_token.items():
                meta = base if token == status.base.token else quote
                claims.add_row(payee, token, meta.fmt(amount))
        console.print(claims)


__all__ = [
    "LegMeta",
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
]
