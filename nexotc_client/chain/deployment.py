"""Deploying the factory and finding it again: the registry `.nexotc/deployments.json`.

The registry maps a network key "<ecosystem>:<network>:<chain_id>" (e.g. "ethereum:local:31337") to
the factory deployed there, with the block (number and hash) of its deployment, so that event scans
start there and a reset chain (same chain id, other history) is detected instead of trusted.

The directory is `$NEXOTC_HOME`, else `./.nexotc`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from eth_utils import is_hex_address, to_checksum_address

from nexotc_client.chain.contracts import container, factory_container
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, NotDeployedError, reverts_as_errors
from nexotc_client.chain.factory import Factory
from nexotc_client.safejson import load_json

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
    def from_dict(cls, data: Any) -> Deployment:
        """A record as `to_dict` writes it; every field's type is checked (a hand-edited or corrupted record
        is refused with a sentence naming the field, never half-read)."""
        try:
            return cls._parse(data)
        except _Malformed as exc:
            raise NexotcError(f"malformed deployment record: {exc}") from None

    @classmethod
    def _parse(cls, data: Any) -> Deployment:
        if not isinstance(data, dict):
            raise _Malformed(f"expected an object of fields, got {describe_json(data)}")
        unknown = [k for k in data if k not in _DEPLOYMENT_FIELDS]
        if unknown:
            raise _Malformed(f"unknown field {json.dumps(unknown[0])} (fields: {', '.join(_DEPLOYMENT_FIELDS)})")
        for name in _DEPLOYMENT_REQUIRED:
            if name not in data:
                raise _Malformed(f"the field {name!r} is missing")
        tokens = data.get("tokens", {})
        if not isinstance(tokens, dict):
            raise _Malformed(f"tokens must be an object (symbol => token address), not {describe_json(tokens)}")
        previous = data.get("previous", [])
        if not isinstance(previous, list):
            raise _Malformed(f"previous must be a list of {{factory, block}} objects, not {describe_json(previous)}")
        replaced: list[tuple[str, int]] = []
        for i, entry in enumerate(previous):
            if not isinstance(entry, dict) or set(entry) != {"factory", "block"}:
                raise _Malformed(
                    f"previous[{i}] must be an object with exactly factory and block, not {describe_json(entry)}"
                )
            replaced.append(
                (_address(entry["factory"], f"previous[{i}].factory"), _uint(entry["block"], f"previous[{i}].block"))
            )
        tx_hash = _text(data["tx_hash"], "tx_hash")
        if tx_hash and not _is_hash(tx_hash):
            raise _Malformed(
                f"tx_hash must be a transaction hash (0x and 64 hex digits) or empty, not {describe_json(tx_hash)}"
            )
        block_hash = _text(data["block_hash"], "block_hash")
        if not _is_hash(block_hash):
            raise _Malformed(f"block_hash must be a block hash (0x and 64 hex digits), not {describe_json(block_hash)}")
        network = _text(data["network"], "network")
        if not network:
            raise _Malformed("network must be a network key such as ethereum:local:31337, not an empty string")
        multisig = data.get("multisig_factory")
        multisig_block = data.get("multisig_factory_block")
        kyc = data.get("kyc_registry")
        return cls(
            network=network,
            factory=_address(data["factory"], "factory"),
            implementation=_address(data["implementation"], "implementation"),
            block=_uint(data["block"], "block"),
            block_hash=block_hash,
            tx_hash=tx_hash,
            deployer=_address(data["deployer"], "deployer"),
            timestamp=_uint(data["timestamp"], "timestamp"),
            tokens={_symbol(k): _address(v, f"tokens.{k}") for k, v in tokens.items()},
            multisig_factory=None if multisig is None else _address(multisig, "multisig_factory"),
            multisig_factory_block=None if multisig_block is None else _uint(multisig_block, "multisig_factory_block"),
            kyc_registry=None if kyc is None else _address(kyc, "kyc_registry"),
            previous=tuple(replaced),
        )


_DEPLOYMENT_REQUIRED = (
    "network",
    "factory",
    "implementation",
    "block",
    "block_hash",
    "tx_hash",
    "deployer",
    "timestamp",
)
_DEPLOYMENT_FIELDS = (
    *_DEPLOYMENT_REQUIRED,
    "tokens",
    "multisig_factory",
    "multisig_factory_block",
    "kyc_registry",
    "previous",
)
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


class _Malformed(ValueError):
    """A record field of the wrong shape (the message names it)."""


def describe_json(value: Any) -> str:
    """How a JSON value reads in an error message: its JSON type and (short) value, e.g. `the string "5"`, so
    that 5 and "5", 0 and false, 1 and 1.0 never look alike."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return (
            f"the number {json.dumps(value)} (not an integer)"
            if value.is_integer()
            else f"the number {json.dumps(value)}"
        )
    if isinstance(value, str):
        text = json.dumps(value)
        return f"the string {text if len(text) <= 80 else text[:77] + '...'}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{name} must be a string, not {describe_json(value)}")
    return value


