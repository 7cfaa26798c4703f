"""nexotc MultiSig wallets on chain: create them through the MultiSigFactory, read owners, and
execute proposals signed by `threshold` owners. A thin wrapper over contracts/MultiSig.vy and
contracts/MultiSigFactory.vy; hashing and signature packing come from `nexotc_client.multisig`.

    factory = WalletFactory.at(deployment.multisig_factory)
    wallet, _ = factory.create([a, b, c], 2, salt, sender=deployer)
    proposal = Proposal.new(wallet, [Call(token, 0, data)], deadline=t)     # the owners sign this
    sigs = [sign_proposal(proposal, owner) for owner in (a, b)]             # one file each, offline
    wallet.execute(proposal.execution, sigs, sender=relayer)                # sorted, checked, sent

Proposal and signature files are JSON (`Proposal.to_json`, `signature_to_json`): a proposal names the
chain, the wallet, the calls, the wallet nonce and a deadline, and carries its EIP-712 digest and
typed data (what a hardware wallet shows); a signature file holds one owner's signature of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from nexotc_client.chain.contracts import container, instance
from nexotc_client.chain.deal import TxResult, _event, _hex
from nexotc_client.chain.encoding import is_valid_address, to_salt
from nexotc_client.chain.errors import NexotcError, NotDeployedError, reverts_as_errors, simulate
from nexotc_client.multisig import (
    HALF_N,
    MAX_CALLS,
    PROXY_HEAD,
    SECP256K1_N,
    Call,
    Config,
    Domain,
    Execution,
    Kind,
    MultiSigError,
    Signature,
    message_digest,
    message_typed_data,
    pack_signatures,
)

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI
    from ape.contracts import ContractInstance

    from nexotc_client.chain.deployment import Deployment, Registry

PROPOSAL_TYPE = "nexotc-msig-proposal"
SIGNATURE_TYPE = "nexotc-msig-signature"
FILE_VERSION = 1


def wallet_container() -> Any:
    return container("MultiSig")


def wallet_factory_container() -> Any:
    return container("MultiSigFactory")


# ------------------------------------------------------------------ factory
class WalletFactory:
    """A MultiSigFactory: creates wallets (EIP-1167 clones, CREATE2 address bound to owners,
    threshold and salt)."""

    def __init__(self, contract: ContractInstance, start_block: int = 0) -> None:
        self.contract = contract
        self.start_block = start_block

    @classmethod
    def at(cls, address: str, start_block: int = 0) -> WalletFactory:
        from ape import chain

        if not is_valid_address(address):
            raise NexotcError(f"not an address: {address!r}")
        address = to_checksum_address(address)
        with reverts_as_errors("reading the MultiSigFactory"):
            code = chain.provider.get_code(address)
        if not code:
            raise NexotcError(f"no contract at {address}: no MultiSigFactory there on this network")
        factory = cls(instance(address, wallet_factory_container()), start_block)
        try:
            factory.implementation  # noqa: B018  (probe)
        except NexotcError as exc:
            raise NexotcError(f"{address} is not a MultiSigFactory") from exc
        return factory

    @classmethod
    def recorded(cls, deployment: Deployment) -> WalletFactory:
        """The MultiSigFactory recorded with `deployment` (by `nexotc deploy`)."""
        if not deployment.multisig_factory:
            raise NotDeployedError(f"no MultiSigFactory recorded for {deployment.network} (run `nexotc deploy`)")
        return cls.at(deployment.multisig_factory, deployment.multisig_factory_block or 0)

    def __repr__(self) -> str:
        return f"<WalletFactory {self.address}>"

    @property
    def address(self) -> str:
        return str(self.contract.address)

    @property
    def implementation(self) -> str:
        with reverts_as_errors("implementation()"):
            return to_checksum_address(str(self.contract.implementation()))

    def predict(self, owners: Sequence[str], threshold: int, salt: bytes | str | int) -> str:
        config = _config(owners, threshold)
        with reverts_as_errors("predict_address"):
            return to_checksum_address(
                str(self.contract.predict_address(list(config.owners), threshold, to_salt(salt)))
            )

    def create(
        self, owners: Sequence[str], threshold: int, salt: bytes | str | int, sender: AccountAPI
    ) -> tuple[MultiSigWallet, TxResult]:
        """Create the wallet; refuses a configuration the factory would reject, or one already deployed."""
        from ape import chain

        config = _config(owners, threshold)
        raw_salt = to_salt(salt)
        predicted = self.predict(config.owners, threshold, raw_salt)
        if chain.provider.get_code(predicted):
            raise NexotcError(f"a wallet with these owners, threshold and salt already exists at {predicted}")
        args = (list(config.owners), threshold, raw_salt)
        with reverts_as_errors("create"):
            simulate(self.contract, "create", args, sender.address)
            receipt = self.contract.create(*args, sender=sender)
        logs = receipt.decode_logs(self.contract.MultiSigCreated)
        created = [log for log in logs if log.contract_address == self.address]
        if not created:
            raise NexotcError(f"transaction {receipt.txn_hash} created no wallet")
        wallet = MultiSigWallet(instance(to_checksum_address(str(created[0].wallet)), wallet_container()))
        return wallet, _result(receipt)


def deploy_wallet_factory(sender: AccountAPI, registry: Registry | None = None) -> WalletFactory:
    """Deploy a MultiSigFactory (which deploys its MultiSig implementation); record it with the
    connected network's deployment in `registry`, when there is one."""
    from ape import chain

    from nexotc_client.chain.deployment import network_key

    bytecode = wallet_container().contract_type.deployment_bytecode.bytecode
    with reverts_as_errors("deploying the MultiSigFactory"):
        contract = wallet_factory_container().deploy(bytecode, sender=sender)
        receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
        block = int(receipt.block_number) if receipt else int(chain.blocks.height)
    factory = WalletFactory(contract, start_block=block)
    if registry is not None:
        record = registry.get(network_key())
        if record is not None:
            registry.record(replace(record, multisig_factory=factory.address, multisig_factory_block=block))
    return factory


