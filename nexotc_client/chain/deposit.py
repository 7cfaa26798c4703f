"""Deposit addresses: fund a deal with a plain transfer.

A funder that can only make plain transfers (an exchange withdrawal, a custodian, cold storage) sends
its leg to the deposit address of (deal, funder, leg); anyone then sweeps it into the deal, which
credits that funder. Excess, another token or ether sent there can only go back to that funder.

The address is a CREATE2 address of the factory, known before anything is deployed there (even
before the deal is created), and computed here from the factory's address alone:

    implementation = CREATE address of the factory at nonce 2   (its DepositWallet; nonce 1 is the
                                                                 DealEscrow implementation)
    initcode       = 61 002d 80 600a 3d 39 3d f3                 (the factory's clone prefix)
                     363d3d373d3d3d363d73 <implementation> 5af43d82803e903d91602b57fd5bf3
    salt           = keccak256(abi.encode(deal, funder, leg))
    address        = keccak256(0xff ++ factory ++ salt ++ keccak256(initcode))[12:]

`deposit_info` checks this against the factory's own `deposit_address` view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import keccak, to_canonical_address, to_checksum_address

from nexotc_client.chain.contracts import erc20
from nexotc_client.chain.deal import funding_leg, token_amount, tx_result
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, reverts_as_errors, simulate
from nexotc_client.terms import LegId

if TYPE_CHECKING:
    from ape.api import AccountAPI

    from nexotc_client.chain.deal import Deal, TxResult

ETHER = "0x0000000000000000000000000000000000000000"
"""The `token` of `return_deposit` that stands for ether."""

# EIP-1167 runtime, split around the implementation address (as in EscrowFactory).
PROXY_HEAD = bytes.fromhex("363d3d373d3d3d363d73")
PROXY_TAIL = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
PROXY_LEN = 45
# PUSH2 len DUP1 PUSH1 0x0a RETURNDATASIZE CODECOPY RETURNDATASIZE RETURN
CLONE_PREFIX = bytes.fromhex("80600a3d393df3")
# the factory's CREATE nonce of its DepositWallet implementation
WALLET_NONCE = 2


# ------------------------------------------------------------------ offline
def _address(value: str, what: str) -> bytes:
    if not is_valid_address(value):
        raise NexotcError(f"{what} is not an address: {value!r}")
    return to_canonical_address(value)


def create_address(deployer: str, nonce: int) -> str:
    """The address a CREATE from `deployer` with `nonce` (1..127) deploys to."""
    if not 1 <= nonce <= 0x7F:
        raise NexotcError(f"nonce {nonce} out of the supported range 1..127")
    # RLP([deployer, nonce]): a list of 22 bytes: 0x94 ++ 20 bytes, then the one-byte nonce
    encoded = bytes([0xD6, 0x94]) + _address(deployer, "deployer") + bytes([nonce])
    return to_checksum_address(keccak(encoded)[12:])


def create2_address(deployer: str, salt: bytes, initcode_hash: bytes) -> str:
    """The address a CREATE2 from `deployer` with `salt` and this initcode hash deploys to."""
    return to_checksum_address(keccak(b"\xff" + _address(deployer, "deployer") + salt + initcode_hash)[12:])


def clone_initcode(implementation: str, data: bytes = b"") -> bytes:
    """The creation code the factory uses for an EIP-1167 clone of `implementation` with `data`
    appended to its runtime (a deal's packed terms; nothing for a deposit address)."""
    runtime = PROXY_HEAD + _address(implementation, "implementation") + PROXY_TAIL + data
    return b"\x61" + len(runtime).to_bytes(2, "big") + CLONE_PREFIX + runtime


def deposit_salt(deal: str, funder: str, leg: int) -> bytes:
    """keccak256(abi.encode(deal, funder, leg))."""
    if int(leg) not in (LegId.BASE, LegId.QUOTE):
        raise NexotcError(f"bad leg {leg!r}: 0 (base) or 1 (quote)")
    words = (
        _address(deal, "deal").rjust(32, b"\0")
        + _address(funder, "funder").rjust(32, b"\0")
        + int(leg).to_bytes(32, "big")
    )
    return keccak(words)


def wallet_implementation(factory: str) -> str:
    """The DepositWallet implementation a factory deployed in its constructor (its CREATE nonce 2)."""
    return create_address(factory, WALLET_NONCE)


def deposit_address(factory: str, deal: str, funder: str, leg: int, implementation: str | None = None) -> str:
    """The deposit address of `funder`'s `leg` of `deal`, computed offline from the factory's address
    (and, if given, its `deposit_implementation()`)."""
    implementation = implementation or wallet_implementation(factory)
    initcode_hash = keccak(clone_initcode(implementation))
    return create2_address(factory, deposit_salt(deal, funder, leg), initcode_hash)


# ----------------------------------------------------------------- on chain
@dataclass(frozen=True)
class DepositInfo:
    """A funder's deposit address for one deal, read at the latest block."""

    deal: str
    funder: str
    leg: LegId
    token: str
    amount: int
    address: str
    balance: int
    deployed: bool
    funded: bool
    phase: str

    @property
    def accepts_deposit(self) -> bool:
        """The leg is still open: not funded and the deal still funding (a sweep may still revert if
        the funding deadline has passed). When False, nothing should be sent to the address."""
        return not self.funded and self.phase == "funding"

    @property
    def to_send(self) -> int:
        """What is still to be sent to the address to fund the leg: 0 once it holds the leg, and 0
        when the leg no longer takes a deposit (funded, or funding over)."""
        return max(self.amount - self.balance, 0) if self.accepts_deposit else 0

    @property
    def sweepable(self) -> bool:
        """The address holds the leg and the deal still takes it (a sweep may still revert if the
        funding deadline has passed)."""
        return self.accepts_deposit and self.balance >= self.amount

    @property
    def state(self) -> str:
        """funded (do not send), closed (deal no longer funding: do not send), sweepable, or awaiting
        the deposit."""
        if self.funded:
            return "funded"
        if not self.accepts_deposit:
            return "closed"
        return "sweepable" if self.sweepable else "awaiting_deposit"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal": self.deal,
            "funder": self.funder,
            "leg": self.leg.name.lower(),
            "token": self.token,
            "amount": self.amount,
            "deposit_address": self.address,
            "balance": self.balance,
            "deployed": self.deployed,
            "funded": self.funded,
            "phase": self.phase,
            "sweepable": self.sweepable,
            "state": self.state,
            "accepts_deposit": self.accepts_deposit,
            "to_send": self.to_send,
        }