def _uint(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Malformed(f"{name} must be a non-negative integer, not {describe_json(value)}")
    return value


def _address(value: Any, name: str) -> str:
    if not is_valid_address(value):
        if isinstance(value, str) and is_hex_address(value):
            raise _Malformed(f"{name} has a bad checksum: {value} (a mixed-case address must be EIP-55)")
        raise _Malformed(f"{name} must be an address (0x and 40 hex digits), not {describe_json(value)}")
    return to_checksum_address(value)


_FIELD_PARSERS: dict[str, Callable[[Any, str], Any]] = {"text": _text, "uint": _uint, "address": _address}


_ADDRESS_FIELDS = ("address", "deployer")


def parse_record(data: Any, record: type, what: str) -> dict[str, Any]:
    """The fields of a small record dataclass (`record`: an int field is a non-negative integer, `address` and
    `deployer` addresses, anything else text), each checked for its JSON type; anything else is a NexotcError
    "malformed <what>: ..." naming the field."""
    kinds = {
        f.name: "address" if f.name in _ADDRESS_FIELDS else "uint" if f.type in ("int", int) else "text"
        for f in fields(record)
    }
    try:
        if not isinstance(data, dict):
            raise _Malformed(f"expected an object of fields, got {describe_json(data)}")
        for name in kinds:
            if name not in data:
                raise _Malformed(f"the field {name!r} is missing")
        return {name: _FIELD_PARSERS[kind](data[name], name) for name, kind in kinds.items()}
    except _Malformed as exc:
        raise NexotcError(f"malformed {what}: {exc}") from None


def _symbol(value: str) -> str:
    if not value.strip():
        raise _Malformed("tokens: a token symbol is empty")
    return value


def _is_hash(value: str) -> bool:
    return _HASH.fullmatch(value) is not None


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
            raw = load_json(self.path.read_text())
        except OSError as exc:
            raise NexotcError(f"cannot read the {self.LABEL} {self.path}: {_reason(exc)}") from None
        except ValueError as exc:
            raise NexotcError(f"cannot read the {self.LABEL} {self.path}: {exc}") from None
        if not isinstance(raw, dict):
            raise NexotcError(f"the {self.LABEL} {self.path} is not a JSON object of records by network")
        entries: dict[str, R] = {}
        for key, value in raw.items():
            where = f"(entry {json.dumps(key)} of {self.path})"
            try:
                entry = self.RECORD.from_dict(value)
            except NexotcError as exc:
                raise NexotcError(f"{exc} {where}") from None
            if entry.network != key:  # type: ignore[attr-defined]
                raise NexotcError(
                    f"malformed {self.LABEL} {self.path}: the entry {json.dumps(key)} holds a record of another "
                    f"network ({entry.network})"  # type: ignore[attr-defined]
                )
            entries[key] = entry
        return entries

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

    def check_writable(self) -> None:
        """Refuse (NexotcError, one sentence) unless `record` can write this file: its content is a valid
        record file, its directory exists or can be created and takes new files, and the file, if present, is a
        regular file that can be replaced. Meant to run before sending transactions whose results it records."""
        what = f"cannot write the {self.LABEL} {self.path}"
        if self.path.exists() or self.path.is_symlink():
            try:
                mode = self.path.stat().st_mode
            except OSError as exc:
                raise NexotcError(f"{what}: {_reason(exc)}") from None
            if not stat.S_ISREG(mode):
                raise NexotcError(f"{what}: it is not a regular file")
            if _immutable(self.path):
                raise NexotcError(f"{what}: the file is immutable or append-only (chattr +i / +a)")
        self.load()
        directory = self.path.parent
        if directory.exists() or directory.is_symlink():
            if not directory.is_dir():
                raise NexotcError(f"{what}: {directory} is not a directory")
            try:
                fd, probe = tempfile.mkstemp(dir=directory, prefix=".nexotc-probe.", suffix=".tmp")
            except OSError as exc:
                raise NexotcError(
                    f"{what}: the directory {directory} does not take new files ({_reason(exc)})"
                ) from None
            os.close(fd)
            os.unlink(probe)
        else:
            ancestor = directory.parent
            while not ancestor.exists() and ancestor != ancestor.parent:
                ancestor = ancestor.parent
            if not ancestor.is_dir():
                raise NexotcError(f"{what}: {ancestor} is not a directory")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise NexotcError(f"{what}: cannot create {directory} in {ancestor} (not writable)")

    def _write(self, entries: dict[str, R]) -> None:
        data = json.dumps({k: v.to_dict() for k, v in sorted(entries.items())}, indent=2) + "\n"  # type: ignore[attr-defined]
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{Path(self.FILE).stem}.", suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            raise NexotcError(f"cannot write the {self.LABEL} {self.path}: {_reason(exc)}") from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _immutable(path: Path) -> bool:
    """Whether `path` carries the Linux immutable or append-only attribute (a rename onto it fails even for
    root); False where the attributes cannot be read (other systems, other file systems)."""
    try:
        import array
        import fcntl

        flags = array.array("l", [0])
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            fcntl.ioctl(fd, 0x80086601, flags)  # FS_IOC_GETFLAGS
        finally:
            os.close(fd)
    except (OSError, ImportError, ValueError):
        return False
    return bool(flags[0] & (0x10 | 0x20))  # FS_IMMUTABLE_FL | FS_APPEND_FL


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
    multisig_factory: tuple[str, int | None] | None = None,
) -> Factory:
    """Deploy an EscrowFactory (which deploys its DealEscrow and DepositWallet implementations) and
    record it. The factory serves the desks of `desk_registry`; without one, a new DeskRegistry is
    deployed first and recorded next to the deployment registry (desks.json). Deals with a
    compliance policy ask `kyc_registry` (the DealEscrow implementation's constructor argument,
    appended to its creation code; None: no registry, such deals cannot be funded). `multisig_factory`
    ((address, block)): a MultiSigFactory already deployed, recorded with the factory in the same write.
    The record replaced on the network goes to `previous` (its deals stay reachable) when its factory is
    still an EscrowFactory on this chain."""
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
            kept = () if not is_factory(replaced.factory) else ((replaced.factory, replaced.block),)
            previous = (*kept, *replaced.previous)
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
            multisig_factory=to_checksum_address(multisig_factory[0]) if multisig_factory else None,
            multisig_factory_block=multisig_factory[1] if multisig_factory else None,
        )
    )
    return factory


def is_factory(address: str) -> bool:
    """Whether `address` holds an EscrowFactory on the connected chain (what `Factory.at` accepts)."""
    try:
        Factory.at(address)
    except NexotcError:
        return False
    return True


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
    """The factory recorded for `key` (default: the connected network), refused with the way out when it runs
    other code than this checkout builds (deployed by another nexotc version: its functions may differ)."""
    deployment = get_deployment(key, registry)
    Factory.at(deployment.factory, start_block=deployment.block)  # "not an EscrowFactory" first
    try:
        return Factory.checked(deployment.factory, start_block=deployment.block)
    except NexotcError as exc:
        raise NexotcError(
            f"the factory recorded for {key or network_key()}: {exc}; run the nexotc version that deployed it, or "
            "`nexotc deploy --force` to deploy this version's factory"
        ) from exc


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
    "describe_json",
    "get_factory",
    "is_factory",
    "load_json",
    "network_key",
    "nexotc_home",
]
