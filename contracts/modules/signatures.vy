# pragma version 0.4.3
"""
@title signatures
@notice Signature checks shared by every contract that accepts signed
        messages: secp256k1 ECDSA restricted to canonical signatures (low s,
        v of 27 or 28) and EIP-1271 contract signatures.
@dev Two flavours: `_ecdsa_signer` reverts with a precise reason (for
     callers that want to tell a user what is wrong), `_is_valid_now`
     returns a bool (for callers that try several rules).
@custom:security ecrecover accepts both (r, s) and (r, n - s); only the low
     half of s is accepted here, so a signature has exactly one valid
     encoding (no malleability) and v must be 27 or 28. EIP-1271 signers are
     queried with STATICCALL: they cannot change state, and a revert, an
     empty or a short answer is "invalid", never an error that blocks the
     caller.
"""

# secp256k1 group order / 2 (EIP-2)
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168  # 0x7fff...20a0
# isValidSignature(bytes32,bytes) selector, left-aligned in a 32-byte word
ERC1271_MAGIC: constant(bytes4) = 0x1626ba7e
ERC1271_MAGIC_WORD: constant(bytes32) = 0x1626ba7e00000000000000000000000000000000000000000000000000000000
# Largest contract signature forwarded to an EIP-1271 signer.
MAX_SIGNATURE: constant(uint256) = 4096


@internal
@pure
def _ecdsa_signer(digest: bytes32, v: uint256, r: uint256, s: uint256) -> address:
    """
    @notice The address that signed `digest`; reverts unless the signature is
            canonical and valid.
    """
    assert v == 27 or v == 28, "invalid signature v"
    assert s <= HALF_N, "signature s too high"
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address), "invalid signature"
    return signer


@internal
@view
def _erc1271_valid(signer: address, digest: bytes32, signature: Bytes[MAX_SIGNATURE]) -> bool:
    """
    @notice True when contract `signer` answers isValidSignature(digest,
            signature) with the EIP-1271 magic value.
    """
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        signer,
        abi_encode(digest, signature, method_id=ERC1271_MAGIC),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    return self._is_magic(success, response)


@internal
@view
def _is_valid_now(signer: address, digest: bytes32, signature: Bytes[MAX_SIGNATURE]) -> bool:
    """
    @notice True when `signature` is `signer`'s over `digest`: EIP-1271 if
            `signer` has code, else a canonical 65-byte ECDSA signature
            (r, s, v). Never reverts.
    """
    if signer.is_contract:
        return self._erc1271_valid(signer, digest, signature)
    if len(signature) != 65 or signer == empty(address):
        return False
    r: uint256 = convert(slice(signature, 0, 32), uint256)
    s: uint256 = convert(slice(signature, 32, 32), uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if (v != 27 and v != 28) or s > HALF_N:
        return False
    return ecrecover(digest, v, r, s) == signer


@internal
@pure
def _is_magic(success: bool, response: Bytes[32]) -> bool:
    """
    @notice True for a successful EIP-1271 answer carrying the magic value.
    """
    return success and len(response) == 32 and convert(response, bytes32) == ERC1271_MAGIC_WORD
