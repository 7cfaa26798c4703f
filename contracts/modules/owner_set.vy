# pragma version 0.4.3
"""
@title owner_set
@notice The owner set of a MultiSig: validation, canonical encoding and
        reads from code.
@dev A configuration is encoded as
       threshold (1 byte) | owner count (1 byte) | owners (20 bytes each,
       strictly ascending)
     and lives in code: appended to a wallet's EIP-1167 clone at creation
     (at CLONE_OFFSET), or, after an owner or threshold change, in a data
     contract the wallet deploys (at DATA_OFFSET, after a STOP and zero
     padding, so calling it does nothing). Reading code of the
     wallet itself costs ~100 gas a word (warm account) instead of 2,100 for
     a cold storage slot.
     Owner i is read with the 32-byte window that ends at its last byte, so
     no window passes the end of the code (Vyper bounds-checks code reads)
     and the code needs no padding; the window of owner 0 also holds the
     threshold and the count, so one read gives all three. This needs at
     least 10 bytes of code before the configuration, which both offsets
     give.
@custom:security Pure and view helpers only; this module has no storage.
     `_sorted` rejects zero and duplicate owners, `_encode` a threshold out
     of 1..owner count, so every configuration in code is valid.
"""

MAX_OWNERS: constant(uint256) = 20
# threshold byte + count byte + 20 bytes per owner
MAX_CONFIG: constant(uint256) = 402
# where the configuration starts in a wallet clone (after the EIP-1167 runtime)
CLONE_OFFSET: constant(uint256) = 45
# where it starts in a configuration data contract
DATA_OFFSET: constant(uint256) = 10
MASK_160: constant(uint256) = 2**160 - 1


@internal
@pure
def _sorted(owners: DynArray[address, MAX_OWNERS]) -> DynArray[address, MAX_OWNERS]:
    """
    @notice `owners` in ascending order; reverts on a zero or duplicate owner.
    @dev Insertion sort: at most 190 swaps for 20 owners.
    """
    out: DynArray[address, MAX_OWNERS] = []
    for owner: address in owners:
        assert owner != empty(address), "zero owner"
        out.append(owner)
        j: uint256 = len(out) - 1
        for _: uint256 in range(MAX_OWNERS):
            if j == 0:
                break
            # cannot underflow: j > 0
            prev: address = out[unsafe_sub(j, 1)]
            assert prev != owner, "duplicate owner"
            if convert(prev, uint256) < convert(owner, uint256):
                break
            out[j] = prev
            out[unsafe_sub(j, 1)] = owner
            j = unsafe_sub(j, 1)
    return out


@internal
@pure
def _encode(owners: DynArray[address, MAX_OWNERS], threshold: uint256) -> Bytes[MAX_CONFIG]:
    """
    @notice The configuration of sorted, validated `owners` and `threshold`.
    """
    n: uint256 = len(owners)
    assert threshold >= 1 and threshold <= n, "threshold out of range"
    o: address[MAX_OWNERS] = empty(address[MAX_OWNERS])
    for i: uint256 in range(MAX_OWNERS):
        if i == n:
            break
        o[i] = owners[i]
    full: Bytes[MAX_CONFIG] = concat(
        convert(convert(threshold, uint8), bytes1),
        convert(convert(n, uint8), bytes1),
        convert(o[0], bytes20),
        convert(o[1], bytes20),
        convert(o[2], bytes20),
        convert(o[3], bytes20),
        convert(o[4], bytes20),
        convert(o[5], bytes20),
        convert(o[6], bytes20),
        convert(o[7], bytes20),
        convert(o[8], bytes20),
        convert(o[9], bytes20),
        convert(o[10], bytes20),
        convert(o[11], bytes20),
        convert(o[12], bytes20),
        convert(o[13], bytes20),
        convert(o[14], bytes20),
        convert(o[15], bytes20),
        convert(o[16], bytes20),
        convert(o[17], bytes20),
        convert(o[18], bytes20),
        convert(o[19], bytes20),
    )
    # cannot overflow: n <= MAX_OWNERS
    return slice(full, 0, unsafe_add(2, unsafe_mul(20, n)))


@internal
@view
def _first(src: address, offset: uint256) -> (uint256, uint256, uint256):
    """
    @notice (threshold, owner count, first owner) of the configuration at
            `offset` in the code of `src`, from one 32-byte read.
    """
    # cannot underflow: offset >= DATA_OFFSET = 10
    w: uint256 = convert(slice(src.code, unsafe_sub(offset, 10), 32), uint256)
    return (w >> 168) & 255, (w >> 160) & 255, w & MASK_160


@internal
@view
def _owner(src: address, offset: uint256, i: uint256) -> uint256:
    """
    @notice Owner `i` (ascending order) of the configuration at `offset`, as
            a number. The caller keeps i below the owner count.
    """
    # cannot overflow or underflow: offset >= 10 and i < MAX_OWNERS
    return convert(slice(src.code, unsafe_sub(unsafe_add(offset, unsafe_mul(20, i)), 10), 32), uint256) & MASK_160


@internal
@view
def _owners(src: address, offset: uint256) -> DynArray[address, MAX_OWNERS]:
    """
    @notice Every owner, ascending.
    """
    count: uint256 = self._first(src, offset)[1]
    out: DynArray[address, MAX_OWNERS] = []
    for i: uint256 in range(MAX_OWNERS):
        if i == count:
            break
        out.append(convert(convert(self._owner(src, offset, i), uint160), address))
    return out
