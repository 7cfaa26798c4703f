"""`nexotc kyc ...` and `nexotc issuer ...`: zk KYC/KYB credentials, proofs and the KYCRegistry.

    nexotc kyc deploy [--admin A] [--root-window 1h] [--force]     the registry (<home>/kyc.json)
    nexotc kyc secret --out SECRET.json | --show SECRET.json        holder: a new secret / its commitment again
    nexotc kyc issue --issuer-dir DIR --commitment C --jurisdiction 756 --kyc-level 2 [--entity individual]
                     [--accredited] [--expires +365d] [--holder LABEL] [--replace] --out CREDENTIAL.json [--force]
                                                                    (issuer, off chain)
    nexotc kyc prove --credential C.json --secret S.json --policy ID (--deal D | --desk N | --scope X)
                     [--wallet W] [--valid-for 1d] --out PROOF.json      holder: Groth16 proof (snarkjs)
    nexotc kyc submit PROOF.json --account W                        the bound wallet records the attestation
    nexotc kyc status WALLET (--deal D | --desk N | --scope X) [--policy ID]    exit 3: not compliant
    nexotc kyc disclose PROOF.json --field jurisdiction [--field ...] --out DISCLOSURE.json [--force]
    nexotc kyc policy register [--min-kyc-level N] [--accredited] [--entities individual,business]
                     [--deny 408]... [--label L] [--calldata] | policy list
    nexotc issuer init --issuer-dir DIR [--issuer ADDR]             the only command that creates a tree
    nexotc issuer grant ADDR [--label L] | revoke ADDR | publish-root --issuer-dir DIR [--prepare POLICY] [--force]
    nexotc issuer prepare --policy N [--root R]
    nexotc issuer revoke-credential INDEX --issuer-dir DIR | path INDEX --issuer-dir DIR --out F | show
    nexotc issuer expire-root ROOT | set-root-window DURATION | propose-admin ADDR|none | accept-admin

Every issuer command but `issuer init` refuses a directory without an issuer tree (a wrong --issuer-dir
must never pass for an empty tree). Registry admin commands (grant, revoke, expire-root, set-root-window,
propose-admin, accept-admin, policy register) take --calldata to print the call for a MultiSig admin
instead of sending it. Scopes: a deal (`--deal`: its address, or its creation number `3` / `#3`; a deployed
desk deal's scope is its desk), a desk (`--desk`, (1<<160)|id), or a raw field element (`--scope`,
0 <= scope < r, the BN254 scalar field). In a deployed plain deal's own scope, `prove` and `submit` refuse a
wallet that is not the deal's buyer or seller (the gate checks only them, and a credential attests one wallet
per scope). `issuer set-root-window` to the current window sends nothing.

Which registry: `kyc status|prove|submit` use the registry the scope's deals gate on, read from the chain: a
deployed deal's own `kyc_registry()`, else the recorded factory's (its deal implementation's: desk deals, deals
not created yet); the one recorded in <home>/kyc.json only without a factory (a note says when they differ: after
`kyc deploy --force`, which never changes the registry of a factory's deals). `issuer` and `kyc policy` commands
use the recorded one. An issuer directory also keeps `holder_paths.json` (the root of the path each holder file
was written with), so that `issuer publish-root` lists the holder files left stale, each with its `issuer path`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address
from nexotc_client.cli.render import tx_dict

if TYPE_CHECKING:
    from nexotc_client.chain.deal import Deal, TxResult
    from nexotc_client.chain.kyc import KYCRegistry
    from nexotc_client.issuer import IssuerStore

ENTITY_NAMES = {"individual": 1, "kyc": 1, "business": 2, "kyb": 2}
DEFAULT_ISSUER_DIR = "issuer"
EXIT_NOT_COMPLIANT = 3
"""`kyc status` exit code when the wallet is not compliant (no attestation, expired, other policy)."""


def _records(app: App) -> Any:
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords

    return KycRecords(app.home / KYC_FILE)


def _registry(app: App) -> KYCRegistry:
    from nexotc_client.chain.kyc import get_kyc_registry

    app.connect()
    return get_kyc_registry(_records(app))


def _emit_tx(app: App, title: str, result: TxResult, extra: dict[str, Any] | None = None) -> None:
    from nexotc_client.cli.render import render_tx

    app.emit({**(extra or {}), **tx_dict(result)}, lambda c: render_tx(c, title, result))


def _chain_now() -> int:
    from ape import chain

    return int(chain.blocks.head.timestamp)


def _scope(app: App, deal: str | None, desk_id: int | None, scope: str | None) -> int:
    return _scope_and_deal(app, deal, desk_id, scope)[0]


def _scope_and_deal(app: App, deal: str | None, desk_id: int | None, scope: str | None) -> tuple[int, Deal | None]:
    """The scope, and the deployed deal --deal names (None for a deal not created yet, --desk or --scope).
    --deal takes an address or a creation number (`3`, `#3`), as every deal command does."""
    from nexotc_client.chain.kyc import deal_scope, desk_scope, scope_of_deal

    given = [x for x in (deal, desk_id, scope) if x is not None]
    if len(given) != 1:
        raise NexotcError("give exactly one scope: --deal ADDRESS, --desk ID or --scope N")
    if deal is not None:
        from nexotc_client.chain.encoding import is_valid_address

        # an address may be a deal not created yet (factory.predict_address): prove before accepting;
        # a deployed deal names its scope (a desk deal's is its desk)
        ref = deal.strip()
        if is_valid_address(ref) and not _has_code(ref):
            return deal_scope(ref), None
        found = app.deal(ref)
        return scope_of_deal(found.contract), found
    if desk_id is not None:
        return desk_scope(desk_id), None
    from nexotc_client.chain.kyc import check_scope

    return check_scope(str(scope), "--scope"), None


def _deal_of_scope(app: App, scope: int) -> Deal | None:
    """The deployed deal (of the recorded factory, or one it replaced) whose own scope `scope` is: a deal
    that is not a desk deal (a desk deal's scope is its desk). None for any other scope."""
    from eth_utils import to_checksum_address

    from nexotc_client.chain.kyc import scope_of_deal

    if not 0 < scope < 1 << 160:
        return None
    address = to_checksum_address(f"0x{scope:040x}")
    if not _has_code(address):
        return None
    try:
        found = app.deal(address)
    except NexotcError:  # not a deal of the recorded factories (or none is recorded): not ours to check
        return None
    return found if scope_of_deal(found.contract) == scope else None


def _require_principal(app: App, scope: int, wallet: str, what: str, deal: Deal | None = None) -> None:
    """In a plain deal's own scope only its buyer and seller are ever checked by the gate, and a credential
    attests one wallet per scope: refuse another wallet before a proof is made or sent, so that the holder's
    credential is not used up on a wallet the deal never asks about. A desk deal's scope is its desk, where
    any member's wallet may prove, and a deal not created yet names no principals: neither is checked."""
    from nexotc_client.chain.kyc import deal_scope

    if deal is None or deal_scope(deal.address) != scope:
        deal = _deal_of_scope(app, scope)
    if deal is None:
        return
    terms = deal.terms
    if wallet.lower() in (terms.buyer.lower(), terms.seller.lower()):
        return
    raise NexotcError(
        f"{what} {wallet} is not a principal of deal {deal.address} (buyer {terms.buyer}, seller {terms.seller}): "
        "its gate checks only them, and a credential attests one wallet per scope, so an attestation for "
        "another wallet would use up the credential in this deal"
    )


def _offer_scope(app: App, ref: str, wallet: str) -> tuple[int, int, int]:
    """The scope `wallet` proves in to accept (or have accepted) the signed offer `ref`, the offer's final
    expiry and its policy. The wallet must be the offer's maker or its taker (any wallet for a public offer:
    it would be the one accepting); a desk offer's deal checks its principals in the desk's scope, any other
    in its own (predicted) address, which for a public offer depends on who accepts."""
    from nexotc_client.chain.kyc import deal_scope, desk_scope
    from nexotc_client.chain.offers import check_domain, filled_terms
    from nexotc_client.cli.offer import read_offer
    from nexotc_client.terms import ZERO_ADDRESS

    signed, _ = read_offer(ref)
    factory = app.factory()
    check_domain(signed, factory)
    offer = signed.offer
    is_maker = wallet.lower() == offer.maker.lower()
    if not is_maker and offer.taker != ZERO_ADDRESS and wallet.lower() != offer.taker.lower():
        raise NexotcError(
            f"{wallet} is neither the offer's maker ({offer.maker}) nor its taker ({offer.taker}): its deal's gate "
            "checks only them"
        )
    terms = offer.terms
    if offer.desk_id:
        return desk_scope(offer.desk_id), terms.final_expiry, terms.policy_id
    if offer.taker == ZERO_ADDRESS and is_maker:
        raise NexotcError(
            "a public offer's deal address depends on who accepts it: the maker proves with --deal once it is "
            "accepted (or the taker proves first, with --offer)"
        )
    accepting = offer.taker if offer.taker != ZERO_ADDRESS else wallet
    deal = factory.predict(filled_terms(offer, accepting), offer.maker, offer.offer_hash(), offer.desk_id)
    return deal_scope(deal), terms.final_expiry, terms.policy_id


def _require_scope_policy(app: App, deal: Deal | None, desk_id: int | None, policy_id: int) -> None:
    """A proof for a deployed gated deal (or a desk with a KYC policy) must be of its policy: another one does
    not count for it, and submitted it would hold the scope's attestation on that policy until it ends (an
    attestation in force is only extended), locking the wallet out of the deal meanwhile."""
    if deal is not None:
        required = deal.terms.policy_id
        if not required:  # nothing would ever check it, and submitted it would use up the credential here
            raise NexotcError(
                f"--policy {policy_id}: deal {deal.address} is not gated: its terms carry no compliance policy, "
                "so no proof is needed for it"
            )
        where = f"deal {deal.address} is gated on policy #{required}"
    elif desk_id is not None:
        from nexotc_client.chain.desk import desk_registry_of

        required = desk_registry_of(app.factory().address).desk(desk_id, lists=False).kyc_policy
        where = f"desk #{desk_id}'s deals are gated on policy #{required}"
    else:
        return
    if required and required != policy_id:
        raise NexotcError(
            f"--policy {policy_id}: {where}; a proof of policy #{policy_id} does not count for it, and submitted it "
            f"would hold this scope's attestation on #{policy_id} until it ends (prove with --policy {required})"
        )


def _home_record(app: App) -> Any:
    """The KYC registry this home records for the network (`<home>/kyc.json`), None when none is recorded or
    it is gone with a chain reset."""
    from nexotc_client.chain.errors import NotDeployedError
    from nexotc_client.chain.kyc import get_kyc_record

    try:
        return get_kyc_record(_records(app))
    except NotDeployedError:
        return None


def _registry_at(app: App, address: str) -> KYCRegistry:
    """The registry at `address` (its events read from its recorded deployment block when it is the home's)."""
    from nexotc_client.chain.kyc import KYCRegistry

    home = _home_record(app)
    start = home.block if home is not None and home.address == address else 0
    return KYCRegistry.at(address, start_block=start)


def _recorded_factory(app: App) -> Any:
    """The recorded factory (None when none is recorded, or it is gone with a chain reset)."""
    from nexotc_client.chain.errors import NotDeployedError

    try:
        return app.factory()
    except NotDeployedError:
        return None


def _differs_from_home(app: App, address: str, who_gates: str) -> str | None:
    """A note when `address` (the registry `who_gates` on) is not the registry this home records."""
    home = _home_record(app)
    if home is None or home.address == address:
        return None
    return (
        f"{who_gates} on the kyc registry {address}, not on the one this home records ({home.address}): "
        f"{address} is used (a deal's registry is fixed by its factory's deployment)"
    )


def _scope_registry(
    app: App, scope: int, deal: Deal | None = None, allow_none: bool = False
) -> tuple[KYCRegistry | None, str | None]:
    """The KYC registry that checks attestations in `scope`, and a note when it is not the one this home records.

    A deployed deal's registry is its own (`kyc_registry()`, fixed by its factory: `deal`, or the deal whose own
    scope `scope` is); for any other scope (a desk's, whose deals the recorded factory makes, a deal not created
    yet, a raw scope) the recorded factory's; without a factory (or one without a registry) the home's. A deployed
    deal without a registry is refused (its gate can never pass) unless `allow_none`: then (None, why)."""
    from nexotc_client.chain.kyc import registry_of_deal, registry_of_factory

    if deal is None:
        deal = _deal_of_scope(app, scope)
    if deal is not None:
        address = registry_of_deal(deal.contract)
        if address is None:
            why = (
                f"deal {deal.address} has no kyc registry (its factory was deployed without one): its compliance "
                "gate can never pass, so no attestation counts for it"
            )
            if allow_none:
                return None, why
            raise NexotcError(why)
        return _registry_at(app, address), _differs_from_home(app, address, f"deal {deal.address} gates")
    factory = _recorded_factory(app)
    address = registry_of_factory(factory) if factory is not None else None
    if address is None:
        return _registry(app), None
    whose = f"the recorded factory {factory.address}'s deals (existing and future) gate"
    return _registry_at(app, address), _differs_from_home(app, address, whose)


def _has_code(address: str) -> bool:
    from ape import chain

    return len(chain.provider.get_code(address)) > 0


def _scope_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--deal", default=None, help="Scope: this deal (address or creation number)."),
            click.option("--desk", "desk_id", type=click.IntRange(min=1), default=None, help="Scope: this desk."),
            click.option("--scope", default=None, help="Scope: a raw field element."),
        ]
    ):
        func = option(func)
    return func


