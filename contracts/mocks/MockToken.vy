# pragma version 0.4.3
"""
@title MockToken
@notice Test ERC-20 reproducing real token quirks. Never deployed by scripts.
        quirk 0: standard (returns true)
        (USDT's missing return values: see MockUSDT)
        quirk 2: fee-on-transfer, burns `fee_bps` of every transfer
        quirk 3: re-entrant, calls `hook_target` with `hook_data` on transfer
        Any quirk: USDC-style blocklist (`set_blocked`) on sender/recipient.
@custom:security Test only: anyone can mint.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

STANDARD: constant(uint256) = 0
FEE_ON_TRANSFER: constant(uint256) = 2
REENTRANT: constant(uint256) = 3

name: public(String[32])
symbol: public(String[16])
decimals: public(uint8)
quirk: public(uint256)
fee_bps: public(uint256)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
blocked: public(HashMap[address, bool])
hook_target: public(address)
hook_data: public(Bytes[256])
hook_result: public(bool)


@deploy
def __init__(name: String[32], symbol: String[16], decimals: uint8, quirk: uint256):
    self.name = name
    self.symbol = symbol
    self.decimals = decimals
    self.quirk = quirk
    self.fee_bps = 100


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_blocked(who: address, flag: bool):
    self.blocked[who] = flag


@external
def set_hook(target: address, data: Bytes[256]):
    self.hook_target = target
    self.hook_data = data


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "allowance"
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _transfer(sender: address, to: address, amount: uint256):
    assert not self.blocked[sender] and not self.blocked[to], "blocked"
    self.balanceOf[sender] -= amount
    received: uint256 = amount
    if self.quirk == FEE_ON_TRANSFER:
        fee: uint256 = amount * self.fee_bps // 10_000
        received = amount - fee
        self.totalSupply -= fee
    self.balanceOf[to] += received
    log Transfer(sender=sender, receiver=to, value=received)
    if self.quirk == REENTRANT and self.hook_target != empty(address):
        ok: bool = raw_call(self.hook_target, self.hook_data, revert_on_failure=False)
        self.hook_result = ok
