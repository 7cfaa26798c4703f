"""`nexotc report`: a trade and compliance report over the deals of the recorded factory.

    nexotc report [--desk N] [--since DATE] [--until DATE] [--out REPORT.json] [--csv DEALS.csv]
                  [--plot REPORT.png] [--force] [--json]

DATE is YYYY-MM-DD (a whole UTC day, inclusive) or an ISO 8601 date/time (naive = UTC). The report is read from
the chain as of one block (see nexotc_client/report.py): per deal its creation, desk, phase, legs (deposited,
released, refunded, held), commissions, disputes and compliance attestations; in total the deals per phase, the
volume and fees per asset, and conservation per leg. Exit 1 when a leg's deposits are not accounted for (the
report is still printed and written).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.report import DealReport, LegReport, Report


def _outputs(out: Path | None, csv_path: Path | None, plot_path: Path | None, force: bool) -> None:
    """Refuse, before anything is read, an output that exists (without --force), sits in a missing directory, or
    is named by two options."""
    named = [(opt, p) for opt, p in (("--out", out), ("--csv", csv_path), ("--plot", plot_path)) if p is not None]
    from nexotc_client.report import check_output_path

    seen: dict[Path, str] = {}
    for option, path in named:
        try:
            check_output_path(path)
        except NexotcError as exc:
            raise NexotcError(f"{option} {exc}") from exc
        resolved = path.resolve()
        if resolved in seen:
            raise NexotcError(f"{option} {path}: the same file as {seen[resolved]}")
        seen[resolved] = option
        if path.exists() and not force:
            raise NexotcError(f"{path} exists: pass --force to overwrite it")
        if not path.parent.is_dir():
            raise NexotcError(f"{option} {path}: no directory {path.parent}")


@contextmanager
def _progress(app: App) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while the deals are read (not in --json mode, nor when stderr is no terminal)."""
    if app.json or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("reading deals"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("deals", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.command("report")
@click.option(
    "--desk",
    "desk_id",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Only the deals of desk N (of the desk registry the factory serves).",
)
@click.option(
    "--since",
    default=None,
    metavar="DATE",
    help="Only deals created on or after DATE: YYYY-MM-DD (UTC) or an ISO 8601 date/time.",
)
@click.option(
    "--until",
    default=None,
    metavar="DATE",
    help="Only deals created on or before DATE (YYYY-MM-DD: to the end of that UTC day).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the full report as JSON (raw units as exact integers).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write one row per deal as CSV (on-chain amounts in human units).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PNG",
    help="Draw released volume per asset over time and fees per recipient role (PNG).",
)
@click.option("--force", is_flag=True, default=False, help="Overwrite --out, --csv or --plot files that exist.")
@shared_options
@click.pass_obj
def report(
    app: App,
    desk_id: int | None,
    since: str | None,
    until: str | None,
    out: Path | None,
    csv_path: Path | None,
    plot_path: Path | None,
    force: bool,
) -> None:
    """Trade and compliance report over the deals of the recorded factory (optionally one desk's, created within
    --since/--until): per deal its state, legs, commissions, disputes and attestations; in total the deals per
    phase, volume and fees per asset, and conservation per leg (deposited = released + resolver + refunded +
    held). Read from the chain as of one block."""
    from nexotc_client.report import build_report, iso, parse_date, write_csv, write_json, write_plot

    since_ts = parse_date(since, "--since") if since is not None else None
    until_ts = parse_date(until, "--until", end=True) if until is not None else None
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise NexotcError(
            f"--since {since} ({iso(since_ts)}) is after --until {until} ({iso(until_ts)}): no deal can match"
        )
    _outputs(out, csv_path, plot_path, force)
    factory = app.factory()
    from nexotc_client.cli.offer import accepted_offer

    known: dict[str, str] | None = None

    def agreement_of(deal: Any) -> str:  # the offer's copy in the nexotc home, when the deal came from one
        nonlocal known
        if known is None:  # one scan of the factory's OfferAccepted events for the whole report
            known = factory.accepted_offer_hashes()
        signed = accepted_offer(app, deal, known=known)[1]  # a changed home copy is not used
        return signed.offer.agreement if signed is not None else ""

    with _progress(app) as progress:
        result = build_report(
            factory, desk_id=desk_id, since=since_ts, until=until_ts, progress=progress, agreement_of=agreement_of
        )
    files: dict[str, str] = {}
    if out is not None:
        files["out"] = str(write_json(result, out))
    if csv_path is not None:
        files["csv"] = str(write_csv(result, csv_path))
    if plot_path is not None:
        files["plot"] = str(write_plot(result, plot_path))
    data = {**result.to_dict(), "files": files}
    app.emit(data, lambda c: _render(c, result, data["totals"], files))
    failures = data["totals"]["conservation"]["failures"]
    if failures:
        first = failures[0]
        raise NexotcError(
            f"conservation does not hold for {len(failures)} leg(s) or check(s): deal #{first['index']} "
            f"{first['deal']}: {first['problem']}"
        )


# ------------------------------------------------------------------ rendering
def _num(units: int, decimals: int | None) -> str:
    """An amount for a table whose asset column names the unit: "130,000.000003", or raw units."""
    from nexotc_client.spec import format_units

    return f"{units:,}" if decimals is None else format_units(units, decimals)


def _tranches(d: DealReport) -> str:
    return ", ".join(f"{n} {status}" for status, n in d.tranches.items() if n) or "-"


def _disputes(d: DealReport) -> str:
    if not d.disputes_opened:
        return "-"
    parts = [f"{d.disputes_opened} opened"]
    if d.disputes_resolved:
        parts.append(f"{d.disputes_resolved} resolved")
    if d.disputes_settled_by_default:
        parts.append(f"{d.disputes_settled_by_default} by default")
    if d.disputes_open:
        parts.append(f"{d.disputes_open} open")
    return ", ".join(parts)


def _attestation(d: DealReport, principal: dict[str, Any]) -> str:
    from nexotc_client.report import iso

    if principal["attested_until"] is None:
        return "[yellow]none[/]"
    if principal["attested_policy"] != d.policy_id:
        return f"[yellow]policy #{principal['attested_policy']}, not the deal's[/]"
    until = iso(principal["attested_until"])
    return f"until {until}" if principal["compliant_now"] else f"[yellow]until {until} (expired)[/]"


def _asset(leg: LegReport) -> str:
    from nexotc_client.cli.render import safe_label

    if not leg.on_chain:
        return f"{safe_label(leg.symbol, 'off-chain asset')} (off chain)" if leg.symbol else "off chain (units)"
    return safe_label(leg.symbol, (leg.token or "")[:10]) if leg.symbol else leg.token or ""


def _render(c: Console, r: Report, totals: dict[str, Any], files: dict[str, str]) -> None:
    from rich.table import Table

    from nexotc_client.cli.render import safe_label
    from nexotc_client.report import iso

    c.print(
        f"[bold]trade report[/] of factory {r.factory} (chain {r.chain_id}) as of block {r.block}, {iso(r.timestamp)}",
        soft_wrap=True,
    )
    scope = []
    if r.desk_id is not None:
        scope.append(f"desk #{r.desk_id}")
    if r.since is not None or r.until is not None:
        scope.append(f"created {iso(r.since) or '…'} to {iso(r.until) or '…'}")
    selected = f" ({', '.join(scope)})" if scope else ""
    c.print(f"{totals['deals']} of the factory's {r.factory_deals} deal(s){selected}")
    if not r.deals:
        c.print("no deals match")
        for name, path in files.items():
            c.print(f"{name}: {path}", soft_wrap=True)
        return

    deals = Table(title="deals")
    for column in ("#", "deal", "desk", "created (UTC)", "mode", "phase", "tranches", "disputes", "policy", "ok"):
        # a whole address when the console has room for it (160 columns when stdout is no terminal)
        deals.add_column(column, overflow="fold", no_wrap=column == "deal" and c.width >= 130)
    for d in r.deals:
        deals.add_row(
            str(d.index),
            d.deal,
            f"#{d.desk_id}" if d.desk_id else "-",
            (iso(d.created_at) or "")[:16].replace("T", " "),
            d.mode,
            d.phase,
            _tranches(d),
            _disputes(d),
            f"#{d.policy_id}" if d.gated else "-",
            "✓" if d.conserved else "[red]✗[/]",
        )
    c.print(deals)

    legs = Table(title="legs (released: to the receiver's side, commissions included; resolver: the resolver's fee)")
    for column in (
        "#",
        "leg",
        "asset",
        "amount",
        "deposited",
        "released",
        "commissions",
        "resolver",
        "refunded",
        "held",
    ):
        legs.add_column(column, justify="left" if column in ("#", "leg", "asset") else "right", overflow="fold")
    for d in r.deals:
        for leg in d.legs:
            amount = _num(leg.amount, leg.decimals)
            if not leg.on_chain:
                delivered = f"{_num(leg.released, leg.decimals)} delivered"
                legs.add_row(str(d.index), leg.leg, _asset(leg), amount, "-", delivered, *["-"] * 4)
                continue
            fees = leg.desk_fee + leg.introducers_total
            legs.add_row(
                str(d.index),
                leg.leg,
                _asset(leg),
                amount,
                *(_num(v, leg.decimals) for v in (leg.deposited, leg.released)),
                _num(fees, leg.decimals) if fees else "-",
                _num(leg.to_resolver, leg.decimals) if leg.to_resolver else "-",
                *(_num(v, leg.decimals) for v in (leg.refunded, leg.held)),
            )
    c.print(legs)

    gated = [d for d in r.deals if d.gated]
    if gated:
        gate = Table(title="compliance: each principal's attestation in the deal's scope")
        for column in ("#", "policy", "scope", "buyer", "seller"):
            gate.add_column(column, overflow="fold")
        for d in gated:
            info = d.compliance or {}
            by_role = {p["role"]: p for p in info.get("principals", [])}
            cells = [_attestation(d, by_role[role]) if role in by_role else "-" for role in ("buyer", "seller")]
            scope_name = info.get("scope_name") or "[red]no kyc registry[/]"
            gate.add_row(str(d.index), f"#{d.policy_id}", scope_name, *cells)
        c.print(gate)

    volume = Table(title="volume per asset")
    for column in ("asset", "deals", "deposited", "released", "to receivers", "refunded", "held", "conserved"):
        volume.add_column(column, justify="left" if column == "asset" else "right", overflow="fold")
    fees = Table(title="fees per recipient role")
    for column in ("asset", "desk", "introducers", "resolver"):
        fees.add_column(column, justify="left" if column == "asset" else "right", overflow="fold")
    for a in totals["assets"]:
        dec, name = a["decimals"], safe_label(a["symbol"], a["token"][:10]) if a["symbol"] else a["token"]
        volume.add_row(
            name,
            str(a["deals"]),
            *(_num(a[k], dec) for k in ("deposited", "released", "to_receiver", "refunded", "held")),
            "✓" if a["conserved"] else "[red]✗[/]",
        )
        fees.add_row(name, *(_num(a["fees"][role], dec) for role in ("desk", "introducers", "resolver")))
    if totals["assets"]:
        c.print(volume)
        c.print(fees)

    phases = ", ".join(f"{n} {phase}" for phase, n in totals["by_phase"].items() if n)
    c.print(f"phases: {phases}")
    c.print(f"compliance: {totals['gated']} gated, {totals['ungated']} ungated; desk deals: {totals['desk_deals']}")
    disputes = totals["disputes"]
    c.print(
        f"disputes: {disputes['opened']} opened, {disputes['resolved']} resolved by the resolver, "
        f"{disputes['settled_by_default']} settled by default, {disputes['open']} open"
    )
    failures = totals["conservation"]["failures"]
    if not failures:
        c.print(
            "[green]conservation holds[/] for every on-chain leg: deposited = released + resolver + refunded + held"
        )
    for f in failures:
        c.print(f"[red]conservation: deal #{f['index']} {f['deal']}: {f['problem']}[/]", soft_wrap=True)
    for name, path in files.items():
        c.print(f"{name}: {path}", soft_wrap=True)


__all__ = ["report"]