def _calldata_option(func: Any) -> Any:
    return click.option(
        "--calldata", is_flag=True, help="Print the call (target, data) for a MultiSig admin instead of sending it."
    )(func)


def _admin(
    app: App,
    method: str,
    *values: Any,
    calldata: bool,
    title: str,
    check: Callable[[KYCRegistry], None] | None = None,
) -> TxResult | None:
    """Send a registry admin `method` from --account (which must be the admin), or with --calldata print
    the call for a MultiSig admin. `check(registry)` refuses, from chain state, what the registry would."""
    registry = _registry(app)
    args = registry.args(method, *values)
    if check is not None:
        check(registry)
    # who executes: the admin; for accept_admin the proposed admin; policies: the admin or an issuer
    if method == "accept_admin":
        executor = registry.pending_admin
        if executor is None:
            raise NexotcError("no registry admin is proposed (`nexotc issuer propose-admin ADDR` first)")
    else:
        executor = registry.admin
    if calldata:
        target, data = registry.call(method, *args)
        hexdata = "0x" + data.hex()
        out = {"method": method, "target": target, "value": 0, "data": hexdata, "executor": executor}
        # plain output on one line: a folded line would break copy-paste of the hex
        app.emit(
            out, lambda _c: click.echo(f"{method} (not sent; for {executor}): call {target} value 0 data {hexdata}")
        )
        return None
    sender = app.sender()
    if sender.address != executor and not (method == "register_policy" and registry.is_issuer(sender.address)):
        role = "the proposed registry admin" if method == "accept_admin" else "the registry admin"
        extra = " or an issuer" if method == "register_policy" else ""
        raise NexotcError(
            f"{sender.address} is not {role} ({executor}){extra}: send from it, or --calldata for a MultiSig"
        )
    with step(app, title):
        result = registry._send(method, sender, *args)
    return result


def _refuse_overwrite(out: str, force: bool, what: str) -> None:
    if Path(out).exists() and not force:
        raise NexotcError(f"{out} exists: {what} is not overwritten without --force")


def _iso(ts: int) -> str:
    from nexotc_client.cli.render import fmt_time

    return fmt_time(ts)


# ===================================================================== kyc
@click.group()
def kyc() -> None:
    """zk KYC/KYB: credentials, Groth16 compliance proofs, attestations in the KYCRegistry."""


