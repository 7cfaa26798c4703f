"""The root `nexotc` group, the shared options and context, output and the error boundary.

Every user mistake ends as ONE line on stderr and a non-zero exit; tracebacks are only shown for
internal errors when NEXOTC_DEBUG=1.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.terms import TermsError

if TYPE_CHECKING:
    from ape.api import AccountAPI
    from rich.console import Console

    from nexotc_client.chain.deal import Deal
    from nexotc_client.chain.deployment import Deployment
    from nexotc_client.chain.factory import Factory

LOCAL_NETWORK = "ethereum:local:foundry"
DEFAULT_PORT = 8545
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


def debug_enabled() -> bool:
    return os.environ.get("NEXOTC_DEBUG", "").strip() not in ("", "0", "false", "no")


# ------------------------------------------------------------------ context
@dataclass
class App:
    """Options shared by every command (given before or after the command name)."""

    network: str | None = None
    rpc: str | None = None
    account: str | None = None
    json: bool = False
    home: Path = field(default_factory=lambda: Path(os.environ.get("NEXOTC_HOME") or ".nexotc"))
    _stack: ExitStack = field(default_factory=ExitStack)
    _connected: bool = False

    # -- network
    @property
    def is_local_default(self) -> bool:
        return self.network in (None, LOCAL_NETWORK, "local", "ethereum:local")

    def local_rpc(self) -> str:
        """The node of `nexotc node start` in this home; 127.0.0.1:8545 only for a home that never
        ran one (a home whose node is stopped must not silently talk to another chain)."""
        from nexotc_client.cli.node import STATE_FILE, running_node

        info = running_node(self.home)
        if info is not None:
            return info.rpc_url
        if (self.home / STATE_FILE).exists():
            raise NexotcError(
                f"the node of {self.home} is stopped: start it with `nexotc node start` (or pass --rpc URL)"
            )
        return f"http://127.0.0.1:{DEFAULT_PORT}"

    def connect(self) -> None:
        """Connect ape to the chosen network; for the default local network, to the node started
        by `nexotc node start` (never spawning one)."""
        if self._connected:
            return
        settings: dict[str, Any] = {}
        choice = self.network or LOCAL_NETWORK
        if self.is_local_default:
            choice = LOCAL_NETWORK
            url = self.rpc or self.local_rpc()
            from nexotc_client.cli.node import rpc_call

            try:
                rpc_call(url, "eth_chainId", timeout=2.0)
            except OSError as exc:
                raise NexotcError(
                    f"no node answers at {url}: start one with `nexotc node start` (or pass --rpc URL)"
                ) from exc
            settings = {"host": url, "manage_process": False}
        elif self.rpc:
            settings = {"uri": self.rpc, "host": self.rpc}
        _quiet_ape()
        from ape import networks
        from ape.exceptions import ApeException

        try:
            self._stack.enter_context(networks.parse_network_choice(choice, provider_settings=settings))
        except ApeException as exc:
            raise NexotcError(f"cannot connect to {choice}: {_first_line(str(exc))}") from exc
        except (ValueError, KeyError) as exc:
            raise NexotcError(f"unknown network {choice!r}: {_first_line(str(exc))}") from exc
        self._connected = True
        _wait_for_interval_blocks(networks.provider)

    def close(self) -> None:
        self._stack.close()

    # -- accounts
    def sender(self) -> AccountAPI:
        """The account that signs (--account / $NEXOTC_ACCOUNT)."""
        ref = self.account or os.environ.get("NEXOTC_ACCOUNT")
        if not ref:
            raise NexotcError("this command sends a transaction: pass --account (an ape alias or test:N)")
        return load_account(ref)

    # -- deployment
    def deployment(self) -> Deployment:
        from nexotc_client.chain.deployment import Registry, get_deployment

        self.connect()
        return get_deployment(registry=Registry(self.home / "deployments.json"))

    def recorded_deployment(self) -> Deployment | None:
        """The deployment this home records for the connected network, None when it records none (not checked
        against the chain: `deployment()` does that). A malformed registry file is refused (NexotcError)."""
        from nexotc_client.chain.deployment import Registry, network_key

        self.connect()
        return Registry(self.home / "deployments.json").get(network_key())

    def node_configured(self) -> bool:
        """Whether a chain was named for this command: --rpc/--network, a node started in this home or a
        deployment recorded here. Commands that also work offline (`offer diff|thread`) only try the chain then,
        instead of probing the default local port on their own."""
        from nexotc_client.cli.node import STATE_FILE

        return bool(
            self.rpc or self.network or (self.home / "deployments.json").is_file() or (self.home / STATE_FILE).exists()
        )

    def factory(self) -> Factory:
        """The factory this home records, checked against the chain and this version's code (`get_factory`)."""
        from nexotc_client.chain.deployment import Registry, get_factory

        self.connect()
        return get_factory(registry=Registry(self.home / "deployments.json"))

    def deal(self, ref: str) -> Deal:
        """DEAL by creation number (`#N`, of the current factory) or by address: a deal of the current factory,
        else of a factory it replaced (`deploy --force` keeps them in the record), so old deals stay
        reachable for release, refund, claim and expiry."""
        from nexotc_client.chain.encoding import is_valid_address
        from nexotc_client.chain.errors import NotADealError
        from nexotc_client.chain.factory import Factory

        if isinstance(ref, str) and is_valid_address(ref.strip()) and self.recorded_deployment() is None:
            return self._deal_of_its_factory(ref.strip())
        factory = self.factory()
        try:
            return factory.deal(ref)
        except NotADealError as exc:
            for address, block in self.deployment().previous:
                older = Factory.at(address, start_block=block)
                if older.is_deal(ref):
                    return older.deal(ref)
            if self.deployment().previous:
                raise NotADealError(f"{exc} nor of the factories it replaced") from None
            raise

    def _deal_of_its_factory(self, address: str) -> Deal:
        """A deal by address in a home that records no factory for the network (a counterparty that accepted an
        invite link): the factory the deal names, accepted only if it runs this version's code and created the
        deal (`audit.resolve_deal`)."""
        from nexotc_client.audit import resolve_deal
        from nexotc_client.chain.deal import Deal
        from nexotc_client.chain.factory import Factory, creation_block

        named = resolve_deal(address)
        factory = Factory.checked(named.factory.address, start_block=creation_block(named.factory.address))
        return Deal.at(address, factory)

    # -- output
    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        if self.json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            from rich.console import Console

            width = None if sys.stdout.isatty() else 160
            render(Console(highlight=False, width=width))


