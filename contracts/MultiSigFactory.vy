# pragma version 0.4.3
"""
@title MultiSigFactory
@notice Creates nexotc multisig wallets: EIP-1167 clones of one MultiSig
        implementation (deployed by this factory) with the owners and the
        threshold appended to the clone's code, at a CREATE2 address fixed by
        the configuration and a salt.
@dev The address binds the configuration: `predict_address(owners,
     threshold, salt)` is the same whoever sends `create`, and nobody can
     occupy it with another configuration (like a Safe's address binds its
     setup). Owners may be given in any order: they are stored ascending.
@custom:security Permissionless and ownerless: the factory holds no funds and
     has no admin. It validates every configuration (1 to 20 distinct non-zero
     owners, threshold 1 to the owner count) and sets each clone up in the
     transaction that creates it; a clone nobody set up, and the
     implementation, refuse every execution.
"""

from interfaces import IMultiSig
from interfaces import IMultiSigFactory
import modules.owner_set as owner_set

implements: IMultiSigFactory

MAX_INITCODE: constant(uint256) = 24_576
# EIP-1167 runtime, split around the implementation address.
PROXY_HEAD: constant(bytes10) = 0x363d3d373d3d3d363d73
PROXY_TAIL: constant(bytes15) = 0x5af43d82803e903d91602b57fd5bf3

IMPLEMENTATION: immutable(address)


@deploy
def __init__(multisig_initcode: Bytes[MAX_INITCODE]):
    """
    @param multisig_initcode MultiSig's creation code; the factory deploys the
           implementation itself so that the implementation's factory is this.
    """
    IMPLEMENTATION = raw_create(multisig_initcode)


@external
def create(owners: DynArray[address, owner_set.MAX_OWNERS], threshold: uint256, salt: bytes32) -> address:
    """
    @notice Deploy and set up a wallet of `owners` (any order) requiring
            `threshold` signatures. Anyone may create any wallet.
    """
    sorted: DynArray[address, owner_set.MAX_OWNERS] = owner_set._sorted(owners)
    wallet: address = raw_create(
        self._initcode(owner_set._encode(sorted, threshold)), salt=salt, revert_on_failure=False
    )
    assert wallet != empty(address), "wallet exists"
    extcall IMultiSig(wallet).setup()
    log IMultiSigFactory.MultiSigCreated(
        wallet=wallet, creator=msg.sender, threshold=threshold, owners=sorted, salt=salt
    )
    return wallet


@view
@external
def predict_address(owners: DynArray[address, owner_set.MAX_OWNERS], threshold: uint256, salt: bytes32) -> address:
    """
    @notice The address `create(owners, threshold, salt)` deploys to.
    """
    initcode_hash: bytes32 = keccak256(self._initcode(owner_set._encode(owner_set._sorted(owners), threshold)))
    h: bytes32 = keccak256(concat(b"\xff", convert(self, bytes20), salt, initcode_hash))
    return convert(convert(slice(h, 12, 20), bytes20), address)


@view
@external
def implementation() -> address:
    return IMPLEMENTATION


@internal
@view
def _initcode(config: Bytes[owner_set.MAX_CONFIG]) -> Bytes[owner_set.MAX_CONFIG + 55]:
    # creation prefix: PUSH2 len DUP1 PUSH1 0x0a RETURNDATASIZE CODECOPY
    #                  RETURNDATASIZE RETURN  (copies and returns the runtime)
    # cannot overflow: at most 45 + 402 bytes
    runtime_len: uint256 = unsafe_add(owner_set.CLONE_OFFSET, len(config))
    return concat(
        b"\x61",
        slice(convert(runtime_len, bytes32), 30, 2),
        b"\x80\x60\x0a\x3d\x39\x3d\xf3",
        PROXY_HEAD,
        convert(IMPLEMENTATION, bytes20),
        PROXY_TAIL,
        config,
    )