@kyc.command("deploy")
@click.option("--admin", default=None, help="Registry admin (default: --account); usually a MultiSig.")
@click.option("--root-window", default="1h", help="How long a superseded root stays valid (duration).")
@click.option(
    "--force",
    is_flag=True,
    help="Deploy a new registry even if one is recorded. A recorded factory's deals keep gating on its own "
    "registry (fixed at its deployment) until `nexotc deploy --force` deploys a factory with the new one.",
)
@shared_options
@click.pass_obj
def deploy(app: App, admin: str | None, root_window: str, force: bool) -> None:
    """Deploy the KYCRegistry (its Groth16 verifier inlined) and record it (in <home>/kyc.json).

    A factory's KYC registry is fixed when the factory is deployed (its deal implementation's `kyc_registry()`):
    with a factory recorded, a new registry gates none of its deals, existing or future, until `nexotc deploy
    --force` deploys a factory with it (said as a warning). `kyc` commands for a deal always use the deal's own
    registry; `issuer` and `kyc policy` commands use the one recorded here."""
    from nexotc_client.chain.kyc import deploy_kyc_registry, get_kyc_record, registry_of_factory
    from nexotc_client.spec import parse_duration

    app.connect()
    records = _records(app)
    factory = _recorded_factory(app)
    bound = registry_of_factory(factory) if factory is not None else None
    if not force:
        try:
            existing = get_kyc_record(records)
        except NexotcError:
            existing = None
        if existing is not None:
            notes = []
            if factory is not None and bound != existing.address:
                notes.append(_unused_registry_warning(factory.address, bound, existing.address))

            def render_existing(c: Any) -> None:
                c.print(f"kyc registry already deployed at {existing.address}; --force deploys another")
                for n in notes:
                    c.print(f"warning: {n}")

            app.emit({"already_deployed": True, **existing.to_dict(), "warnings": notes}, render_existing)
            return
    window = parse_duration(root_window, "--root-window")
    sender = app.sender()
    with step(app, "deploying the kyc registry"):
        registry = deploy_kyc_registry(
            sender, admin=wallet_address(admin) if admin else None, root_window=window, records=records
        )
    record = records.get(_network())
    # a factory's registry is fixed: a new one gates none of the recorded factory's deals (existing or future)
    warnings = [_unused_registry_warning(factory.address, bound, registry.address)] if factory is not None else []
    data = {
        "already_deployed": False,
        **(record.to_dict() if record else {"address": registry.address}),
        "factory": factory.address if factory is not None else None,
        "factory_kyc_registry": bound,
        "warnings": warnings,
    }

    def render(c: Any) -> None:
        c.print(
            f"kyc registry {registry.address} (admin {registry.admin}); "
            "deals gate on it once `nexotc deploy --force` deploys a factory with it"
        )
        for w in warnings:
            c.print(f"warning: {w}")

    app.emit(data, render)


def _unused_registry_warning(factory: str, bound: str | None, registry: str) -> str:
    gates = f"the kyc registry {bound}" if bound else "no kyc registry"
    return (
        f"the recorded factory {factory}'s deals, existing and future, gate on {gates} (fixed when the factory was "
        f"deployed), not on {registry}: it gates no deal until `nexotc deploy --force` deploys a factory with it. "
        f"Meanwhile `kyc status|prove|submit` for a deal use the deal's own registry, while `issuer` and `kyc "
        f"policy` commands (roots, policies) go to {registry}"
    )


def _network() -> str:
    from nexotc_client.chain.deployment import network_key

    return network_key()


@kyc.command("secret")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write a new secret (never overwritten).",
)
@click.option(
    "--show",
    "show_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Print the commitment of an existing secret file (read only; the secret itself is never printed).",
)
@shared_options
@click.pass_obj
def secret(app: App, out: str | None, show_file: str | None) -> None:
    """Holder: create a secret (kept private) and print its commitment (what the issuer needs); the file stores
    the commitment too. `--show FILE` prints the commitment of an existing secret file (older files, which do not
    store it, included: it is derived from the secret)."""
    from nexotc_client.issuer import HolderSecret

    if (out is None) == (show_file is None):
        raise click.UsageError("give --out FILE (a new secret) or --show FILE (the commitment of an existing one)")
    if show_file is not None:
        holder = _load_secret(show_file)
        app.emit(
            {"secret_file": show_file, "commitment": str(holder.commitment)},
            lambda c: c.print(f"commitment {holder.commitment}"),
        )
        return
    assert out is not None
    if Path(out).exists():
        raise NexotcError(f"{out} exists: a secret is never overwritten")
    holder = HolderSecret.generate()
    holder.save(out)
    app.emit(
        {"secret_file": out, "commitment": str(holder.commitment)},
        lambda c: c.print(
            f"secret written to {out} (keep it private)\ncommitment {holder.commitment}\n"
            f"(`nexotc kyc secret --show {out}` prints the commitment again)"
        ),
    )


@kyc.command("issue")
@click.option("--issuer-dir", type=click.Path(file_okay=False), default=None, help="Issuer directory.")
@click.option("--commitment", required=True, help="The holder's secret commitment (`nexotc kyc secret`).")
@click.option("--entity", default="individual", help="individual (KYC) or business (KYB).")
@click.option("--jurisdiction", type=click.IntRange(1, 999), required=True, help="ISO 3166-1 numeric code.")
@click.option("--kyc-level", type=click.IntRange(0, 255), required=True)
@click.option("--accredited", is_flag=True, help="The holder is an accredited investor.")
@click.option("--issued-at", default="now", help="Time (default now).")
@click.option("--expires", default="+365d", help="Time the credential expires (default +365d).")
@click.option("--schema", "schema_id", type=click.IntRange(min=0), default=1, help="Credential schema id.")
@click.option("--holder", "holder_label", default="", help="A label for the issuer's register.")
@click.option(
    "--replace",
    is_flag=True,
    help="The holder commitment already has a live credential: revoke it and issue this one instead.",
)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The holder's credential file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@shared_options
@click.pass_obj
def issue(
    app: App,
    issuer_dir: str | None,
    commitment: str,
    entity: str,
    jurisdiction: int,
    kyc_level: int,
    accredited: bool,
    issued_at: str,
    expires: str,
    schema_id: int,
    holder_label: str,
    replace: bool,
    out: str,
    force: bool,
) -> None:
    """Issuer (off chain): add a credential to the issuer's tree (`issuer init` creates it) and write the
    holder's file. One live credential per holder commitment: --replace revokes the earlier one."""
    from nexotc_client.spec import parse_time
    from nexotc_client.zk.credential import Credential

    kind = ENTITY_NAMES.get(entity.strip().lower())
    if kind is None:
        raise NexotcError(f"--entity: individual or business, got {entity!r}")
    holder_commitment = _commitment(commitment)
    now = int(time.time())
    issued_time = parse_time(issued_at, now, "--issued-at")
    expires_time = parse_time(expires, now, "--expires")
    if expires_time <= now:
        raise NexotcError(f"--expires: {_iso(expires_time)} is not in the future (the credential would be expired)")
    _refuse_overwrite(out, force, "a credential file")
    try:
        cred = Credential(
            secret_commitment=holder_commitment,
            entity_type=kind,
            jurisdiction=jurisdiction,
            kyc_level=kyc_level,
            accredited=int(accredited),
            issued_at=issued_time,
            expires_at=expires_time,
            schema_id=schema_id,
        )
    except ValueError as exc:
        raise NexotcError(f"credential: {exc}") from exc
    store = _load_store(app, issuer_dir)
    replaced = [e.index for e in store.live_with_commitment(holder_commitment)] if replace else []
    holder = store.issue(cred, holder_label, replace=replace)
    holder.save(out)
    _record_handout(store, holder.index, store.root, out)
    # every holder file written before this one is under an older root: those never published are unusable now
    _, published = _path_log(store)
    stale = [
        e
        for e in _stale_paths(store, issuer_dir, None, 0)
        if e["path_root"] is not None and int(e["path_root"]) not in published
    ]
    warnings = []
    if stale:
        listed = ", ".join(f"#{e['index']}" + (f" ({e['file']})" if e["file"] else "") for e in stale)
        warnings.append(
            f"the holder file{'s' if len(stale) > 1 else ''} of credential{'s' if len(stale) > 1 else ''} {listed} "
            f"{'hold paths' if len(stale) > 1 else 'holds a path'} under a root this tree never published and no "
            "longer has: after `nexotc issuer publish-root`, hand each holder a fresh path (publish-root lists the "
            "`nexotc issuer path` commands)"
        )
    refresh = _path_command(holder.index, issuer_dir, out)
    note = (
        f"{out} holds a path under the new root only: it proves once that root is published, provided no other "
        f"credential is issued or revoked first (else, after publishing: `{refresh}`)"
    )
    data = {
        "index": holder.index,
        "leaf": str(cred.leaf()),
        "root": str(store.root),
        "credential_file": out,
        "issuer": store.issuer,
        "replaced": replaced,
        "stale_paths": [e["index"] for e in stale],
        "warnings": warnings,
        "note": note,
    }
    revoked = f"; credential {', '.join(f'#{i}' for i in replaced)} revoked" if replaced else ""

    def render(c: Any) -> None:
        c.print(
            f"credential #{holder.index} issued{revoked}; holder file {out}\nnew root {store.root} "
            "(publish it: `nexotc issuer publish-root`)"
        )
        c.print(f"note: {note}", soft_wrap=True)
        for w in warnings:
            c.print(f"warning: {w}", soft_wrap=True)

    app.emit(data, render)


