"""EIP-712 pieces shared by the typed data nexotc signs (offers, multisig executions and messages)."""

from __future__ import annotations

EIP712_DOMAIN_TYPE: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
"""The `EIP712Domain` type of every nexotc domain: name, version, chain id and the verifying contract."""

__all__ = ["EIP712_DOMAIN_TYPE"]
