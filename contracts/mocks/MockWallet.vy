# pragma version 0.4.3
"""
@title MockWallet
@notice A minimal smart-contract wallet (one owner executes calls), standing
        in for a Safe or another EIP-1271 wallet acting as a deal's approver,
        release signer or party. Never deployed by scripts.
@custom:security Test only.
"""

owner: public(address)


@deploy
def __init__(owner: address):
    self.owner = owner


@external
def execute(target: address, data: Bytes[1024]) -> Bytes[256]:
    assert msg.sender == self.owner, "not the owner"
    return raw_call(target, data, max_outsize=256)
