"""`nexotc desk ...`: private OTC desks in the DeskRegistry (members, asset list, fee schedule, access).

    nexotc desk deploy [--force]                           the registry, recorded in <home>/desks.json
    nexotc desk create --admin A --fee-recipient F --max-fee-bps N --introducer-cap-bps M
                       [--invite-only] [--policy-id X] [--asset TOKEN]...
    nexotc desk show ID
    nexotc desk add-member ID WHO --role trader,approver   (trader, approver, compliance, client)
    nexotc desk remove-member ID WHO
    nexotc desk screen ID [WALLET]... [--file LIST] [--unscreen]   AML: refuse wallets in new deals (admin or
                                                           a compliance member; existing deals untouched)
    nexotc desk set-assets ID [--allow TOKEN]... [--disallow TOKEN]...     (an asset in both lists: usage error)
    nexotc desk set-fees ID [--fee-recipient F] [--max-fee-bps N] [--introducer-cap-bps M]
    nexotc desk set-access ID public|invite-only | set-policy ID POLICY | suspend ID | unsuspend ID
    nexotc desk propose-admin ID NEW|none | accept-admin ID

TOKEN is an address, `off-chain` (off-chain legs), or a mock token symbol recorded by
`nexotc deploy --mock-tokens` (WBTC, USDT, WETH). WHO/A/F: an address, test:N or an ape alias.
Admin commands are sent from --account, which must be the desk's admin; with --calldata they print
the call instead (target and data) and the `nexotc msig propose` command for a MultiSig admin. A
change to the state the desk already has (set-access, suspend, unsuspend, set-policy, set-fees,
propose-admin) is reported and nothing is sent.

The registry is the one the recorded factory serves (`desk_registry()`, fixed when the factory was
deployed, read from the chain); desks.json is only used when no factory is recorded. Desk deals:
`nexotc deal create --terms FILE --desk ID` (with --dry-run: check the desk's rules only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.desk import DeskRole
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address
from nexotc_client.cli.render import tx_dict

if TYPE_CHECKING:
    from nexotc_client.chain.deal import TxResult
    from nexotc_client.chain.desk import DeskInfo, DeskRegistry

DESK_ID = click.IntRange(min=1)


def _records(app: App) -> Any:
    from nexotc_client.chain.desk import DESKS_FILE, DeskRecords

    return DeskRecords(app.home / DESKS_FILE)


def _factory_address(app: App) -> str | None:
    """The recorded factory of the connected network, None when none is recorded (or it is gone)."""
    from nexotc_client.chain.errors import NotDeployedError

    try:
        return app.deployment().factory
    except NotDeployedError:
        return None


def _registry(app: App) -> DeskRegistry:
    """The registry the recorded factory serves (read from the chain: the factory's `desk_registry()`
    is fixed at its deployment); without a recorded factory, the registry recorded in desks.json."""
    from nexotc_client.chain.desk import desk_registry_of, get_desk_registry

    app.connect()
    factory = _factory_address(app)
    if factory is not None:
        return desk_registry_of(factory, _records(app))
    return get_desk_registry(_records(app))


def resolve_token(app: App, ref: str, what: str = "token") -> str:
    """A token reference: an address, or a token symbol of the recorded deployment (any case)."""
    from eth_utils import to_checksum_address

    from nexotc_client.chain.encoding import is_valid_address

    text = ref.strip()
    if is_valid_address(text):
        return to_checksum_address(text)
    tokens: dict[str, str] = {}
    try:
        tokens = app.deployment().tokens
    except NexotcError:
        pass
    for symbol, address in tokens.items():
        if symbol.lower() == text.lower():
            return address
    known = f" ({', '.join(tokens)})" if tokens else ""
    raise NexotcError(f"unknown {what} {ref!r}: an address, or a token symbol of `nexotc deploy --mock-tokens`{known}")


def _asset(app: App, ref: str) -> str:
    """An asset reference: address, `off-chain`, or a token symbol of the recorded deployment."""
    from nexotc_client.chain.desk import OFF_CHAIN

    text = ref.strip()
    if text.lower() in ("off-chain", "offchain", "off_chain"):
        return OFF_CHAIN
    try:
        return resolve_token(app, text, "asset")
    except NexotcError:
        raise NexotcError(
            f"unknown asset {ref!r}: an address, off-chain, or a token symbol of `nexotc deploy --mock-tokens`"
        ) from None


def _unique_assets(app: App, refs: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name as given, asset) of each asset once, in order (the first name given for it)."""
    unique: dict[str, tuple[str, str]] = {}
    for ref in refs:
        asset = _asset(app, ref)
        unique.setdefault(asset, (ref, asset))
    return list(unique.values())


