"""`nexotc desk ...`: private OTC desks in the DeskRegistry (members, asset list, fee schedule, access).

    nexotc desk deploy [--force]                           the registry, recorded in <home>/desks.json
    nexotc desk create --admin A --fee-recipient F --max-fee-bps N --introducer-cap-bps M
                       [--invite-only] [--policy-id X] [--asset TOKEN]...
    nexotc desk show ID
    nexotc desk add-member ID WHO --role trader,approver   (trader, approver, compliance, client)
    nexotc desk remove-member ID WHO
    nexotc desk set-assets ID [--allow TOKEN]... [--disallow TOKEN]...
    nexotc desk set-fees ID [--fee-recipient F] [--max-fee-bps N] [--introducer-cap-bps M]
    nexotc desk set-access ID public|invite-only | set-policy ID POLICY | suspend ID | unsuspend ID
    nexotc desk propose-admin ID NEW|none | accept-admin ID

TOKEN is an address, `off-chain` (off-chain legs), or a mock token symbol recorded by
`nexotc deploy --mock-tokens` (WBTC, USDT, WETH). WHO/A/F: an address, test:N or an ape alias.
Admin commands are sent from --account, which must be the desk's admin; with --calldata they print
the call instead (target and data) for a MultiSig admin to sign and execute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step, wallet_address

if TYPE_CHECKING:
    from nexotc_client.chain.deal import TxResult
    from nexotc_client.chain.desk import DeskInfo, DeskRegistry

DESK_ID = click.IntRange(min=1)


def _records(app: App) -> Any:
    from nexotc_client.chain.desk import DESKS_FILE, DeskRecords

    return DeskRecords(app.home / DESKS_FILE)


def _registry(app: App) -> DeskRegistry:
    from nexotc_client.chain.desk import get_desk_registry

    app.connect()
    return get_desk_registry(_records(app))


def _asset(app: App, ref: str) -> str:
    """An asset reference: address, `off-chain`, or a token symbol of the recorded deployment."""
    from eth_utils import to_checksum_address

    from nexotc_client.chain.desk import OFF_CHAIN
    from nexotc_client.chain.encoding import is_valid_address

    text = ref.strip()
    if text.lower() in ("off-chain", "offchain", "off_chain"):
        return OFF_CHAIN
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
    raise NexotcError(
        f"unknown asset {ref!r}: an address, off-chain, or a token symbol of `nexotc deploy --mock-tokens`"
    )


def _admin_call(app: App, method: str, desk_id: int, *values: Any, calldata: bool = False, title: str = "") -> None:
    """Send an admin `method` from --account, or with --calldata print the call for a MultiSig."""
    registry = _registry(app)
    args = registry.args(method, desk_id, *values)
    if calldata:
        target, data = registry.call(method, *args)
        out = {"desk_id": desk_id, "method": method, "target": target, "value": 0, "data": "0x" + data.hex()}
        app.emit(
            out,
            lambda c: c.print(
                f"{method} on desk #{desk_id}: call {target} value 0 data {out['data']}\n"
                f"execute it from the desk's admin, e.g. `nexotc msig propose WALLET --to {target} "
                f"--data {out['data']}`"
            ),
        )
        return
    sender = app.sender()
    with step(app, f"{method} on desk #{desk_id}"):
        result = registry.send(method, sender, *args)
    _emit_tx(app, title or f"desk #{desk_id}: {method.replace('_', ' ')}", result, {"desk_id": desk_id})


def _emit_tx(app: App, title: str, result: TxResult, extra: dict[str, Any] | None = None) -> None:
    from nexotc_client.cli.render import render_tx

    app.emit({**(extra or {}), **result.to_dict()}, lambda c: render_tx(c, title, result))


@click.group()
def desk() -> None:
    """Private OTC desks: members and roles, asset list, fee schedule, access mode."""


# ------------------------------------------------------------------ deploy
@desk.command("deploy")
@click.option("--force", is_flag=True, help="Deploy a new registry even if one is recorded.")
@shared_options
@click.pass_obj
def deploy(app: App, force: bool) -> None:
    """Deploy the DeskRegistry and record it (in <home>/desks.json)."""
    from nexotc_client.chain.desk import deploy_desk_registry, get_desk_record

    app.connect()
    records = _records(app)
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
    from nexotc_client.chain.deployment import network_key

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
        {"desk_id": desk_id, "registry": registry.address},
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
    from nexotc_client.chain.desk import parse_roles

    _admin_call(app, "add_member", desk_id, wallet_address(who), parse_roles(roles), calldata=calldata)


@desk.command("remove-member")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("who", metavar="WHO")
@_calldata_option
@shared_options
@click.pass_obj
def remove_member(app: App, desk_id: int, who: str, calldata: bool) -> None:
    """Remove WHO from the desk (every role)."""
    _admin_call(app, "remove_member", desk_id, wallet_address(who), calldata=calldata)


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
    _admin_call(
        app,
        "set_assets",
        desk_id,
        [_asset(app, t) for t in allow],
        [_asset(app, t) for t in disallow],
        calldata=calldata,
    )


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
    """Set the fee schedule of future desk deals."""
    if fee_recipient is None and max_fee_bps is None and introducer_cap_bps is None:
        raise click.UsageError("give --fee-recipient, --max-fee-bps and/or --introducer-cap-bps")
    recipient = wallet_address(fee_recipient) if fee_recipient is not None else None
    _admin_call(app, "set_fees", desk_id, recipient, max_fee_bps, introducer_cap_bps, calldata=calldata)


@desk.command("set-access")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("mode", type=click.Choice(["public", "invite-only"]))
@_calldata_option
@shared_options
@click.pass_obj
def set_access(app: App, desk_id: int, mode: str, calldata: bool) -> None:
    """public (any counterparty) or invite-only (buyer and seller are members)."""
    _admin_call(app, "set_invite_only", desk_id, mode == "invite-only", calldata=calldata)


@desk.command("set-policy")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("policy")
@_calldata_option
@shared_options
@click.pass_obj
def set_policy(app: App, desk_id: int, policy: str, calldata: bool) -> None:
    """Set the compliance policy id (hex, integer, text hashed; none clears it)."""
    _admin_call(app, "set_policy_id", desk_id, policy, calldata=calldata)


@desk.command("suspend")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@_calldata_option
@shared_options
@click.pass_obj
def suspend(app: App, desk_id: int, calldata: bool) -> None:
    """Stop new desk deals (existing deals are not affected)."""
    _admin_call(app, "set_suspended", desk_id, True, calldata=calldata)


@desk.command("unsuspend")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@_calldata_option
@shared_options
@click.pass_obj
def unsuspend(app: App, desk_id: int, calldata: bool) -> None:
    """Allow new desk deals again."""
    _admin_call(app, "set_suspended", desk_id, False, calldata=calldata)


@desk.command("propose-admin")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@click.argument("new_admin", metavar="NEW")
@_calldata_option
@shared_options
@click.pass_obj
def propose_admin(app: App, desk_id: int, new_admin: str, calldata: bool) -> None:
    """Propose NEW as admin (it accepts with accept-admin); `none` withdraws a proposal."""
    target = None if new_admin.strip().lower() == "none" else wallet_address(new_admin)
    _admin_call(app, "propose_admin", desk_id, target, calldata=calldata)


@desk.command("accept-admin")
@click.argument("desk_id", metavar="ID", type=DESK_ID)
@_calldata_option
@shared_options
@click.pass_obj
def accept_admin(app: App, desk_id: int, calldata: bool) -> None:
    """The proposed admin (--account) takes over the desk."""
    _admin_call(app, "accept_admin", desk_id, calldata=calldata)


__all__ = ["desk"]
