"""Deploying the factory and finding it again: the registry `.nexotc/deployments.json`.

The registry maps a network key "<ecosystem>:<network>:<chain_id>" (e.g. "ethereum:local:31337") to
the factory deployed there, with the block (number and hash) of its deployment, so that event scans
start there and a reset chain (same chain id, other history) is detected instead of trusted.

The directory is `$NEXOTC_HOME`, else `./.nexotc`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from eth_utils import to_checksum_address

from nexotc_client.chain.contracts import container, factory_container
from nexotc_client.chain.errors import NexotcError, NotDeployedError, reverts_as_errors
from nexotc_client.chain.factory import Factory

if TYPE_CHECKING:
    from ape.api import AccountAPI

REGISTRY_FILE = "deployments.json"
R = TypeVar("R")


def nexotc_home() -> Path:
    """Where nexotc keeps its files (registry, local node state): `$NEXOTC_HOME` or `./.nexotc`."""
    return Path(os.environ.get("NEXOTC_HOME") or ".nexotc")


@dataclass(frozen=True)
class Deployment:
    """A factory deployed on one network."""

    network: str
    factory: str
    implementation: str
    block: int
    block_hash: str
    tx_hash: str
    deployer: str
    timestamp: int
    tokens: dict[str, str] = field(default_factory=dict)
    """Symbol => address of tokens deployed with the factory (local mock tokens)."""
    multisig_factory: str | None = None
    """The MultiSigFactory deployed next to the escrow factory (absent in older records)."""
    multisig_factory_block: int | None = None
    kyc_registry: str | None = None
    """The KYCRegistry the deal implementation's compliance gate asks (absent: none)."""
    previous: tuple[tuple[str, int], ...] = ()
    """(factory, block) of the factories this one replaced on the network (`deploy --force`), newest first:
    their deals stay reachable by address."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.previous:
            data["previous"] = [{"factory": f, "block": b} for f, b in self.previous]
        else:
            del data["previous"]
        if self.multisig_factory is None:  # records written before the multisig keep their shape
            del data["multisig_factory"], data["multisig_factory_block"]
        if self.kyc_registry is None:
            del data["kyc_registry"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        try:
            return cls(
                network=str(data["network"]),
                factory=to_checksum_address(data["factory"]),
                implementation=to_checksum_address(data["implementation"]),
                block=int(data["block"]),
                block_hash=str(data["block_hash"]),
                tx_hash=str(data["tx_hash"]),
                deployer=to_checksum_address(data["deployer"]),
                timestamp=int(data["timestamp"]),
                tokens={str(k): to_checksum_address(v) for k, v in (data.get("tokens") or {}).items()},
                multisig_factory=(
                    to_checksum_address(data["multisig_factory"]) if data.get("multisig_factory") else None
                ),
                multisig_factory_block=(
                    int(data["multisig_factory_block"]) if data.get("multisig_factory_block") is not None else None
                ),
                kyc_registry=to_checksum_address(data["kyc_registry"]) if data.get("kyc_registry") else None,
                previous=tuple(
                    (to_checksum_address(p["factory"]), int(p["block"])) for p in data.get("previous") or ()
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NexotcError(f"malformed deployment record: {exc}") from exc


class RecordFile(Generic[R]):
    """A JSON file of records (dataclasses with `network`, `to_dict` and `from_dict`) keyed by network key.
    Writes are atomic (write a temporary file, then rename). Subclasses name the file and the record type."""

    FILE: ClassVar[str]
    LABEL: ClassVar[str]  # how messages name the file: "cannot read the <LABEL> ..."
    RECORD: ClassVar[Any]  # the record class (its `from_dict` parses one entry)

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else nexotc_home() / self.FILE

    def load(self) -> dict[str, R]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise NexotcError(f"cannot read the {self.LABEL} {self.path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise NexotcError(f"the {self.LABEL} {self.path} is not a JSON object")
        return {key: self.RECORD.from_dict(value) for key, value in raw.items()}

    def get(self, key: str) -> R | None:
        return self.load().get(key)

    def record(self, entry: R) -> None:
        entries = self.load()
        entries[entry.network] = entry  # type: ignore[attr-defined]
        self._write(entries)

    def remove(self, key: str) -> None:
        entries = self.load()
        if entries.pop(key, None) is not None:
            self._write(entries)

    def _write(self, entries: dict[str, R]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({k: v.to_dict() for k, v in sorted(entries.items())}, indent=2) + "\n"  # type: ignore[attr-defined]
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{Path(self.FILE).stem}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
        os.replace(tmp, self.path)


class Registry(RecordFile[Deployment]):
    """The JSON file of factory deployments, keyed by network key."""

    FILE = REGISTRY_FILE
    LABEL = "deployment registry"
    RECORD = Deployment


def network_key() -> str:
    """The key of the connected network: "<ecosystem>:<network>:<chain_id>"."""
    from ape import networks

    provider = networks.active_provider
    if provider is None or not provider.is_connected:
        raise NexotcError("not connected to a network")
    return f"{provider.network.ecosystem.name}:{provider.network.name}:{provider.chain_id}"


def deploy_factory(
    sender: AccountAPI,
    registry: Registry | None = None,
    tokens: dict[str, str] | None = None,
    desk_registry: str | None = None,
    kyc_registry: str | None = None,
) -> Factory:
    """Deploy an EscrowFactory (which deploys its DealEscrow and DepositWallet implementations) and
    record it. The factory serves the desks of `desk_registry`; without one, a new DeskRegistry is
    deployed first and recorded next to the deployment registry (desks.json). Deals with a
    compliance policy ask `kyc_registry` (the DealEscrow implementation's constructor argument,
    appended to its creation code; None: no registry, such deals cannot be funded)."""
    from ape import chain

    from nexotc_client.chain.desk import DeskRecords, deploy_desk_registry

    registry = registry or Registry()
    if desk_registry is None:
        records = DeskRecords(registry.path.parent / "desks.json")
        desk_registry = deploy_desk_registry(sender, records).address
    from nexotc_client.chain.kyc import deal_initcode

    bytecode = deal_initcode(kyc_registry)
    wallet_bytecode = container("DepositWallet").contract_type.deployment_bytecode.bytecode
    with reverts_as_errors("deploying the factory"):
        contract = factory_container().deploy(bytecode, wallet_bytecode, desk_registry, sender=sender)
        receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
        block_number = int(receipt.block_number) if receipt else int(chain.blocks.height)
        block = chain.provider.get_block(block_number)
        tx_hash = str(receipt.txn_hash) if receipt else ""
    factory = Factory(contract, start_block=block_number)
    replaced = registry.get(network_key())
    previous: tuple[tuple[str, int], ...] = ()
    if replaced is not None and replaced.block <= block_number:
        try:
            same_chain = _hex(chain.provider.get_block(replaced.block).hash) == replaced.block_hash
        except Exception:
            same_chain = False
        if same_chain:  # not a reset chain: the replaced factory's deals are still there
            previous = ((replaced.factory, replaced.block), *replaced.previous)
    registry.record(
        Deployment(
            network=network_key(),
            factory=factory.address,
            implementation=factory.implementation,
            block=block_number,
            block_hash=_hex(block.hash),
            tx_hash=tx_hash if tx_hash.startswith("0x") or not tx_hash else "0x" + tx_hash,
            deployer=to_checksum_address(sender.address),
            timestamp=int(block.timestamp),
            tokens=dict(tokens or {}),
            kyc_registry=to_checksum_address(kyc_registry) if kyc_registry else None,
            previous=previous,
        )
    )
    return factory


def get_deployment(key: str | None = None, registry: Registry | None = None) -> Deployment:
    """The recorded deployment for `key` (default: the connected network), checked against the
    chain: the deployment block must still have the recorded hash and the factory its code."""
    from ape import chain

    registry = registry or Registry()
    connected = network_key()
    key = key or connected
    if key.rsplit(":", 1)[-1] != connected.rsplit(":", 1)[-1]:
        raise NexotcError(f"the registry entry {key} is for another chain than the connected {connected}")
    deployment = registry.get(key)
    if deployment is None:
        raise NotDeployedError(f"no factory recorded for {key} in {registry.path} (run `nexotc deploy`)")
    with reverts_as_errors("checking the deployment"):
        height = int(chain.blocks.height)
        same_chain = deployment.block <= height and (
            _hex(chain.provider.get_block(deployment.block).hash) == deployment.block_hash
        )
        has_code = bool(chain.provider.get_code(deployment.factory))
    if not same_chain or not has_code:
        raise NotDeployedError(
            f"the factory recorded for {key} ({deployment.factory}, block {deployment.block}) is not on "
            "this chain any more (chain reset?); run `nexotc deploy`"
        )
    return deployment


def get_factory(key: str | None = None, registry: Registry | None = None) -> Factory:
    """The factory recorded for `key` (default: the connected network)."""
    deployment = get_deployment(key, registry)
    return Factory.at(deployment.factory, start_block=deployment.block)


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


__all__ = [
    "Deployment",
    "REGISTRY_FILE",
    "Registry",
    "deploy_factory",
    "get_deployment",
    "get_factory",
    "network_key",
    "nexotc_home",
]