def _fee_warning(max_fee_bps: int, introducer_cap_bps: int) -> str | None:
    """The schedule cannot be used in full when desk fee + introducers may exceed what the factory
    accepts per deal (EscrowFactory: desk fee + introducers <= 1000 bps; the registry checks each
    cap alone)."""
    from nexotc_client.terms import MAX_TOTAL_FEE_BPS

    total = max_fee_bps + introducer_cap_bps
    if total <= MAX_TOTAL_FEE_BPS:
        return None
    return (
        f"desk fee cap {max_fee_bps} + introducer cap {introducer_cap_bps} = {total} bps, but a deal's desk fee "
        f"plus introducers may not exceed {MAX_TOTAL_FEE_BPS} bps (the factory refuses more): no desk deal "
        "can use both caps in full"
    )


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _admin_call(
    app: App,
    method: str,
    desk_id: int,
    *values: Any,
    calldata: bool = False,
    title: str | Callable[[tuple[Any, ...]], str],
    already: Callable[[DeskInfo, tuple[Any, ...]], str | None] | None = None,
    warn: Callable[[tuple[Any, ...]], str | None] | None = None,
) -> None:
    """Send an admin `method` from --account, or with --calldata print the call for a MultiSig.
    `already(desk, args)` names the state when the desk is already as asked: then nothing is sent
    (or printed to propose). `warn(args)` may name a problem worth a warning (sent anyway)."""
    registry = _registry(app)
    args = registry.args(method, desk_id, *values)
    if callable(title):
        title = title(args)
    info = registry.desk(desk_id, lists=False)
    state = already(info, args) if already is not None else None
    if state is not None:
        _nothing_sent(app, desk_id, method, state)
        return
    warning = warn(args) if warn is not None else None
    if warning is not None:
        _warn(warning)
    if calldata:
        target, data = registry.call(method, *args)
        # the executor: the admin, or for accept_admin the proposed admin
        executor = info.pending_admin if method == "accept_admin" and info.pending_admin else info.admin
        hexdata = "0x" + data.hex()
        from ape import chain

        # a multisig admin proposes the call; an account admin (no code) sends it itself, without --calldata
        is_contract = bool(chain.provider.get_code(executor))
        command = (
            f"nexotc msig propose {executor} --to {target} --data {hexdata} --out desk-{desk_id}-{method}.json"
            if is_contract
            else None
        )
        out: dict[str, Any] = {
            "desk_id": desk_id,
            "method": method,
            "target": target,
            "value": 0,
            "data": hexdata,
            "admin": executor,
            "propose": command,
        }
        if warning is not None:
            out["warnings"] = [warning]

        def render(_console: Any) -> None:
            # plain output: a folded line would break copy-paste of the hex
            click.echo(f"{method} on desk #{desk_id} (not sent): call {target} value 0 data {hexdata}")
            if command is not None:
                click.echo(f"execute it from the desk's admin {executor}, a multisig:")
                click.echo(f"  {command}")
            else:
                click.echo(
                    f"the desk's admin {executor} is an account, not a multisig: it sends the call itself (this "
                    f"command without --calldata, with --account {executor}, or from its own wallet)"
                )

        app.emit(out, render)
        return
    sender = app.sender()
    with step(app, f"{method} on desk #{desk_id}"):
        result = registry.send(method, sender, *args)
    extra: dict[str, Any] = {"desk_id": desk_id, "method": method, "changed": True}
    if warning is not None:
        extra["warnings"] = [warning]
    _emit_tx(app, title, result, extra)


def _nothing_sent(app: App, desk_id: int, method: str, state: str) -> None:
    app.emit(
        {"desk_id": desk_id, "method": method, "changed": False, "state": state},
        lambda c: click.echo(f"desk #{desk_id}: already {state}; nothing sent"),
    )


def _emit_tx(app: App, title: str, result: TxResult, extra: dict[str, Any] | None = None) -> None:
    from nexotc_client.cli.render import render_tx

    app.emit({**(extra or {}), **tx_dict(result)}, lambda c: render_tx(c, title, result))