def _config(owners: Sequence[str], threshold: int) -> Config:
    for owner in owners:
        if not is_valid_address(owner):
            raise NexotcError(f"owner is not an address: {owner!r}")
    try:
        return Config.build(list(owners), threshold)
    except MultiSigError as exc:
        raise NexotcError(f"invalid wallet configuration: {exc}") from exc


# ------------------------------------------------------------------- wallet
@dataclass(frozen=True)
class WalletInfo:
    address: str
    owners: tuple[str, ...]
    threshold: int
    nonce: int
    implementation: str
    factory: str
    balance: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "wallet": self.address,
            "owners": list(self.owners),
            "threshold": self.threshold,
            "nonce": self.nonce,
            "implementation": self.implementation,
            "factory": self.factory,
            "balance_wei": self.balance,
        }


class MultiSigWallet:
    """A deployed nexotc MultiSig (an EIP-1167 clone made by a MultiSigFactory)."""

    def __init__(self, contract: ContractInstance) -> None:
        self.contract = contract

    @classmethod
    def at(cls, address: str) -> MultiSigWallet:
        from ape import chain

        if not isinstance(address, str) or not is_valid_address(address):
            raise NexotcError(f"not an address: {address!r}")
        address = to_checksum_address(address)
        with reverts_as_errors("reading the wallet"):
            code = bytes(chain.provider.get_code(address) or b"")
        if not code:
            raise NexotcError(f"no contract at {address}: not a nexotc multisig wallet")
        if not code.startswith(PROXY_HEAD) or len(code) < 47:
            raise NexotcError(f"{address} is not a nexotc multisig wallet")
        wallet = cls(instance(address, wallet_container()))
        try:
            wallet.threshold()
        except NexotcError as exc:
            raise NexotcError(f"{address} is not a nexotc multisig wallet") from exc
        return wallet

    def __repr__(self) -> str:
        return f"<MultiSigWallet {self.address}>"

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def owners(self) -> tuple[str, ...]:
        with reverts_as_errors("get_owners()"):
            return tuple(to_checksum_address(str(o)) for o in self.contract.get_owners())

    def threshold(self) -> int:
        with reverts_as_errors("threshold()"):
            return int(self.contract.threshold())

    def nonce(self) -> int:
        # `nonce` is shadowed by ape's account nonce on contract instances
        with reverts_as_errors("nonce()"):
            return int(self.contract.call_view_method("nonce"))

    def domain(self) -> Domain:
        from ape import chain

        return Domain(int(chain.chain_id), self.address)

    def info(self) -> WalletInfo:
        from ape import chain

        with reverts_as_errors("reading the wallet"):
            implementation = to_checksum_address(str(self.contract.implementation()))
            factory = to_checksum_address(str(self.contract.factory()))
            balance = int(chain.provider.get_balance(self.address))
        return WalletInfo(self.address, self.owners(), self.threshold(), self.nonce(), implementation, factory, balance)

    def check_signer(self, proposal: Proposal, signer: str) -> None:
        """Refuse to sign what could never count: `signer` is not an owner, or the proposal's nonce is
        used already (executed or superseded), or its deadline has passed. The chain is asked."""
        from ape import chain

        if int(chain.chain_id) != proposal.chain_id:
            raise NexotcError(f"the proposal is for chain {proposal.chain_id}, the connected chain is {chain.chain_id}")
        if to_checksum_address(proposal.wallet) != self.address:
            raise NexotcError(f"the proposal is for the wallet {proposal.wallet}, not {self.address}")
        owners = self.owners()
        if to_checksum_address(signer) not in owners:
            raise NexotcError(
                f"{to_checksum_address(signer)} is not an owner of the wallet {self.address} "
                f"({len(owners)} owners, see `nexotc msig owners`): its signature would not count; nothing written"
            )
        current = self.nonce()
        if proposal.execution.nonce < current:
            raise NexotcError(
                f"the proposal is for wallet nonce {proposal.execution.nonce}, the wallet is at {current}: "
                "already executed (or superseded); nothing written"
            )
        now = int(chain.pending_timestamp)
        if now > proposal.execution.deadline:
            raise NexotcError(
                f"the proposal's deadline {proposal.execution.deadline} has passed (chain time {now}); nothing written"
            )

    def signatures_for(self, execution: Execution, signatures: Sequence[Signature]) -> bytes:
        """The packed `signatures` argument: the signatures are checked against `execution` and the
        owners, duplicates dropped, sorted by signer; refuses fewer than `threshold`."""
        digest = execution.digest(self.domain())
        owners = {o.lower() for o in self.owners()}
        threshold = self.threshold()
        valid: dict[str, Signature] = {}
        for sig in signatures:
            if sig.kind == Kind.ECDSA:
                check_signature(sig, digest)
            if sig.signer.lower() not in owners:
                raise NexotcError(f"{sig.signer} is not an owner of the wallet {self.address}")
            valid[sig.signer.lower()] = sig
        if len(valid) < threshold:
            have = ", ".join(s.signer for s in valid.values()) or "none"
            raise NexotcError(
                f"{len(valid)} owner signature(s) of the {threshold} the wallet needs (signed: {have}); "
                "collect more with `nexotc msig sign`"
            )
        chosen = sorted(valid.values(), key=lambda s: int(s.signer, 16))[:threshold]
        return pack_signatures(chosen)

    def execute(self, execution: Execution, signatures: Sequence[Signature], sender: AccountAPI) -> TxResult:
        """Submit `execution` with the owners' signatures (anyone may relay). Checks the nonce, the
        deadline, the signatures and the wallet's ETH for the calls' values first; the call is
        simulated, so nothing failing is sent (a failing inner call reverts with its reason)."""
        from ape import chain

        if not execution.calls:
            raise NexotcError("the proposal has no calls")
        if len(execution.calls) > MAX_CALLS:
            raise NexotcError(f"at most {MAX_CALLS} calls in one execution, got {len(execution.calls)}")
        current = self.nonce()
        if execution.nonce != current:
            state = "already executed (or superseded)" if execution.nonce < current else "not next yet"
            raise NexotcError(
                f"the proposal is for wallet nonce {execution.nonce}, the wallet is at {current}: {state}"
            )
        now = int(chain.pending_timestamp)
        if now > execution.deadline:
            raise NexotcError(f"the proposal's deadline {execution.deadline} has passed (chain time {now})")
        packed = self.signatures_for(execution, signatures)
        value = sum(c.value for c in execution.calls)
        if value:
            balance = int(chain.provider.get_balance(self.address))
            if balance < value:
                raise NexotcError(f"the calls send {value} wei, the wallet holds {balance}")
        self._check_token_transfers(execution.calls)
        if len(execution.calls) == 1:
            call = execution.calls[0]
            method = "execute"
            target = to_checksum_address(call.target)
            args: tuple[Any, ...] = (target, call.value, execution.deadline, packed, call.data)
        else:
            method = "execute_batch"
            args = (execution.deadline, packed, [c.as_tuple() for c in execution.calls])
        with reverts_as_errors(method):
            simulate(self.contract, method, args, sender.address)
            receipt = getattr(self.contract, method)(*args, sender=sender)
        return _result(receipt)

    def _check_token_transfers(self, calls: Sequence[Call]) -> None:
        """A clear message instead of a bare revert when the wallet lacks the tokens it transfers."""
        from eth_abi import decode

        from nexotc_client.chain.contracts import erc20

        needed: dict[str, int] = {}
        for call in calls:
            if call.data[:4] == TRANSFER_SELECTOR and len(call.data) == 68:
                _, amount = decode(["address", "uint256"], call.data[4:])
                needed[call.target] = needed.get(call.target, 0) + int(amount)
        for token, amount in needed.items():
            try:
                balance = int(erc20(token).balanceOf(self.address))
            except Exception:  # not a token after all: let the simulation speak
                continue
            if balance < amount:
                from nexotc_client.chain.deal import token_amount

                raise NexotcError(
                    f"the wallet holds {token_amount(token, balance)} of token {token}, the transfers need "
                    f"{token_amount(token, amount)}"
                )


TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
APPROVE_SELECTOR = bytes.fromhex("095ea7b3")
TRANSFER_FROM_SELECTOR = bytes.fromhex("23b872dd")
MAX_UINT256 = 2**256 - 1


# ------------------------------------------------------------ call summaries
@dataclass(frozen=True)
class TokenMeta:
    """How to show amounts of a token: its symbol and decimals."""

    symbol: str
    decimals: int

    def fmt(self, units: int) -> str:
        from nexotc_client.spec import format_units

        return f"{format_units(units, self.decimals)} {self.symbol} ({units} units)"


def _decode_method(contract_type: Any, data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(method name, {argument: value}) of `data` for a method of `contract_type`, None if none matches."""
    from eth_abi import decode
    from eth_utils import function_signature_to_4byte_selector

    if len(data) < 4:
        return None
    for abi in contract_type.mutable_methods:
        if function_signature_to_4byte_selector(abi.selector) != data[:4]:
            continue
        try:
            values = decode([str(i.canonical_type) for i in abi.inputs], data[4:])
        except Exception:  # noqa: BLE001 (the selector matched but the data is not that method's)
            return None
        return abi.name, {(i.name or f"arg{n}"): v for n, (i, v) in enumerate(zip(abi.inputs, values, strict=True))}
    return None


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str) and is_valid_address(value):
        return to_checksum_address(value)
    return str(value)


def describe_call(
    call: Call,
    known: dict[str, tuple[str, Any]] | None = None,
    token_meta: Any = None,
) -> str:
    """A one-line summary of what `call` does, for the owners who sign it. `known` maps addresses to
    (label, ContractType) of contracts whose methods are decoded (the wallet, a desk registry, the
    escrow factory, deals); ERC-20 transfer/approve/transferFrom to any other target are decoded with
    human amounts when `token_meta(address)` gives a TokenMeta (else raw units). Anything else: the
    raw target, value and data."""
    target = to_checksum_address(call.target)
    value = f" + {call.value} wei" if call.value else ""
    entry = {to_checksum_address(k): v for k, v in (known or {}).items()}.get(target)
    if entry is not None:
        label, contract_type = entry
        decoded = _decode_method(contract_type, call.data)
        if decoded is not None:
            name, args = decoded
            shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
            return f"{label} {target}: {name}({shown}){value}"
    selector = call.data[:4]
    if selector in (TRANSFER_SELECTOR, APPROVE_SELECTOR, TRANSFER_FROM_SELECTOR):
        decoded = _decode_method(erc20_type(), call.data)
        if decoded is not None:
            name, args = decoded
            meta = token_meta(target) if token_meta is not None else None
            label = f"{meta.symbol} {target}" if meta is not None else f"token {target}"
            amount = int(args["amount"])
            if name == "approve" and amount == MAX_UINT256:
                shown = "unlimited"
            else:
                shown = meta.fmt(amount) if meta is not None else f"{amount} units (raw, decimals unknown)"
            if name == "transfer":
                text = f"transfer {shown} to {_show(args['to'])}"
            elif name == "approve":
                text = f"approve {_show(args['spender'])} to spend {shown}"
            else:
                text = f"transferFrom {shown} from {_show(args['owner'])} to {_show(args['to'])}"
            return f"{label}: {text}{value}"
    return f"{target} value {call.value} data 0x{call.data[:4].hex()}… ({len(call.data)} bytes)"


# --------------------------------------------------------------- signatures
def check_signature(sig: Signature, digest: bytes) -> None:
    """An ECDSA entry recovers to its signer over `digest`, in the canonical form the wallet takes."""
    if sig.v not in (27, 28) or sig.s > HALF_N:
        raise NexotcError(f"the signature of {sig.signer} is not canonical (v 27/28, low s)")
    try:
        recovered = Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s))
    except Exception as exc:  # eth-keys raises BadSignature and others for garbage
        raise NexotcError(f"the signature of {sig.signer} does not verify") from exc
    if recovered.lower() != sig.signer.lower():
        raise NexotcError(
            f"the signature of {sig.signer} is not over this proposal (it recovers to {recovered}; "
            "another nonce, deadline, wallet or calls?)"
        )


def sign_proposal(proposal: Proposal, account: AccountAPI) -> Signature:
    """`account` signs the proposal's EIP-712 typed data (keyfile accounts prompt and show it)."""
    return _sign_typed(account, proposal.execution.typed_data(proposal.domain), proposal.digest)


def sign_wallet_message(wallet: str, hash32: bytes, account: AccountAPI) -> Signature:
    """An owner's signature making `isValidSignature(hash32, ...)` hold for the nexotc MultiSig `wallet` (with
    the other owners' up to its threshold): `account` signs the wallet's EIP-712 `Message(bytes32 hash)`."""
    from ape import chain

    domain = Domain(int(chain.chain_id), to_checksum_address(wallet))
    return _sign_typed(account, message_typed_data(domain, hash32), message_digest(domain, hash32))


def _sign_typed(account: AccountAPI, typed: dict[str, Any], digest: bytes) -> Signature:
    """`account`'s canonical ECDSA signature of `typed` (whose EIP-712 hash is `digest`), checked."""
    signature = account.sign_message(encode_typed_data(full_message=typed))
    if signature is None:
        raise NexotcError(f"the account {account.address} declined to sign")
    r = int.from_bytes(bytes(signature.r), "big")
    s = int.from_bytes(bytes(signature.s), "big")
    v = int(signature.v)
    if v < 27:
        v += 27
    if s > HALF_N:  # eth-keys signs canonically; normalise anyway
        s, v = SECP256K1_N - s, 55 - v
    sig = Signature(to_checksum_address(account.address), Kind.ECDSA, r, s, v)
    check_signature(sig, digest)
    return sig


def signature_to_json(sig: Signature, proposal: Proposal) -> dict[str, Any]:
    raw = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v])
    return {
        "type": SIGNATURE_TYPE,
        "version": FILE_VERSION,
        "chain_id": proposal.chain_id,
        "wallet": proposal.wallet,
        "nonce": proposal.execution.nonce,
        "digest": "0x" + proposal.digest.hex(),
        "signer": sig.signer,
        "signature": "0x" + raw.hex(),
    }