def load_account(ref: str) -> AccountAPI:
    """`test:N` (the test mnemonic accounts, funded by the local node), an address of a known
    account, or an ape account alias."""
    from ape import accounts

    from nexotc_client.chain.encoding import is_valid_address

    ref = ref.strip()
    if ref.startswith("test:"):
        index = ref[5:]
        test_accounts = accounts.test_accounts
        if not index.isdigit() or int(index) >= len(test_accounts):
            raise NexotcError(f"no test account {ref!r} (use test:0 .. test:{len(test_accounts) - 1})")
        return test_accounts[int(index)]
    _refuse_malformed_address(ref)
    if is_valid_address(ref):
        for account in list(accounts.test_accounts) + list(accounts):
            if account.address.lower() == ref.lower():
                return account
        raise NexotcError(f"no account with address {ref} (use an ape account alias or test:N)")
    try:
        return accounts.load(ref)
    except Exception as exc:  # ape raises KeyError / AccountsError for unknown aliases
        if ref.startswith("0x"):
            raise NexotcError(f"not an address: {ref!r} (nor an ape account alias)") from exc
        raise NexotcError(f"no ape account named {ref!r} (see `ape accounts list`, or use test:N)") from exc


def wallet_address(ref: str) -> str:
    """The address of a wallet reference (for terms files): like `load_account`, no unlocking."""
    from eth_utils import to_checksum_address

    from nexotc_client.chain.encoding import is_valid_address

    ref = ref.strip()
    if is_valid_address(ref):
        return to_checksum_address(ref)
    _refuse_malformed_address(ref)
    if ref.startswith("test:"):
        return load_account(ref).address
    from ape import accounts

    try:
        return accounts.load(ref).address
    except Exception as exc:  # ape raises KeyError / AccountsError for unknown aliases
        if ref.startswith("0x"):
            raise NexotcError(f"not an address: {ref!r} (nor an ape account alias)") from exc
        raise NexotcError(f"no ape account named {ref!r} and not test:N") from exc


def _refuse_malformed_address(ref: str) -> None:
    """A reference written as an address (0x and hex digits) must be one: a typo, a truncated address or a
    wrong EIP-55 checksum is named as such, never looked up as an account alias."""
    from eth_utils import is_hex_address

    from nexotc_client.chain.encoding import is_valid_address

    if not ref[:2].lower() == "0x" or is_valid_address(ref):
        return
    if ref.startswith("0X"):
        raise NexotcError(f"not an address: {ref!r} (an address starts with a lower-case 0x)")
    if is_hex_address(ref):
        raise NexotcError(
            f"bad checksum in the address {ref}: a mixed-case address must match its EIP-55 checksum (a typo?)"
        )
    if all(c in "0123456789abcdefABCDEF" for c in ref[2:]):
        digits = len(ref) - 2
        raise NexotcError(f"not an address: {ref!r} ({digits} hex digits; an address has 40)")


