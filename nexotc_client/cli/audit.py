"""`nexotc audit ...`: the post-trade audit trail of a deal.

    nexotc audit export DEAL [--disclosure FILE]... [--offer FILE|LINK] --out BUNDLE.json [--force]
    nexotc audit verify BUNDLE.json [--factory ADDR] [--kyc-registry ADDR]
                                             exit 1 and one line per mismatch when the chain disagrees

A disclosure file comes from the party itself (`nexotc kyc disclose PROOF --field jurisdiction`): the
auditor sees the opened fields and nothing else of the credential. A deal made from a signed offer takes
that offer into the bundle (--offer, or its copy in the nexotc home): its agreement document (the off-chain
leg's asset and delivery, settlement instructions) is checked against the offer hash the factory recorded.

`verify` needs only the bundle and the network (`--rpc`/`--network`), no deployment records: the deal's
factory and kyc registry are read from the chain (see nexotc_client/audit.py). `--factory` and
`--kyc-registry` pin the contracts the auditor trusts: a deal of another factory, or gated by another
registry, is a mismatch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step

if TYPE_CHECKING:
    from nexotc_client.audit import Verification
    from nexotc_client.chain.deal import Deal
    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.kyc import KYCRegistry


def _home_factory(app: App) -> Factory | None:
    """The factory recorded in the home for this network, if any (it lends its deployment block)."""
    try:
        return app.factory()
    except NexotcError:
        return None


def _home_registry(app: App) -> KYCRegistry | None:
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords, get_kyc_registry

    try:
        return get_kyc_registry(KycRecords(app.home / KYC_FILE))
    except NexotcError:
        return None


def _deal(app: App, ref: str) -> Deal:
    """DEAL by address (its factory read from the chain, checked) or by index in the home's factory."""
    from nexotc_client.audit import resolve_deal

    app.connect()
    if not is_valid_address(ref):
        return app.deal(ref)
    deal = resolve_deal(ref)
    known = _home_factory(app)
    if known is not None and known.address == deal.factory.address:
        deal.factory.start_block = known.start_block
    return deal


def _gating(report: Verification) -> str:
    """Whether the deal is gated, as the chain says: a deal with policy 0 is not, whatever registry its code
    could ask."""
    if not report.policy_id:
        return "not gated (no compliance policy)"
    if report.kyc_registry is None:
        return f"carrying policy #{report.policy_id} but no kyc registry (it cannot be funded)"
    return f"gated by kyc registry {report.kyc_registry} (policy #{report.policy_id})"


def _utc(ts: int) -> str:
    """A unix time for people, in UTC (2026-11-24 22:10:44Z); --json keeps the integer. One no calendar shows
    (past year 9999) stays a unix time."""
    from nexotc_client.cli.render import fmt_time

    try:
        return fmt_time(int(ts))
    except (OverflowError, ValueError, OSError):
        return f"unix time {ts}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.group()
def audit() -> None:
    """Post-trade audit trail: export a deal's bundle, verify a bundle against the chain."""


