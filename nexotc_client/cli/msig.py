"""`nexotc msig ...`: M-of-N multisig wallets (contracts/MultiSig.vy) made by the MultiSigFactory.

    nexotc msig create --owner A --owner B --owner C --threshold 2 [--salt S] --account DEPLOYER
    nexotc msig owners WALLET
    nexotc msig propose WALLET (--to ADDR [--data 0x..] [--value WEI] | --erc20-transfer TOKEN:TO:AMOUNT
                        | --call 'TARGET.method(args)')... [--deadline +1d] [--nonce N] --out PROPOSAL.json [--force]
    nexotc msig sign PROPOSAL.json --account OWNER [--out SIG.json [--force]]     works offline too
    nexotc msig exec PROPOSAL.json [SIG.json...] [--sign-with ACCOUNT]... [--account RELAYER]

Signatures are collected as files (one per owner, from `msig sign`) or made on the spot by several
local accounts (`--sign-with test:1 --sign-with test:2`); `exec` checks each one against the
proposal and the owners, sorts them by signer and refuses fewer than the threshold. Several calls
(`--to`, then every `--erc20-transfer`, then every `--call`, in that order) make one batch.

AMOUNT in --erc20-transfer is in the token's human units ("1000.5" with its decimals); TOKEN is an
address or a token symbol of the deployment (local mock tokens). In --call, TARGET is a deal (address
or #N), `wallet` (the wallet itself: add_owner, remove_owner, change_threshold...), `factory` (the
escrow factory), `desk` (the desk registry the factory serves), a token symbol, or an address (a
token: transfer, approve, transferFrom); arguments are comma-separated: integers, addresses or
account references (test:N), true/false, 0x hex, or quoted text. --call integers are RAW: a token
amount there is in base units (`USDT.approve(test:8, 5)` approves 0.000005 USDT), and must fit the
argument's type (uint256: 0 .. 2**256 - 1, uint8: 0 .. 255, ...); the summary shown by propose (and
sign) gives every known amount in both forms. `propose` and `sign` refuse an existing --out file
without --force (owners may have signed the proposal already: a new one would orphan their signatures);
`sign` refuses its default file (PROPOSAL.<signer>.sig.json) alike.

`sign` checks, when the chain is reachable, that the signer is an owner, that the proposal's nonce is
not used yet and that its deadline has not passed; offline it signs and says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nexotc_client.chain.errors import NexotcError
from nexotc_client.cli.app import App, load_account, shared_options, step, wallet_address
from nexotc_client.cli.render import tx_dict

if TYPE_CHECKING:
    from rich.console import Console

    from nexotc_client.chain.deal import TxResult
    from nexotc_client.chain.multisig import MultiSigWallet
    from nexotc_client.multisig import Call

_CALL = re.compile(r"^\s*(?P<target>[^\s.(]+)\s*\.\s*(?P<method>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<args>.*)\)\s*$", re.S)


@click.group()
def msig() -> None:
    """Multisig wallets: create, show owners, propose, sign, execute."""


def _wallet(app: App, ref: str) -> MultiSigWallet:
    from nexotc_client.chain.multisig import MultiSigWallet

    app.connect()
    return MultiSigWallet.at(_address(ref, "WALLET"))


def _base_units_int(text: str) -> int:
    """An integer argument: decimal (`_` only between groups of three digits: 1_000_000) or 0x hex."""
    if "_" in text and not re.match(r"^-?\d{1,3}(_\d{3})+$", text):
        raise ValueError(f"ambiguous number {text!r} (_ only between groups of three digits, e.g. 1_000_000)")
    if not _INTEGER.fullmatch(text.replace("_", "")):
        raise ValueError(
            f"{text!r} is not a whole number (decimal digits or 0x hex; --call integers are raw base units, "
            "no decimals or exponent)"
        )
    return int(text, 0)


#: a --call integer: decimal ASCII digits (no leading zero but 0 itself, as int(x, 0) wants), 0x hex (or 0o, 0b)
_INTEGER = re.compile(r"[+-]?(0+|[1-9][0-9]*|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+)")
#: a uint256 (a wei value, a token amount, a nonce, a deadline)
UINT256_MAX = 2**256 - 1
#: the latest --deadline: 9999-12-31T23:59:59Z (the contract's uint256 holds more; no calendar shows it)
MAX_DEADLINE = 253_402_300_799


def _uint256(value: int, option: str) -> int:
    """`value` if a uint256 holds it, else the one-line error that names `option`."""
    if not 0 <= value <= UINT256_MAX:
        raise NexotcError(f"{option}: {value} is out of range for uint256 (0 .. 2**256 - 1)")
    return value


def _address(ref: str, what: str) -> str:
    from nexotc_client.chain.encoding import is_valid_address

    if is_valid_address(ref.strip()):
        from eth_utils import to_checksum_address

        return to_checksum_address(ref.strip())
    try:
        return wallet_address(ref.strip())
    except NexotcError as exc:
        raise NexotcError(f"{what}: {ref!r} is not an address or an account ({exc})") from exc


def _refuse_overwrite(out: Path, force: bool, what: str) -> None:
    if out.exists() and not force:
        raise NexotcError(f"{out} exists: {what} is not overwritten without --force; nothing written")


def _input_file(path: Path, what: str) -> Path:
    """A file the command reads: a directory named instead is refused by name (a missing file is said by the
    reader)."""
    if path.is_dir():
        raise NexotcError(f"{what} {path}: a directory, not a file")
    return path


def _render_result(console: Console, title: str, result: TxResult, by_emitter: dict[str, Any] | None = None) -> None:
    from nexotc_client.cli.render import render_tx

    render_tx(console, title, result, by_emitter=by_emitter)


# ------------------------------------------------------------------ create
@msig.command("create")
@click.option("--owner", "owners", multiple=True, required=True, help="An owner (address, alias or test:N); repeat.")
@click.option("--threshold", type=click.IntRange(1, 20), required=True, help="Signatures an execution needs.")
@click.option("--salt", default=None, help="CREATE2 salt: hex or text (default: random).")
@shared_options
@click.pass_obj
def create(app: App, owners: tuple[str, ...], threshold: int, salt: str | None) -> None:
    """Create a THRESHOLD-of-N wallet through the recorded MultiSigFactory."""
    from nexotc_client.chain.encoding import to_salt
    from nexotc_client.chain.multisig import WalletFactory

    addresses = [_address(o, "--owner") for o in owners]
    deployment = app.deployment()
    factory = WalletFactory.recorded(deployment)
    sender = app.sender()
    raw_salt = to_salt(salt)
    with step(app, "creating the wallet"):
        wallet, result = factory.create(addresses, threshold, raw_salt, sender)
    owners_sorted = list(wallet.owners())
    data = {
        "wallet": wallet.address,
        "owners": owners_sorted,
        "threshold": threshold,
        "salt": "0x" + raw_salt.hex(),
        "factory": factory.address,
        "creator": sender.address,
        **tx_dict(result),
    }

    def render(console: Console) -> None:
        console.print(f"wallet {wallet.address}: {threshold} of {len(owners_sorted)}")
        for owner in owners_sorted:
            console.print(f"  owner {owner}")
        _render_result(console, "created", result)

    app.emit(data, render)


@msig.command("owners")
@click.argument("ref", metavar="WALLET")
@shared_options
@click.pass_obj
def owners_cmd(app: App, ref: str) -> None:
    """Owners (ascending), threshold and nonce of a wallet."""
    info = _wallet(app, ref).info()

    def render(console: Console) -> None:
        console.print(f"wallet {info.address}: {info.threshold} of {len(info.owners)}, nonce {info.nonce}")
        for owner in info.owners:
            console.print(f"  owner {owner}")
        console.print(f"  factory {info.factory}, balance {info.balance} wei")

    app.emit(info.to_dict(), render)


# ----------------------------------------------------------------- propose
def _split_args(text: str) -> list[str]:
    """Comma-separated arguments; commas inside quotes or brackets stay."""
    out: list[str] = []
    current = ""
    quote: str | None = None
    depth = 0
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch in "([":
            depth += 1
            current += ch
        elif ch in ")]":
            depth -= 1
            current += ch
        elif ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip() or out:
        out.append(current.strip())
    return out


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


_INT_TYPE = re.compile(r"(?P<unsigned>u?)int(?P<bits>\d*)")


def _in_range(value: int, abi_type: str, integer: re.Match[str]) -> int:
    """`value` if the ABI integer type holds it (uint8: 0 .. 255, int16: -32768 .. 32767, ...)."""
    bits = int(integer["bits"] or 256)
    low, high = (0, 2**bits - 1) if integer["unsigned"] else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= value <= high:
        if bits <= 64:
            hint = f"{low} .. {high}"
        else:  # the bounds as powers of two: readable
            hint = f"0 .. 2**{bits} - 1" if integer["unsigned"] else f"-2**{bits - 1} .. 2**{bits - 1} - 1"
        raise ValueError(f"{value} is out of range for {abi_type} ({hint})")
    return value


def convert_arg(raw: str, abi_type: str, where: str) -> Any:
    """One --call argument converted to its ABI type."""
    from nexotc_client.chain.encoding import to_reason

    text = _unquote(raw.strip())
    try:
        if abi_type == "address":
            return _address(text, where)
        integer = _INT_TYPE.fullmatch(abi_type)
        if integer is not None:
            return _in_range(_base_units_int(text), abi_type, integer)
        if abi_type == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"expected true or false, got {text!r}")
            return text.lower() in ("true", "1")
        if abi_type == "bytes32":
            return to_reason(text)
        if abi_type == "bytes":
            if not text.startswith("0x"):
                raise ValueError(f"expected 0x hex, got {text!r}")
            return bytes.fromhex(text[2:])
        if abi_type == "string":
            return text
    except ValueError as exc:
        raise NexotcError(f"{where}: {exc}") from exc
    raise NexotcError(f"{where}: arguments of type {abi_type} are not supported here (use --to/--data)")


def build_call(
    expr: str, wallet: str, tokens: dict[str, str] | None = None, factory: Any = None, desk_registry: str | None = None
) -> Call:
    """`TARGET.method(args)` as a Call: the target's contract type is found from what it is (a deal
    of `factory`, the wallet, the factory, `desk` for `desk_registry`, else an ERC-20 token)."""
    from ape.contracts import ContractInstance

    from nexotc_client.chain.contracts import deal_container, factory_container
    from nexotc_client.chain.multisig import erc20_type, wallet_container
    from nexotc_client.multisig import Call

    match = _CALL.match(expr)
    if match is None:
        raise NexotcError(f"--call: expected TARGET.method(args), got {expr!r}")
    target_ref, method, args_text = match["target"], match["method"], match["args"]
    tokens = tokens or {}
    kind = "token"
    ref = target_ref.lower()
    if ref in ("wallet", "self", wallet.lower()):
        target, contract_type, kind = wallet, wallet_container().contract_type, "wallet"
    elif factory is not None and ref in ("factory", factory.address.lower()):
        target, contract_type, kind = factory.address, factory_container().contract_type, "factory"
    elif desk_registry is not None and ref in ("desk", desk_registry.lower()):
        from nexotc_client.chain.contracts import container

        target, contract_type, kind = desk_registry, container("DeskRegistry").contract_type, "desk registry"
    elif target_ref in tokens:
        target, contract_type = tokens[target_ref], erc20_type()
    elif factory is not None and (target_ref.lstrip("#").isdigit() or factory.is_deal(target_ref)):
        target, contract_type, kind = factory.deal(target_ref).address, deal_container().contract_type, "deal"
    else:
        target, contract_type = _address(target_ref, "--call"), erc20_type()
    contract = ContractInstance(target, contract_type)
    handler = getattr(contract, method, None)
    abis = [abi for abi in getattr(handler, "abis", []) if abi.type == "function"] if handler is not None else []
    if not abis:
        raise NexotcError(f"--call: the {kind} at {target} has no method {method!r}")
    args = _split_args(args_text)
    candidates = [abi for abi in abis if len(abi.inputs) == len(args)]
    if not candidates:
        arities = ", ".join(str(len(abi.inputs)) for abi in abis)
        raise NexotcError(f"--call: {method} takes {arities} argument(s), got {len(args)}")
    abi = candidates[0]
    values = [
        convert_arg(a, str(i.type), f"--call {method} argument {i.name or n}")
        for n, (a, i) in enumerate(zip(args, abi.inputs, strict=True))
    ]
    try:
        data = bytes(handler.encode_input(*values))
    except Exception as exc:  # anything the checks above let through and the ABI encoder refuses
        raise NexotcError(f"--call {method}: the arguments do not fit {abi.selector}: {exc}") from None
    return Call(target, 0, data)


def erc20_transfer_call(spec: str, tokens: dict[str, str]) -> Call:
    """TOKEN:TO:AMOUNT (TO may itself contain ':', e.g. test:3; AMOUNT in the token's units)."""
    from nexotc_client.chain.contracts import erc20
    from nexotc_client.chain.multisig import erc20_transfer
    from nexotc_client.spec import SpecError, to_units

    parts = spec.split(":")
    if len(parts) < 3:
        raise NexotcError(f"--erc20-transfer: expected TOKEN:TO:AMOUNT, got {spec!r}")
    token_ref, to_ref, amount = parts[0], ":".join(parts[1:-1]), parts[-1]
    token = tokens.get(token_ref) or _address(token_ref, "--erc20-transfer TOKEN")
    to = _address(to_ref, "--erc20-transfer TO")
    try:
        decimals = int(erc20(token).decimals())
    except Exception as exc:  # not a token: no decimals()
        raise NexotcError(f"--erc20-transfer: cannot read the decimals of {token}") from exc
    try:
        units = to_units(amount, decimals, "--erc20-transfer AMOUNT")
    except SpecError as exc:
        raise NexotcError(str(exc)) from exc
    if units > UINT256_MAX:
        raise NexotcError(
            f"--erc20-transfer AMOUNT: {amount} is out of range for uint256 (at most 2**256 - 1 base units, "
            f"{decimals} decimals)"
        )
    return erc20_transfer(token, to, units)


def _known_contracts(wallet: str, factory: Any, desk_registry: str | None, calls: list[Call]) -> dict[str, Any]:
    """Contracts whose calls `describe_call` decodes: the wallet, the factory, the desk registry it
    serves, and the factory's deals among the targets."""
    from nexotc_client.chain.contracts import container, deal_container, factory_container
    from nexotc_client.chain.multisig import wallet_container

    known: dict[str, Any] = {wallet: ("wallet", wallet_container().contract_type)}
    if factory is not None:
        known[factory.address] = ("escrow factory", factory_container().contract_type)
        for call in calls:
            try:
                if call.target not in known and factory.is_deal(call.target):
                    known[call.target] = ("deal", deal_container().contract_type)
            except NexotcError:
                pass
    if desk_registry is not None:
        known[desk_registry] = ("desk registry", container("DeskRegistry").contract_type)
    return known


def _token_meta(tokens: dict[str, str], online: bool) -> Any:
    """TokenMeta of a token: read from the chain when online (symbol and decimals), else None."""
    from nexotc_client.chain.multisig import TokenMeta

    def meta(address: str) -> TokenMeta | None:
        if not online:
            return None
        from nexotc_client.chain.contracts import erc20

        try:
            contract = erc20(address)
            decimals = int(contract.decimals())
        except Exception:  # not a token, or no decimals(): raw units
            return None
        try:
            symbol = str(contract.symbol())
        except Exception:  # a token without symbol(): the deployment's name, else the address
            symbol = next((s for s, a in tokens.items() if a.lower() == address.lower()), address[:10])
        return TokenMeta(symbol, decimals)

    return meta


def _context(app: App) -> tuple[dict[str, str], Any, str | None]:
    """(tokens, factory, desk registry) of the recorded deployment; empty when none is recorded."""
    from nexotc_client.chain.deployment import Registry, get_deployment
    from nexotc_client.chain.factory import Factory

    try:
        deployment = get_deployment(registry=Registry(app.home / "deployments.json"))
        factory = Factory.at(deployment.factory, start_block=deployment.block)
    except NexotcError:
        return {}, None, None  # no escrow factory recorded: raw calls and token transfers still work
    desk_registry = None
    try:
        from nexotc_client.chain.desk import factory_desk_registry

        desk_registry = factory_desk_registry(factory.address)
    except NexotcError:
        pass
    return dict(deployment.tokens), factory, desk_registry


def summaries(app: App, wallet: str, calls: list[Call], online: bool) -> list[str]:
    """One line per call saying what it does (decoded where the target is known)."""
    from nexotc_client.chain.multisig import describe_call

    tokens, factory, desk_registry = _context(app) if online else ({}, None, None)
    known = _known_contracts(wallet, factory, desk_registry, calls)
    meta = _token_meta(tokens, online)
    return [describe_call(call, known, meta) for call in calls]


@msig.command("propose")
@click.argument("ref", metavar="WALLET")
@click.option("--to", "to", default=None, help="Target of a raw call.")
@click.option("--data", "data_hex", default="0x", show_default=True, help="Calldata of the raw call.")
@click.option("--value", type=click.IntRange(0), default=0, show_default=True, help="Wei sent with the raw call.")
@click.option(
    "--erc20-transfer",
    "transfers",
    multiple=True,
    metavar="TOKEN:TO:AMOUNT",
    help="A token transfer; AMOUNT in human units (1000.5 USDT).",
)
@click.option(
    "--call",
    "calls",
    multiple=True,
    metavar="'TARGET.method(args)'",
    help="A contract call; integer arguments are raw (token amounts in base units: USDT.approve(test:8, 5) "
    "approves 0.000005 USDT).",
)
@click.option("--deadline", default="+1d", show_default=True, help="Last time it may execute: '+1h', unix, ISO.")
@click.option("--nonce", type=click.IntRange(0), default=None, help="Wallet nonce (default: the current one).")
@click.option("--description", default="", help="A note for the signers (not signed).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Proposal file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file (signatures made on it no longer match).")
@shared_options
@click.pass_obj
def propose(
    app: App,
    ref: str,
    to: str | None,
    data_hex: str,
    value: int,
    transfers: tuple[str, ...],
    calls: tuple[str, ...],
    deadline: str,
    nonce: int | None,
    description: str,
    out: Path,
    force: bool,
) -> None:
    """Write a proposal file for the owners to sign (one call, or several as a batch). A batch runs its calls in
    this order, whatever the order on the command line: the --to call, then each --erc20-transfer, then each
    --call (each kind in the order given); the proposal lists them so numbered. --value, --nonce and token
    amounts must fit a uint256; --deadline is at most 9999-12-31T23:59:59Z. An existing --out file is not
    overwritten without --force (owners may have signed it already), and its directory must exist."""
    from ape import chain

    from nexotc_client.chain.multisig import Proposal
    from nexotc_client.multisig import MAX_CALLS, Call, Execution
    from nexotc_client.spec import SpecError, parse_time

    _refuse_overwrite(out, force, "a proposal (signatures made on it would no longer match)")
    if not out.parent.is_dir():
        raise NexotcError(f"--out {out}: no directory {out.parent}; nothing written")
    if out.is_dir():
        raise NexotcError(f"--out {out}: a directory, not a proposal file; nothing written")
    _uint256(value, "--value")
    if nonce is not None:
        _uint256(nonce, "--nonce")
    wallet = _wallet(app, ref)
    tokens, factory, desk_registry = _context(app)
    built: list[Call] = []
    if to is not None:
        if not data_hex.startswith("0x"):
            raise click.BadParameter("expected 0x hex", param_hint="--data")
        try:
            data = bytes.fromhex(data_hex[2:])
        except ValueError as exc:
            raise click.BadParameter(f"not hex: {exc}", param_hint="--data") from exc
        built.append(Call(_address(to, "--to"), value, data))
    elif data_hex != "0x" or value:
        raise click.UsageError("--data and --value need --to")
    built += [erc20_transfer_call(t, tokens) for t in transfers]
    built += [build_call(c, wallet.address, tokens, factory, desk_registry) for c in calls]
    if not built:
        raise click.UsageError("nothing to propose: give --to, --erc20-transfer or --call")
    if len(built) > MAX_CALLS:
        raise NexotcError(f"at most {MAX_CALLS} calls in one proposal, got {len(built)}")
    now = int(chain.pending_timestamp)
    try:
        when = parse_time(deadline, now, "--deadline")
    except (SpecError, OverflowError, ValueError) as exc:  # an ISO date past year 9999, a relative time too far
        raise NexotcError(
            str(exc) if isinstance(exc, SpecError) else f"--deadline: {deadline!r} is out of range"
        ) from None
    if when <= now:
        raise NexotcError(f"--deadline: {when} is not in the future (chain time {now})")
    if when > MAX_DEADLINE:  # the contract takes a uint256; a time people can read ends with year 9999
        raise NexotcError(f"--deadline: {when} is out of range (at most {MAX_DEADLINE}, 9999-12-31T23:59:59Z)")
    current = wallet.nonce()
    use_nonce = current if nonce is None else nonce
    if use_nonce < current:
        raise NexotcError(f"--nonce {use_nonce} is used already: the wallet is at nonce {current}")
    proposal = Proposal(int(chain.chain_id), wallet.address, Execution(tuple(built), use_nonce, when), description)
    lines = summaries(app, wallet.address, built, online=True)
    proposal.save(out)
    data_out = {"file": str(out), **proposal.to_json(), "summaries": lines}
    del data_out["typed_data"]

    def render(console: Console) -> None:
        from nexotc_client.cli.render import fmt_time

        console.print(f"proposal {out} for wallet {wallet.address} (nonce {use_nonce})")
        console.print(f"  digest 0x{proposal.digest.hex()}")
        console.print(f"  deadline {fmt_time(when, now)}; threshold {wallet.threshold()} of {len(wallet.owners())}")
        if len(lines) > 1:
            console.print("  batch order: the --to call, each --erc20-transfer, each --call (each kind as given)")
        for i, line in enumerate(lines):
            console.print(f"  call {i}: {line}", soft_wrap=True)
        console.print("  next: each owner runs `nexotc msig sign` on it, then `nexotc msig exec` with the signatures")

    app.emit(data_out, render)


# -------------------------------------------------------------------- sign
@msig.command("sign")
@click.argument("proposal_file", metavar="PROPOSAL.json", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default: PROPOSAL.<signer>.sig.json")
@click.option("--force", is_flag=True, help="Overwrite an existing signature file (--out or the default).")
@shared_options
@click.pass_obj
def sign(app: App, proposal_file: Path, out: Path | None, force: bool) -> None:
    """Sign a proposal as one owner (EIP-712) and write the signature file. When the chain is
    reachable, refuse a signer that is not an owner, a used nonce or a passed deadline (nothing is
    written); offline, sign anyway and say that this was not checked. An existing signature file (--out,
    or the default PROPOSAL.<signer>.sig.json) is not overwritten without --force."""
    from nexotc_client.chain.multisig import MultiSigWallet, Proposal, sign_proposal, signature_to_json, write_json

    if out is not None:
        _refuse_overwrite(out, force, "a signature file")
        if not out.parent.is_dir():
            raise NexotcError(f"--out {out}: no directory {out.parent}; nothing written")
        if out.is_dir():
            raise NexotcError(f"--out {out}: a directory, not a signature file; nothing written")
    proposal = Proposal.load(_input_file(proposal_file, "PROPOSAL.json"))
    online = True
    offline_reason = ""
    try:
        app.connect()
    except NexotcError as exc:
        from nexotc_client.cli.app import _quiet_ape

        online = False
        offline_reason = str(exc)
        _quiet_ape()  # connect() does this once connected; the account still loads ape
    sender = app.sender()
    target = out or proposal_file.with_name(f"{proposal_file.stem}.{sender.address[:10].lower()}.sig.json")
    if out is None:  # the default file is refused alike: it may hold a signature someone already collected
        _refuse_overwrite(target, force, "a signature file (the default for this signer; --out names another)")
        if target.is_dir():
            raise NexotcError(f"{target}: a directory, not a signature file; nothing written")
    if online:
        from ape import chain

        if int(chain.chain_id) != proposal.chain_id:
            online = False
            offline_reason = f"connected to chain {chain.chain_id}, the proposal is for chain {proposal.chain_id}"
        else:
            MultiSigWallet.at(proposal.wallet).check_signer(proposal, sender.address)
    calls = list(proposal.execution.calls)
    lines = summaries(app, proposal.wallet, calls, online)
    sig = sign_proposal(proposal, sender)
    document = signature_to_json(sig, proposal)
    write_json(target, document)
    data: dict[str, Any] = {"file": str(target), **document, "ownership_checked": online, "summaries": lines}
    if not online:
        data["not_checked_because"] = offline_reason

    def render(console: Console) -> None:
        console.print(f"{sig.signer} signed proposal 0x{proposal.digest.hex()} → {target}", soft_wrap=True)
        console.print(f"  wallet {proposal.wallet}, nonce {proposal.execution.nonce}")
        for i, line in enumerate(lines):
            console.print(f"  call {i}: {line}", soft_wrap=True)
        if online:
            console.print("  checked on chain: the signer is an owner and the nonce is not used yet")
        else:
            console.print(
                f"  offline ({offline_reason}): ownership and nonce were NOT checked; `msig exec` checks them",
                soft_wrap=True,
            )

    app.emit(data, render)


# -------------------------------------------------------------------- exec
@msig.command("exec")
@click.argument("proposal_file", metavar="PROPOSAL.json", type=click.Path(path_type=Path))
@click.argument("signature_files", nargs=-1, metavar="[SIG.json...]", type=click.Path(path_type=Path))
@click.option("--sign-with", "sign_with", multiple=True, metavar="ACCOUNT", help="An owner account signing now.")
@shared_options
@click.pass_obj
def exec_cmd(app: App, proposal_file: Path, signature_files: tuple[Path, ...], sign_with: tuple[str, ...]) -> None:
    """Execute a proposal with owners' signatures (files and/or --sign-with accounts); --account
    relays it (default: the first --sign-with account)."""
    from ape import chain

    from nexotc_client.chain.multisig import Proposal, read_json, sign_proposal, signature_from_json

    proposal = Proposal.load(_input_file(proposal_file, "PROPOSAL.json"))
    signatures = [signature_from_json(read_json(_input_file(f, "SIG.json")), proposal, str(f)) for f in signature_files]
    signers = [load_account(ref) for ref in sign_with]
    if not signatures and not signers:
        raise click.UsageError("give signature files or --sign-with accounts")
    if app.account is None and signers:
        relayer = signers[0]
    else:
        relayer = app.sender()
    app.connect()
    if int(chain.chain_id) != proposal.chain_id:
        raise NexotcError(f"the proposal is for chain {proposal.chain_id}, the connected chain is {chain.chain_id}")
    wallet = _wallet(app, proposal.wallet)
    signatures += [sign_proposal(proposal, account) for account in signers]
    with step(app, "executing"):
        result = wallet.execute(proposal.execution, signatures, relayer)
    data = {
        "wallet": wallet.address,
        "nonce": proposal.execution.nonce,
        "digest": "0x" + proposal.digest.hex(),
        "relayer": relayer.address,
        **tx_dict(result),
    }
    by_emitter = _event_amounts(app, result)
    app.emit(
        data,
        lambda c: _render_result(c, f"executed proposal (nonce {proposal.execution.nonce})", result, by_emitter),
    )


def _event_amounts(app: App, result: TxResult) -> dict[str, Any]:
    """How to print the amounts of an execution's events, per emitting contract, as the deal commands print them: a
    deal's (of the recorded factories) in its legs' tokens, a token's transfers and approvals in that token. Best
    effort: an emitter it cannot tell keeps raw integers (--json always does)."""
    from nexotc_client.cli.render import emitter_amounts

    def deal_terms(address: str) -> Any:
        try:
            return app.deal(address).terms
        except NexotcError:  # not a deal of the recorded factories (or no deployment recorded)
            return None

    return emitter_amounts(result.events, deal_terms)


__all__ = ["build_call", "convert_arg", "erc20_transfer_call", "msig", "summaries"]