def _quiet_ape() -> None:
    """Keep ape's own logging, warnings and revert call traces off the user's terminal."""
    if debug_enabled():
        return
    warnings.filterwarnings("ignore")
    from ape.logging import LogLevel, logger

    logger.set_level(LogLevel.ERROR)
    # ape (and ape-foundry) print the call trace of a reverted transaction to stdout; the wrappers
    # simulate every transaction first, so this only matters for a race, but stdout is ours.
    from ape_ethereum.trace import Trace

    Trace.show = lambda self, *args, **kwargs: None  # type: ignore[method-assign]


# ----------------------------------------------------------------- options
def _set_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or value is False or value == ():
        return value
    app = ctx.find_object(App)
    if app is None:  # pragma: no cover - the root group always creates it
        app = ctx.ensure_object(App)
    if param.name == "home":
        value = Path(value)
    setattr(app, str(param.name), value)
    return value


def shared_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--network/--rpc/--account/--json/--home, accepted before or after the command name."""
    options = [
        click.option(
            "--network",
            default=None,
            expose_value=False,
            callback=_set_option,
            help=f"Ape network choice (default: {LOCAL_NETWORK} on the node of `nexotc node start`).",
        ),
        click.option("--rpc", default=None, expose_value=False, callback=_set_option, help="RPC URL of the node."),
        click.option(
            "--account",
            default=None,
            expose_value=False,
            callback=_set_option,
            help="Signer: an ape account alias, or test:N (local test accounts). Env: NEXOTC_ACCOUNT.",
        ),
        click.option(
            "--json",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_set_option,
            help="JSON output.",
        ),
        click.option(
            "--home",
            default=None,
            expose_value=False,
            callback=_set_option,
            help="nexotc directory (registry, node state). Env: NEXOTC_HOME; default ./.nexotc",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@shared_options
@click.version_option(package_name="nexotc", prog_name="nexotc")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """nexotc: trustless OTC escrow deals on EVM chains."""
    app = ctx.ensure_object(App)
    ctx.call_on_close(app.close)


# ------------------------------------------------------------ error boundary
def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            line = line.strip()
            return line[: -len("Options:")].strip() if line.endswith("Options:") else line
    return text.strip()


def _wait_for_interval_blocks(provider: Any) -> None:
    """A node that mines on an interval (`node start --block-time N`, or any anvil with automine off):
    make ape wait for each transaction's block. Ape hands back a receipt with no block for a node that does
    not automine (the deploy then "created no contract" and the next transaction reused the nonce); the
    receipt wait it uses for automining nodes is what a CLI command needs. The node's mining mode is left
    as it is: only this process's view of it changes."""
    try:
        automine = provider.auto_mine
    except Exception:  # a provider without the notion (a remote RPC): ape waits for receipts there
        return
    if automine:
        return
    cls = type(provider)
    waiting = type(cls.__name__, (cls,), {"auto_mine": property(lambda self: True, lambda self, value: None)})
    provider.__class__ = waiting


def _fail(message: str, code: int) -> int:
    click.echo(f"error: {_first_line(message) or 'failed'}", err=True)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code. User errors print one line on stderr."""
    try:
        result = cli.main(args=argv, prog_name="nexotc", standalone_mode=False)
    except click.ClickException as exc:
        command = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "nexotc"  # type: ignore[union-attr]
        hint = f" (see `{command} --help`)" if isinstance(exc, click.UsageError) else ""
        return _fail(exc.format_message() + hint, exc.exit_code)
    except click.exceptions.Abort:
        return _fail("aborted", 130)
    except (NexotcError, TermsError) as exc:
        if debug_enabled():
            raise
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if debug_enabled():
            raise
        if _is_ape_error(exc):
            return _fail(str(exc), EXIT_ERROR)
        return _fail(
            f"internal error: {type(exc).__name__}: {_first_line(str(exc))} (NEXOTC_DEBUG=1 shows the traceback)",
            EXIT_INTERNAL,
        )
    return result if isinstance(result, int) else 0


def _is_ape_error(exc: BaseException) -> bool:
    try:
        from ape.exceptions import ApeException
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, ApeException)


def main() -> None:
    """Console entry point (`nexotc`)."""
    sys.exit(run())


@contextmanager
def step(app: App, message: str) -> Iterator[None]:
    """A spinner on stderr for slow steps (not in --json mode)."""
    if app.json or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


__all__ = ["App", "cli", "load_account", "main", "run", "shared_options", "step", "wallet_address"]
