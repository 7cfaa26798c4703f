"""The nexotc MultiSig wallet off chain: configuration, EIP-712 executions and signature packing.

The contract (`MultiSig.vy`) is the authority; this module reproduces its hashing byte for byte
(tested against the contract and against eth-account's independent EIP-712 encoder) so that owners
can sign offline and anyone can submit.

    domain = Domain(chain_id, wallet_address)
    execution = Execution.single(Call(token, 0, transfer_data), nonce=wallet.nonce(), deadline=t)
    sigs = pack_signatures([Signature.ecdsa(execution.digest(domain), key) for key in owner_keys])
    wallet.execute(token, 0, t, sigs, transfer_data)

Signature entries (65 bytes, sorted by signer address, strictly ascending), then the data of
contract signatures:
    ECDSA      r | s | v (v = 27 or 28, low s)
    CONTRACT   r = owner (EIP-1271 wallet) | s = offset of (length | data) | v = 0
    APPROVED   r = owner | 0 | v = 1: the owner called approve_hash(digest), or is the sender of execute
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from eth_abi import encode
from eth_account import Account
from eth_keys import KeyAPI
from eth_utils import keccak, to_checksum_address

from nexotc_client.eip712 import EIP712_DOMAIN_TYPE

NAME = "nexotc MultiSig"
VERSION = "1"
MAX_OWNERS = 20
MAX_CALLS = 8  # calls in one execute_batch
MAX_DATA = 8192  # data of a single execute
MAX_BATCH_DATA = 2048  # data of each call of a batch
MAX_SIGNATURES = 2048  # bytes of the signatures argument
ENTRY_LEN = 65
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
CALL_TYPE = "Call(address target,uint256 value,bytes data)"
EXECUTE_TYPE = "Execute(Call[] calls,uint256 nonce,uint256 deadline)" + CALL_TYPE
MESSAGE_TYPE = "Message(bytes32 hash)"
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)
CALL_TYPEHASH = keccak(text=CALL_TYPE)
EXECUTE_TYPEHASH = keccak(text=EXECUTE_TYPE)
MESSAGE_TYPEHASH = keccak(text=MESSAGE_TYPE)

# Bytes of the EIP-1167 runtime before a wallet's configuration (see modules/owner_set.vy).
CLONE_OFFSET = 45
PROXY_HEAD = bytes.fromhex("363d3d373d3d3d363d73")
PROXY_TAIL = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


class MultiSigError(ValueError):
    """A configuration or signature set the contract would reject; the message names the rule."""


def _addr(a: object) -> str:
    return to_checksum_address(a if isinstance(a, str | bytes) else a.address)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Config:
    """Owners (kept ascending, as the contract stores them) and threshold."""

    owners: tuple[str, ...]
    threshold: int

    @classmethod
    def build(cls, owners: Iterable[object], threshold: int) -> Config:
        addrs = [_addr(o) for o in owners]
        if not 1 <= len(addrs) <= MAX_OWNERS:
            raise MultiSigError(f"1 to {MAX_OWNERS} owners")
        if any(int(a, 16) == 0 for a in addrs):
            raise MultiSigError("zero owner")
        if len(set(addrs)) != len(addrs):
            raise MultiSigError("duplicate owner")
        if not 1 <= threshold <= len(addrs):
            raise MultiSigError("threshold out of range")
        return cls(tuple(sorted(addrs, key=lambda a: int(a, 16))), threshold)

    def encode(self) -> bytes:
        """The configuration bytes appended to the wallet's clone code."""
        return bytes([self.threshold, len(self.owners)]) + b"".join(bytes.fromhex(o[2:]) for o in self.owners)

    def initcode(self, implementation: str) -> bytes:
        """Creation code of the wallet's clone: EIP-1167 runtime + configuration."""
        runtime = PROXY_HEAD + bytes.fromhex(_addr(implementation)[2:]) + PROXY_TAIL + self.encode()
        return b"\x61" + len(runtime).to_bytes(2, "big") + bytes.fromhex("80600a3d393df3") + runtime

    def predict_address(self, factory: str, implementation: str, salt: bytes) -> str:
        """The CREATE2 address `MultiSigFactory.create(owners, threshold, salt)` deploys to."""
        initcode = self.initcode(implementation)
        h = keccak(b"\xff" + bytes.fromhex(_addr(factory)[2:]) + salt.rjust(32, b"\0") + keccak(initcode))
        return to_checksum_address(h[12:])