@click.group()
def desk() -> None:
    """Private OTC desks: members and roles, asset list, fee schedule, access mode."""


# ------------------------------------------------------------------ deploy
@desk.command("deploy")
@click.option("--force", is_flag=True, help="Deploy a new registry even if one is recorded (only without a factory).")
@shared_options
@click.pass_obj
def deploy(app: App, force: bool) -> None:
    """Deploy the DeskRegistry and record it (in <home>/desks.json). `nexotc deploy` already deploys
    the registry its factory serves; a factory's registry is fixed at its deployment, so with a
    factory recorded this only reports that registry (a new one would never be used for desk deals)."""
    from nexotc_client.chain.deployment import network_key
    from nexotc_client.chain.desk import deploy_desk_registry, factory_desk_registry, get_desk_record

    app.connect()
    records = _records(app)
    factory = _factory_address(app)
    if factory is not None:
        bound = factory_desk_registry(factory)
        if bound is None:
            raise NexotcError(
                f"the recorded factory {factory} serves no desk registry, and a registry deployed now would never "
                "be used for its desk deals: run `nexotc deploy --force --new-desk-registry` for a new factory "
                "with its own registry"
            )
        if force:
            raise NexotcError(
                f"the recorded factory {factory} serves the desk registry {bound} (fixed when it was deployed): a new "
                "registry would not be used for desk deals; for a new registry and factory together, run "
                "`nexotc deploy --force --new-desk-registry`"
            )
        entry = records.get(network_key())
        recorded = entry is not None and entry.address == bound
        data: dict[str, Any] = {
            "already_deployed": True,
            **(entry.to_dict() if recorded and entry is not None else {"network": network_key(), "block": None}),
            "address": bound,
            "factory": factory,
            "recorded": recorded,
        }

        def render(c: Any) -> None:
            block = f" (block {data['block']})" if data["block"] is not None else ""
            c.print(
                f"desk registry {bound} on {data['network']}{block}: the one the factory {factory} serves",
                soft_wrap=True,
            )
            if not recorded:
                c.print(f"  (not the registry {records.path} records; desk commands use the factory's)", soft_wrap=True)

        app.emit(data, render)
        return
    if not force:
        try:
            existing = get_desk_record(records)
        except NexotcError:
            existing = None
        if existing is not None:
            app.emit(
                {"already_deployed": True, **existing.to_dict()},
                lambda c: c.print(
                    f"desk registry already deployed on {existing.network} at {existing.address} "
                    f"(block {existing.block}); --force deploys another"
                ),
            )
            return
    sender = app.sender()
    with step(app, "deploying the desk registry"):
        deploy_desk_registry(sender, records)

    record = records.get(network_key())
    assert record is not None
    app.emit(
        {"already_deployed": False, **record.to_dict(), "records": str(records.path)},
        lambda c: c.print(
            f"desk registry {record.address} on {record.network} (block {record.block}); recorded in {records.path}"
        ),
    )


# ------------------------------------------------------------------ create
@desk.command("create")
@click.option("--admin", required=True, help="The desk's admin (usually a MultiSig): address, test:N or alias.")
@click.option("--fee-recipient", required=True, help="The platform party of every desk deal.")
@click.option("--max-fee-bps", type=click.IntRange(0, 1_000), required=True, help="Highest desk fee of a desk deal.")
@click.option("--introducer-cap-bps", type=click.IntRange(0, 1_000), required=True, help="Highest introducer sum.")
@click.option("--invite-only", is_flag=True, help="Buyer and seller of a desk deal must be members.")
@click.option("--policy-id", default=None, help="Compliance policy id: hex, integer or text (hashed).")
@click.option(
    "--asset", "assets", multiple=True, metavar="TOKEN", help="Allowed asset (repeat); off-chain for off-chain legs."
)
@shared_options
@click.pass_obj
def create(
    app: App,
    admin: str,
    fee_recipient: str,
    max_fee_bps: int,
    introducer_cap_bps: int,
    invite_only: bool,
    policy_id: str | None,
    assets: tuple[str, ...],
) -> None:
    """Create a desk (anyone may); its admin then adds members."""
    registry = _registry(app)
    sender = app.sender()
    tokens = [_asset(app, a) for a in assets]
    warning = _fee_warning(max_fee_bps, introducer_cap_bps)
    if warning is not None:
        _warn(warning)
    with step(app, "creating the desk"):
        desk_id, result = registry.create_desk(
            wallet_address(admin),
            wallet_address(fee_recipient),
            max_fee_bps,
            introducer_cap_bps,
            sender=sender,
            invite_only=invite_only,
            policy_id=policy_id,
            assets=tokens,
        )
    _emit_tx(
        app,
        f"desk #{desk_id} created in {registry.address}",
        result,
        {"desk_id": desk_id, "registry": registry.address, **({"warnings": [warning]} if warning else {})},
    )


