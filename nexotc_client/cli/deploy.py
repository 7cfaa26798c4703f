"""`nexotc deploy`: deploy the EscrowFactory (and, locally, mock tokens) and record it."""

from __future__ import annotations

from typing import Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step

LOCAL_CHAIN_IDS = (31337, 1337)
# symbol => (constructor args or None for MockUSDT, amount minted to each test account in units)
MOCK_TOKENS: dict[str, tuple[str, tuple[Any, ...] | None, int]] = {
    "WBTC": ("MockToken", ("Wrapped BTC (mock)", "WBTC", 8, 0), 1_000 * 10**8),
    "USDT": ("MockUSDT", None, 100_000_000 * 10**6),
    "WETH": ("MockToken", ("Wrapped Ether (mock)", "WETH", 18, 0), 10_000 * 10**18),
}
MOCK_HOLDERS = 10


def deploy_mock_tokens(sender: Any) -> dict[str, str]:
    """Deploy the mock tokens and mint a balance to the first test accounts (local chains only)."""
    from ape import accounts

    from nexotc_client.chain.contracts import container
    from nexotc_client.chain.errors import reverts_as_errors

    out: dict[str, str] = {}
    holders = list(accounts.test_accounts)[:MOCK_HOLDERS]
    for symbol, (name, args, amount) in MOCK_TOKENS.items():
        with reverts_as_errors(f"deploying mock {symbol}"):
            token = container(name).deploy(*(args or ()), sender=sender)
            for holder in holders:
                token.mint(holder.address, amount, sender=sender)
        out[symbol] = str(token.address)
    return out


@click.command()
@click.option("--mock-tokens", is_flag=True, help="Local chains: also deploy WBTC/USDT/WETH mocks, funded.")
@click.option("--force", is_flag=True, help="Deploy a new factory even if one is recorded.")
@click.option(
    "--new-desk-registry",
    is_flag=True,
    help="With --force: the new factory serves a new DeskRegistry (default: the desks the recorded factory "
    "serves, or the recorded registry, stay in use).",
)
@click.option(
    "--kyc",
    is_flag=True,
    help="Also deploy the zk KYC registry (KYCRegistry, admin --account) unless one is recorded; "
    "deals with a compliance policy gate on it.",
)
@shared_options
@click.pass_obj
def deploy(app: App, mock_tokens: bool, force: bool, new_desk_registry: bool, kyc: bool) -> None:
    """Deploy the factory on the network and record it in the registry. The deal implementation
    asks the KYC registry recorded for the network (<home>/kyc.json), if any, for compliance gates."""
    from ape import chain

    from nexotc_client.chain.deployment import Registry, deploy_factory, get_deployment, network_key
    from nexotc_client.chain.multisig import deploy_wallet_factory

    app.connect()
    registry = Registry(app.home / "deployments.json")
    if not force:
        try:
            existing = get_deployment(registry=registry)
        except NexotcError:
            existing = None
        if existing is not None:
            if kyc and existing.kyc_registry is None:
                raise NexotcError(
                    f"--kyc: the factory at {existing.factory} was deployed without a KYC registry, and a factory's "
                    "compliance registry is fixed when it is deployed: `nexotc deploy --force --kyc` deploys one "
                    "with it (the deals of this factory stay reachable by address)"
                )
            added = _ensure_multisig_factory(app, registry, existing)
            current = registry.get(existing.network) or existing
            app.emit(
                {"already_deployed": True, "multisig_factory_deployed": added, **current.to_dict()},
                lambda c: c.print(
                    f"factory already deployed on {current.network} at {current.factory} "
                    f"(block {current.block}); --force deploys another"
                    + (f"\nMultiSigFactory {current.multisig_factory} deployed and recorded" if added else "")
                ),
            )
            return
    sender = app.sender()
    # a redeployment keeps the tokens recorded before (terms files name them by symbol) unless
    # --mock-tokens deploys new ones; tokens whose code is gone (another chain state) are dropped
    previous = registry.get(network_key())
    tokens = {s: a for s, a in (previous.tokens if previous else {}).items() if chain.provider.get_code(a)}
    if mock_tokens:
        if int(chain.chain_id) not in LOCAL_CHAIN_IDS:
            raise NexotcError(f"--mock-tokens is for local chains only (connected to {network_key()})")
        with step(app, "deploying mock tokens"):
            tokens = deploy_mock_tokens(sender)
    kyc_registry = _kyc_registry(app, sender, kyc)
    desk_registry = None if new_desk_registry else _desk_registry(app, previous)
    with step(app, "deploying the factory"):
        factory = deploy_factory(
            sender, registry=registry, tokens=tokens, desk_registry=desk_registry, kyc_registry=kyc_registry
        )
    kept_wallets = (
        previous is not None
        and previous.multisig_factory is not None
        and bool(chain.provider.get_code(previous.multisig_factory))
    )
    if kept_wallets:  # wallets do not depend on the escrow factory: the recorded MultiSigFactory stays
        from dataclasses import replace

        new_record = registry.get(network_key())
        assert new_record is not None and previous is not None
        registry.record(
            replace(
                new_record,
                multisig_factory=previous.multisig_factory,
                multisig_factory_block=previous.multisig_factory_block,
            )
        )
    else:
        with step(app, "deploying the MultiSigFactory"):
            deploy_wallet_factory(sender, registry=registry)
    deployment = registry.get(network_key())
    assert deployment is not None
    data = {
        "already_deployed": False,
        **deployment.to_dict(),
        "desk_registry": str(factory.contract.desk_registry()),
        "registry": str(registry.path),
    }

    def render(console: Any) -> None:
        console.print(f"factory {factory.address} on {deployment.network} (block {deployment.block})")
        console.print(f"implementation {deployment.implementation}")
        console.print(f"MultiSigFactory {deployment.multisig_factory}" + (" (kept)" if kept_wallets else ""))
        console.print(f"desk registry {data['desk_registry']}")
        if deployment.kyc_registry:
            console.print(f"KYC registry {deployment.kyc_registry} (compliance gates)")
        if deployment.previous:
            console.print(
                f"replaces factory {deployment.previous[0][0]}: `deal list` now lists the new factory's deals; the "
                "replaced factories' deals stay reachable by address (deal show|release|refund|claim|expire ADDRESS)"
            )
        for symbol, address in tokens.items():
            console.print(f"{'mock ' if mock_tokens else ''}{symbol} {address}" + ("" if mock_tokens else " (kept)"))
        console.print(f"recorded in {registry.path}")

    app.emit(data, render)


