"""`nexotc deploy`: deploy the EscrowFactory (and, locally, mock tokens) and record it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, shared_options, step

LOCAL_CHAIN_IDS = (31337, 1337)
REGISTRY_FILE = "deployments.json"
# symbol => (constructor args or None for MockUSDT, amount minted to each test account in units)
MOCK_TOKENS: dict[str, tuple[str, tuple[Any, ...] | None, int]] = {
    "WBTC": ("MockToken", ("Wrapped BTC (mock)", "WBTC", 8, 0), 1_000 * 10**8),
    "USDT": ("MockUSDT", None, 100_000_000 * 10**6),
    "WETH": ("MockToken", ("Wrapped Ether (mock)", "WETH", 18, 0), 10_000 * 10**18),
}
MOCK_HOLDERS = 10


def deploy_mock_tokens(sender: Any, on_deployed: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """Deploy the mock tokens and mint a balance to the first test accounts (local chains only).
    `on_deployed(symbol, address)` is called as each token lands, before its mints (to record it at once)."""
    from ape import accounts

    from nexotc_client.chain.contracts import container
    from nexotc_client.chain.errors import reverts_as_errors

    out: dict[str, str] = {}
    holders = list(accounts.test_accounts)[:MOCK_HOLDERS]
    for symbol, (name, args, amount) in MOCK_TOKENS.items():
        with reverts_as_errors(f"deploying mock {symbol}"):
            token = container(name).deploy(*(args or ()), sender=sender)
        out[symbol] = str(token.address)
        if on_deployed is not None:
            on_deployed(symbol, out[symbol])
        with reverts_as_errors(f"funding mock {symbol}"):
            for holder in holders:
                token.mint(holder.address, amount, sender=sender)
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
    asks the KYC registry recorded for the network (<home>/kyc.json), if any, for compliance gates.

    Every file it records in is checked before anything is sent, and each contract is recorded as it
    lands: an interrupted deploy keeps what it deployed."""
    from ape import chain

    from nexotc_client.chain.deployment import Registry, deploy_factory, get_deployment, is_factory, network_key
    from nexotc_client.chain.errors import NotDeployedError
    from nexotc_client.chain.multisig import deploy_wallet_factory

    if new_desk_registry and not force:
        raise click.UsageError(
            "--new-desk-registry is used with --force: it gives the new factory a desk registry of its own "
            "(without --force the recorded factory stays)"
        )
    app.connect()
    registry = Registry(app.home / REGISTRY_FILE)
    if not force:
        try:
            existing = get_deployment(registry=registry)
        except NotDeployedError:
            existing = None  # nothing recorded, or a reset chain: deploy anew
        if existing is not None:
            if not is_factory(existing.factory):
                raise NexotcError(
                    f"the factory recorded for {existing.network} in {registry.path} ({existing.factory}) is not an "
                    "EscrowFactory: `nexotc deploy --force` deploys a new factory and records it in its place"
                )
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
    if mock_tokens and int(chain.chain_id) not in LOCAL_CHAIN_IDS:
        raise NexotcError(f"--mock-tokens is for local chains only (connected to {network_key()})")
    # what is already there (read only): nothing is sent before every file to write is known to be writable
    # a redeployment keeps the tokens recorded before (terms files name them by symbol); tokens whose code is
    # gone (another chain state) are dropped; --mock-tokens deploys new ones over them
    previous = registry.get(network_key())
    kept_tokens = {s: a for s, a in (previous.tokens if previous else {}).items() if chain.provider.get_code(a)}
    kyc_registry = _recorded_kyc_registry(app)
    desk_registry = None if new_desk_registry else _desk_registry(app, previous)
    kept_wallets: tuple[str, int | None] | None = None
    if (
        previous is not None
        and previous.multisig_factory is not None
        and chain.provider.get_code(previous.multisig_factory)
    ):  # wallets do not depend on the escrow factory: the recorded MultiSigFactory stays
        kept_wallets = (previous.multisig_factory, previous.multisig_factory_block)
    _check_home(app, desks=desk_registry is None, kyc=kyc and kyc_registry is None)

    if kyc_registry is None and kyc:
        kyc_registry = _deploy_kyc_registry(app, sender)
    with step(app, "deploying the factory"):
        factory = deploy_factory(
            sender,
            registry=registry,
            tokens=kept_tokens,
            desk_registry=desk_registry,
            kyc_registry=kyc_registry,
            multisig_factory=kept_wallets,
        )
    if kept_wallets is None:
        with step(app, "deploying the MultiSigFactory"):
            deploy_wallet_factory(sender, registry=registry)
    mocks: dict[str, str] = {}
    if mock_tokens:
        with step(app, "deploying mock tokens"):
            mocks = deploy_mock_tokens(
                sender, on_deployed=lambda symbol, address: _record_token(registry, symbol, address)
            )
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
        for symbol, address in deployment.tokens.items():
            console.print(f"mock {symbol} {address}" if symbol in mocks else f"{symbol} {address} (kept)")
        console.print(f"recorded in {registry.path}")

    app.emit(data, render)