# ------------------------------------------------------------------- reads
@desk.command("show")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@shared_options
@click.pass_obj
def show(app: App, desk_id: int) -> None:
    """A desk: admin, fee schedule, access mode, policy, members and assets."""
    info = _registry(app).desk(desk_id)
    app.emit(info.to_dict(), lambda c: _render_desk(c, info))


def _render_desk(console: Any, info: DeskInfo) -> None:
    from rich.table import Table

    from nexotc_client.chain.desk import OFF_CHAIN, role_names
    from nexotc_client.cli.render import leg_meta

    head = Table(show_header=False, box=None, pad_edge=False)
    for key, value in (
        ("desk", f"#{info.desk_id} in {info.registry}"),
        ("admin", info.admin + (f" (proposed: {info.pending_admin})" if info.pending_admin else "")),
        ("fee recipient", info.fee_recipient),
        ("fees", f"desk fee <= {info.max_desk_fee_bps} bps, introducers <= {info.introducer_cap_bps} bps"),
        ("access", "invite-only" if info.invite_only else "public"),
        ("status", "[red]suspended[/]" if info.suspended else "active"),
        ("policy", info.policy_id if info.has_policy else "none"),
    ):
        head.add_row(f"[bold]{key}[/]", str(value))
    console.print(head)
    members = Table(title=f"members ({info.member_count})")
    members.add_column("member")
    members.add_column("roles")
    for who, roles in info.members.items():
        members.add_row(who, ", ".join(role_names(roles)))
    console.print(members)
    if info.screened:
        screened = Table(title=f"screened out of new deals ({len(info.screened)})")
        screened.add_column("wallet")
        for who in info.screened:
            screened.add_row(who)
        console.print(screened)
    assets = Table(title=f"assets ({info.asset_count})")
    assets.add_column("asset")
    assets.add_column("token")
    for token in info.assets:
        if token == OFF_CHAIN:
            assets.add_row("off-chain legs", "-")
        else:
            assets.add_row(leg_meta(token, True).label, token)
    console.print(assets)


# --------------------------------------------------------------- members
def _calldata_option(func: Any) -> Any:
    return click.option(
        "--calldata", is_flag=True, help="Print the call (target, data) for a MultiSig admin instead of sending it."
    )(func)


@desk.command("add-member")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("who", metavar="WHO")
@click.option("--role", "roles", required=True, help="Roles, comma separated: trader, approver, compliance, client.")
@_calldata_option
@shared_options
@click.pass_obj
def add_member(app: App, desk_id: int, who: str, roles: str, calldata: bool) -> None:
    """Make WHO a member with --role (or replace its roles)."""
    from nexotc_client.chain.desk import parse_roles, role_names

    role_set = parse_roles(roles)
    address = wallet_address(who)
    registry = _registry(app)

    def already(_info: DeskInfo, _args: tuple[Any, ...]) -> str | None:
        if int(registry.member_roles(desk_id, address)) != int(role_set):
            return None
        return f"set: {address} holds exactly {', '.join(role_names(role_set))}"

    _admin_call(
        app,
        "add_member",
        desk_id,
        address,
        role_set,
        calldata=calldata,
        title=f"desk #{desk_id}: member {address} ({', '.join(role_names(role_set))})",
        already=already,
    )


@desk.command("remove-member")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("who", metavar="WHO")
@_calldata_option
@shared_options
@click.pass_obj
def remove_member(app: App, desk_id: int, who: str, calldata: bool) -> None:
    """Remove WHO from the desk (every role)."""
    address = wallet_address(who)
    _admin_call(app, "remove_member", desk_id, address, calldata=calldata, title=f"desk #{desk_id}: {address} removed")