def signature_from_json(data: Any, proposal: Proposal, source: str = "signature") -> Signature:
    """Read a signature file's data and check that it signs `proposal` (same digest, recovers to
    the signer it names)."""
    if not isinstance(data, dict) or data.get("type") != SIGNATURE_TYPE:
        raise NexotcError(f"{source}: not a nexotc multisig signature file")
    try:
        digest = bytes.fromhex(str(data["digest"]).removeprefix("0x"))
        raw = bytes.fromhex(str(data["signature"]).removeprefix("0x"))
        signer = to_checksum_address(str(data["signer"]))
    except (KeyError, ValueError) as exc:
        raise NexotcError(f"{source}: malformed signature file ({exc})") from exc
    if digest != proposal.digest:
        raise NexotcError(f"{source}: signs another proposal (digest 0x{digest.hex()[:12]}…)")
    if len(raw) != 65:
        raise NexotcError(f"{source}: a signature is 65 bytes, got {len(raw)}")
    sig = Signature(signer, Kind.ECDSA, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64])
    try:
        check_signature(sig, proposal.digest)
    except NexotcError as exc:
        raise NexotcError(f"{source}: {exc}") from exc
    return sig


# ------------------------------------------------------------------ proposals
@dataclass(frozen=True)
class Proposal:
    """What the owners sign: calls from `wallet` on chain `chain_id` at a wallet nonce, until a deadline."""

    chain_id: int
    wallet: str
    execution: Execution
    description: str = ""

    @property
    def domain(self) -> Domain:
        return Domain(self.chain_id, self.wallet)

    @property
    def digest(self) -> bytes:
        return self.execution.digest(self.domain)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": PROPOSAL_TYPE,
            "version": FILE_VERSION,
            "chain_id": self.chain_id,
            "wallet": self.wallet,
            "nonce": self.execution.nonce,
            "deadline": self.execution.deadline,
            "calls": [
                {"target": to_checksum_address(c.target), "value": c.value, "data": "0x" + c.data.hex()}
                for c in self.execution.calls
            ],
            "description": self.description,
            "digest": "0x" + self.digest.hex(),
            "typed_data": self.execution.typed_data(self.domain),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "proposal") -> Proposal:
        """Read a proposal file's data; refuses one whose recorded digest does not match its content."""
        if not isinstance(data, dict) or data.get("type") != PROPOSAL_TYPE:
            raise NexotcError(f"{source}: not a nexotc multisig proposal file")
        if data.get("version") != FILE_VERSION:
            raise NexotcError(f"{source}: unsupported proposal version {data.get('version')!r}")
        try:
            calls = tuple(
                Call(to_checksum_address(str(c["target"])), int(c["value"]), bytes.fromhex(str(c["data"])[2:]))
                for c in data["calls"]
            )
            proposal = cls(
                chain_id=int(data["chain_id"]),
                wallet=to_checksum_address(str(data["wallet"])),
                execution=Execution(calls, int(data["nonce"]), int(data["deadline"])),
                description=str(data.get("description") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NexotcError(f"{source}: malformed proposal ({exc})") from exc
        recorded = data.get("digest")
        if recorded is not None and str(recorded).lower() != "0x" + proposal.digest.hex():
            raise NexotcError(f"{source}: its content does not match its digest (edited after it was made?)")
        return proposal

    def save(self, path: Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Proposal:
        return cls.from_json(read_json(path), str(path))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise NexotcError(f"file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise NexotcError(f"cannot read {path}: {exc}") from exc


def write_json(path: Path, data: Any) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise NexotcError(f"cannot write {path}: {exc}") from exc


# ------------------------------------------------------------------ ERC-20
def _fn(name: str, inputs: tuple[tuple[str, str], ...], mutability: str = "nonpayable") -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": mutability,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [],
    }


def _ev(name: str, a: str, b: str) -> dict[str, Any]:
    return {
        "type": "event",
        "name": name,
        "anonymous": False,
        "inputs": [
            {"name": a, "type": "address", "indexed": True},
            {"name": b, "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    }


ERC20_CALLS_ABI: list[dict[str, Any]] = [
    _fn("transfer", (("to", "address"), ("amount", "uint256"))),
    _fn("approve", (("spender", "address"), ("amount", "uint256"))),
    _fn("transferFrom", (("owner", "address"), ("to", "address"), ("amount", "uint256"))),
    _ev("Transfer", "sender", "receiver"),
    _ev("Approval", "owner", "spender"),
]


def erc20_type() -> Any:
    """A ContractType of the ERC-20 calls a wallet makes (transfer, approve, transferFrom) and events."""
    from ethpm_types import ContractType

    return ContractType(contractName="ERC20", abi=ERC20_CALLS_ABI)


def erc20_transfer(token: str, to: str, amount: int) -> Call:
    """The call `token.transfer(to, amount)` (outputs not declared: USDT-style tokens return nothing)."""
    from ape.contracts import ContractInstance

    contract = ContractInstance(to_checksum_address(token), erc20_type())
    return Call(to_checksum_address(token), 0, bytes(contract.transfer.encode_input(to_checksum_address(to), amount)))


# ------------------------------------------------------------------ results
def event_abis() -> list[Any]:
    """Events worth showing after a wallet action: the wallet's, its factory's, ERC-20 transfers
    and approvals, and the escrow's (a wallet that releases or funds a deal)."""
    from nexotc_client.chain.deal import _all_event_abis

    abis = list(wallet_container().contract_type.events) + list(wallet_factory_container().contract_type.events)
    abis += list(erc20_type().events)
    abis += _all_event_abis()
    seen: set[str] = set()
    out = []
    for abi in abis:
        key = abi.selector
        if key not in seen:
            seen.add(key)
            out.append(abi)
    return out


def _result(receipt: ReceiptAPI) -> TxResult:
    timestamp = int(receipt.timestamp)
    abis = event_abis()
    by_name = {abi.name: abi for abi in abis}
    events = [_event(log, timestamp, by_name) for log in receipt.decode_logs(abis)]
    return TxResult(
        tx_hash=_hex(receipt.txn_hash),
        gas_used=int(receipt.gas_used),
        block=int(receipt.block_number),
        events=events,
    )


__all__ = [
    "MultiSigWallet",
    "Proposal",
    "WalletFactory",
    "WalletInfo",
    "TokenMeta",
    "check_signature",
    "deploy_wallet_factory",
    "describe_call",
    "erc20_transfer",
    "erc20_type",
    "event_abis",
    "read_json",
    "sign_proposal",
    "sign_wallet_message",
    "signature_from_json",
    "signature_to_json",
    "wallet_container",
    "wallet_factory_container",
    "write_json",
]