def _commitment(text: str) -> int:
    from nexotc_client.zk.poseidon import P

    value = text.strip()
    try:
        number = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
    except ValueError:
        raise NexotcError(
            f"--commitment: expected the holder's commitment as `nexotc kyc secret` prints it (a decimal "
            f"integer, or 0x hex), got {text!r}"
        ) from None
    if not 0 < number < P:
        raise NexotcError("--commitment: must be a non-zero BN254 field element (`nexotc kyc secret` prints it)")
    return number


def _issuer_dir(app: App, given: str | None) -> Path:
    return Path(given) if given else app.home / DEFAULT_ISSUER_DIR


def _load_store(app: App, given: str | None) -> IssuerStore:
    """The existing issuer tree (refuses a missing directory or tree: `issuer init` creates one)."""
    from nexotc_client.issuer import IssuerStore

    return IssuerStore.load(_issuer_dir(app, given))


# ------------------------------------------------- holder files handed out
PATHS_FILE = "holder_paths.json"
"""In an issuer directory: per credential, the root of the path in the last holder file `kyc issue` or `issuer
path` wrote (and where), so that `issuer publish-root` names the holder files a new root leaves stale. Advisory:
a missing or unreadable file only means that those paths are unknown (and listed as needing a refresh)."""


def _path_log(store: IssuerStore) -> tuple[dict[int, tuple[int, str | None]], set[int]]:
    """(live credential index => (root of the path last handed out, the file it was written to), the roots this
    tree published, as far as recorded). Only entries whose leaf is still that credential's count (a tree
    re-created in the same directory does not inherit them); an unreadable file counts as empty."""
    from nexotc_client.safejson import load_json

    published = {record.root for record in store.published.values()}
    try:
        data = load_json((store.directory / PATHS_FILE).read_text())
        paths = {}
        for key, entry in data["paths"].items():
            index = int(key)
            issued = store.issued.get(index)
            if issued is None or issued.revoked or int(entry["leaf"]) != issued.credential.leaf():
                continue
            file = entry.get("file")
            paths[index] = (int(entry["root"]), None if file is None else str(file))
        published |= {int(root) for root in data.get("published", [])}
        return paths, published
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        return {}, published


def _save_path_log(store: IssuerStore, paths: dict[int, tuple[int, str | None]], published: set[int]) -> None:
    from nexotc_client.issuer import FORMAT, _write_json

    entries = {
        str(i): {"root": str(root), "file": file, "leaf": str(store.issued[i].credential.leaf())}
        for i, (root, file) in sorted(paths.items())
    }
    data = {"format": FORMAT, "kind": "issuer_holder_paths", "paths": entries, "published": sorted(map(str, published))}
    _write_json(store.directory / PATHS_FILE, data)


def _record_handout(store: IssuerStore, index: int, root: int, file: str) -> None:
    """Remember that credential `index`'s holder file `file` holds a path under `root`."""
    paths, published = _path_log(store)
    paths[index] = (root, str(Path(file).resolve()))
    try:
        _save_path_log(store, paths, published)
    except OSError:  # advisory: the holder file is written; publish-root then lists this one as unknown
        pass


def _record_published(store: IssuerStore, root: int) -> None:
    paths, published = _path_log(store)
    try:
        _save_path_log(store, paths, published | {root})
    except OSError:  # advisory: the root is published and recorded in the issuer register anyway
        pass


def _path_command(index: int, issuer_dir: str | None, file: str | None) -> str:
    """The exact `nexotc issuer path` that refreshes credential `index`'s holder file."""
    import shlex

    where = f" --issuer-dir {shlex.quote(issuer_dir)}" if issuer_dir else ""
    out = f"{shlex.quote(file)} --force" if file else shlex.quote(f"credential-{index}.json")
    return f"nexotc issuer path {index}{where} --out {out}"


def _stale_paths(
    store: IssuerStore, issuer_dir: str | None, registry: KYCRegistry | None, now: int
) -> list[dict[str, Any]]:
    """The live credentials whose last holder file is not under the tree's current root, each with why, until when
    its path still works (a superseded root within its window: `valid_until`; else None: not now) and the exact
    command that refreshes it. Without `registry` (off chain), validity is not read."""
    handed, _ = _path_log(store)
    statuses: dict[int, Any] = {}
    out = []
    for index in sorted(store.issued):
        entry = store.issued[index]
        if entry.revoked:
            continue
        root, file = handed.get(index, (None, None))
        if root == store.root:
            continue
        valid_until = None
        if root is None:
            why = "no record of the path it was handed (written before nexotc kept one)"
        else:
            if registry is not None and root not in statuses:
                statuses[root] = registry.root_status(root)
            status = statuses.get(root)
            if status is None:
                why = f"its path is under root {root}"
            elif status.valid_at(now):
                valid_until = status.valid_until
                why = f"its path is under the superseded root {root}, valid until {_iso(valid_until)} (root window)"
            elif status.known:
                why = f"its path is under root {root}, no longer valid on chain"
            else:
                why = f"its path is under root {root}, never published"
        out.append(
            {
                "index": index,
                "holder": entry.holder,
                "path_root": None if root is None else str(root),
                "file": file,
                "valid_until": valid_until,
                "why": why,
                "command": _path_command(index, issuer_dir, file),
            }
        )
    return out