# ------------------------------------------------------------ screening
def _screen_list(app: App, wallets: tuple[str, ...], list_file: Path | None) -> list[str]:
    """The wallets named, then those of --file (one per line; `#` starts a comment), each once."""
    refs = list(wallets)
    if list_file is not None:
        try:
            lines = list_file.read_text(encoding="utf-8-sig").splitlines()  # a byte-order mark is dropped
        except OSError as exc:
            raise NexotcError(f"--file: cannot read {list_file}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise NexotcError(
                f"--file {list_file}: not UTF-8 text (byte {exc.start}): export the list as UTF-8"
            ) from exc
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if text:
                if not is_valid_address(text):
                    raise NexotcError(f"--file {list_file}, line {number}: not an address: {text!r}")
                if int(text, 16) == 0:
                    raise NexotcError(f"--file {list_file}, line {number}: the zero address is not a wallet")
                refs.append(text)
    if not refs:
        raise click.UsageError("name the wallets (WALLET... and/or --file LIST)")
    return list(dict.fromkeys(wallet_address(r) for r in refs))


@desk.command("screen")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("wallets", nargs=-1, metavar="[WALLET]...")
@click.option(
    "--file",
    "list_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A screening list: one address per line (`#` comments), e.g. exported from a sanctions list.",
)
@click.option("--unscreen", is_flag=True, help="Take the wallets off the screening list instead.")
@_calldata_option
@shared_options
@click.pass_obj
def screen(
    app: App, desk_id: int, wallets: tuple[str, ...], list_file: Path | None, unscreen: bool, calldata: bool
) -> None:
    """AML screening: refuse the wallets in any new deal of the desk, as any party (the desk's admin or a
    member with the compliance role; existing deals are never touched). Wallets already as asked are left out
    and named; more than 64 are sent in several transactions."""
    from nexotc_client.chain.desk import MAX_SCREEN

    listed = _screen_list(app, wallets, list_file)
    registry = _registry(app)
    registry._require_desk(desk_id)
    want = not unscreen
    unchanged = [w for w in listed if registry.screened(desk_id, w) == want]
    todo = [w for w in listed if w not in unchanged]
    state = "screened" if want else "not screened"
    if not todo:
        _nothing_sent(app, desk_id, "set_screened", f"{state}: {', '.join(unchanged)}")
        return
    if unchanged:
        _warn(f"left out, already {state}: {', '.join(unchanged)}")
    batches = [todo[i : i + MAX_SCREEN] for i in range(0, len(todo), MAX_SCREEN)]
    if calldata and len(batches) > 1:
        raise NexotcError(f"--calldata: {len(todo)} wallets, at most {MAX_SCREEN} per call: split the list")
    if not calldata:
        info = registry.desk(desk_id, lists=False)
        sender = app.sender()
        if sender.address != info.admin and not registry.member_roles(desk_id, sender.address) & DeskRole.COMPLIANCE:
            raise NexotcError(
                f"--account {sender.address} is neither desk #{desk_id}'s admin nor a member with the compliance "
                "role: it cannot screen wallets"
            )
        if sender.address != info.admin and registry.screened(desk_id, sender.address):
            raise NexotcError(
                f"--account {sender.address} is itself screened out of desk #{desk_id}: it screens nothing (the "
                "admin or another compliance member can take it off the list)"
            )
    verb = "screened out of" if want else "screened back into"
    if want:
        _screening_warnings(registry, desk_id, todo)
    if calldata:
        _admin_call(
            app,
            "set_screened",
            desk_id,
            todo,
            want,
            calldata=True,
            title=f"desk #{desk_id}: {len(todo)} wallet(s) {verb} its new deals",
        )
        return
    results = []
    for number, batch in enumerate(batches, start=1):
        label = f" ({number} of {len(batches)})" if len(batches) > 1 else ""
        with step(app, f"set_screened on desk #{desk_id}{label}"):
            results.append(registry.set_screened(desk_id, batch, want, sender))
    data = {
        "desk_id": desk_id,
        "method": "set_screened",
        "changed": True,
        "screened": want,
        "wallets": todo,
        "left_out": unchanged,
        "transactions": [r.to_dict() for r in results],
        "events": [e for r in results for e in r.to_dict()["events"]],
    }

    def render(console: Any) -> None:
        from nexotc_client.cli.render import render_tx

        for number, result in enumerate(results, start=1):
            count = len(batches[number - 1])
            render_tx(console, f"desk #{desk_id}: {count} wallet(s) {verb} its new deals", result)

    app.emit(data, render)