# ----------------------------------------------------------------------------- EIP-712
@dataclass(frozen=True)
class Domain:
    """EIP712Domain(name "nexotc MultiSig", version "1", chainId, verifyingContract = the wallet)."""

    chain_id: int
    wallet: str
    name: str = NAME
    version: str = VERSION

    def separator(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [DOMAIN_TYPEHASH, keccak(text=self.name), keccak(text=self.version), self.chain_id, self.wallet],
            )
        )

    def digest(self, struct_hash: bytes) -> bytes:
        return keccak(b"\x19\x01" + self.separator() + struct_hash)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": _addr(self.wallet),
        }


@dataclass(frozen=True)
class Call:
    """One call the wallet makes: CALL `target` with `value` wei and `data`."""

    target: str
    value: int = 0
    data: bytes = b""

    def struct_hash(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "address", "uint256", "bytes32"],
                [CALL_TYPEHASH, self.target, self.value, keccak(self.data)],
            )
        )

    def as_tuple(self) -> tuple[str, int, bytes]:
        """The `IMultiSig.Call` struct argument."""
        return (_addr(self.target), self.value, self.data)


@dataclass(frozen=True)
class Execution:
    """Execute(Call[] calls, uint256 nonce, uint256 deadline): what the owners sign."""

    calls: tuple[Call, ...]
    nonce: int
    deadline: int

    @classmethod
    def single(cls, call: Call, nonce: int, deadline: int) -> Execution:
        return cls((call,), nonce, deadline)

    def struct_hash(self) -> bytes:
        calls_hash = keccak(b"".join(c.struct_hash() for c in self.calls))
        return keccak(
            encode(
                ["bytes32", "bytes32", "uint256", "uint256"], [EXECUTE_TYPEHASH, calls_hash, self.nonce, self.deadline]
            )
        )

    def digest(self, domain: Domain) -> bytes:
        return domain.digest(self.struct_hash())

    def typed_data(self, domain: Domain) -> dict:
        """The full EIP-712 document (eth_signTypedData_v4) a hardware or browser wallet shows."""
        return {
            "types": {
                "EIP712Domain": EIP712_DOMAIN_TYPE,
                "Call": [
                    {"name": "target", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "data", "type": "bytes"},
                ],
                "Execute": [
                    {"name": "calls", "type": "Call[]"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Execute",
            "domain": domain.as_dict(),
            "message": {
                "calls": [
                    {"target": _addr(c.target), "value": c.value, "data": "0x" + c.data.hex()} for c in self.calls
                ],
                "nonce": self.nonce,
                "deadline": self.deadline,
            },
        }


def message_struct_hash(hash32: bytes) -> bytes:
    return keccak(encode(["bytes32", "bytes32"], [MESSAGE_TYPEHASH, hash32]))


def message_digest(domain: Domain, hash32: bytes) -> bytes:
    """The digest owners sign so that `isValidSignature(hash32, signatures)` holds for the wallet."""
    return domain.digest(message_struct_hash(hash32))


def message_typed_data(domain: Domain, hash32: bytes) -> dict:
    """EIP-712 typed data of `Message(bytes32 hash)` for the wallet of `domain`: what an owner's wallet shows
    and signs (its hash is `message_digest(domain, hash32)`)."""
    return {
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPE,
            "Message": [{"name": "hash", "type": "bytes32"}],
        },
        "primaryType": "Message",
        "domain": domain.as_dict(),
        "message": {"hash": hash32},
    }


def unpack_ecdsa_signatures(packed: bytes, digest: bytes) -> list[Signature]:
    """The ECDSA entries of packed `signatures` (65 bytes each, nothing else), with the signer each recovers to
    over `digest`; MultiSigError for anything else (another kind of entry, a torn entry, a garbage signature)."""
    if len(packed) % ENTRY_LEN:
        raise MultiSigError(f"{len(packed)} bytes of signatures: not whole 65-byte entries")
    out = []
    for i in range(0, len(packed), ENTRY_LEN):
        r = int.from_bytes(packed[i : i + 32], "big")
        s, v = int.from_bytes(packed[i + 32 : i + 64], "big"), packed[i + 64]
        if v not in (27, 28) or s > HALF_N or not 0 < r < SECP256K1_N:
            raise MultiSigError(f"signature entry {i // ENTRY_LEN} is not a canonical ECDSA signature")
        try:
            signer = KeyAPI.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
        except Exception as exc:  # eth-keys raises BadSignature and others for garbage
            raise MultiSigError(f"signature entry {i // ENTRY_LEN} does not verify") from exc
        out.append(Signature(signer.to_checksum_address(), Kind.ECDSA, r, s, v))
    return out


# -------------------------------------------------------------------------- signatures
class Kind(IntEnum):
    CONTRACT = 0
    APPROVED = 1
    ECDSA = 27


@dataclass(frozen=True)
class Signature:
    """One owner's entry. Build with `ecdsa`, `contract` or `approved`."""

    signer: str
    kind: Kind
    r: int = 0
    s: int = 0
    v: int = 0
    data: bytes = field(default=b"", repr=False)

    @classmethod
    def ecdsa(cls, digest: bytes, private_key: object) -> Signature:
        """Sign `digest` (already EIP-712 hashed) with a local key; low s, v = 27 or 28."""
        signed = Account.unsafe_sign_hash(digest, private_key)
        r, s, v = signed.r, signed.s, signed.v
        if s > HALF_N:  # eth-keys signs canonically; normalise anyway
            s, v = SECP256K1_N - s, 55 - v
        signer = KeyAPI.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
        return cls(signer.to_checksum_address(), Kind.ECDSA, r, s, v)

    @classmethod
    def contract(cls, owner: object, data: bytes) -> Signature:
        """An EIP-1271 owner's signature `data` (for a nexotc MultiSig owner: its packed signatures
        over its own `message_digest` of the outer digest)."""
        return cls(_addr(owner), Kind.CONTRACT, int(_addr(owner), 16), 0, 0, data)

    @classmethod
    def approved(cls, owner: object) -> Signature:
        """An owner who approved the digest on chain (approve_hash) or who sends the execute."""
        return cls(_addr(owner), Kind.APPROVED, int(_addr(owner), 16), 0, 1)

    def with_high_s(self) -> Signature:
        """The malleated twin (r, n - s, the other v): same signer for ecrecover, rejected by the wallet."""
        return Signature(self.signer, self.kind, self.r, SECP256K1_N - self.s, 55 - self.v)


def pack_signatures(signatures: Sequence[Signature], *, sort: bool = True) -> bytes:
    """The `signatures` argument: entries sorted by signer (unless `sort=False`, for tests of the
    contract's checks), then the length-prefixed data of contract signatures."""
    sigs = sorted(signatures, key=lambda x: int(x.signer, 16)) if sort else list(signatures)
    static = b""
    dynamic = b""
    base = ENTRY_LEN * len(sigs)
    for sig in sigs:
        s = sig.s
        if sig.kind == Kind.CONTRACT:
            s = base + len(dynamic)
            dynamic += len(sig.data).to_bytes(32, "big") + sig.data
        static += sig.r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([sig.v])
    return static + dynamic


def sign_execution(execution: Execution, domain: Domain, private_keys: Iterable[object]) -> bytes:
    """Packed ECDSA signatures of `private_keys` over `execution`."""
    digest = execution.digest(domain)
    return pack_signatures([Signature.ecdsa(digest, k) for k in private_keys])


def sign_message(domain: Domain, hash32: bytes, private_keys: Iterable[object]) -> bytes:
    """Packed ECDSA signatures making `isValidSignature(hash32, ·)` hold for the wallet of `domain`."""
    digest = message_digest(domain, hash32)
    return pack_signatures([Signature.ecdsa(digest, k) for k in private_keys])


__all__ = [
    "Call",
    "Config",
    "Domain",
    "Execution",
    "Kind",
    "MultiSigError",
    "Signature",
    "message_digest",
    "message_typed_data",
    "pack_signatures",
    "sign_execution",
    "unpack_ecdsa_signatures",
    "sign_message",
]
