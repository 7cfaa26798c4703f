"""Contract types of the nexotc project and a minimal ERC-20 interface.

The contract types come from the ape project holding `contracts/` (compiled on first use and cached
in its `.build/`). The project is, in order: `$NEXOTC_PROJECT`, the checkout this package lives in
(editable install), or the current directory.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexotc_client.chain.errors import NexotcError

if TYPE_CHECKING:
    from ape.contracts import ContractContainer, ContractInstance

ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(inputs)],
        "outputs": [{"name": "", "type": out}],
    }
    for name, inputs, out in (
        ("decimals", (), "uint8"),
        ("symbol", (), "string"),
        ("balanceOf", ("address",), "uint256"),
        ("allowance", ("address", "address"), "uint256"),
    )
] + [
    # USDT-style tokens return nothing: declare no outputs so both kinds are accepted.
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [],
    },
    {
        "type": "event",
        "name": "Transfer",
        "anonymous": False,
        "inputs": [
            {"name": "sender", "type": "address", "indexed": True},
            {"name": "receiver", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
]


def project_root() -> Path:
    """The directory of the ape project that holds the nexotc contracts."""
    env = os.environ.get("NEXOTC_PROJECT")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "contracts" / "DealEscrow.vy").is_file():
        return checkout
    return Path.cwd().resolve()


@cache
def _project() -> Any:
    import ape

    root = project_root()
    if not (root / "contracts" / "DealEscrow.vy").is_file():
        raise NexotcError(f"nexotc contracts not found under {root} (set NEXOTC_PROJECT to the checkout)")
    if Path(ape.project.path).resolve() == root:
        return ape.project
    return ape.Project(root)


def deal_container() -> ContractContainer:
    return _project().DealEscrow


def factory_container() -> ContractContainer:
    return _project().EscrowFactory


def runs_code(address: str, kind: ContractContainer) -> bool:
    """Whether `address` runs `kind`'s compiled code, as this checkout builds it (Vyper appends immutables
    after the runtime code)."""
    from ape import chain
    from hexbytes import HexBytes

    from nexotc_client.chain.errors import reverts_as_errors

    with reverts_as_errors("reading contract code"):
        code = bytes(chain.provider.get_code(address))
    runtime = bytes(HexBytes(kind.contract_type.runtime_bytecode.bytecode))  # type: ignore[union-attr]
    return bool(runtime) and code.startswith(runtime)


def container(name: str) -> ContractContainer:
    """Any contract type of the nexotc project by name (e.g. the local mocks `MockToken`)."""
    try:
        return getattr(_project(), name)
    except AttributeError as exc:
        raise NexotcError(f"no contract type {name!r} in the nexotc project") from exc


def instance(address: str, container: ContractContainer) -> ContractInstance:
    """A contract instance at `address` with the container's type, without ape's proxy detection."""
    from ape.contracts import ContractInstance

    return ContractInstance(address, container.contract_type)


@cache
def _erc20_type() -> Any:
    from ethpm_types import ContractType

    return ContractType(contractName="ERC20", abi=ERC20_ABI)


def erc20(address: str) -> ContractInstance:
    """A minimal ERC-20 view of `address` (decimals, symbol, balanceOf, allowance, approve)."""
    from ape.contracts import ContractInstance

    return ContractInstance(address, _erc20_type())


__all__ = [
    "ERC20_ABI",
    "container",
    "deal_container",
    "erc20",
    "factory_container",
    "instance",
    "project_root",
]