@kyc.command("prove")
@click.option("--credential", "credential_file", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--secret", "secret_file", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--policy", "policy_id", type=click.IntRange(min=1), required=True, help="Registry policy id.")
@_scope_options
@click.option(
    "--offer",
    "offer_ref",
    default=None,
    metavar="FILE|LINK",
    help="Scope: the deal this signed offer makes once accepted (its desk's scope for a desk offer); the default "
    "validity is the offer's final expiry and --policy must be the offer's.",
)
@click.option("--wallet", default=None, help="The wallet to bind (default: --account).")
@click.option(
    "--valid-for",
    default=None,
    help="How long the attestation lasts, capped by the credential (default: to the final expiry of the --deal "
    "or --offer it is for; for --desk or --scope, as long as the credential (a desk's deals take deposits only "
    "from funders attested until their final expiry); required for a --deal not created yet).",
)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The proof file.")
@click.option(
    "--force", is_flag=True, help="Overwrite an existing --out file (its salts, needed to disclose, are lost)."
)
@shared_options
@click.pass_obj
def prove(
    app: App,
    credential_file: str,
    secret_file: str,
    policy_id: int,
    deal: str | None,
    desk_id: int | None,
    scope: str | None,
    offer_ref: str | None,
    wallet: str | None,
    valid_for: str | None,
    out: str,
    force: bool,
) -> None:
    """Holder: prove the credential meets a registered policy, bound to a wallet and a scope (--offer: before
    accepting a gated offer, in the scope of the deal it makes).

    Checked before proving (nothing is written when one fails): the secret is the credential's, the credential's
    path is under a root valid on chain (else the exact `nexotc issuer path N` to ask the issuer for), and the
    credential has not attested another wallet in this scope. The registry is the one the scope's deals gate on:
    a deployed deal's own, else the recorded factory's."""
    import os

    from nexotc_client.issuer import HolderFile, prove_compliance
    from nexotc_client.spec import parse_duration
    from nexotc_client.zk.credential import Policy

    # a proof file holds the audit salts: overwriting one that was submitted loses its disclosures
    _refuse_overwrite(out, force, "a proof file (its salts open the audit commitment)")
    holder = HolderFile.load(credential_file)
    holder_secret = _load_secret(secret_file)
    # the secret first: with the wrong one nothing else about the credential matters
    credential = _with_secret(holder, holder_secret, credential_file, secret_file)
    app.connect()
    if wallet:
        who = wallet_address(wallet)
    elif app.account or os.environ.get("NEXOTC_ACCOUNT"):
        who = app.sender().address
    else:
        raise NexotcError("the proof is bound to a wallet: pass --wallet ADDRESS (or --account, its address is used)")
    validity = parse_duration(valid_for, "--valid-for") if valid_for is not None else None
    if validity is not None and validity <= 0:
        raise NexotcError("--valid-for: must be at least 1s (the attestation must end after the proof's time)")
    if offer_ref is not None:
        if any(x is not None for x in (deal, desk_id, scope)):
            raise NexotcError("give exactly one scope: --offer, --deal, --desk or --scope")
        target, deal_expiry, offer_policy = _offer_scope(app, offer_ref, who)
        deployed = None
        if offer_policy != policy_id:
            raise NexotcError(
                f"--policy {policy_id}: the offer's deal is gated on policy #{offer_policy}"
                if offer_policy
                else f"--policy {policy_id}: the offer's deal is not gated (its terms carry no compliance policy)"
            )
    else:
        target, deployed = _scope_and_deal(app, deal, desk_id, scope)
        if deal is not None and deployed is None and validity is None:
            raise NexotcError(
                f"--deal {deal.strip()}: no deal there yet, so its final expiry (what the attestation must cover: "
                "releases are gated until then) is unknown: prove with --offer FILE|LINK (the offer that makes it), "
                "or give --valid-for DURATION"
            )
        _require_principal(app, target, who, "--wallet" if wallet else "--account", deployed)
        # a deployed deal: releases are gated until its final expiry, so that is what the attestation must cover
        deal_expiry = deployed.terms.final_expiry if deployed is not None else None
    _require_scope_policy(app, deployed, desk_id, policy_id)
    # the registry the scope's gate asks: a deployed deal's own, else the recorded factory's (not necessarily the
    # one this home records: `kyc deploy --force` never changes the registry of a factory's deals)
    registry, note = _scope_registry(app, target, deployed)
    assert registry is not None
    # the policy exactly as the registry enforces it: decoded from its registered word
    try:
        policy = Policy.from_word(registry.policy(policy_id).policy_word)
    except ValueError as exc:
        raise NexotcError(f"policy #{policy_id}: {exc}") from exc
    now = _chain_now()
    warnings = [note] if note else []
    path_until = _check_path_root(registry, holder, now)
    if validity is not None:
        wanted = now + validity
    else:
        # a deal's final expiry; a desk's (or a raw scope's) deals are unknown: the credential's own lifetime
        wanted = deal_expiry if deal_expiry is not None and deal_expiry > now else holder.credential.expires_at - 1
    valid_until = min(wanted, holder.credential.expires_at - 1)
    # what the registry would refuse (named before proving, nothing written): a credential attests one wallet per
    # scope (its nullifier, Poseidon([secret, scope]), is computed here), and an attestation in force only grows
    registry.check_nullifier(target, credential.nullifier(target), who)
    registry.check_extends(who, target, policy_id, valid_until, now)
    expires_at = holder.credential.expires_at
    # capped by the credential: said here unless it is the deal's final expiry that is cut short (said below)
    if valid_until < wanted and wanted != deal_expiry:
        asked = f"--valid-for {valid_for}" if validity is not None else "the default validity"
        warnings.append(
            f"the attestation is capped at the credential's expiry: it ends at {_iso(valid_until)}, just before the "
            f"credential expires ({_iso(expires_at)}), not at {_iso(wanted)} as {asked} asks"
        )
    if deal_expiry is not None and valid_until < deal_expiry:
        cause = "the credential expires first" if valid_until < wanted else "--valid-for ends first"
        warnings.append(
            f"the attestation ends at {_iso(valid_until)}, before the deal's final expiry {_iso(deal_expiry)} "
            f"({cause}): the deal takes no deposit from this wallet (a funder must be attested until the final "
            "expiry), and releases after it ends need a new proof"
        )
    if path_until is not None:
        warnings.append(
            f"the credential's path is under a superseded root of its issuer, valid until {_iso(path_until)} (the "
            f"registry's root window): submit the proof before then; later proofs need a fresh path (ask the issuer "
            f"for `nexotc issuer path {holder.index}`)"
        )
    # no `step` spinner here: the prover shows its own stages (witness, proof) on stderr
    proof_file = prove_compliance(
        holder, holder_secret, policy, policy_id, target, who, now, valid_until, progress=not app.json
    )
    proof_file.save(out)
    data = {
        "proof_file": out,
        "wallet": who,
        "scope": str(target),
        "policy_id": policy_id,
        "kyc_registry": registry.address,
        "now": now,
        "valid_until": valid_until,
        "nullifier": str(proof_file.proof.nullifier),
        "audit_commitment": str(proof_file.proof.audit_commitment),
        "warnings": warnings,
    }

    def render(c: Any) -> None:
        c.print(f"proof written to {out} (bound to {who}, valid until {_iso(valid_until)})")
        for warning in warnings:
            c.print(f"warning: {warning}")

    app.emit(data, render)


def _load_secret(path: str) -> Any:
    from nexotc_client.issuer import HolderSecret

    return HolderSecret.load(path)


def _with_secret(holder: Any, secret: Any, credential_file: str, secret_file: str) -> Any:
    """The credential with the holder's secret: refuses a secret whose commitment is not the credential's, naming
    both (checked before the path, whose staleness would otherwise hide a wrong --secret)."""
    committed = holder.credential.secret_commitment
    if secret.commitment != committed:
        raise NexotcError(
            f"this secret does not belong to the credential: --secret {secret_file} has commitment "
            f"{secret.commitment}, credential #{holder.index} in {credential_file} was issued to commitment "
            f"{committed} (wrong --secret or --credential?)"
        )
    return holder.with_secret(secret)


def _check_path_root(registry: KYCRegistry, holder: Any, now: int) -> int | None:
    """Refuse a credential whose Merkle path is under a root the registry does not accept now, naming why and the
    exact `nexotc issuer path N` (N: the credential's leaf index) the holder asks its issuer for. Returns the end of
    the root's validity when it is a superseded root still in its window (None: the issuer's current root)."""
    status = registry.root_status(holder.root)
    if status.valid_at(now):
        return None if status.current else status.valid_until
    index = holder.index
    ask = f"ask the issuer for a fresh path: `nexotc issuer path {index} --out FILE` (credential #{index})"
    where = f"in the kyc registry {registry.address}"
    if status.known:
        if status.valid_until == 0:
            why = f"was expired on chain (the issuer was revoked, or the admin's `issuer expire-root`) {where}"
        else:
            why = (
                f"was superseded by a newer root of its issuer and its root window ended at {_iso(status.valid_until)}"
            )
        raise NexotcError(f"the credential's Merkle path is under root {holder.root}, which {why}: {ask}")
    issuer = holder.issuer
    current = registry.current_root(issuer) if issuer else 0
    if issuer and not registry.is_issuer(issuer):
        cause = f"its issuer {issuer} is not an issuer {where}"
    elif issuer and current == 0:
        cause = f"its issuer {issuer} has published no root {where} yet (`nexotc issuer publish-root`)"
    elif issuer:
        cause = (
            f"its issuer {issuer} never published it {where} (its current root is {current}: the tree changed, "
            "e.g. another credential was issued, after this file was written)"
        )
    else:
        cause = f"it was never published {where}"
    raise NexotcError(f"the credential's Merkle path is under root {holder.root}, unknown on chain: {cause}; {ask}")


#: the whole numbers of a proof file (the salts too), named when one is not
_PROOF_INTEGERS = ("policy_id", "scope", "now", "valid_until")
_WHOLE = re.compile(r"[+-]?[0-9]+")