def _screening_warnings(registry: DeskRegistry, desk_id: int, wallets: list[str]) -> None:
    """What screening these wallets does beyond one counterparty: the desk's fee recipient is the platform of
    every desk deal (no new deal at all); a trader creates no desk deal any more."""
    info = registry.desk(desk_id, lists=False)
    for wallet in wallets:
        if wallet == info.fee_recipient:
            _warn(f"{wallet} is the desk's fee recipient, the platform of every desk deal: no new deal is possible")
        elif registry.member_roles(desk_id, wallet) & DeskRole.TRADER:
            _warn(f"{wallet} is a trader of the desk: it creates and accepts no desk deal while screened")
        if wallet == info.admin:
            _warn(f"{wallet} is the desk's admin: it still administers the desk (screening only bars it from deals)")


# ------------------------------------------------------------ the desk
@desk.command("set-assets")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.option("--allow", multiple=True, metavar="TOKEN", help="Put on the list (repeat).")
@click.option("--disallow", multiple=True, metavar="TOKEN", help="Take off the list (repeat).")
@_calldata_option
@shared_options
@click.pass_obj
def set_assets(app: App, desk_id: int, allow: tuple[str, ...], disallow: tuple[str, ...], calldata: bool) -> None:
    """Allow and disallow assets (each must change)."""
    if not allow and not disallow:
        raise click.UsageError("give --allow and/or --disallow")
    registry = _registry(app)
    # each asset once (the first name given for it); one asked to be both allowed and disallowed is a mistake
    to_allow = _unique_assets(app, allow)
    to_disallow = _unique_assets(app, disallow)
    disallowed = {a: t for t, a in to_disallow}
    both = [(t, disallowed[a]) for t, a in to_allow if a in disallowed]
    if both:
        named = ", ".join(t if t == other else f"{t} ({other})" for t, other in both)
        raise click.UsageError(f"--allow and --disallow both name {named}: give each asset in one list only")
    registry._require_desk(desk_id)
    # the contract wants each listed asset to change: those already as asked are dropped (and named)
    unchanged = [f"{t} allowed" for t, a in to_allow if registry.asset_allowed(desk_id, a)]
    unchanged += [f"{t} not allowed" for t, a in to_disallow if not registry.asset_allowed(desk_id, a)]
    to_allow = [(t, a) for t, a in to_allow if not registry.asset_allowed(desk_id, a)]
    to_disallow = [(t, a) for t, a in to_disallow if registry.asset_allowed(desk_id, a)]
    if not (to_allow or to_disallow):
        _nothing_sent(app, desk_id, "set_assets", "as asked: " + ", ".join(unchanged))
        return
    if unchanged:
        _warn(f"left out, already as asked: {', '.join(unchanged)}")
    changes = [f"allowed {', '.join(t for t, _ in to_allow)}"] if to_allow else []
    changes += [f"disallowed {', '.join(t for t, _ in to_disallow)}"] if to_disallow else []
    _admin_call(
        app,
        "set_assets",
        desk_id,
        [a for _, a in to_allow],
        [a for _, a in to_disallow],
        calldata=calldata,
        title=f"desk #{desk_id}: assets: {'; '.join(changes)}",
    )


def _fees_text(args: tuple[Any, ...]) -> str:
    _, recipient, max_fee, cap = args
    return f"desk fee <= {max_fee} bps, introducers <= {cap} bps, recipient {recipient}"


@desk.command("set-fees")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.option("--fee-recipient", default=None, help="New fee recipient (default: unchanged).")
@click.option(
    "--max-fee-bps", type=click.IntRange(0, 1_000), default=None, help="Highest desk fee (default: unchanged)."
)
@click.option(
    "--introducer-cap-bps", type=click.IntRange(0, 1_000), default=None, help="Introducer cap (default: unchanged)."
)
@_calldata_option
@shared_options
@click.pass_obj
def set_fees(
    app: App,
    desk_id: int,
    fee_recipient: str | None,
    max_fee_bps: int | None,
    introducer_cap_bps: int | None,
    calldata: bool,
) -> None:
    """Set the fee schedule of future desk deals. Each cap may be up to 1000 bps, but a deal's desk
    fee plus introducers may not exceed 1000 bps (the factory's rule): a larger sum is warned about."""
    if fee_recipient is None and max_fee_bps is None and introducer_cap_bps is None:
        raise click.UsageError("give --fee-recipient, --max-fee-bps and/or --introducer-cap-bps")
    recipient = wallet_address(fee_recipient) if fee_recipient is not None else None

    def already(info: DeskInfo, args: tuple[Any, ...]) -> str | None:
        current = (info.desk_id, info.fee_recipient, info.max_desk_fee_bps, info.introducer_cap_bps)
        return f"set: {_fees_text(args)}" if current == args else None

    _admin_call(
        app,
        "set_fees",
        desk_id,
        recipient,
        max_fee_bps,
        introducer_cap_bps,
        calldata=calldata,
        title=lambda args: f"desk #{desk_id}: fees: {_fees_text(args)}",
        already=already,
        warn=lambda args: _fee_warning(args[2], args[3]),
    )


