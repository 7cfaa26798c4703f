# pragma version 0.4.3
"""
@title MultiSig
@notice An M-of-N multisig wallet: owners (1 to 20) sign EIP-712 executions
        of one call or a batch of calls; the wallet is an EIP-1271 signer
        itself (so it can make signed offers, approve and release deals and
        administer a desk).
@dev Deployed once as an implementation by MultiSigFactory; every wallet is
     an EIP-1167 clone whose code carries its owners and threshold (see
     modules/owner_set.vy). Gas design (an execution is measured against
     Safe 1.4.1 in bench/multisig.py):
       - one storage slot holds the nonce and where the configuration
         lives: an execution reads and writes that one slot, no threshold,
         owner or guard slots;
       - owners are read from the wallet's own code (EXTCODECOPY of the
         already warm wallet, ~230 gas an owner) instead of a cold SLOAD
         (2,100) each; owners and signers are both ascending, so membership
         is one forward scan;
       - signatures are read straight from calldata and the entry points
         declare no variable on the common path (Vyper places locals after
         the arguments' maximum sizes), so an execution touches ~4 KB of
         memory; contract signatures, the rare case, are checked by the
         entry point (which holds the signatures in memory) after the core
         has validated them;
       - no guard, module, fallback handler or refund machinery.
     Trade-off: an owner or threshold change deploys a small data contract
     holding the new configuration (32,000 + 200 gas a byte), and every
     later execution reads it from that (cold) account, 2,500 gas more than
     from the wallet's own code.
     Signatures are 65-byte entries sorted by signer address, strictly
     ascending (so no owner counts twice), `threshold` of them, then the
     data of contract signatures:
       v = 27 / 28  ECDSA (r, s, v), canonical: s in the lower half
       v = 0        EIP-1271: r = owner, s = offset of (length, data) in
                    `signatures`, at or past the end of the entries
       v = 1        pre-approved: r = owner, who called approve_hash(digest)
                    or (executions only) is msg.sender
@custom:security Only CALL, never DELEGATECALL: nothing can rewrite the
     wallet's storage or code. A failing call reverts the whole execution
     (its revert data is bubbled up), so the nonce is only consumed by
     executions that fully succeeded. The nonce is bumped before any call,
     so a re-entrant execution needs signatures over the next nonce.
     Owners and threshold change only through the wallet's own executed
     calls (msg.sender == self). The implementation itself is never set up:
     every entry point reverts on it, and a clone is set up once, by the
     factory, in the transaction that creates it (a clone made by anyone
     else stays inert). Pending signatures of a removed owner stop counting
     at once; its approve_hash approvals are kept and count again only if it
     is made an owner again (as in Safe). Anyone may submit a signed
     execution: the signatures bind wallet, chain, calls, nonce and deadline.
"""

from interfaces import IMultiSig
import modules.eip712 as eip712
import modules.owner_set as owner_set
import modules.signatures as signature_check

implements: IMultiSig

MAX_DATA: constant(uint256) = 8192
MAX_CALLS: constant(uint256) = 8
MAX_SIGNATURES: constant(uint256) = 2048
ENTRY_LEN: constant(uint256) = 65
# calldata position of the head word of the `signatures` argument
EXECUTE_SIGNATURES_HEAD: constant(uint256) = 100  # execute: 4th argument
BATCH_SIGNATURES_HEAD: constant(uint256) = 36  # execute_batch: 2nd
MESSAGE_SIGNATURES_HEAD: constant(uint256) = 36  # isValidSignature: 2nd

NAME_HASH: constant(bytes32) = keccak256("nexotc MultiSig")
VERSION_HASH: constant(bytes32) = keccak256("1")
CALL_TYPEHASH: constant(bytes32) = keccak256("Call(address target,uint256 value,bytes data)")
EXECUTE_TYPEHASH: constant(bytes32) = keccak256(
    "Execute(Call[] calls,uint256 nonce,uint256 deadline)Call(address target,uint256 value,bytes data)"
)
MESSAGE_TYPEHASH: constant(bytes32) = keccak256("Message(bytes32 hash)")

# signature entry kinds other than ECDSA (the v byte)
V_CONTRACT: constant(uint256) = 0
V_APPROVED: constant(uint256) = 1