def _load_proof(path: str) -> Any:
    """`ProofFile.load`, with a field that is not a whole number named as such (never Python's int() text)."""
    from nexotc_client.issuer import ProofFile
    from nexotc_client.safejson import load_json

    try:
        data = load_json(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        data = None  # ProofFile.load says what is wrong with the file
    if isinstance(data, dict) and data.get("kind") == "proof":
        fields = [(name, data[name]) for name in _PROOF_INTEGERS if name in data]
        private = data.get("private")
        salts = private.get("salts") if isinstance(private, dict) else None
        if isinstance(salts, dict):
            fields += [(f"salt of {name}", value) for name, value in salts.items()]
        for name, value in fields:
            whole = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and _WHOLE.fullmatch(value.strip()) is not None
            )
            if not whole:
                raise NexotcError(f"proof file {path} is malformed: its {name} {value!r} is not a whole number")
    return ProofFile.load(path)


@kyc.command("submit")
@click.argument("proof_path", type=click.Path(exists=True, dir_okay=False))
@shared_options
@click.pass_obj
def submit(app: App, proof_path: str) -> None:
    """Submit a proof from the wallet bound in it (--account): records the attestation, in the registry the proof's
    scope gates on (a deployed deal's own, else the recorded factory's)."""
    proof_file = _load_proof(proof_path)  # refuses a file whose fields disagree with its public signals
    app.connect()
    sender = app.sender()
    scope = proof_file.proof.scope
    deal = _deal_of_scope(app, scope)
    _require_principal(app, scope, proof_file.wallet, "the proof's wallet", deal)
    # the registry the scope's gate asks: a deployed deal's own, else the recorded factory's
    registry, note = _scope_registry(app, scope, deal)
    assert registry is not None
    with step(app, "submitting the proof"):
        result = registry.submit_proof(proof_file.proof, proof_file.policy_id, sender)
    extra = {"scope": str(scope), "valid_until": proof_file.valid_until, "kyc_registry": registry.address}
    if note:
        extra["note"] = note
    title = (
        f"attested {sender.address} for policy #{proof_file.policy_id} in scope {scope} "
        f"until {_iso(proof_file.valid_until)}"
    )

    def render(c: Any) -> None:
        from nexotc_client.cli.render import render_tx

        render_tx(c, title, result)
        if note:
            c.print(f"note: {note}")

    app.emit({**extra, **tx_dict(result)}, render)


@kyc.command("status")
@click.argument("wallet")
@_scope_options
@click.option("--policy", "policy_id", type=click.IntRange(min=1), default=None, help="Check this policy.")
@shared_options
@click.pass_context
def status(
    ctx: click.Context, wallet: str, deal: str | None, desk_id: int | None, scope: str | None, policy_id: int | None
) -> None:
    """A wallet's attestation in a scope: policy, expiry, audit commitment, compliant now.

    Exit code 0 when compliant (with --policy's policy; else a deployed gated --deal's policy; else the attested
    one), 3 when not. A deployed --deal that is not gated (its terms carry no compliance policy) needs no
    attestation: without --policy, exit 0 and say so ("gated": false in --json). A --policy that names no
    registered policy is refused (exit 1). The registry read is the one the scope's deals gate on: a deployed
    deal's own, else the recorded factory's (a note says when it is not the one this home records)."""
    app: App = ctx.obj
    app.connect()
    who = wallet_address(wallet)
    target, deployed = _scope_and_deal(app, deal, desk_id, scope)
    gated = deployed.terms.policy_id if deployed is not None else 0
    ungated = deployed is not None and not gated and policy_id is None  # nothing to comply with
    # the registry the scope's gate asks: a deployed deal's own (never a newer one this home records), else the
    # recorded factory's
    registry, note = _scope_registry(app, target, deployed, allow_none=ungated)
    if registry is None:  # an ungated deal of a factory without a registry: nothing to read, nothing to comply with
        assert deployed is not None
        app.emit(
            {"wallet": who, "scope": str(target), "attested": False, "policy_id": 0, "expiry": 0,
             "checked_policy": 0, "compliant": False, "gated": False, "attestation": None, "kyc_registry": None},
            lambda c: c.print(
                f"deal {deployed.address} is not gated: its terms carry no compliance policy, so "
                "no attestation is needed for it (and its factory has no kyc registry)"
            ),
        )  # fmt: skip
        return
    if policy_id is not None:
        count = registry.policy_count
        if policy_id > count:
            known = f"policies #1 to #{count}" if count > 1 else "policy #1 only" if count else "none registered yet"
            raise NexotcError(
                f"--policy {policy_id}: no policy #{policy_id} in the kyc registry at {registry.address} ({known})"
            )
    expiry, policy = registry.attestation(who, target)
    check = policy_id if policy_id is not None else gated or policy
    compliant = bool(check) and registry.is_compliant(who, target, check)
    latest = registry.latest_attestation(who, target) if expiry else None
    data = {
        "wallet": who,
        "scope": str(target),
        "attested": expiry != 0,
        "policy_id": policy,
        "expiry": expiry,
        "checked_policy": check,
        "compliant": compliant,
        "gated": None if deployed is None else bool(gated),
        "attestation": latest.to_dict() if latest else None,
        "kyc_registry": registry.address,
        "note": note,
    }

    def render(c: Any) -> None:
        if note:
            c.print(f"note: {note}")
        if ungated:
            c.print(
                f"deal {deployed.address} is not gated: its terms carry no compliance policy, so no attestation "
                "is needed for it"
            )
        if not expiry:
            c.print(f"{who}: no attestation in scope {target} (kyc registry {registry.address})")
            return
        c.print(
            f"{who}: policy #{policy}, expires {_iso(expiry)}; compliant with #{check}: {'yes' if compliant else 'no'}"
        )
        if latest:
            c.print(f"  audit commitment {latest.audit_commitment}  tx {latest.tx_hash}")

    app.emit(data, render)
    if not compliant and not ungated:
        ctx.exit(EXIT_NOT_COMPLIANT)


@kyc.command("disclose")
@click.argument("proof_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--field", "fields", multiple=True, required=True, help="An audited field to open (repeatable).")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@shared_options
@click.pass_obj
def disclose(app: App, proof_path: str, fields: tuple[str, ...], out: str, force: bool) -> None:
    """Holder: open chosen fields of a proof's audit commitment for an auditor (nothing else)."""
    _refuse_overwrite(out, force, "a disclosure")
    disclosure = _load_proof(proof_path).disclose(list(fields))
    disclosure.save(out)
    app.emit(
        {"disclosure_file": out, **disclosure.to_json()},
        lambda c: c.print(f"disclosure of {', '.join(disclosure.opening.opened)} written to {out}"),
    )


@kyc.group("policy")
def policy_group() -> None:
    """Compliance policies (registered by the registry admin or an issuer)."""


@policy_group.command("register")
@click.option("--min-kyc-level", type=click.IntRange(0, 255), default=0)
@click.option("--accredited", is_flag=True, help="Require accredited investors.")
@click.option("--entities", default="individual,business", help="Allowed: individual, business or both.")
@click.option("--deny", multiple=True, type=click.IntRange(1, 999), help="A denied jurisdiction (up to 8).")
@click.option("--label", default="", help="A label (at most 64 bytes).")
@_calldata_option
@shared_options
@click.pass_obj
def policy_register(
    app: App, min_kyc_level: int, accredited: bool, entities: str, deny: tuple[int, ...], label: str, calldata: bool
) -> None:
    """Register a policy by its parameters (the registry packs them into the policy word); prints its id."""
    from nexotc_client.chain.kyc import PolicyParams
    from nexotc_client.zk.credential import Policy

    mask = 0
    for name in entities.replace("+", ",").split(","):
        if name.strip():
            kind = ENTITY_NAMES.get(name.strip().lower())
            if kind is None:
                raise NexotcError(f"--entities: individual and/or business, got {name!r}")
            mask |= kind
    try:
        zk_policy = Policy(min_kyc_level, accredited, mask, tuple(deny))
    except ValueError as exc:
        raise NexotcError(f"policy: {exc}") from exc
    params = PolicyParams(min_kyc_level, accredited, mask, tuple(deny))
    result = _admin(app, "register_policy", params, label, calldata=calldata, title="registering")
    if result is None:
        return
    policy_id = next(int(e.args["policy"]) for e in result.events if e.name == "PolicyRegistered")
    _emit_tx(
        app,
        f"policy #{policy_id} registered",
        result,
        {"policy_id": policy_id, "policy_word": zk_policy.word()},
    )


