# pragma version 0.4.3
"""
@title safe_token
@notice ERC-20 transfers that tolerate tokens returning no value (USDT) and
        reject fee-on-transfer tokens on deposit.
@custom:security Stateless. `_try_transfer` never reverts: callers decide
        what a failed payout means (deals credit a pull balance). Every token
        a deal uses is checked to be a contract at creation, so an empty
        return from a call is a real "no return value" token, not an EOA.
"""

from ethereum.ercs import IERC20


@internal
def _try_transfer(token: address, to: address, amount: uint256) -> bool:
    """
    @dev True when the call succeeded and returned nothing or `true`.
    """
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(to, amount, method_id=method_id("transfer(address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    if not success:
        return False
    if len(response) == 0:
        return True
    return len(response) == 32 and convert(response, uint256) == 1


@internal
def _pull_exact(token: address, owner: address, amount: uint256):
    """
    @dev transferFrom `owner` to this contract; reverts unless exactly
         `amount` arrived (fee-on-transfer and rebasing-down tokens fail).
    """
    self._move_exact(token, owner, self, amount)


@internal
def _move_exact(token: address, owner: address, to: address, amount: uint256):
    """
    @dev transferFrom `owner` to `to` with this contract's allowance; reverts
         unless `to`'s balance grew by exactly `amount`.
    """
    assert token.is_contract, "token is not a contract"
    before: uint256 = staticcall IERC20(token).balanceOf(to)
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(owner, to, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    assert success and (len(response) == 0 or convert(response, uint256) == 1), "token transfer failed"
    after: uint256 = staticcall IERC20(token).balanceOf(to)
    assert after >= before and after - before == amount, "fee-on-transfer token"