# state word: nonce (bits 0-63) | configuration source (bits 96-255)
NONCE_MASK: constant(uint256) = 2**64 - 1
SOURCE_SHIFT: constant(uint256) = 96
MASK_160: constant(uint256) = 2**160 - 1

# Creation code of a configuration data contract: PUSH2 len DUP1 PUSH1 0x0a
# RETURNDATASIZE CODECOPY RETURNDATASIZE RETURN, then the runtime: STOP and
# zero padding up to owner_set.DATA_OFFSET, then the configuration.
DATA_PAD: constant(bytes10) = empty(bytes10)

FACTORY: immutable(address)
IMPLEMENTATION: immutable(address)

# nonce | configuration source: the wallet itself (configuration in its
# clone code) or the data contract of the last change. Zero until set up.
state: uint256
# owner => hash => approved on chain (approve_hash)
approved_hashes: public(HashMap[address, HashMap[bytes32, bool]])
# contract signatures (bit i: entry i) _authorize leaves to the entry point,
# and the digest they sign; cleared by the entry point
_contract_mask: transient(uint256)
_contract_digest: transient(bytes32)


@deploy
def __init__():
    FACTORY = msg.sender
    IMPLEMENTATION = self


@external
def setup():
    """
    @notice Factory-only, once, right after the factory created this clone:
            makes the wallet live with the configuration in its code.
    """
    assert msg.sender == FACTORY, "only factory"
    assert self != IMPLEMENTATION, "implementation"
    assert self.state == 0, "already set up"
    self.state = convert(self, uint256) << SOURCE_SHIFT


@payable
@external
def __default__():
    """
    @notice Receive ETH. Any other unknown call reverts.
    @dev Like any proxy, a clone cannot receive ETH through the 2,300-gas
         stipend of Solidity's transfer/send (the delegatecall alone costs
         more); senders must forward gas.
    """
    assert len(msg.data) == 0, "unknown function"


# ------------------------------------------------------------ executions


@payable
@external
def execute(
    target: address,
    amount: uint256,
    deadline: uint256,
    signatures: Bytes[MAX_SIGNATURES],
    data: Bytes[MAX_DATA],
):
    """
    @notice Make one call signed by `threshold` owners: EIP-712
            Execute(Call[] calls, nonce, deadline) with calls = [call].
            Anyone may submit it. If the call fails the whole execution
            reverts with the call's revert data, and the nonce is not used.
    @param amount wei sent with the call (EIP-712 field `value`)
    @param deadline last timestamp at which the execution is valid
    @dev Gas: this body declares no variable outside the contract-signature
         branch and `data` is the last argument, so the common path touches
         only a few KB of memory (Vyper places every local after the
         arguments' maximum sizes). Keep the branch identical to the one in
         execute_batch and isValidSignature.
    """
    self._authorize_one(target, amount, keccak256(data), deadline)
    if self._contract_mask != 0:
        mask: uint256 = self._contract_mask
        digest: bytes32 = self._contract_digest
        self._contract_mask = 0
        for i: uint256 in range(owner_set.MAX_OWNERS):
            if mask == 0:
                break
            if mask & 1 == 1:
                # cannot overflow: i < 20; offsets and lengths were checked by _check_signatures
                p: uint256 = unsafe_mul(i, ENTRY_LEN)
                start: uint256 = extract32(signatures, unsafe_add(p, 32), output_type=uint256)
                ok: bool = False
                response: Bytes[32] = b""
                ok, response = raw_call(
                    extract32(signatures, p, output_type=address),
                    abi_encode(
                        digest,
                        slice(signatures, unsafe_add(start, 32), extract32(signatures, start, output_type=uint256)),
                        method_id=signature_check.ERC1271_MAGIC,
                    ),
                    max_outsize=32,
                    is_static_call=True,
                    revert_on_failure=False,
                )
                assert signature_check._is_magic(ok, response), "invalid contract signature"
            mask = mask >> 1
    raw_call(target, data, value=amount)


