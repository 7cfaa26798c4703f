# pragma version 0.4.3
"""
@title MockERC1271
@notice An EIP-1271 contract signer with a switchable answer, standing in
        for smart-contract wallets that own a MultiSig. Never deployed by
        scripts.
@custom:security Test only: anyone can change its answers.
"""

MODE_VALID: constant(uint256) = 0  # magic value for hashes marked valid
MODE_WRONG: constant(uint256) = 1  # a wrong bytes4 for every hash
MODE_REVERT: constant(uint256) = 2  # revert for every hash

mode: public(uint256)
# hash => signature => valid
valid: public(HashMap[bytes32, HashMap[bytes32, bool]])


@external
def set_mode(mode: uint256):
    self.mode = mode


@external
def set_valid(hash: bytes32, signature: Bytes[2048], ok: bool):
    """
    @notice Answer isValidSignature(hash, signature) with the magic value.
    """
    self.valid[hash][keccak256(signature)] = ok


@view
@external
def isValidSignature(hash: bytes32, signature: Bytes[2048]) -> bytes4:
    assert self.mode != MODE_REVERT, "mock: revert"
    if self.mode == MODE_VALID and self.valid[hash][keccak256(signature)]:
        return 0x1626ba7e
    return 0xffffffff