@policy_group.command("list")
@shared_options
@click.pass_obj
def policy_list(app: App) -> None:
    """The registered policies with their parameters and policy words."""
    registry = _registry(app)
    rows = [p.to_dict() for p in registry.policies()]

    def render(c: Any) -> None:
        for r in rows:
            prm = r["params"]
            c.print(
                f"#{r['policy_id']} {r['label'] or '-'}: kyc >= {prm['min_kyc_level']}, "
                f"accredited {'required' if prm['require_accredited'] else 'no'}, "
                f"entities {' and '.join(prm['entities'])}, "
                f"deny {[d for d in prm['deny'] if d] or 'none'}; word {r['policy_word']}"
            )

    app.emit(rows, render)


# ================================================================== issuer
@click.group()
def issuer() -> None:
    """KYC/KYB issuers: grant/revoke (registry admin), publish roots, revoke credentials."""


@issuer.command("init")
@click.option("--issuer-dir", type=click.Path(file_okay=False), default=None, help="Issuer directory to create.")
@click.option("--issuer", "issuer_address", default=None, help="The issuer's address (default: --account's).")
@shared_options
@click.pass_obj
def init(app: App, issuer_dir: str | None, issuer_address: str | None) -> None:
    """Issuer: create a new, empty credential tree (the only command that does; refuses an existing one)."""
    import os

    from nexotc_client.issuer import IssuerStore

    ref = issuer_address or app.account or os.environ.get("NEXOTC_ACCOUNT")
    address = wallet_address(ref) if ref else None
    store = IssuerStore.create(_issuer_dir(app, issuer_dir), issuer=address)
    app.emit(
        {"directory": str(store.directory), "issuer": address, "root": str(store.root)},
        lambda c: c.print(
            f"issuer tree created in {store.directory}"
            + (f" for issuer {address}" if address else "")
            + "; add credentials with `nexotc kyc issue`"
        ),
    )


@issuer.command("grant")
@click.argument("who")
@click.option("--label", default="", help="A label (at most 64 bytes).")
@_calldata_option
@shared_options
@click.pass_obj
def grant(app: App, who: str, label: str, calldata: bool) -> None:
    """Registry admin: grant the issuer role."""
    addr = wallet_address(who)

    def check(registry: KYCRegistry) -> None:
        if registry.is_issuer(addr):
            raise NexotcError(f"{addr} is already an issuer")

    result = _admin(app, "set_issuer", addr, True, label, calldata=calldata, title="granting", check=check)
    if result is not None:
        _emit_tx(app, f"issuer {addr} granted", result)


@issuer.command("revoke")
@click.argument("who")
@_calldata_option
@shared_options
@click.pass_obj
def revoke(app: App, who: str, calldata: bool) -> None:
    """Registry admin: revoke the issuer role (its still-valid roots expire at once)."""
    addr = wallet_address(who)

    def check(registry: KYCRegistry) -> None:
        if not registry.is_issuer(addr):
            raise NexotcError(f"{addr} is not an issuer (never granted, or already revoked)")

    result = _admin(app, "set_issuer", addr, False, "", calldata=calldata, title="revoking", check=check)
    if result is not None:
        _emit_tx(app, f"issuer {addr} revoked", result)


def _window_text(window: int | None) -> str:
    from nexotc_client.cli.render import fmt_duration

    return f"the registry's root window, {fmt_duration(window)}" if window is not None else "the registry's root window"


@issuer.command("publish-root")
@click.option("--issuer-dir", type=click.Path(file_okay=False), default=None)
@click.option(
    "--prepare",
    "prepare_policies",
    type=click.IntRange(min=1),
    multiple=True,
    help="Also prepare the root with this policy (repeatable): proofs against both then cost ~12k gas less.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Publish even an empty tree, or a tree that is not the one that published the issuer's current root.",
)
@shared_options
@click.pass_obj
def publish_root(app: App, issuer_dir: str | None, prepare_policies: tuple[int, ...], force: bool) -> None:
    """Issuer: publish the tree's current root. The previous root stays valid for the registry's root window
    (proofs against it still land), and attestations already recorded stay until their own expiry.

    Refused without --force: an empty tree (it would revoke every credential of the issuer once the window
    ends), and a tree that did not publish the issuer's current root (a wrong --issuer-dir?)."""
    store = _load_store(app, issuer_dir)
    registry = _registry(app)
    sender = app.sender()
    if not registry.is_issuer(sender.address):
        raise NexotcError(f"{sender.address} is not an issuer of the kyc registry (the admin grants it)")
    if store.issuer is not None and store.issuer != sender.address and not force:
        raise NexotcError(
            f"the tree in {store.directory} is issuer {store.issuer}'s, not {sender.address}'s "
            "(--account; --force publishes anyway)"
        )
    current = registry.current_root(sender.address)
    if current == store.root:
        raise NexotcError(f"root {store.root} is already the current root of {sender.address}")
    known = registry.root_status(store.root)
    if known.known and known.issuer != sender.address:
        raise NexotcError(f"root {store.root} is another issuer's ({known.issuer})")
    if known.known and known.valid_until == 0:
        raise NexotcError(
            f"this tree's root {store.root} was expired on chain (by the issuer's revocation or the admin's "
            "`issuer expire-root`) and can never be current again: a changed tree gives a new root (issue or "
            "revoke a credential), then publish that"
        )
    last = store.published.get(registry.address)
    problems = []
    if store.live == 0:
        problems.append(
            "the tree has no live credential: publishing it revokes every credential of "
            f"{sender.address} once the root window ends"
        )
    if current != 0 and (last is None or last.root != current):
        recorded = f"it last published {last.root}" if last else "it never published here"
        problems.append(
            f"the issuer's current root on chain ({current}) is not this tree's ({recorded}): wrong --issuer-dir?"
        )
    if problems and not force:
        raise NexotcError("; ".join(problems) + " (--force publishes anyway)")
    policies = tuple(dict.fromkeys(prepare_policies))
    for policy_id in policies:  # refuse before sending anything
        if registry.policy_word(policy_id) == 0:
            raise NexotcError(f"--prepare: policy #{policy_id} is not registered")
    window = registry.root_window
    with step(app, "publishing the root"):
        result = registry.publish_root(store.root, sender)
    store.record_published(registry.address, store.root, result.tx_hash, result.block, issuer=sender.address)
    _record_published(store, store.root)
    prepared = []
    for policy_id in policies:
        with step(app, f"preparing policy #{policy_id}"):
            prepared.append(registry.prepare(store.root, policy_id, sender).tx_hash)
    event = next((e for e in result.events if e.name == "RootPublished"), None)
    previous = int(event.args["previous"]) if event else current
    previous_until = int(event.args["previous_valid_until"]) if event else 0
    # the holder files whose paths are not under this root: each holder needs a fresh one to prove against it
    stale = _stale_paths(store, issuer_dir, registry, _chain_now())
    data = {
        "root": str(store.root),
        "live_credentials": store.live,
        "previous": str(previous),
        "previous_valid_until": previous_until,
        "root_window": window,
        "prepared": list(policies),
        "prepare_txs": prepared,
        "stale_paths": stale,
        **tx_dict(result),
    }

    def render(c: Any) -> None:
        from nexotc_client.cli.render import render_tx

        title = f"root {store.root} published ({store.live} live credential{'s' if store.live != 1 else ''})"
        render_tx(c, title, result)
        if previous:
            c.print(
                f"the previous root {previous} stays valid until {_iso(previous_until)} ({_window_text(window)}): "
                "proofs against it still land until then; attestations already recorded stay until their expiry"
            )
        for policy_id, tx in zip(policies, prepared, strict=True):
            c.print(f"prepared for policy #{policy_id}  tx {tx}")
        if stale:
            c.print(
                f"{len(stale)} holder file(s) hold no path under this root: hand each holder a fresh one (a holder "
                "proves only against a root valid on chain):",
                soft_wrap=True,
            )
            for e in stale[:_STALE_SHOWN]:
                label = f" ({e['holder']})" if e["holder"] else ""
                c.print(f"  #{e['index']}{label}: {e['why']}: {e['command']}", soft_wrap=True)
            if len(stale) > _STALE_SHOWN:
                c.print(f"  ... and {len(stale) - _STALE_SHOWN} more (`--json` lists every one)")

    app.emit(data, render)


