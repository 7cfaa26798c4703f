# pragma version 0.4.3
"""
@title DepositWallet
@notice The implementation behind every deposit address. A funder that can
        only make plain transfers (an exchange withdrawal, a custodian, cold
        storage) sends its leg to the address
        `EscrowFactory.deposit_address(deal, funder, leg)`, known before
        anything is deployed there; anyone then calls `EscrowFactory.sweep`,
        which creates the address as an EIP-1167 clone of this contract
        (CREATE2, salt keccak256(deal, funder, leg)) and has it move exactly
        the leg into the deal, crediting the funder. Excess or anything else
        sent there can only go back to that funder
        (`EscrowFactory.return_deposit`).
@dev The factory deploys this implementation in its constructor, so FACTORY
     (an immutable: part of the implementation's code, read by every clone
     through DELEGATECALL) is that factory.
@custom:security No storage, no owner, no initializer. The only mutating
     function is factory-only, and the factory decides every destination: the
     deal the clone was derived for, or the funder it was derived for (both
     bound by the CREATE2 salt). A deployed clone accepts no ether (nothing is
     payable); ether sent before deployment can be returned to the funder.
     The implementation itself never holds deposits: the factory only calls
     the clones it derives.
"""

from interfaces import IDepositWallet
import modules.safe_token as safe_token

implements: IDepositWallet

FACTORY: immutable(address)


@deploy
def __init__():
    FACTORY = msg.sender


@external
def transfer_out(token: address, to: address, amount: uint256) -> bool:
    """
    @notice Factory-only: send `amount` of `token` (the zero address: ether)
            from this deposit address to `to`.
    @return Whether the transfer succeeded (a token that returns no value,
            like USDT, counts as success). A failed transfer does not revert
            here: the factory decides what it means.
    """
    assert msg.sender == FACTORY, "only factory"
    if token == empty(address):
        return raw_call(to, b"", value=amount, revert_on_failure=False)
    return safe_token._try_transfer(token, to, amount)


@view
@external
def factory() -> address:
    return FACTORY