@payable
@external
def execute_batch(deadline: uint256, signatures: Bytes[MAX_SIGNATURES], calls: DynArray[IMultiSig.Call, MAX_CALLS]):
    """
    @notice Make several calls (1 to 8, each up to 2 KB of data), in order,
            under one set of signatures (EIP-712 Execute(Call[] calls,
            nonce, deadline)). If any call fails the whole execution reverts
            with that call's revert data, and the nonce is not used.
    @dev A batch pays for memory up to its arguments' maximum sizes (about
         20 KB) and for the struct encoding: a batch of one call costs about
         4,000 gas more than `execute`, a batch of two token transfers about
         58% of two executions.
    """
    n: uint256 = len(calls)
    assert n > 0, "no calls"
    hashes: DynArray[bytes32, MAX_CALLS] = []
    for i: uint256 in range(MAX_CALLS):
        if i == n:
            break
        hashes.append(self._call_hash(calls[i].target, calls[i].value, keccak256(calls[i].data)))
    # abi_encode prefixes the offset and the length (64 bytes)
    self._authorize(keccak256(slice(abi_encode(hashes), 64, n * 32)), deadline, BATCH_SIGNATURES_HEAD)
    if self._contract_mask != 0:
        mask: uint256 = self._contract_mask
        digest: bytes32 = self._contract_digest
        self._contract_mask = 0
        for i: uint256 in range(owner_set.MAX_OWNERS):
            if mask == 0:
                break
            if mask & 1 == 1:
                # cannot overflow: i < 20; offsets and lengths were checked by _check_signatures
                p: uint256 = unsafe_mul(i, ENTRY_LEN)
                start: uint256 = extract32(signatures, unsafe_add(p, 32), output_type=uint256)
                ok: bool = False
                response: Bytes[32] = b""
                ok, response = raw_call(
                    extract32(signatures, p, output_type=address),
                    abi_encode(
                        digest,
                        slice(signatures, unsafe_add(start, 32), extract32(signatures, start, output_type=uint256)),
                        method_id=signature_check.ERC1271_MAGIC,
                    ),
                    max_outsize=32,
                    is_static_call=True,
                    revert_on_failure=False,
                )
                assert signature_check._is_magic(ok, response), "invalid contract signature"
            mask = mask >> 1
    for i: uint256 in range(MAX_CALLS):
        if i == n:
            break
        raw_call(calls[i].target, calls[i].data, value=calls[i].value)


@external
def approve_hash(hash: bytes32):
    """
    @notice An owner approves `hash` on chain: an execution digest (then its
            signature entry is v = 1, r = owner) or a message digest for
            isValidSignature.
    """
    src: address = self._source(self.state)
    assert self._is_owner(src, msg.sender), "not an owner"
    self.approved_hashes[msg.sender][hash] = True
    log IMultiSig.HashApproved(owner=msg.sender, hash=hash)


# ------------------------------------------------ owners (self-calls only)


@external
def add_owner(owner: address, threshold: uint256):
    """
    @notice Wallet-only (an executed call to itself): add `owner` and set
            the threshold.
    """
    owners: DynArray[address, owner_set.MAX_OWNERS] = self._owners_for_change()
    assert owner != empty(address), "zero owner"
    assert owner not in owners, "already an owner"
    assert len(owners) < owner_set.MAX_OWNERS, "too many owners"
    owners.append(owner)
    self._reconfigure(owners, threshold)
    log IMultiSig.OwnerAdded(owner=owner)


@external
def remove_owner(owner: address, threshold: uint256):
    """
    @notice Wallet-only: remove `owner` and set the threshold.
    """
    owners: DynArray[address, owner_set.MAX_OWNERS] = self._owners_for_change()
    kept: DynArray[address, owner_set.MAX_OWNERS] = []
    for o: address in owners:
        if o != owner:
            kept.append(o)
    assert len(kept) < len(owners), "not an owner"
    self._reconfigure(kept, threshold)
    log IMultiSig.OwnerRemoved(owner=owner)


@external
def replace_owner(old_owner: address, new_owner: address):
    """
    @notice Wallet-only: replace `old_owner` with `new_owner`.
    """
    owners: DynArray[address, owner_set.MAX_OWNERS] = self._owners_for_change()
    assert new_owner != empty(address), "zero owner"
    assert new_owner not in owners, "already an owner"
    found: bool = False
    for i: uint256 in range(owner_set.MAX_OWNERS):
        if i == len(owners):
            break
        if owners[i] == old_owner:
            owners[i] = new_owner
            found = True
    assert found, "not an owner"
    self._reconfigure(owners, self._threshold())
    log IMultiSig.OwnerRemoved(owner=old_owner)
    log IMultiSig.OwnerAdded(owner=new_owner)


