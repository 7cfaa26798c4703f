"""`nexotc audit ...`: the post-trade audit trail of a deal.

    nexotc audit export DEAL [--disclosure FILE]... --out BUNDLE.json
    nexotc audit verify BUNDLE.json          exit 1 and one line per mismatch when the chain disagrees

A disclosure file comes from the party itself (`nexotc kyc disclose PROOF --field jurisdiction`): the
auditor sees the opened fields and nothing else of the credential.
"""

from __future__ import annotations

from typing import Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step


def _registry_or_none(app: App, bundle_registry: str | None = None) -> Any:
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords, KYCRegistry, get_kyc_registry

    app.connect()
    if bundle_registry:
        return KYCRegistry.at(bundle_registry)
    try:
        return get_kyc_registry(KycRecords(app.home / KYC_FILE))
    except NexotcError:
        return None


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
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True)
@shared_options
@click.pass_obj
def export(app: App, deal_ref: str, disclosures: tuple[str, ...], out: str) -> None:
    """Write the audit bundle of DEAL: events, attestations, disclosures."""
    from nexotc_client.audit import disclosed_fields, export_bundle, save_bundle
    from nexotc_client.issuer import Disclosure

    deal = app.factory().deal(deal_ref)
    registry = _registry_or_none(app, deal.contract.kyc_registry() if deal.terms.policy_id else None)
    with step(app, "reading the deal's history"):
        bundle = export_bundle(deal, registry, [Disclosure.load(p) for p in disclosures])
    save_bundle(bundle, out)
    seen = disclosed_fields(bundle)
    data = {
        "bundle": out,
        "deal": deal.address,
        "events": len(bundle["events"]),
        "attested": [r for r, a in bundle["attestations"].items() if a],
        "disclosed": seen,
    }

    def render(c: Any) -> None:
        c.print(f"audit bundle of {deal.address} written to {out}: {len(bundle['events'])} events")
        for role, att in bundle["attestations"].items():
            c.print(f"  {role}: " + (f"attested policy #{att['policy_id']} until {att['expiry']}" if att else "none"))
        for role, fields in seen.items():
            c.print(f"  {role} discloses {fields}")

    app.emit(data, render)


@audit.command("verify")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False))
@shared_options
@click.pass_obj
def verify(app: App, bundle_path: str) -> None:
    """Re-check a bundle against the chain and the commitments; name each mismatch (exit 1 if any)."""
    from nexotc_client.audit import disclosed_fields, load_bundle, verify_bundle

    bundle = load_bundle(bundle_path)
    factory = app.factory()
    registry = _registry_or_none(app, bundle.get("kyc_registry"))
    with step(app, "checking the bundle against the chain"):
        problems = verify_bundle(bundle, factory, registry)
    data = {
        "bundle": bundle_path,
        "deal": bundle.get("deal"),
        "ok": not problems,
        "mismatches": problems,
        "disclosed": disclosed_fields(bundle),
    }

    def render(c: Any) -> None:
        if not problems:
            c.print(f"bundle {bundle_path}: events, attestations and disclosures match the chain")
        for p in problems:
            c.print(f"mismatch: {p}", soft_wrap=True)

    # the report (each mismatch) is the output; the failure itself is one line on stderr, exit 1
    app.emit(data, render)
    if problems:
        raise NexotcError(f"the bundle does not match the chain: {len(problems)} mismatch(es)")


__all__ = ["audit"]
