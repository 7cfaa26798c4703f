# pragma version 0.4.3
"""
@title MockSignatureChecker
@notice Exposes the eip712 and signatures modules for their unit tests (the
        modules are shared by the MultiSig and by signed deal offers).
        Never deployed by scripts.
@custom:security Test only; stateless.
"""

from ..modules import eip712
from ..modules import signatures as signature_check


@view
@external
def domain_separator(name: String[64], version: String[16]) -> bytes32:
    return eip712._domain_separator(keccak256(name), keccak256(version))


@pure
@external
def digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    return eip712._digest(domain_separator, struct_hash)


@pure
@external
def ecdsa_signer(digest: bytes32, v: uint256, r: uint256, s: uint256) -> address:
    return signature_check._ecdsa_signer(digest, v, r, s)


@view
@external
def erc1271_valid(signer: address, digest: bytes32, signature: Bytes[4096]) -> bool:
    return signature_check._erc1271_valid(signer, digest, signature)


@view
@external
def is_valid_now(signer: address, digest: bytes32, signature: Bytes[4096]) -> bool:
    return signature_check._is_valid_now(signer, digest, signature)