@external
def change_threshold(threshold: uint256):
    """
    @notice Wallet-only: set the threshold (1 to the owner count).
    """
    self._reconfigure(self._owners_for_change(), threshold)


# ------------------------------------------------------------ EIP-1271


@view
@external
def isValidSignature(hash: bytes32, signatures: Bytes[MAX_SIGNATURES]) -> bytes4:
    """
    @notice EIP-1271: the magic value 0x1626ba7e when `signatures` holds
            `threshold` owner signatures (same format as executions) over
            the EIP-712 message Message(bytes32 hash) of this wallet;
            reverts with the reason otherwise. A v = 1 entry needs the
            owner's approve_hash of that message digest.
    """
    digest: bytes32 = self._message_digest(hash)
    mask: uint256 = self._check_signatures(self.state, digest, MESSAGE_SIGNATURES_HEAD, False)
    if mask != 0:
        for i: uint256 in range(owner_set.MAX_OWNERS):
            if mask == 0:
                break
            if mask & 1 == 1:
                # cannot overflow: i < 20; offsets and lengths were checked by _check_signatures
                p: uint256 = unsafe_mul(i, ENTRY_LEN)
                start: uint256 = extract32(signatures, unsafe_add(p, 32), output_type=uint256)
                ok: bool = False
                response: Bytes[32] = b""
                ok, response = raw_call(
                    extract32(signatures, p, output_type=address),
                    abi_encode(
                        digest,
                        slice(signatures, unsafe_add(start, 32), extract32(signatures, start, output_type=uint256)),
                        method_id=signature_check.ERC1271_MAGIC,
                    ),
                    max_outsize=32,
                    is_static_call=True,
                    revert_on_failure=False,
                )
                assert signature_check._is_magic(ok, response), "invalid contract signature"
            mask = mask >> 1
    return signature_check.ERC1271_MAGIC


# ------------------------------------------------------------------ views


@view
@external
def nonce() -> uint256:
    return self.state & NONCE_MASK


@view
@external
def threshold() -> uint256:
    return self._threshold()


@view
@external
def get_owners() -> DynArray[address, owner_set.MAX_OWNERS]:
    """
    @notice The owners in ascending address order.
    """
    src: address = self._source(self.state)
    return owner_set._owners(src, self._offset(src))


@view
@external
def is_owner(account: address) -> bool:
    return self._is_owner(self._source(self.state), account)


@view
@external
def domain_separator() -> bytes32:
    return eip712._domain_separator(NAME_HASH, VERSION_HASH)


@view
@external
def execution_digest(calls: DynArray[IMultiSig.Call, MAX_CALLS], nonce: uint256, deadline: uint256) -> bytes32:
    """
    @notice The EIP-712 digest owners sign to execute `calls` at `nonce`.
    """
    hashes: DynArray[bytes32, MAX_CALLS] = []
    for c: IMultiSig.Call in calls:
        hashes.append(self._call_hash(c.target, c.value, keccak256(c.data)))
    # abi_encode prefixes the offset and the length (64 bytes)
    return self._execution_digest(keccak256(slice(abi_encode(hashes), 64, len(hashes) * 32)), nonce, deadline)


@view
@external
def message_digest(hash: bytes32) -> bytes32:
    """
    @notice The EIP-712 digest owners sign for isValidSignature(hash, ...).
    """
    return self._message_digest(hash)


@view
@external
def factory() -> address:
    return FACTORY


@view
@external
def implementation() -> address:
    return IMPLEMENTATION


# -------------------------------------------------------------- internals


@internal
def _authorize_one(target: address, amount: uint256, data_hash: bytes32, deadline: uint256):
    # Call[] of one call: keccak256 of its struct hash (_call_hash, inlined)
    call_hash: bytes32 = keccak256(abi_encode(CALL_TYPEHASH, target, amount, data_hash))
    self._authorize(keccak256(call_hash), deadline, EXECUTE_SIGNATURES_HEAD)