def deposit_info(deal: Deal, funder: str) -> DepositInfo:
    """Where `funder` sends its leg of `deal` with a plain transfer, and what is there now. The
    address computed offline must equal the factory's answer (else: a factory of another build)."""
    from ape import chain

    if not is_valid_address(funder):
        raise NexotcError(f"funder is not an address: {funder!r}")
    funder = to_checksum_address(funder)
    terms = deal.terms
    leg_id = funding_leg(terms, funder)
    leg = terms.base if leg_id == LegId.BASE else terms.quote
    factory = deal.factory
    offline = deposit_address(factory.address, deal.address, funder, leg_id)
    on_chain = factory.deposit_address(deal.address, funder, leg_id)
    if offline != on_chain:
        raise NexotcError(
            f"the factory at {factory.address} reports deposit address {on_chain}, this client computes "
            f"{offline}: not a factory of this build"
        )
    with reverts_as_errors("reading the deposit address"):
        balance = int(erc20(leg.token).balanceOf(offline))
        deployed = bool(chain.provider.get_code(offline))
        funded = bool(deal.contract.funded(int(leg_id)))
    return DepositInfo(
        deal=deal.address,
        funder=funder,
        leg=leg_id,
        token=leg.token,
        amount=leg.amount,
        address=offline,
        balance=balance,
        deployed=deployed,
        funded=funded,
        phase=deal.phase().name.lower(),
    )


def sweep(deal: Deal, funder: str, sender: AccountAPI) -> TxResult:
    """Move `funder`'s leg from its deposit address into `deal` (anyone may send this); any excess
    of the leg's token goes back to `funder` in the same transaction."""
    info = deposit_info(deal, funder)
    leg = info.leg.name.lower()
    if info.funded:
        raise NexotcError(
            f"the {leg} leg of {deal.address} is already funded: what {info.address} holds can only go back to "
            f"{info.funder} (`nexotc deal return-deposit`)"
        )
    if info.balance < info.amount:
        raise NexotcError(
            f"deposit short: {info.address} holds {token_amount(info.token, info.balance)}, the {leg} leg needs "
            f"{token_amount(info.token, info.amount)} (token {info.token})"
        )
    return _send(deal, "sweep", sender, deal.address, info.funder)


def return_deposit(deal: Deal, funder: str, sender: AccountAPI, token: str | None = None) -> TxResult:
    """Send what `funder`'s deposit address holds of `token` (default: the leg's token; `ETHER` for
    ether) back to `funder`. Anyone may send this once that balance cannot fund the leg any more
    (another token, the leg funded, funding closed); `funder` itself at any time."""
    info = deposit_info(deal, funder)
    token = info.token if token is None else token
    if not isinstance(token, str) or not is_valid_address(token):
        raise NexotcError(f"token is not an address: {token!r}")
    return _send(deal, "return_deposit", sender, deal.address, info.funder, int(info.leg), to_checksum_address(token))


def _send(deal: Deal, method: str, sender: AccountAPI, *args: Any) -> TxResult:
    contract = deal.factory.contract
    with reverts_as_errors(method):
        simulate(contract, method, args, sender.address)
        receipt = getattr(contract, method)(*args, sender=sender)
    return tx_result(receipt, {deal.factory.address, deal.address})


__all__ = [
    "ETHER",
    "DepositInfo",
    "clone_initcode",
    "create2_address",
    "create_address",
    "deposit_address",
    "deposit_info",
    "deposit_salt",
    "return_deposit",
    "sweep",
    "wallet_implementation",
]