@audit.command("export")
@click.argument("deal_ref")
@click.option(
    "--disclosure",
    "disclosures",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A principal's selective disclosure (repeatable).",
)
@click.option(
    "--offer",
    "offer_ref",
    default=None,
    metavar="FILE|LINK",
    help="The signed offer the deal was made from, with its agreement document (default: its copy in the "
    "nexotc home, if any); refused unless it is that offer.",
)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True)
@click.option("--force", is_flag=True, default=False, help="Overwrite --out if it exists.")
@shared_options
@click.pass_obj
def export(app: App, deal_ref: str, disclosures: tuple[str, ...], offer_ref: str | None, out: str, force: bool) -> None:
    """Write the audit bundle of DEAL (address, or #N of the recorded factory): events, attestations,
    disclosures and the signed offer that made it (with its agreement), as of the chain head."""
    from rich.markup import escape

    from nexotc_client.audit import disclosed_fields, export_bundle, registry_address, save_bundle
    from nexotc_client.cli.offer import accepted_offer
    from nexotc_client.issuer import Disclosure

    if Path(out).exists() and not force:
        raise NexotcError(f"{out} exists: pass --force to overwrite it")
    loaded = [Disclosure.load(p) for p in disclosures]
    deal = _deal(app, deal_ref)
    offer_hash, signed, stale = accepted_offer(app, deal, offer_ref)
    known = _home_registry(app)
    hint = known if known is not None and known.address == registry_address(deal) else None
    with step(app, "reading the deal's history"):
        bundle = export_bundle(deal, hint, loaded, signed)
    save_bundle(bundle, out, force=force)
    seen = disclosed_fields(bundle)
    data = {
        "bundle": out,
        "deal": deal.address,
        "factory": bundle["factory"],
        "kyc_registry": bundle["kyc_registry"],
        "snapshot_block": bundle["exported_at_block"],
        "events": len(bundle["events"]),
        "attested": [r for r, a in bundle["attestations"].items() if a],
        "disclosed": seen,
        "offer_hash": offer_hash,
        "offer_included": signed is not None,
        "warnings": [stale] if stale else [],
        "agreement": (signed.offer.agreement_document() or None) if signed is not None else None,
    }

    def render(c: Any) -> None:
        c.print(
            f"audit bundle of {deal.address} written to {out}: {_plural(len(bundle['events']), 'event')} "
            f"as of block {bundle['exported_at_block']}",
            soft_wrap=True,
        )
        if signed is not None:
            kind = "with its agreement document" if signed.offer.agreement else "(no agreement document)"
            c.print(f"  the signed offer {offer_hash} that made the deal, {kind}", soft_wrap=True)
        elif offer_hash is not None:
            c.print(
                f"  [yellow]the deal was made from offer {offer_hash}, not in this nexotc home: --offer FILE|LINK "
                "adds it and its agreement[/]",
                soft_wrap=True,
            )
        if stale:
            c.print(f"  [yellow]warning: {escape(stale)}[/]", soft_wrap=True)
        c.print(f"  factory {bundle['factory']}, kyc registry {bundle['kyc_registry'] or 'none'}", soft_wrap=True)
        for role, att in bundle["attestations"].items():
            attested = f"attested policy #{att['policy_id']} until {_utc(att['expiry'])}" if att else "none"
            c.print(f"  {role}: {attested}")
        for role, fields in seen.items():
            c.print(f"  {role} discloses " + ", ".join(f"{name}: {value}" for name, value in fields.items()))

    app.emit(data, render)


@audit.command("verify")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--factory", "factory_ref", default=None, help="The factory the deal must belong to (pin).")
@click.option("--kyc-registry", "registry_ref", default=None, help="The registry the deal must gate on (pin).")
@shared_options
@click.pass_obj
def verify(app: App, bundle_path: str, factory_ref: str | None, registry_ref: str | None) -> None:
    """Re-check a bundle against the chain and the commitments; name each mismatch (exit 1 if any).
    Needs only the network: the deal's factory and kyc registry are read from the chain."""
    from rich.markup import escape

    from nexotc_client.audit import check_bundle, disclosed_fields, load_bundle
    from nexotc_client.chain.factory import Factory
    from nexotc_client.chain.kyc import KYCRegistry

    bundle = load_bundle(bundle_path)
    app.connect()
    factory = Factory.at(factory_ref) if factory_ref else None
    registry = KYCRegistry.at(registry_ref) if registry_ref else None
    with step(app, "checking the bundle against the chain"):
        report = check_bundle(bundle, factory, registry)
    problems = report.problems
    data = {"bundle": bundle_path, **report.to_dict(), "disclosed": disclosed_fields(bundle)}

    def render(c: Any) -> None:
        if report.snapshot_block is None:
            when = f"at chain head {report.head_block}"
        else:
            later = _plural(report.later_events, "later event")
            when = f"as of block {report.snapshot_block} (chain head {report.head_block}, {later} not in the bundle)"
        if report.factory is not None:
            c.print(f"deal {report.deal} of factory {report.factory}, {_gating(report)}", soft_wrap=True)
        if not problems:
            what = "events, attestations, disclosures" + (" and the signed offer" if report.offer == "checked" else "")
            c.print(f"bundle {bundle_path}: {what} match the chain {when}", soft_wrap=True)
        else:
            c.print(f"bundle {bundle_path}: checked {when}", soft_wrap=True)
        if report.offer == "absent":
            c.print(
                f"note: the deal was made from offer {report.offer_hash}, which the bundle does not carry: its "
                "agreement (the off-chain leg's asset and delivery) is not in the bundle",
                soft_wrap=True,
            )
        for p in problems:  # bundle text in a mismatch is shown as is, never read as rich markup
            c.print(f"mismatch: {escape(p)}", soft_wrap=True)

    # the report (each mismatch) is the output; the failure itself is one line on stderr, exit 1
    app.emit(data, render)
    if problems:
        raise NexotcError(f"the bundle does not match the chain: {len(problems)} mismatch(es)")


__all__ = ["audit"]