_STALE_SHOWN = 20
"""Holder files to refresh listed by `issuer publish-root` (all of them in --json)."""


@issuer.command("prepare")
@click.option("--policy", "policy_id", type=click.IntRange(min=1), required=True, help="Registry policy id.")
@click.option("--root", "root", default=None, help="The root (default: the sender's current root).")
@shared_options
@click.pass_obj
def prepare(app: App, policy_id: int, root: str | None) -> None:
    """Anyone: precompute the verifier's part for a root and a policy (later proofs cost ~12k gas less)."""
    registry = _registry(app)
    sender = app.sender()
    # a given root is checked and parsed by the client (`root: not an integer`, ...) and then the registry
    value: int | str = root if root is not None else registry.current_root(sender.address)
    if value == 0:
        raise NexotcError(f"{sender.address} has no current root: give --root")
    with step(app, "preparing"):
        result = registry.prepare(value, policy_id, sender)
    _emit_tx(app, f"root {value} prepared for policy #{policy_id}", result, {"root": str(value), "policy": policy_id})


def _root_window_or_none(app: App) -> int | None:
    """The registry's root window, or None when no chain or registry answers (off-chain commands)."""
    try:
        return _registry(app).root_window
    except NexotcError:
        return None


@issuer.command("revoke-credential")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--issuer-dir", type=click.Path(file_okay=False), default=None)
@shared_options
@click.pass_obj
def revoke_credential(app: App, index: int, issuer_dir: str | None) -> None:
    """Issuer (off chain): empty a credential's leaf.

    Not effective at once: after `issuer publish-root` the previous root (which holds the leaf) stays valid
    for the registry's root window, so the holder can still prove until it ends; attestations already
    recorded stay until their own expiry. The registry admin can end the window at once
    (`issuer expire-root ROOT`)."""
    store = _load_store(app, issuer_dir)
    root = store.revoke(index)
    window = _root_window_or_none(app)
    data = {"index": index, "root": str(root), "root_window": window}
    app.emit(
        data,
        lambda c: c.print(
            f"credential #{index} revoked in the tree; new root {root}. Publish it (`nexotc issuer publish-root`): "
            f"the previous root then stays valid for {_window_text(window)}, and attestations already recorded "
            "stay until their expiry"
        ),
    )


@issuer.command("path")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--issuer-dir", type=click.Path(file_okay=False), default=None)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@shared_options
@click.pass_obj
def path(app: App, index: int, issuer_dir: str | None, out: str, force: bool) -> None:
    """Issuer: a fresh holder file (the credential's path under the current root)."""
    _refuse_overwrite(out, force, "a credential file")
    store = _load_store(app, issuer_dir)
    store.holder_file(index).save(out)
    _record_handout(store, index, store.root, out)
    app.emit(
        {"index": index, "root": str(store.root), "credential_file": out, "issuer": store.issuer},
        lambda c: c.print(f"wrote {out} (credential #{index}, its path under root {store.root})", soft_wrap=True),
    )


@issuer.command("show")
@click.option("--issuer-dir", type=click.Path(file_okay=False), default=None)
@shared_options
@click.pass_obj
def show(app: App, issuer_dir: str | None) -> None:
    """The issuer directory: root, credentials issued (no secrets), revocations, roots published."""
    store = _load_store(app, issuer_dir)
    data = {
        "directory": str(store.directory),
        "issuer": store.issuer,
        "root": str(store.root),
        "live_credentials": store.live,
        "published": {k: v.to_json() for k, v in store.published.items()},
        "credentials": [store.issued[i].to_json() for i in sorted(store.issued)],
    }

    def render(c: Any) -> None:
        c.print(f"issuer directory {store.directory}: root {store.root}, {store.live} live credential(s)")
        if store.issuer:
            c.print(f"  issuer {store.issuer}")
        for registry, rec in store.published.items():
            state = "the current root" if rec.root == store.root else f"root {rec.root}"
            c.print(f"  last published in registry {registry}: {state} ({rec.live} live), tx {rec.tx_hash}")
        for i in sorted(store.issued):
            e = store.issued[i]
            cred = e.credential
            c.print(
                f"  #{i} {e.holder or '-'}: entity {cred.entity_type}, jurisdiction {cred.jurisdiction}, "
                f"level {cred.kyc_level}, expires {_iso(cred.expires_at)}{' REVOKED' if e.revoked else ''}"
            )

    app.emit(data, render)


# ------------------------------------------------------- registry admin
@issuer.command("expire-root")
@click.argument("root")
@_calldata_option
@shared_options
@click.pass_obj
def expire_root(app: App, root: str, calldata: bool) -> None:
    """Registry admin: invalidate a root at once and for good (e.g. a compromised tree, or to end a revoked
    credential's root window); its issuer cannot publish it again, even once its window has run out. Proofs
    against it stop landing; attestations already recorded stay until their expiry."""

    def check(registry: KYCRegistry) -> None:
        status = registry.root_status(registry.args("expire_root", root)[0])
        if not status.known:
            raise NexotcError(f"root {root} is unknown to the kyc registry")
        if status.valid_until == 0:  # a root past its window is still banned for good (not republishable)
            raise NexotcError(f"root {root} is already expired")

    result = _admin(app, "expire_root", root, calldata=calldata, title="expiring the root", check=check)
    if result is not None:
        _emit_tx(app, f"root {root} expired", result, {"root": str(root)})


@issuer.command("set-root-window")
@click.argument("window")
@_calldata_option
@shared_options
@click.pass_obj
def set_root_window(app: App, window: str, calldata: bool) -> None:
    """Registry admin: how long a superseded root stays valid (seconds, or 1h, 2d...; at most 30 days).
    Applies to roots superseded from now on."""
    from nexotc_client.chain.kyc import MAX_ROOT_WINDOW
    from nexotc_client.spec import parse_duration

    seconds = parse_duration(window, "WINDOW")
    if seconds > MAX_ROOT_WINDOW:
        raise NexotcError(f"WINDOW: at most 30 days ({MAX_ROOT_WINDOW} s), got {seconds}")
    if _registry(app).root_window == seconds:  # the same window again: the transaction would change nothing
        from nexotc_client.cli.render import fmt_duration

        app.emit(
            {"method": "set_root_window", "changed": False, "root_window": seconds},
            lambda c: click.echo(f"the root window is already {fmt_duration(seconds)} ({seconds} s); nothing sent"),
        )
        return
    result = _admin(app, "set_root_window", seconds, calldata=calldata, title="setting the root window")
    if result is not None:
        _emit_tx(app, f"root window set to {seconds}s", result, {"root_window": seconds})


@issuer.command("propose-admin")
@click.argument("new_admin")
@_calldata_option
@shared_options
@click.pass_obj
def propose_admin(app: App, new_admin: str, calldata: bool) -> None:
    """Registry admin: propose a new admin (it takes over with `issuer accept-admin`); `none` withdraws."""
    address = None if new_admin.strip().lower() == "none" else wallet_address(new_admin)
    current = _registry(app)
    if address is None and current.pending_admin is None:
        app.emit(
            {"method": "propose_admin", "changed": False, "pending_admin": None},
            lambda c: click.echo("no admin proposal is pending; nothing sent"),
        )
        return
    if address is not None and current.pending_admin == address:
        app.emit(
            {"method": "propose_admin", "changed": False, "pending_admin": address},
            lambda c: click.echo(f"{address} is already the proposed admin; nothing sent"),
        )
        return

    def check(registry: KYCRegistry) -> None:
        if address == registry.admin:
            raise NexotcError(f"{address} is already the registry admin")

    result = _admin(app, "propose_admin", address, calldata=calldata, title="proposing", check=check)
    if result is not None:
        what = f"{address} proposed as registry admin" if address else "admin proposal withdrawn"
        _emit_tx(app, what, result, {"pending_admin": address})


@issuer.command("accept-admin")
@_calldata_option
@shared_options
@click.pass_obj
def accept_admin(app: App, calldata: bool) -> None:
    """The proposed registry admin: take over."""
    result = _admin(app, "accept_admin", calldata=calldata, title="accepting")
    if result is not None:
        _emit_tx(app, "registry admin transferred", result)


__all__ = ["issuer", "kyc"]