def _check_home(app: App, desks: bool = False, kyc: bool = False) -> None:
    """Before anything is sent: the record files deploy reads are well formed, and those it will write
    (deployments.json; desks.json for a new desk registry; kyc.json for a new KYC registry) can be written."""
    from nexotc_client.chain.deployment import RecordFile, Registry
    from nexotc_client.chain.desk import DESKS_FILE, DeskRecords
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords

    files: list[tuple[RecordFile[Any], bool]] = [
        (Registry(app.home / REGISTRY_FILE), True),
        (DeskRecords(app.home / DESKS_FILE), desks),
        (KycRecords(app.home / KYC_FILE), kyc),
    ]
    for records, written in files:
        if written:
            records.check_writable()
        else:
            records.load()


def _record_token(registry: Any, symbol: str, address: str) -> None:
    """Add a token that just landed to the network's record (an interrupted deploy keeps it)."""
    from dataclasses import replace

    from nexotc_client.chain.deployment import network_key

    current = registry.get(network_key())
    assert current is not None  # the factory is recorded before the tokens are deployed
    registry.record(replace(current, tokens={**current.tokens, symbol: address}))


def _recorded_kyc_registry(app: App) -> str | None:
    """The KYC registry recorded for the network (None: none, or gone with a chain reset)."""
    from nexotc_client.chain.errors import NotDeployedError
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords, get_kyc_record

    try:
        return get_kyc_record(KycRecords(app.home / KYC_FILE)).address
    except NotDeployedError:
        return None


def _deploy_kyc_registry(app: App, sender: Any) -> str:
    from nexotc_client.chain.kyc import KYC_FILE, KycRecords, deploy_kyc_registry

    with step(app, "deploying the KYC registry"):
        return deploy_kyc_registry(sender, records=KycRecords(app.home / KYC_FILE)).address


def _desk_registry(app: App, previous: Any) -> str | None:
    """The DeskRegistry a new factory keeps serving: the recorded factory's, else the one recorded in
    desks.json (checked against the chain); None: deploy a new one."""
    from ape import chain

    from nexotc_client.chain.deployment import is_factory
    from nexotc_client.chain.desk import DESKS_FILE, DeskRecords, factory_desk_registry, get_desk_record
    from nexotc_client.chain.errors import NotDeployedError

    if previous is not None and is_factory(previous.factory):  # a record naming a non-factory serves no desks
        served = factory_desk_registry(previous.factory)
        if served is not None and chain.provider.get_code(served):
            return served
    try:
        return get_desk_record(DeskRecords(app.home / DESKS_FILE)).address
    except NotDeployedError:
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
    _check_home(app)
    with step(app, "deploying the MultiSigFactory"):
        deploy_wallet_factory(sender, registry=registry)
    return True


__all__ = ["deploy", "deploy_mock_tokens"]
