"""`nexotc deal ...`: create deals from terms files, inspect them and act on them.

DEAL is a deal address or its creation number as `nexotc deal list` shows it (`3` or `#3`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.deal import PROVE_FILES
from nexotc_client.chain.errors import NexotcError, reverts_as_errors
from nexotc_client.cli.app import App, shared_options, step, wallet_address
from nexotc_client.cli.render import (
    Amounts,
    LegMeta,
    deal_amounts,
    event_dict,
    leg_meta,
    render_deal,
    render_events,
    render_tx,
    terms_dict,
    token_amounts,
    token_meta,
    tx_dict,
)
from nexotc_client.terms import Mode, Phase, TrancheStatus

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.chain.deal import Deal, TxResult
    from nexotc_client.chain.factory import Factory
    from nexotc_client.terms import LegId


def _deal(app: App, ref: str) -> Deal:
    return app.deal(ref)


def _token_decimals(token: str) -> int:
    from ape import chain

    from nexotc_client.chain.contracts import erc20
    from nexotc_client.chain.errors import reverts_as_errors

    if not chain.provider.get_code(token):
        raise NexotcError(f"no contract at {token} on this network")
    with reverts_as_errors(f"decimals() of {token}"):
        return int(erc20(token).decimals())


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        out[key.strip()] = value
    return out


def _amounts(d: Deal, result: TxResult | None = None) -> Amounts:
    """How to print the amounts of `d`'s events, and of the other tokens `result`'s events name."""
    return deal_amounts(d.terms, result.events if result else ())


def _emit_tx(
    app: App, title: str, result: TxResult, extra: dict[str, Any] | None = None, deal: Deal | None = None
) -> None:
    """The transaction as JSON (raw integers) or for humans (amounts with symbols, when `deal` is given)."""

    def render(console: Any) -> None:
        render_tx(console, title, result, _amounts(deal, result) if deal is not None else None)

    app.emit({**(extra or {}), **tx_dict(result)}, render)


@click.group()
def deal() -> None:
    """Create, inspect and settle deals."""


# ------------------------------------------------------------------ create
@deal.command("create")
@click.option("--terms", "terms_file", required=True, type=click.Path(path_type=Path), help="YAML terms file.")
@click.option("--salt", default=None, help="CREATE2 salt: hex or text (default: the file's salt, else random).")
@click.option(
    "--fund",
    is_flag=True,
    help="Also deposit the creator's leg (creator = seller or buyer); not with --desk (fund after creating).",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Fill a placeholder or set a field.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate with the factory (and with --desk, the desk's rules) and predict the address; send nothing.",
)
@click.option(
    "--desk",
    "desk_id",
    type=click.IntRange(min=1),
    default=None,
    metavar="ID",
    help="A desk deal of desk ID (--account must be one of its traders): the desk's rules are checked first.",
)
@shared_options
@click.pass_obj
def create(
    app: App,
    terms_file: Path,
    salt: str | None,
    fund: bool,
    sets: tuple[str, ...],
    dry_run: bool,
    desk_id: int | None,
) -> None:
    """Create a deal from a terms file (see examples/*.yaml). With --desk ID, create it under that
    desk's rules (members, assets, fee schedule, access, suspension); `--desk ID --dry-run` only
    checks the terms against them."""
    if desk_id is not None and fund:
        raise click.UsageError("--fund is not available with --desk: create the desk deal, then `nexotc deal fund`")
    from ape import chain

    from nexotc_client.chain.encoding import to_salt
    from nexotc_client.spec import check_document, load_document, parse_spec

    document = load_document(terms_file)
    check_document(document)
    pairs = _parse_sets(sets)
    if salt is not None:
        to_salt(salt)  # a malformed salt is refused before anything else
    deployment = app.deployment()
    factory = app.factory()
    sender = app.sender()
    spec = parse_spec(
        document,
        now=int(chain.pending_timestamp),
        resolve_wallet=wallet_address,
        decimals_of=_token_decimals,
        variables=deployment.tokens,
        sets=pairs,
    )
    terms = spec.terms
    if fund:  # before anything is sent: a creator that funds nothing on chain
        from nexotc_client.chain.deal import funding_leg

        try:
            funding_leg(terms, sender.address, (spec.base.label, spec.quote.label))
        except NexotcError as exc:
            raise NexotcError(f"--fund: {exc}") from None
    raw_salt = to_salt(salt if salt is not None else spec.salt)
    desk: dict[str, Any] = {}
    if desk_id is not None:
        from nexotc_client.chain.desk import DESKS_FILE, DeskRecords, desk_registry_of

        registry = desk_registry_of(factory.address, DeskRecords(app.home / DESKS_FILE))
        terms.validate(now=int(chain.pending_timestamp))
        factory.validate(terms)  # the factory's own rules come first, as in create_desk_deal
        policy = registry.require_deal(desk_id, sender.address, terms)
        desk = {"desk_id": desk_id, "desk_registry": registry.address, "desk_policy_id": "0x" + policy.hex()}

    def relative_times() -> bool:
        """The terms use relative times (now, +1d): parsed a second later, they differ (and so does the address)."""
        moved = parse_spec(
            document,
            now=int(chain.pending_timestamp) + 1,
            resolve_wallet=wallet_address,
            decimals_of=_token_decimals,
            variables=deployment.tokens,
            sets=pairs,
        ).terms
        return moved.terms_hash() != terms.terms_hash()

    _check_gate(
        factory,
        terms,
        sender.address,
        raw_salt,
        fund,
        lambda: [
            why
            for why, drifts in (
                ("a random salt (no --salt, no salt: in the terms file)", salt is None and spec.salt is None),
                ("relative times (now, +1d, ...)", relative_times()),
            )
            if drifts
        ],
    )
    from nexotc_client.agreement import parse as parse_agreement

    spec_warnings = list(spec.warnings)
    if parse_agreement(spec.agreement).get("terms"):
        spec_warnings.append(
            "the terms file's agreement: section is not part of a deal created directly (only a signed offer binds "
            "it, by hash: `nexotc offer create`); the counterparty never signs it here"
        )
    if dry_run:
        terms_hash = factory.validate(terms)
        predicted = factory.predict(terms, sender.address, raw_salt, desk_id or 0)
        warnings = list(spec_warnings)
        if relative_times():
            warnings.append(
                "the terms use relative times (now, +1d, ...): the deal's address changes with every run, so "
                "proofs or deposits for this address are wasted unless the times are absolute"
            )
        data = {
            "dry_run": True,
            "deal": predicted,
            "creator": sender.address,
            "salt": "0x" + raw_salt.hex(),
            "terms_hash": "0x" + terms_hash.hex(),
            **desk,
            "terms": terms_dict(terms),
            "warnings": warnings,
        }
        under = f" under desk #{desk_id}'s rules" if desk_id is not None else ""

        def render_dry(c: Any) -> None:
            c.print(
                f"valid terms {data['terms_hash']}{under}; {sender.address} would create {predicted}"
                f"{' (' + spec.name + ')' if spec.name else ''}"
            )
            for warning in warnings:
                c.print(f"[yellow]warning: {warning}[/]")

        app.emit(data, render_dry)
        return
    if desk_id is not None:
        from nexotc_client.chain.desk import create_desk_deal

        with step(app, f"creating the deal for desk #{desk_id}"):
            created = create_desk_deal(factory, desk_id, terms, sender, raw_salt)
    else:
        with step(app, "creating the deal"):
            created = factory.create(terms, sender, salt=raw_salt, fund=fund)
    assert created.created is not None
    result = created.created
    extra = {
        "deal": created.address,
        "name": spec.name,
        "creator": sender.address,
        "salt": "0x" + raw_salt.hex(),
        "terms_hash": "0x" + terms.terms_hash().hex(),
        "funded": fund,
        **desk,
        "warnings": spec_warnings,
        "next": _gate_steps(created, desk_id, fund, sender.address),
    }
    amounts = Amounts.of(
        terms,
        leg_meta(terms.base.token, terms.base.on_chain, (spec.base.label, spec.base.decimals)),
        leg_meta(terms.quote.token, terms.quote.on_chain, (spec.quote.label, spec.quote.decimals)),
    )

    def render(console: Any) -> None:
        from rich.markup import escape

        console.print(
            f"deal {created.address}{'  (' + spec.name + ')' if spec.name else ''}"
            f"{f'  desk #{desk_id}' if desk_id is not None else ''}"
        )
        console.print(
            f"  {terms.mode.name}: {spec.base.format(terms.base.amount)} against "
            f"{spec.quote.format(terms.quote.amount)} in {len(terms.tranches)} tranche(s)"
        )
        render_tx(console, "created" + (" and funded" if fund else ""), result, amounts)
        for warning in spec_warnings:
            console.print(f"[yellow]warning: {warning}[/]")
        for step_text in extra["next"]:
            console.print(f"  next: {escape(step_text)}", soft_wrap=True)

    app.emit({**extra, **tx_dict(result)}, render)


def _gate_steps(d: Deal, desk_id: int | None, funded: bool, creator: str) -> list[str]:
    """A gated deal just created: what its principals run before funding it (each proves in the deal's scope, its
    desk's for a desk deal, for as long as the deal lasts), then each unfunded leg's `deal fund`. Empty for an
    ungated deal."""
    terms = d.terms
    if not terms.policy_id:
        return []
    gate = d.compliance()
    if gate is None or not gate["principals"]:
        return []
    scope = f"--desk {desk_id}" if desk_id else f"--deal {d.address}"
    steps = [
        f"the {p['role']} proves in {gate['scope_name']}: `nexotc kyc prove {scope} --policy {terms.policy_id} "
        f"{PROVE_FILES} --account {p['wallet']}`, then `nexotc kyc submit PROOF.json --account {p['wallet']}`"
        for p in gate["principals"]
        if not (p["compliant_now"] and p["covers_final_expiry"])
    ]
    for role, wallet, leg in (("seller", terms.seller, terms.base), ("buyer", terms.buyer, terms.quote)):
        if leg.on_chain and not (funded and wallet.lower() == creator.lower()):
            steps.append(f"the {role} funds: `nexotc deal fund {d.address} --account {wallet}`")
    return steps


def _check_gate(
    factory: Any, terms: Any, creator: str, salt: bytes, fund: bool, drift: Callable[[], list[str]]
) -> None:
    """A gated deal (terms with a compliance policy) that could never be funded is refused before
    anything is sent: no KYC registry behind the factory, or a policy it never registered; with
    --fund, a creator without an attestation in the new deal's scope (its own address) that lasts to the
    final expiry. The way out depends on whether that address is known before creation (`drift()` names
    what changes it with every run: a random salt, relative times): prove for it first, or else create
    without --fund, prove for the created deal and fund it."""
    from nexotc_client.chain.offers import compliance_problems, coverage_problems

    problems = compliance_problems(factory, terms, None, [])
    if problems:
        raise NexotcError(f"this deal could never be funded: {problems[0]}")
    if not (fund and terms.policy_id):
        return
    role = "seller" if creator.lower() == terms.seller.lower() else "buyer"
    deal = factory.predict(terms, creator, salt)
    missing = compliance_problems(factory, terms, deal, [(role, creator)])
    short = [] if missing else coverage_problems(factory, terms, deal, [(role, creator)])
    if not missing and not short:
        return
    policy = terms.policy_id
    why = (
        f"the {role} {creator} has no current attestation of policy #{policy} in the new deal's scope"
        if missing
        else short[0].split(": the deal takes")[0]  # "the seller …'s attestation … ends at …, before the final expiry"
    )
    proof = f"--policy {policy} {PROVE_FILES} --account {creator}"
    submit = f"`nexotc kyc submit PROOF.json --account {creator}`"
    drifts = drift()
    if not drifts:
        from ape import chain

        minutes = max(1, -(-(terms.final_expiry - int(chain.pending_timestamp)) // 60))
        raise NexotcError(
            f"--fund: {why} (the deal would be {deal}, fixed by the salt and the absolute times; a deposit needs an "
            f"attestation lasting to its final expiry): prove first with `nexotc kyc prove --deal {deal} "
            f"--valid-for {minutes}m {proof}`, then {submit}, then run this `deal create --fund` again (or create "
            "now without --fund and `nexotc deal fund` it once proved); nothing was sent"
        )
    raise NexotcError(
        f"--fund: {why}, and no proof can be made before the deal exists: its address is not known in advance "
        f"({' and '.join(drifts)} give a new address every run). Create it without --fund, "
        f"then prove for it and fund it: `nexotc kyc prove --deal DEAL {proof}`, {submit}, `nexotc deal fund DEAL "
        f"--account {creator}` (DEAL: the address `deal create` prints, or its number in `nexotc deal list`); or "
        "fix the address with --salt and absolute times (`deal create --dry-run` shows it); nothing was sent"
    )


# ------------------------------------------------------------------- reads
def _off_chain_asset(terms_file: Path | None, key: str) -> tuple[str, int] | None:
    """The label and decimals of the off-chain leg `key` as its terms file writes them (the chain
    stores only units)."""
    if terms_file is None:
        return None
    from nexotc_client.spec import load_document

    leg = load_document(terms_file).get(key)
    if not isinstance(leg, dict) or leg.get("on_chain", True) is not False:
        raise NexotcError(f"--terms: {terms_file} has no off-chain {key} leg (on_chain: false)")
    decimals = leg.get("decimals")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
        raise NexotcError(f"--terms: {key}.decimals of {terms_file} is not a number of decimals: {decimals!r}")
    return str(leg.get("asset") or "units"), decimals


@deal.command("show")
@click.argument("ref", metavar="DEAL")
@click.option(
    "--terms",
    "terms_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The deal's terms file: names the off-chain leg's asset and decimals (the chain stores only units).",
)
@click.option(
    "--offer",
    "offer_ref",
    default=None,
    metavar="FILE|LINK",
    help="The signed offer the deal was made from (default: its copy in the nexotc home, if any): its agreement "
    "document is shown, checked against the offer hash the factory recorded.",
)
@shared_options
@click.pass_obj
def show(app: App, ref: str, terms_file: Path | None, offer_ref: str | None) -> None:
    """Terms and live state of a deal; for a deal made from a signed offer, the offer's hash and its
    agreement document (the off-chain leg's asset and delivery, settlement instructions) when the offer
    is at hand."""
    from rich.markup import escape

    from nexotc_client.agreement import off_chain_leg
    from nexotc_client.cli.offer import accepted_offer, render_agreement

    d = _deal(app, ref)
    terms = d.terms
    status = d.status()
    offer_hash, signed, stale = accepted_offer(app, d, offer_ref)
    agreement = signed.offer.agreement if signed is not None else ""

    notes: list[str] = [stale] if stale else []

    def off_chain(key: str) -> tuple[str, int] | None:
        signed_leg = off_chain_leg(agreement, key)
        given = _off_chain_asset(terms_file, key) if terms_file is not None else None
        if signed_leg is not None and given is not None and given != signed_leg:
            notes.append(
                f"--terms names the {key} leg {given[0]} ({given[1]} decimals), the signed agreement "
                f"{signed_leg[0]} ({signed_leg[1]} decimals): shown as the signed agreement says"
            )
        return signed_leg if signed_leg is not None else given

    base = leg_meta(terms.base.token, terms.base.on_chain, None if terms.base.on_chain else off_chain("base"))
    quote = leg_meta(terms.quote.token, terms.quote.on_chain, None if terms.quote.on_chain else off_chain("quote"))
    with reverts_as_errors("desk_id()"):
        desk_id = int(d.contract.desk_id())
    gate = d.compliance()
    data = {
        "deal": d.address,
        "factory": d.factory.address,
        "desk_id": desk_id,
        "compliance": gate,
        "terms": terms_dict(terms),
        "status": status.to_dict(),
        "assets": {
            "base": _asset_dict(base),
            "quote": _asset_dict(quote),
        },
        "warnings": notes,
        "offer": None
        if offer_hash is None
        else {
            "offer_hash": offer_hash,
            "found": signed is not None,
            "agreement_hash": "0x" + signed.offer.agreement_hash.hex() if signed is not None else None,
            "agreement": (signed.offer.agreement_document() or None) if signed is not None else None,
        },
    }

    def render(c: Console) -> None:
        render_deal(c, d.address, d.factory.address, terms, status, base, quote)
        if desk_id:
            c.print(f"desk: #{desk_id} (a desk deal: its desk's rules were checked when it was created)")
        if offer_hash is not None:
            if signed is None:
                c.print(f"offer: {offer_hash} (not in this nexotc home: --offer FILE|LINK shows its agreement)")
            elif signed.offer.agreement:
                c.print(f"offer: {offer_hash} ✓")
                render_agreement(c, signed.offer)
            else:
                c.print(f"offer: {offer_hash} ✓ (no agreement document)")
        for note in notes:
            c.print(f"[yellow]warning: {escape(note)}[/]")
        if gate is not None:
            _render_gate(c, gate, terms.final_expiry)

    app.emit(data, render)


def _render_gate(c: Console, gate: dict[str, Any], final_expiry: int) -> None:
    """Each principal's attestation of a gated deal, and a warning for one that ends before the final expiry."""
    from nexotc_client.cli.render import fmt_time

    if not gate["principals"]:
        c.print(f"[red]compliance: policy #{gate['policy_id']}, but the factory has no KYC registry[/]")
        return
    c.print(f"compliance: policy #{gate['policy_id']} in {gate['scope_name']}")
    for p in gate["principals"]:
        if p["attested_until"] is None:
            state = "no attestation"
        elif p["attested_policy"] != gate["policy_id"]:
            state = f"attested for policy #{p['attested_policy']}, not this deal's"
        else:
            state = f"attested until {fmt_time(p['attested_until'])}" + ("" if p["compliant_now"] else " (expired)")
        c.print(f"  {p['role']} {p['wallet']}: {state}")
        if not p["compliant_now"]:
            c.print(
                f"  [yellow]warning: the {p['role']} is not compliant now: no tranche can be released until it "
                "proves again (refunds stay open)[/]"
            )
        elif not p["covers_final_expiry"]:
            c.print(
                f"  [yellow]warning: the {p['role']}'s attestation does not last to the final expiry "
                f"({fmt_time(final_expiry)}): once it ends, no tranche can be released (refunds stay open); "
                "deliver off chain only against an attestation that lasts[/]"
            )


def _asset_dict(meta: LegMeta) -> dict[str, Any]:
    out: dict[str, Any] = {"label": meta.label, "decimals": meta.decimals}
    if meta.off_chain:
        out["off_chain"] = True
    return out


@deal.command("list")
@shared_options
@click.pass_obj
def list_deals(app: App) -> None:
    """Deals created by the recorded factory, oldest first."""
    from nexotc_client.chain.deal import Deal
    from nexotc_client.chain.deployment import network_key

    factory = app.factory()
    records = factory.deals()
    rows = []
    for record in records:
        phase = Deal.at(record.deal, factory).phase()
        rows.append({**record.to_dict(), "phase": phase.name.lower()})

    def render(console: Any) -> None:
        from rich.table import Table

        from nexotc_client.cli.render import fmt_time

        if not rows:
            console.print(f"no deals yet on {network_key()} (factory {factory.address})")
            return
        table = Table(title=f"deals of {factory.address}")
        for column in ("#", "deal", "phase", "creator", "terms hash", "block", "created"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                str(row["index"]),
                row["deal"],
                row["phase"],
                row["creator"],
                row["terms_hash"][:12] + "…",
                str(row["block"]),
                fmt_time(row["timestamp"]),
            )
        console.print(table)

    app.emit(rows, render)


@deal.command("events")
@click.argument("ref", metavar="DEAL")
@shared_options
@click.pass_obj
def events(app: App, ref: str) -> None:
    """Every event of a deal, oldest first."""
    d = _deal(app, ref)
    evs = d.events()
    app.emit([event_dict(e) for e in evs], lambda c: render_events(c, evs, _amounts(d)))


# ------------------------------------------------------- pre-checks (read from the chain; the contract decides)
def _now() -> int:
    """The pending block's time: what the next transaction's `block.timestamp` will be at the earliest."""
    from ape import chain

    return int(chain.pending_timestamp)


def _open_phase(action: str, d: Deal) -> Phase:
    """The deal's phase, refused when it is closed (cancelled or expired: nothing left to act on)."""
    phase = d.phase()
    if phase in (Phase.CANCELLED, Phase.EXPIRED):
        raise NexotcError(
            f"{action}: the deal {d.address} is already {phase.name.lower()}: every deposit still held went back "
            "to its funder then; nothing is left to act on (a payee's failed payment: `nexotc deal claim`)"
        )
    return phase


def _unfunded_legs(d: Deal) -> list[str]:
    """ "the seller's base leg", ... for each on-chain leg not deposited yet."""
    from nexotc_client.terms import LegId

    terms = d.terms
    out = []
    with reverts_as_errors("funded()"):
        for leg_id, leg, role in ((LegId.BASE, terms.base, "seller"), (LegId.QUOTE, terms.quote, "buyer")):
            if leg.on_chain and not bool(d.contract.funded(int(leg_id))):
                out.append(f"the {role}'s {leg_id.name.lower()} leg")
    return out


def _party(terms: Any, wallet: str) -> str:
    """ "the seller 0x…", "the buyer 0x…", or the wallet."""
    for role, party in (("seller", terms.seller), ("buyer", terms.buyer)):
        if wallet.lower() == party.lower():
            return f"the {role} {wallet}"
    return wallet


def _check_active(action: str, d: Deal, now: int) -> None:
    """The deal must be funded, open and before its final expiry (the contract's `_active_state`), each refusal
    naming the time and the way out."""
    from nexotc_client.cli.render import fmt_time

    terms = d.terms
    phase = _open_phase(action, d)
    if phase == Phase.FUNDING:
        deadline = terms.funding_deadline
        if now > deadline:
            way = f"funding closed at {fmt_time(deadline, now)}: `nexotc deal cancel {d.address}` returns every deposit"
        else:
            way = f"it can be funded until {fmt_time(deadline, now)} (`nexotc deal fund`), else cancelled after that"
        raise NexotcError(
            f"{action}: the deal is not funded yet ({' and '.join(_unfunded_legs(d))} not deposited): {way}"
        )
    if now >= terms.final_expiry:
        raise NexotcError(
            f"{action}: the deal passed its final expiry at {fmt_time(terms.final_expiry, now)}: "
            f"`nexotc deal expire {d.address}` returns everything unreleased at once"
        )


def _open_tranche_way(d: Deal, tranche: int, status: TrancheStatus, now: int) -> str:
    """Where a marked or disputed tranche goes from here."""
    from nexotc_client.cli.render import fmt_time

    terms = d.terms
    if status == TrancheStatus.DISPUTED:
        with reverts_as_errors("disputed_at()"):
            disputed_at = int(d.contract.disputed_at(tranche))
        return (
            f"it was disputed at {fmt_time(disputed_at)}: the resolver splits it (`nexotc deal resolve`), or from "
            f"{fmt_time(disputed_at + terms.dispute_timeout, now)} anyone applies the default outcome "
            f"({terms.dispute_default.name.lower()}) with `nexotc deal settle {d.address} {tranche}`"
        )
    with reverts_as_errors("marked_at()"):
        marked_at = int(d.contract.marked_at(tranche))
    missing = d.release_missing(tranche, now)
    return (
        f"it was marked delivered at {fmt_time(marked_at)} and is paid out by `nexotc deal release {d.address} "
        f"{tranche}` once its conditions hold ({'; '.join(missing) if missing else 'they hold now'}), or contested "
        "with `nexotc deal dispute`"
    )


def _check_cancel(d: Deal) -> None:
    """`cancel_unfunded`: a deal still funding, after its funding deadline."""
    from nexotc_client.cli.render import fmt_time

    terms, now, phase = d.terms, _now(), _open_phase("cancel", d)
    if phase == Phase.SETTLED:
        raise NexotcError("cancel: the deal was funded and every tranche is settled: nothing is left to cancel")
    if phase != Phase.FUNDING:
        raise NexotcError(
            f"cancel: the deal is funded (every on-chain leg is deposited): only an unfunded deal is cancelled. A "
            f"tranche still pending after its deadline is refunded (`nexotc deal refund {d.address} T`), and from "
            f"the final expiry, {fmt_time(terms.final_expiry, now)}, `nexotc deal expire {d.address}` returns "
            "everything unreleased"
        )
    deadline = terms.funding_deadline
    if now <= deadline:
        raise NexotcError(
            f"cancel: funding is open until {fmt_time(deadline, now)}: an unfunded deal can be cancelled only after "
            f"that; until then {' and '.join(_unfunded_legs(d))} can still be deposited (`nexotc deal fund "
            f"{d.address}`)"
        )


def _check_expire(d: Deal) -> None:
    """`expire`: from the final expiry, while something is left to return."""
    from nexotc_client.cli.render import fmt_time

    terms, now, phase = d.terms, _now(), _open_phase("expire", d)
    if now < terms.final_expiry:
        if phase == Phase.FUNDING:
            way = (
                f"an unfunded deal is cancelled after its funding deadline, {fmt_time(terms.funding_deadline, now)} "
                f"(`nexotc deal cancel {d.address}`)"
            )
        else:
            way = (
                f"before it, a tranche still pending after its deadline is refunded one by one (`nexotc deal refund "
                f"{d.address} T`)"
            )
        raise NexotcError(
            f"expire: the deal's final expiry is {fmt_time(terms.final_expiry, now)}: it can be expired only from "
            f"then; {way}"
        )
    if phase == Phase.SETTLED:
        raise NexotcError(
            "expire: every tranche is settled (released, refunded or resolved): nothing is left to return "
            "(a payee's failed payment: `nexotc deal claim`)"
        )


def _check_refund(d: Deal, tranche: int) -> None:
    """`refund`: a tranche still pending after its deadline, of an active deal."""
    from nexotc_client.cli.render import fmt_time

    status = d.tranche_status(tranche)  # names a tranche that does not exist
    now = _now()
    _check_active("refund", d, now)
    if status in (TrancheStatus.RELEASED, TrancheStatus.REFUNDED, TrancheStatus.RESOLVED):
        raise NexotcError(f"refund: tranche {tranche} is {status.name.lower()}: nothing is left to refund")
    if status != TrancheStatus.PENDING:
        raise NexotcError(
            f"refund: tranche {tranche} is {status.name.lower()}, and only a pending tranche is refunded after its "
            f"deadline: {_open_tranche_way(d, tranche, status, now)}"
        )
    deadline = d.terms.tranches[tranche].deadline
    if now <= deadline:
        if d.terms.mode == Mode.ESCROWED:
            from nexotc_client.terms import Role

            markers = " or ".join(_party(d.terms, w) for w in d.terms.holders(Role.MARKER))
            way = f"until then {markers} can still mark it delivered (`nexotc deal mark`)"
        else:
            way = f"until then it can be released (`nexotc deal release {d.address} {tranche}`)"
        raise NexotcError(
            f"refund: tranche {tranche}'s deadline is {fmt_time(deadline, now)}: a pending tranche is refunded only "
            f"after it; {way}"
        )


def _check_mark(d: Deal, tranche: int, sender: str) -> None:
    """`mark`: an ESCROWED tranche still pending, before its delivery deadline, of an active deal (the mode and
    the marker role are `Deal.mark`'s to check)."""
    from nexotc_client.cli.render import fmt_time
    from nexotc_client.terms import Role

    terms = d.terms
    if terms.mode != Mode.ESCROWED or not terms.roles_of(sender) & Role.MARKER:
        return
    status = d.tranche_status(tranche)
    now = _now()
    _check_active("mark", d, now)
    if status in (TrancheStatus.RELEASED, TrancheStatus.REFUNDED, TrancheStatus.RESOLVED):
        raise NexotcError(f"mark: tranche {tranche} is {status.name.lower()}: nothing is left to mark")
    if status != TrancheStatus.PENDING:
        already = " already (a tranche is marked once)" if status == TrancheStatus.MARKED else ""
        raise NexotcError(
            f"mark: tranche {tranche} is {status.name.lower()}{already}: {_open_tranche_way(d, tranche, status, now)}"
        )
    deadline = terms.tranches[tranche].deadline
    if now > deadline:
        raise NexotcError(
            f"mark: tranche {tranche}'s delivery deadline passed at {fmt_time(deadline, now)}: it can no longer be "
            f"marked, only refunded to its funder (`nexotc deal refund {d.address} {tranche}`, anyone)"
        )


def _check_return(d: Deal, wallet: str, sender: str, token: str | None, leg: LegId | None) -> None:
    """`return_deposit`: anyone but the funder only once the deposit can no longer fund the leg; and something to
    return."""
    from ape import chain

    from nexotc_client.chain.deal import token_label
    from nexotc_client.chain.deposit import ETHER, deposit_address, deposit_info
    from nexotc_client.cli.render import fmt_time

    info = deposit_info(d, wallet)
    leg_id = info.leg if leg is None else leg
    if leg_id != info.leg and token is None:
        return  # `return_deposit` names the missing --token
    token = info.token if token is None else token
    is_funder = sender.lower() == info.funder.lower()
    if not is_funder and leg_id == info.leg and token.lower() == info.token.lower() and info.accepts_deposit:
        now = _now()
        sweep = f"; or move it into the deal: `nexotc deal sweep {d.address} --funder {info.funder}`"
        raise NexotcError(
            f"return-deposit: what {info.address} holds can still fund the {info.leg.name.lower()} leg (funding is "
            f"open until {fmt_time(info.funding_deadline, now)}), so only the funder may take it back now: `nexotc "
            f"deal return-deposit {d.address} --funder {info.funder} --account {info.funder}`; anyone may once the "
            f"leg is funded or funding closes{sweep if info.sweepable else ''}"
        )
    address = info.address if leg_id == info.leg else deposit_address(d.factory.address, d.address, info.funder, leg_id)
    with reverts_as_errors("reading the deposit address"):
        if int(token, 16) == 0:
            held = int(chain.provider.get_balance(address))
        else:
            from nexotc_client.chain.contracts import erc20

            held = int(erc20(token).balanceOf(address))
    if not held:
        what = "ether" if token == ETHER else token_label(token)
        raise NexotcError(f"return-deposit: nothing to return: {address} holds no {what}")


# ----------------------------------------------------------------- actions
def _act(app: App, ref: str, title: str, action: Any) -> None:
    d = _deal(app, ref)
    sender = app.sender()
    with step(app, title):
        result = action(d, sender)
    _emit_tx(app, f"{title} {d.address}", result, {"deal": d.address, "sender": sender.address}, d)


tranche_arg = click.argument("tranche", type=click.IntRange(0))
deal_arg = click.argument("ref", metavar="DEAL")


@deal.command("fund")
@deal_arg
@shared_options
@click.pass_obj
def fund(app: App, ref: str) -> None:
    """Deposit your leg (seller: base, buyer: quote); approves the exact amount first if needed."""
    _act(app, ref, "funded", lambda d, s: d.fund(s))


@deal.command("mark")
@deal_arg
@tranche_arg
@click.option(
    "--evidence",
    required=True,
    help="A BTC txid / 32-byte hex (exactly 64 hex digits, 0x optional), or text that is hashed. Hex of "
    "another length is refused as a mistyped txid; prefix text:, e.g. text:0x1234, to hash anything as text.",
)
@shared_options
@click.pass_obj
def mark(app: App, ref: str, tranche: int, evidence: str) -> None:
    """ESCROWED: mark TRANCHE delivered off chain, with evidence."""
    from nexotc_client.chain.encoding import to_evidence

    to_evidence(evidence)  # a mistyped txid is refused before anything is read

    def act(d: Deal, s: Any) -> TxResult:
        _check_mark(d, tranche, s.address)
        return d.mark(tranche, evidence, s)

    _act(app, ref, f"marked tranche {tranche}", act)


@deal.command("approve")
@deal_arg
@tranche_arg
@shared_options
@click.pass_obj
def approve(app: App, ref: str, tranche: int) -> None:
    """Approve TRANCHE (approvers only)."""
    _act(app, ref, f"approved tranche {tranche}", lambda d, s: d.approve(tranche, s))


@deal.command("release")
@deal_arg
@tranche_arg
@shared_options
@click.pass_obj
def release(app: App, ref: str, tranche: int) -> None:
    """Sign (release signers) and pay out TRANCHE once its conditions hold. A release signer's call before
    then only records its signature: the output says whether the tranche was paid (JSON: `released`) and,
    when not, what it still needs (`missing`). Either way it exits 0 (recording the signature is what the call
    could do): scripts read `released`."""
    from ape import chain

    d = _deal(app, ref)
    sender = app.sender()
    with step(app, f"releasing tranche {tranche}"):
        result = d.release(tranche, sender)
    released = any(e.name == "Released" and int(e.args.get("tranche", -1)) == tranche for e in result.events)
    signed = next((e for e in result.events if e.name == "Signed"), None)
    missing: list[str] = []
    if not released:
        # read after the transaction: what the tranche still needs (the same rule the pre-check names)
        missing = d.release_missing(tranche, int(chain.pending_timestamp)) or [
            f"its conditions hold now: `nexotc deal release {d.address} {tranche}` (anyone) pays it out"
        ]
    extra = {
        "deal": d.address,
        "sender": sender.address,
        "tranche": tranche,
        "released": released,
        "signed": signed is not None,
        "missing": missing,
    }
    if released:
        title = f"released tranche {tranche} {d.address}"
    elif signed is not None:
        title = f"signed tranche {tranche} {d.address}: NOT released yet"
    else:
        title = f"tranche {tranche} {d.address}: NOT released"

    def render(console: Any) -> None:
        from rich.markup import escape

        render_tx(console, title, result, _amounts(d, result))
        if not released:
            what = (
                f"signature {signed.args.get('signatures')} of {d.terms.release_threshold} recorded"
                if signed is not None
                else "nothing recorded"
            )
            console.print(f"tranche {tranche} not paid out ({what}): {escape('; '.join(missing))}")

    app.emit({**extra, **tx_dict(result)}, render)


@deal.command("dispute")
@deal_arg
@tranche_arg
@click.option("--reason", required=True, help="Short text (<= 32 bytes kept readable) or 32-byte hex.")
@shared_options
@click.pass_obj
def dispute(app: App, ref: str, tranche: int, reason: str) -> None:
    """Freeze TRANCHE (buyer or seller)."""
    _act(app, ref, f"disputed tranche {tranche}", lambda d, s: d.dispute(tranche, reason, s))


def _split(text: str | None, option: str) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(_BASE_UNITS.match(p) for p in parts):
        raise click.BadParameter(
            f"expected TO_RECEIVER,TO_FUNDER,TO_RESOLVER in base units (digits, optionally grouped by three "
            f"with _), got {text!r}",
            param_hint=option,
        )
    return (int(parts[0]), int(parts[1]), int(parts[2]))


_BASE_UNITS = re.compile(r"^(\d+|\d{1,3}(_\d{3})+)$")


@deal.command("resolve")
@deal_arg
@tranche_arg
@click.option("--base", "base_split", default=None, help="TO_RECEIVER,TO_FUNDER,TO_RESOLVER (base units).")
@click.option("--quote", "quote_split", default=None, help="TO_RECEIVER,TO_FUNDER,TO_RESOLVER (quote units).")
@click.option(
    "--receiver-bps",
    type=click.IntRange(0, 10_000),
    default=None,
    help="Share to the receivers, in bps of what is left of each leg's tranche amount after the resolver's fee "
    "(--resolver-bps); the rest goes back to the funders. E.g. 1,000 USDT with --resolver-bps 100 "
    "--receiver-bps 5000: 10 to the resolver, 495 to the receiver, 495 to the funder.",
)
@click.option(
    "--resolver-bps",
    type=click.IntRange(0, 10_000),
    default=0,
    show_default=True,
    help="The resolver's fee, in bps of each leg's tranche amount (taken first; at most the deal's resolver cap).",
)
@shared_options
@click.pass_obj
def resolve(
    app: App,
    ref: str,
    tranche: int,
    base_split: str | None,
    quote_split: str | None,
    receiver_bps: int | None,
    resolver_bps: int,
) -> None:
    """Resolver: split disputed TRANCHE, explicitly (--base/--quote) or by --receiver-bps."""
    from nexotc_client.chain.deal import Split

    explicit = (_split(base_split, "--base"), _split(quote_split, "--quote"))
    if receiver_bps is None and explicit == (None, None):
        raise click.UsageError("give --base and --quote splits, or --receiver-bps")
    if receiver_bps is not None and explicit != (None, None):
        raise click.UsageError("give either --base/--quote or --receiver-bps, not both")
    d = _deal(app, ref)
    terms = d.terms
    if not 0 <= tranche < len(terms.tranches):
        raise NexotcError(f"no tranche {tranche}: this deal has {len(terms.tranches)}")
    tr = terms.tranches[tranche]
    amounts = (
        tr.base_amount if terms.base.on_chain else 0,
        tr.quote_amount if terms.quote.on_chain else 0,
    )
    if resolver_bps > terms.resolver_fee_bps:
        raise NexotcError(
            f"--resolver-bps: {resolver_bps} bps exceeds the deal's {terms.resolver_fee_bps} bps resolver cap"
        )
    if receiver_bps is not None:
        splits = tuple(Split.proportional(a, receiver_bps, resolver_bps) for a in amounts)
    else:
        splits = tuple(Split(*s) if s is not None else Split() for s in explicit)
    sender = app.sender()
    with step(app, "resolving"):
        result = d.resolve(tranche, splits[0], splits[1], sender)
    _emit_tx(app, f"resolved tranche {tranche} {d.address}", result, {"deal": d.address, "sender": sender.address}, d)


@deal.command("settle")
@deal_arg
@tranche_arg
@shared_options
@click.pass_obj
def settle(app: App, ref: str, tranche: int) -> None:
    """Apply the default outcome of a disputed TRANCHE after the dispute timeout (anyone)."""
    _act(app, ref, f"settled tranche {tranche}", lambda d, s: d.settle_dispute(tranche, s))


@deal.command("refund")
@deal_arg
@tranche_arg
@shared_options
@click.pass_obj
def refund(app: App, ref: str, tranche: int) -> None:
    """Refund a TRANCHE still pending after its deadline (anyone)."""

    def act(d: Deal, s: Any) -> TxResult:
        _check_refund(d, tranche)
        return d.refund(tranche, s)

    _act(app, ref, f"refunded tranche {tranche}", act)


@deal.command("cancel")
@deal_arg
@shared_options
@click.pass_obj
def cancel(app: App, ref: str) -> None:
    """After the funding deadline of an unfunded deal, return the deposits (anyone)."""

    def act(d: Deal, s: Any) -> TxResult:
        _check_cancel(d)
        return d.cancel_unfunded(s)

    _act(app, ref, "cancelled", act)


@deal.command("expire")
@deal_arg
@shared_options
@click.pass_obj
def expire(app: App, ref: str) -> None:
    """After the final expiry, return everything unreleased (anyone)."""

    def act(d: Deal, s: Any) -> TxResult:
        _check_expire(d)
        return d.expire(s)

    _act(app, ref, "expired", act)


@deal.command("claim")
@deal_arg
@click.option("--token", required=True, help="base, quote, a token symbol of the deployment (e.g. USDT) or an address.")
@click.option("--to", "recipient", default=None, help="Recipient: an address, test:N or an alias (default: yourself).")
@shared_options
@click.pass_obj
def claim(app: App, ref: str, token: str, recipient: str | None) -> None:
    """Withdraw your pull balance (credited when a payment to you failed)."""
    from nexotc_client.cli.desk import resolve_token

    d = _deal(app, ref)
    terms = d.terms
    if token.strip().lower() in ("base", "quote"):
        leg = terms.base if token.strip().lower() == "base" else terms.quote
        if not leg.on_chain:
            raise NexotcError(f"the {token.strip().lower()} leg is off chain: nothing to claim in it")
        token = leg.token
    else:
        try:
            token = resolve_token(app, token, "token")
        except NexotcError as exc:
            raise NexotcError(f"--token: {exc} (or base, quote)") from None
    try:
        target = wallet_address(recipient) if recipient is not None else None
    except NexotcError as exc:
        raise NexotcError(f"--to: {exc}") from None
    sender = app.sender()
    with step(app, "claiming"):
        result = d.claim(token, target or sender.address, sender)
    _emit_tx(app, f"claimed {d.address}", result, {"deal": d.address, "sender": sender.address}, d)


# --------------------------------------------------------- deposit addresses
def _return_token(app: App, d: Deal | None, ref: str) -> str:
    """eth/ether, base/quote (that leg's token: a deal only), a token address or a symbol of the deployment."""
    from nexotc_client.chain.deposit import ETHER
    from nexotc_client.cli.desk import resolve_token

    text = ref.strip().lower()
    if text in ("eth", "ether"):
        return ETHER
    if text in ("base", "quote"):
        if d is None:
            raise NexotcError(f"{text} names a leg's token, which only a deal's terms know: give its symbol or address")
        leg = d.terms.base if text == "base" else d.terms.quote
        if not leg.on_chain:
            raise NexotcError(f"the {text} leg is off chain: it has no token")
        return leg.token
    try:
        return resolve_token(app, ref, "token")
    except NexotcError as exc:
        raise NexotcError(f"{exc} (or eth{', base, quote' if d is not None else ''})") from None


funder_option = click.option(
    "--funder",
    required=True,
    help="The funding party: buyer, seller, or its address (or test:N / alias); its address for an address that "
    "is not a deal.",
)
leg_option = click.option(
    "--leg",
    type=click.Choice(["base", "quote"], case_sensitive=False),
    default=None,
    help="The leg: required for an address that is not a deal (a deal's terms say which leg the funder funds).",
)


def _funder(d: Deal, ref: str) -> str:
    terms = d.terms
    if ref.strip().lower() in ("buyer", "seller"):
        return terms.buyer if ref.strip().lower() == "buyer" else terms.seller
    try:
        return wallet_address(ref)
    except NexotcError as exc:
        raise NexotcError(f"--funder: {exc} (or buyer, seller)") from None


def _deal_or_address(app: App, ref: str) -> Deal | str:
    """The deal DEAL names, or, for an address that is no deal of the recorded factories (a deal never created, or
    not yet), that address: its deposit addresses can still hold a funder's deposit."""
    from eth_utils import to_checksum_address

    from nexotc_client.chain.errors import NotADealError

    try:
        return _deal(app, ref)
    except NotADealError:
        return to_checksum_address(ref.strip())


def _check_leg(d: Deal, wallet: str, leg: str | None) -> None:
    """A --leg given for a deal must be the leg the funder funds (its terms decide); the other leg's deposit
    address only ever holds a mistake, which `return-deposit --leg` sends back."""
    if leg is None:
        return
    from nexotc_client.chain.deal import funding_leg

    funds = funding_leg(d.terms, wallet).name.lower()
    if leg.lower() != funds:
        raise NexotcError(
            f"--leg {leg.lower()}: {wallet} funds the {funds} leg of {d.address} (a deposit sent to its "
            f"{leg.lower()}-leg address by mistake goes back with `nexotc deal return-deposit {d.address} "
            f"--funder {wallet} --leg {leg.lower()} --token TOKEN`)"
        )


def _orphan_args(app: App, address: str, funder: str, leg: str | None, command: str) -> tuple[Factory, str, LegId]:
    """The factory, funder and leg of a deposit for `address`, which is no deal: the funder is an address and the
    leg is given, since no terms resolve roles or legs."""
    from nexotc_client.terms import LegId

    factory = app.factory()
    what = f"{address} is not a deal of the factory at {factory.address}"
    if funder.strip().lower() in ("buyer", "seller"):
        raise NexotcError(
            f"--funder {funder.strip().lower()}: {what}, so no terms name its {funder.strip().lower()}: give the "
            f"funder's address (0x…, test:N or an alias) and --leg base|quote"
        )
    try:
        wallet = wallet_address(funder)
    except NexotcError as exc:
        raise NexotcError(f"--funder: {exc}") from None
    if leg is None:
        raise NexotcError(f"{command}: {what}, so no terms say which leg {wallet} funds: pass --leg base|quote")
    return factory, wallet, LegId.BASE if leg.lower() == "base" else LegId.QUOTE


@deal.command("deposit-address")
@deal_arg
@funder_option
@leg_option
@click.option(
    "--token",
    "tokens",
    multiple=True,
    help="Also show the balance of this token (symbol or address) at the deposit address; the deployment's "
    "tokens and ether are always checked.",
)
@shared_options
@click.pass_obj
def deposit_address(app: App, ref: str, funder: str, leg: str | None, tokens: tuple[str, ...]) -> None:
    """Where FUNDER can pay its leg with a plain transfer (an exchange withdrawal, a custodian);
    anyone then moves it into the deal with `nexotc deal sweep`. Computed offline and checked
    against the factory; excess or another token sent there can only go back to FUNDER. For an
    address that is not a deal (a deal never created), give FUNDER's address and --leg: what its
    deposit address holds, which only FUNDER can take back."""
    from nexotc_client.chain.deposit import deposit_info

    target = _deal_or_address(app, ref)
    if isinstance(target, str):
        _orphan_deposit_address(app, target, funder, leg, tokens)
        return
    d = target
    wallet = _funder(d, funder)
    _check_leg(d, wallet, leg)
    info = deposit_info(d, wallet)
    meta = leg_meta(info.token, True)
    state = info.state
    strays = _strays(app, d, info, tokens)

    def render(console: Any) -> None:
        from rich.markup import escape

        from nexotc_client.cli.render import fmt_time

        console.print(f"deposit address {info.address}")
        console.print(
            f"  {info.leg.name.lower()} leg of {d.address} ({meta.fmt(info.amount)}), funded by the {info.role} "
            f"{info.funder}"
        )
        if state in ("cancelled", "expired"):
            console.print(
                f"  [bold]deal {state}: do not send[/] anything to this address; the funder can take back any "
                "deposit here"
            )
        elif state == "funded":
            console.print("  [bold]leg already funded: do not send[/] anything to this address")
        elif state == "funding_closed":
            console.print(
                f"  [bold]funding closed at {fmt_time(info.funding_deadline)}: do not send[/] anything to this "
                "address (nothing can be swept into the deal any more)"
            )
        elif info.to_send:
            more = " more" if info.balance else ""
            console.print(f"  send {meta.fmt(info.to_send)}{more} (token {info.token}) with a plain transfer")
        holds = f"  holds {meta.fmt(info.balance)}"
        if info.sweepable:
            holds += "; ready to sweep"
        elif info.to_send:
            holds += "; waiting for the deposit"
        if state == "awaiting_compliance":
            holds += "; [yellow]the funder is not compliant yet: the sweep waits for its proof[/]"
        pending = info.accepts_deposit and not info.deployed
        console.print(f"{holds}{' (not deployed yet: created by the first sweep)' if pending else ''}")
        for token, amount in strays.items():
            console.print(
                f"  also holds {token_meta(token).fmt(amount)} (not this leg's token: it only goes back to the funder)"
            )
        for step_text in [*info.next_steps(), *_stray_steps(d, info, strays)]:
            console.print(f"  next: {escape(step_text)}")

    stray_json = {t: {"symbol": token_meta(t).label, "amount": a} for t, a in strays.items()}
    app.emit({**info.to_dict(), "other_balances": stray_json}, render)


def _strays(app: App, d: Deal, info: Any, tokens: tuple[str, ...]) -> dict[str, int]:
    """What a deal's deposit address holds besides its leg's token (ether, the deployment's tokens, --token):
    sent there by mistake, it can only go back to the funder (`return-deposit --token`)."""
    from nexotc_client.chain.deposit import balances_at

    candidates = _watched_tokens(app, d, tokens)
    held = balances_at(info.address, [t for t in candidates if t.lower() != info.token.lower()])
    return {t: a for t, a in held.items() if a}


def _watched_tokens(app: App, d: Deal | None, tokens: tuple[str, ...]) -> list[str]:
    """The tokens a deposit address is checked for: ether, the deal's tokens, the deployment's (when this home
    records one) and each --token."""
    from nexotc_client.chain.deposit import ETHER

    extra = []
    for token in tokens:
        try:
            extra.append(_return_token(app, d, token))
        except NexotcError as exc:
            raise NexotcError(f"--token: {exc}") from None
    recorded = app.recorded_deployment()
    legs = [leg.token for leg in (d.terms.base, d.terms.quote) if leg.on_chain] if d is not None else []
    return [ETHER, *legs, *(recorded.tokens.values() if recorded is not None else ()), *extra]


def _stray_steps(d: Deal, info: Any, strays: dict[str, int]) -> list[str]:
    from nexotc_client.chain.deposit import ETHER

    return [
        f"`nexotc deal return-deposit {d.address} --funder {info.funder} --token "
        f"{'eth' if t == ETHER else token_meta(t).label}` sends the {token_meta(t).fmt(a)} back to the funder (anyone "
        "may send it)"
        for t, a in strays.items()
    ]


def _orphan_deposit_address(app: App, address: str, funder: str, leg: str | None, tokens: tuple[str, ...]) -> None:
    from nexotc_client.chain.deposit import ETHER, orphan_info

    factory, wallet, leg_id = _orphan_args(app, address, funder, leg, "deposit-address")
    info = orphan_info(factory, address, wallet, leg_id, _watched_tokens(app, None, tokens))
    metas = {t: token_meta(t) for t in info.balances}

    def symbol(token: str) -> str:
        meta = metas[token]
        return "eth" if token == ETHER else meta.label if meta.decimals is not None else token

    steps = [info.return_command(symbol(t)) for t, amount in info.balances.items() if amount]
    data = {
        **info.to_dict(),
        "balances": {t: {"symbol": metas[t].label, "amount": a} for t, a in info.balances.items()},
        "next": steps,
    }

    def render(console: Any) -> None:
        console.print(f"deposit address {info.address}")
        console.print(f"  {info.leg.name.lower()} leg of {address} for {info.funder} (factory {info.factory})")
        console.print(
            f"  [bold]{address} is not a deal of this factory: do not send[/] anything to this address; nothing "
            f"there can be swept (unless a deal is created at {address}), and only {info.funder} can take it back"
        )
        listed = ", ".join(metas[t].fmt(a) for t, a in info.balances.items())
        console.print(f"  holds {listed}{'' if info.deployed else ' (not deployed yet)'}")
        for step_text in steps:
            console.print(f"  next: {step_text}")

    app.emit(data, render)


@deal.command("sweep")
@deal_arg
@funder_option
@shared_options
@click.pass_obj
def sweep(app: App, ref: str, funder: str) -> None:
    """Move FUNDER's leg from its deposit address into the deal, crediting FUNDER (anyone may send
    this); any excess of the leg's token goes back to FUNDER (if the token refuses it, it stays at
    the deposit address, for `nexotc deal return-deposit` later: warned about)."""
    from nexotc_client.chain.deal import token_amount
    from nexotc_client.chain.deposit import deposit_info, excess_left
    from nexotc_client.chain.deposit import sweep as sweep_deposit

    target = _deal_or_address(app, ref)
    if isinstance(target, str):
        raise NexotcError(
            f"{target} is not a deal of the factory: nothing can be swept into it (unless a deal is created there); "
            f"the funder alone can take its deposit back: nexotc deal return-deposit {target} --funder WALLET "
            "--leg base|quote --token TOKEN --account WALLET"
        )
    d = target
    wallet = _funder(d, funder)
    sender = app.sender()
    before = deposit_info(d, wallet)
    with step(app, "sweeping the deposit"):
        result = sweep_deposit(d, wallet, sender)
    left = excess_left(before, result)
    warnings = []
    if left:
        warnings.append(
            f"{token_amount(before.token, left)} of excess could not be returned to {wallet} (the token refused "
            f"the transfer, e.g. a blocklisted funder): it stays at the deposit address {before.address}; take it "
            f"back later with `nexotc deal return-deposit {d.address} --funder {wallet}`"
        )
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    extra = {
        "deal": d.address,
        "funder": wallet,
        "sender": sender.address,
        "deposit_address": before.address,
        "excess_left": left,
        "warnings": warnings,
    }
    _emit_tx(app, f"swept into {d.address}", result, extra, d)


@deal.command("return-deposit")
@deal_arg
@funder_option
@leg_option
@click.option(
    "--token",
    default=None,
    help="Token to return: the leg's (default), base, quote, eth, a token address or symbol (e.g. WBTC); "
    "required for an address that is not a deal.",
)
@shared_options
@click.pass_obj
def return_deposit(app: App, ref: str, funder: str, leg: str | None, token: str | None) -> None:
    """Send what FUNDER's deposit address holds back to FUNDER: another token, or the leg's token
    once the leg is funded or funding closed (anyone); FUNDER itself may call at any time. For an
    address that is not a deal (a deal never created): FUNDER's address, --leg and --token, and
    only FUNDER may send it (--account FUNDER)."""
    from nexotc_client.chain.deposit import return_deposit as return_to_funder
    from nexotc_client.chain.deposit import return_orphan

    target = _deal_or_address(app, ref)
    if isinstance(target, str):
        factory, wallet, leg_id = _orphan_args(app, target, funder, leg, "return-deposit")
        if token is None:
            raise NexotcError(
                f"return-deposit: {target} is not a deal, so no terms name the leg's token: pass --token (a symbol, "
                "an address or eth)"
            )
        token_address = _return_token(app, None, token)
        sender = app.sender()
        with step(app, "returning the deposit"):
            result = return_orphan(factory, target, wallet, leg_id, token_address, sender)
        extra = {"deal": target, "is_deal": False, "funder": wallet, "sender": sender.address}
        app.emit(
            {**extra, **tx_dict(result)},
            lambda c: render_tx(c, f"returned to {wallet}", result, token_amounts(result.events)),
        )
        return
    from nexotc_client.terms import LegId

    d = target
    wallet = _funder(d, funder)  # a party of the deal: a wrong-leg deposit (--leg the other leg) is returned too
    if token is not None:
        token = _return_token(app, d, token)
    leg_id = None if leg is None else LegId.BASE if leg.lower() == "base" else LegId.QUOTE
    sender = app.sender()
    _check_return(d, wallet, sender.address, token, leg_id)
    with step(app, "returning the deposit"):
        result = return_to_funder(d, wallet, sender, token, leg_id)
    _emit_tx(app, f"returned to {wallet}", result, {"deal": d.address, "funder": wallet, "sender": sender.address}, d)


__all__ = ["deal"]
