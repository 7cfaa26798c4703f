"""Errors raised by the chain wrappers: one line each, naming what went wrong."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class NexotcError(Exception):
    """A user-facing failure (revert, unknown deal, missing deployment...): `str(err)` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self)


class NotADealError(NexotcError):
    """The address is not a deal created by the factory in use."""


class NotDeployedError(NexotcError):
    """No factory is recorded (or its code is gone) for the connected network."""


class RevertError(NexotcError):
    """A contract call or transaction reverted; `reason` is the contract's revert string."""

    def __init__(self, action: str, reason: str) -> None:
        self.action = action
        self.reason = reason
        super().__init__(f"{action} reverted: {reason}")


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return text.strip() or "unknown error"


def revert_reason(exc: BaseException) -> str:
    """The revert string of an ape ContractLogicError (or the first line of any error)."""
    message = getattr(exc, "revert_message", None) or getattr(exc, "message", None) or str(exc)
    reason = _first_line(str(message))
    for prefix in ("execution reverted: ", "execution reverted", "revert: "):
        if reason.startswith(prefix) and reason != prefix:
            reason = reason[len(prefix) :].strip() or reason
    if reason in ("Transaction failed.", "execution reverted", ""):
        reason = "reverted without a reason (token transfer failed, out of gas, or wrong contract?)"
    return reason


def simulate(contract: Any, method: str, args: tuple[Any, ...], sender: str) -> None:
    """Dry-run `method(*args)` from `sender` on the pending block (eth_call) and raise RevertError
    with the contract's reason if it would revert, so that nothing failing is ever sent."""
    from ape import chain
    from web3.exceptions import ContractLogicError as Web3LogicError

    calldata = getattr(contract, method).encode_input(*args)
    tx = {"from": sender, "to": str(contract.address), "data": "0x" + bytes(calldata).hex()}
    try:
        chain.provider.web3.eth.call(tx, "pending")  # type: ignore[attr-defined]
    except Web3LogicError as exc:
        raise RevertError(method, revert_reason(exc)) from exc


@contextmanager
def reverts_as_errors(action: str) -> Iterator[None]:
    """Turn ape's revert and transaction exceptions raised inside the block into NexotcError."""
    from ape.exceptions import ApeException, ContractLogicError

    try:
        yield
    except NexotcError:
        raise
    except ContractLogicError as exc:
        raise RevertError(action, revert_reason(exc)) from exc
    except ApeException as exc:
        raise NexotcError(f"{action} failed: {_first_line(str(exc))}") from exc


__all__ = [
    "NexotcError",
    "NotADealError",
    "NotDeployedError",
    "RevertError",
    "revert_reason",
    "reverts_as_errors",
    "simulate",
]
