# pragma version 0.4.3
"""
@title MockUSDT
@notice Test token shaped like Tether USDT on mainnet: 6 decimals,
        transfer/transferFrom/approve return no value, approve requires
        resetting to zero first, and the owner can blocklist addresses.
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

name: public(String[32])
symbol: public(String[16])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
blocked: public(HashMap[address, bool])


@deploy
def __init__():
    self.name = "Tether USD (mock)"
    self.symbol = "USDT"
    self.decimals = 6


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_blocked(who: address, flag: bool):
    self.blocked[who] = flag


@external
def transfer(to: address, amount: uint256):
    self._transfer(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256):
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, to, amount)


@external
def approve(spender: address, amount: uint256):
    assert amount == 0 or self.allowance[msg.sender][spender] == 0, "reset allowance to 0 first"
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)


@internal
def _transfer(sender: address, to: address, amount: uint256):
    assert not self.blocked[sender], "sender blocked"
    self.balanceOf[sender] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=sender, receiver=to, value=amount)