def _kyc_registry(app: App, sender: Any, deploy_one: bool) -> str | None:
    """The KYC registry the deals will ask: the recorded one, else (with --kyc) a new one."""
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords, deploy_kyc_registry, get_kyc_record

    records = KycRecords(app.home / KYC_FILE)
    try:
        return get_kyc_record(records).address
    except NexotcError:
        if not deploy_one:
            return None
    with step(app, "deploying the KYC registry"):
        return deploy_kyc_registry(sender, records=records).address


def _desk_registry(app: App, previous: Any) -> str | None:
    """The DeskRegistry a new factory keeps serving: the recorded factory's, else the one recorded in
    desks.json (checked against the chain); None: deploy a new one."""
    from ape import chain

    from nexotc_client.chain.desk import DESKS_FILE, DeskRecords, factory_desk_registry, get_desk_record

    if previous is not None and chain.provider.get_code(previous.factory):
        served = factory_desk_registry(previous.factory)
        if served is not None and chain.provider.get_code(served):
            return served
    try:
        return get_desk_record(DeskRecords(app.home / DESKS_FILE)).address
    except NexotcError:
        return None


def _ensure_multisig_factory(app: App, registry: Any, deployment: Any) -> bool:
    """Deploy and record the MultiSigFactory next to an existing escrow factory when it is missing
    (a record made before it existed) or gone. True if it was deployed now."""
    from ape import chain

    from nexotc_client.chain.multisig import deploy_wallet_factory

    if deployment.multisig_factory and chain.provider.get_code(deployment.multisig_factory):
        return False
    try:
        sender = app.sender()
    except NexotcError:
        return False  # nothing to sign with: `nexotc deploy --account ...` adds it later
    with step(app, "deploying the MultiSigFactory"):
        deploy_wallet_factory(sender, registry=registry)
    return True


__all__ = ["deploy", "deploy_mock_tokens"]