@internal
def _authorize(calls_hash: bytes32, deadline: uint256, signatures_head: uint256):
    """
    @dev Checks the deadline and the signatures over the current nonce,
         bumps the nonce and logs the execution (before the calls: a failing
         call reverts the log with everything else). Contract signatures
         left to verify are handed to the entry point in transient storage.
    @param calls_hash keccak256 of the calls' EIP-712 struct hashes
    @param signatures_head calldata position of the `signatures` head word
    """
    state: uint256 = self.state
    assert block.timestamp <= deadline, "expired"
    # EIP-712 digest, inlined (see _execution_digest)
    digest: bytes32 = keccak256(
        concat(
            b"\x19\x01",
            keccak256(abi_encode(eip712.DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self)),
            keccak256(abi_encode(EXECUTE_TYPEHASH, calls_hash, state & NONCE_MASK, deadline)),
        )
    )
    mask: uint256 = self._check_signatures(state, digest, signatures_head, True)
    if mask != 0:
        self._contract_mask = mask
        self._contract_digest = digest
    # cannot overflow into the source bits: one increment per execution
    self.state = unsafe_add(state, 1)
    log IMultiSig.Executed(digest=digest)


@internal
@view
def _check_signatures(state: uint256, digest: bytes32, signatures_head: uint256, allow_sender: bool) -> uint256:
    """
    @dev Reverts unless the first `threshold` entries of the `signatures`
         argument are signatures of distinct owners over `digest`, in
         ascending signer order; owners are ascending too, so membership is
         one forward scan. Reads the argument from calldata (no copy).
         Returns the entries (bit i for entry i) that are EIP-1271 contract
         signatures: their owner, offset and length are checked here, the
         call to the owner is made by the entry point (see execute).
    """
    src: address = convert(convert(state >> SOURCE_SHIFT, uint160), address)
    assert src != empty(address), "not a wallet"
    offset: uint256 = owner_set.CLONE_OFFSET
    if src != self:
        offset = owner_set.DATA_OFFSET
    # owner_set._first, inlined: threshold, count and first owner in one read
    # (cannot underflow: offset >= 10)
    w: uint256 = convert(slice(src.code, unsafe_sub(offset, 10), 32), uint256)
    threshold: uint256 = (w >> 168) & 255
    count: uint256 = (w >> 160) & 255
    owner: uint256 = w & MASK_160
    # the argument's bytes, where Vyper's ABI decoder found them: the
    # unsafe_add wraps exactly like the decoder's own offset arithmetic, so
    # this view and the decoded (memory) argument are the same bytes
    pos: uint256 = unsafe_add(4, convert(slice(msg.data, signatures_head, 32), uint256))
    length: uint256 = convert(slice(msg.data, pos, 32), uint256)
    # cannot overflow: the length word was just read from calldata
    pos = unsafe_add(pos, 32)
    # cannot overflow: threshold <= 20
    static_len: uint256 = unsafe_mul(threshold, ENTRY_LEN)
    assert length >= static_len, "not enough signatures"
    j: uint256 = 0
    last: uint256 = 0
    mask: uint256 = 0
    for i: uint256 in range(owner_set.MAX_OWNERS):
        if i == threshold:
            break
        # entry i: r (32 bytes) | s (32) | v (1); cannot overflow: i < 20
        p: uint256 = unsafe_add(pos, unsafe_mul(i, ENTRY_LEN))
        r: uint256 = convert(slice(msg.data, p, 32), uint256)
        s: uint256 = convert(slice(msg.data, unsafe_add(p, 32), 32), uint256)
        v: uint256 = convert(slice(msg.data, unsafe_add(p, 33), 32), uint256) & 255
        signer: uint256 = r
        if v > V_APPROVED:
            # signature_check._ecdsa_signer, inlined
            assert v == 27 or v == 28, "invalid signature v"
            assert s <= signature_check.HALF_N, "signature s too high"
            signer = convert(ecrecover(digest, v, r, s), uint256)
            assert signer != 0, "invalid signature"
        else:
            assert r != 0 and r <= MASK_160, "invalid signer"
        assert signer > last, "signers not ascending"
        last = signer
        # advance to the signer among the ascending owners
        for _: uint256 in range(owner_set.MAX_OWNERS):
            if owner >= signer:
                break
            # cannot overflow: j < count <= 20
            j = unsafe_add(j, 1)
            assert j < count, "not an owner"
            # owner_set._owner, inlined: the window ending at owner j's last byte
            # (cannot overflow or underflow: offset >= 10 and j < 20)
            owner = convert(
                slice(src.code, unsafe_sub(unsafe_add(offset, unsafe_mul(20, j)), 10), 32), uint256
            ) & MASK_160
        assert owner == signer, "not an owner"
        if v == V_CONTRACT:
            # s: offset of (length | data) in the signatures, past the entries
            assert s >= static_len and s <= length and unsafe_sub(length, s) >= 32, "contract signature out of bounds"
            # cannot underflow or overflow: s + 32 <= length <= calldata size
            n: uint256 = convert(slice(msg.data, unsafe_add(pos, s), 32), uint256)
            assert n <= unsafe_sub(unsafe_sub(length, s), 32), "contract signature out of bounds"
            mask = mask | (1 << i)
        elif v == V_APPROVED:
            a: address = convert(convert(signer, uint160), address)
            assert (allow_sender and a == msg.sender) or self.approved_hashes[a][digest], "hash not approved"
    return mask


