# pragma version 0.4.3
"""
@title eip712
@notice EIP-712 typed-data hashing: the domain separator of the calling
        contract and the final typed-data digest.
@dev Stateless: a contract keeps its own name and version hashes as
     constants and passes them in. The separator is recomputed on every use
     (about 200 gas) from `chain.id` and `self`, so it is right for EIP-1167
     clones (whose `self` is the clone, not the implementation) and after a
     chain fork, with no cache to invalidate.
@custom:security Binding `chainId` and `verifyingContract` into every
     digest is what stops a signature for one chain or one contract from
     being replayed on another.
"""

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@internal
@view
def _domain_separator(name_hash: bytes32, version_hash: bytes32) -> bytes32:
    """
    @param name_hash keccak256 of the domain name
    @param version_hash keccak256 of the domain version
    """
    return keccak256(abi_encode(DOMAIN_TYPEHASH, name_hash, version_hash, chain.id, self))


@internal
@pure
def _digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    """
    @dev keccak256(0x1901 ++ domainSeparator ++ hashStruct(message)).
    """
    return keccak256(concat(b"\x19\x01", domain_separator, struct_hash))