@desk.command("set-access")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("mode", type=click.Choice(["public", "invite-only"]))
@_calldata_option
@shared_options
@click.pass_obj
def set_access(app: App, desk_id: int, mode: str, calldata: bool) -> None:
    """public (any counterparty) or invite-only (buyer and seller are members)."""
    invite_only = mode == "invite-only"
    _admin_call(
        app,
        "set_invite_only",
        desk_id,
        invite_only,
        calldata=calldata,
        title=f"desk #{desk_id}: access: {mode}",
        already=lambda info, _: mode if info.invite_only == invite_only else None,
    )


@desk.command("set-policy")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("policy")
@_calldata_option
@shared_options
@click.pass_obj
def set_policy(app: App, desk_id: int, policy: str, calldata: bool) -> None:
    """Set the compliance policy id (hex, integer, text hashed; none clears it)."""
    from nexotc_client.chain.desk import to_policy_id

    value = "0x" + to_policy_id(policy).hex()
    shown = "none" if int(value, 16) == 0 else value

    def already(info: DeskInfo, _args: tuple[Any, ...]) -> str | None:
        return f"policy {shown}" if info.policy_id == value else None

    _admin_call(
        app,
        "set_policy_id",
        desk_id,
        policy,
        calldata=calldata,
        title=f"desk #{desk_id}: policy {shown}",
        already=already,
    )


@desk.command("suspend")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@_calldata_option
@shared_options
@click.pass_obj
def suspend(app: App, desk_id: int, calldata: bool) -> None:
    """Stop new desk deals (existing deals are not affected)."""
    _admin_call(
        app,
        "set_suspended",
        desk_id,
        True,
        calldata=calldata,
        title=f"desk #{desk_id}: suspended (no new desk deals)",
        already=lambda info, _: "suspended" if info.suspended else None,
    )


@desk.command("unsuspend")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@_calldata_option
@shared_options
@click.pass_obj
def unsuspend(app: App, desk_id: int, calldata: bool) -> None:
    """Allow new desk deals again."""
    _admin_call(
        app,
        "set_suspended",
        desk_id,
        False,
        calldata=calldata,
        title=f"desk #{desk_id}: unsuspended (desk deals allowed again)",
        already=lambda info, _: None if info.suspended else "active (not suspended)",
    )


@desk.command("propose-admin")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("new_admin", metavar="NEW")
@_calldata_option
@shared_options
@click.pass_obj
def propose_admin(app: App, desk_id: int, new_admin: str, calldata: bool) -> None:
    """Propose NEW as admin (it accepts with accept-admin); `none` withdraws a proposal."""
    target = None if new_admin.strip().lower() == "none" else wallet_address(new_admin)

    def already(info: DeskInfo, _args: tuple[Any, ...]) -> str | None:
        if info.pending_admin == target:
            return f"proposed: {target}" if target else "without an admin proposal"
        return None

    _admin_call(
        app,
        "propose_admin",
        desk_id,
        target,
        calldata=calldata,
        title=f"desk #{desk_id}: "
        + (f"admin proposed: {target} (it runs accept-admin)" if target else "admin proposal withdrawn"),
        already=already,
    )


@desk.command("accept-admin")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@_calldata_option
@shared_options
@click.pass_obj
def accept_admin(app: App, desk_id: int, calldata: bool) -> None:
    """The proposed admin (--account) takes over the desk."""
    _admin_call(app, "accept_admin", desk_id, calldata=calldata, title=f"desk #{desk_id}: admin accepted")


__all__ = ["desk", "resolve_token"]