@internal
@view
def _source(state: uint256) -> address:
    src: address = convert(convert(state >> SOURCE_SHIFT, uint160), address)
    assert src != empty(address), "not a wallet"
    return src


@internal
@view
def _offset(src: address) -> uint256:
    if src == self:
        return owner_set.CLONE_OFFSET
    return owner_set.DATA_OFFSET


@internal
@view
def _threshold() -> uint256:
    src: address = self._source(self.state)
    return owner_set._first(src, self._offset(src))[0]


@internal
@view
def _is_owner(src: address, account: address) -> bool:
    offset: uint256 = self._offset(src)
    count: uint256 = owner_set._first(src, offset)[1]
    for i: uint256 in range(owner_set.MAX_OWNERS):
        if i == count:
            break
        if owner_set._owner(src, offset, i) == convert(account, uint256):
            return True
    return False


@internal
@view
def _owners_for_change() -> DynArray[address, owner_set.MAX_OWNERS]:
    assert msg.sender == self, "only the wallet itself"
    src: address = self._source(self.state)
    return owner_set._owners(src, self._offset(src))


@internal
def _reconfigure(owners: DynArray[address, owner_set.MAX_OWNERS], threshold: uint256):
    """
    @dev Deploys the new configuration as a data contract and points the
         state word at it (the nonce is kept).
    """
    # the wallet could never supply its own entry (every path needs an
    # execution of itself): as its own owner it would be locked for good
    assert self not in owners, "the wallet cannot own itself"
    old_threshold: uint256 = self._threshold()
    config: Bytes[owner_set.MAX_CONFIG] = owner_set._encode(owner_set._sorted(owners), threshold)
    # cannot overflow: at most 10 + 402 bytes
    runtime_len: uint256 = unsafe_add(owner_set.DATA_OFFSET, len(config))
    data: address = raw_create(
        concat(
            b"\x61",
            slice(convert(runtime_len, bytes32), 30, 2),
            b"\x80\x60\x0a\x3d\x39\x3d\xf3",
            DATA_PAD,
            config,
        )
    )
    self.state = (self.state & NONCE_MASK) | (convert(data, uint256) << SOURCE_SHIFT)
    if threshold != old_threshold:
        log IMultiSig.ThresholdChanged(threshold=threshold)


@internal
@pure
def _call_hash(target: address, amount: uint256, data_hash: bytes32) -> bytes32:
    return keccak256(abi_encode(CALL_TYPEHASH, target, amount, data_hash))


@internal
@view
def _execution_digest(calls_hash: bytes32, nonce: uint256, deadline: uint256) -> bytes32:
    return eip712._digest(
        eip712._domain_separator(NAME_HASH, VERSION_HASH),
        keccak256(abi_encode(EXECUTE_TYPEHASH, calls_hash, nonce, deadline)),
    )


@internal
@view
def _message_digest(hash: bytes32) -> bytes32:
    return eip712._digest(
        eip712._domain_separator(NAME_HASH, VERSION_HASH), keccak256(abi_encode(MESSAGE_TYPEHASH, hash))
    )
