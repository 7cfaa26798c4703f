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
from nexotc_client.chain.deal import funding_leg, token_amount, token_label, tx_result
from nexotc_client.chain.encoding import is_valid_address
from nexotc_client.chain.errors import NexotcError, reverts_as_errors, simulate
from nexotc_client.spec import fmt_time
from nexotc_client.terms import LegId

if TYPE_CHECKING:
    from ape.api import AccountAPI

    from nexotc_client.chain.deal import Deal, TxResult
    from nexotc_client.chain.factory import Factory

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
    """A funder's deposit address for one deal, read at the latest block (the funding deadline against
    the pending block's time, as the next sweep would see it)."""

    deal: str
    funder: str
    role: str
    """"buyer" or "seller"."""
    leg: LegId
    token: str
    amount: int
    address: str
    balance: int
    deployed: bool
    funded: bool
    phase: str
    funding_deadline: int
    funding_open: bool
    """The funding deadline has not passed."""
    compliant: bool | None
    """Whether the deal's compliance gate lets `funder` through now (None: an ungated deal)."""
    compliance_hint: str = ""
    """When not compliant: what the funder runs to prove (the `kyc prove` / `kyc submit` steps)."""

    @property
    def closed(self) -> bool:
        """The deal is cancelled or expired: nothing can fund it any more."""
        return self.phase in ("cancelled", "expired")

    @property
    def accepts_deposit(self) -> bool:
        """The leg is still open: not funded, the deal funding and its funding deadline not passed. When
        False, nothing should be sent to the address. (On a gated deal a deposit is accepted before the
        funder proves compliance: the sweep waits for the proof.)"""
        return not self.funded and self.phase == "funding" and self.funding_open

    @property
    def to_send(self) -> int:
        """What is still to be sent to the address to fund the leg: 0 once it holds the leg, and 0
        when the leg no longer takes a deposit (funded, funding closed, deal cancelled or expired)."""
        return max(self.amount - self.balance, 0) if self.accepts_deposit else 0

    @property
    def sweepable(self) -> bool:
        """A sweep would fund the leg now: the address holds the leg, the leg is open and the funder
        passes the deal's compliance gate."""
        return self.accepts_deposit and self.balance >= self.amount and self.compliant is not False

    @property
    def state(self) -> str:
        """cancelled / expired (the deal: do not send), funded (do not send), funding_closed (the funding
        deadline passed: do not send), awaiting_compliance (a gated deal's funder must prove first),
        sweepable, or awaiting_deposit."""
        if self.closed:
            return self.phase
        if self.funded:
            return "funded"
        if not self.accepts_deposit:
            return "funding_closed"
        if self.compliant is False:
            return "awaiting_compliance"
        return "sweepable" if self.sweepable else "awaiting_deposit"

    def next_steps(self) -> list[str]:
        """What to run next, for humans and scripts alike (the CLI prints these)."""
        funder = f"--funder {self.funder}"
        back = f"nexotc deal return-deposit {self.deal} {funder}"
        state = self.state
        if state in ("cancelled", "expired", "funded"):
            return [f"to get it back: {back}"] if self.balance else []
        if state == "funding_closed":
            steps = [
                f"the deal can only be cancelled: nexotc deal cancel {self.deal} (returns every leg funded so far)"
            ]
            if self.balance:
                steps.append(f"to get the deposit back: {back}")
            return steps
        if state == "awaiting_compliance":
            return [self.compliance_hint, f"once attested: nexotc deal sweep {self.deal} {funder}"]
        if state == "sweepable":
            return [f"nexotc deal sweep {self.deal} {funder}"]
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_deal": True,
            "deal": self.deal,
            "funder": self.funder,
            "role": self.role,
            "leg": self.leg.name.lower(),
            "token": self.token,
            "amount": self.amount,
            "deposit_address": self.address,
            "balance": self.balance,
            "deployed": self.deployed,
            "funded": self.funded,
            "phase": self.phase,
            "funding_deadline": self.funding_deadline,
            "compliant": self.compliant,
            "sweepable": self.sweepable,
            "state": self.state,
            "accepts_deposit": self.accepts_deposit,
            "to_send": self.to_send,
            "next": self.next_steps(),
        }


def _check_address(deal: Deal, funder: str, leg_id: LegId) -> str:
    """The deposit address computed offline, which must equal the factory's answer (else: a factory of
    another build)."""
    factory = deal.factory
    offline = deposit_address(factory.address, deal.address, funder, leg_id)
    on_chain = factory.deposit_address(deal.address, funder, leg_id)
    if offline != on_chain:
        raise NexotcError(
            f"the factory at {factory.address} reports deposit address {on_chain}, this client computes "
            f"{offline}: not a factory of this build"
        )
    return offline


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
    role = "seller" if leg_id == LegId.BASE else "buyer"
    address = _check_address(deal, funder, leg_id)
    with reverts_as_errors("reading the deposit address"):
        balance = int(erc20(leg.token).balanceOf(address))
        deployed = bool(chain.provider.get_code(address))
        funded = bool(deal.contract.funded(int(leg_id)))
        compliant = bool(deal.contract.compliant(funder)) if terms.policy_id else None
        now = int(chain.pending_timestamp)
    phase = deal.phase().name.lower()
    # the deal takes the deposit only from a funder attested until its final expiry
    short = deal.coverage_problems(funder) if compliant else []
    if short:
        compliant = False
    return DepositInfo(
        deal=deal.address,
        funder=funder,
        role=role,
        leg=leg_id,
        token=leg.token,
        amount=leg.amount,
        address=address,
        balance=balance,
        deployed=deployed,
        funded=funded,
        phase=phase,
        funding_deadline=terms.funding_deadline,
        funding_open=now <= terms.funding_deadline,
        compliant=compliant,
        compliance_hint=short[0] if short else "" if compliant is not False else deal.compliance_hint(role, funder),
    )


def sweep(deal: Deal, funder: str, sender: AccountAPI) -> TxResult:
    """Move `funder`'s leg from its deposit address into `deal` (anyone may send this); any excess
    of the leg's token goes back to `funder` in the same transaction (see `excess_left` for an excess
    the token refused to send back). What the deal would refuse is named before anything is sent."""
    info = deposit_info(deal, funder)
    leg = info.leg.name.lower()
    back = f"`nexotc deal return-deposit {deal.address} --funder {info.funder}`"
    if info.closed:
        raise NexotcError(
            f"the deal {deal.address} is {info.phase}: nothing can be swept into it; what {info.address} holds "
            f"goes back to {info.funder} with {back}"
        )
    if info.funded:
        raise NexotcError(
            f"the {leg} leg of {deal.address} is already funded: what {info.address} holds can only go back to "
            f"{info.funder} (`nexotc deal return-deposit`)"
        )
    if not info.funding_open:
        raise NexotcError(
            f"funding closed at {fmt_time(info.funding_deadline)}: nothing can be swept; `nexotc deal cancel "
            f"{deal.address}` returns what was funded, {back} this deposit"
        )
    if info.balance < info.amount:
        raise NexotcError(
            f"deposit short: {info.address} holds {token_amount(info.token, info.balance)}, the {leg} leg needs "
            f"{token_amount(info.token, info.amount)} (token {info.token})"
        )
    if info.compliant is False:
        raise NexotcError(f"sweep: {info.compliance_hint} (the deposit waits at {info.address} until then)")
    factory = deal.factory
    return _send(factory, {factory.address, deal.address}, "sweep", sender, deal.address, info.funder)


def excess_left(info: DepositInfo, result: TxResult) -> int:
    """What the sweep `result` (of the deposit `info` describes) left at the deposit address: the excess
    the token refused to send back to the funder (a blocklisted funder), for `return_deposit` later; 0
    when the excess went back (or there was none)."""
    if any(e.name == "DepositReturned" for e in result.events):
        return 0
    with reverts_as_errors("reading the deposit address"):
        return int(erc20(info.token).balanceOf(info.address, block_id=result.block))


def return_deposit(
    deal: Deal, funder: str, sender: AccountAPI, token: str | None = None, leg: LegId | None = None
) -> TxResult:
    """Send what `funder`'s deposit address holds of `token` (default: the leg's token; `ETHER` for
    ether) back to `funder`. Anyone may send this once that balance cannot fund the leg any more
    (another token, the leg funded, funding closed); `funder` itself at any time. `leg`: the other
    leg's deposit address of `funder` (a deposit sent there by mistake can never fund anything, so
    anyone may return it); `token` is then required."""
    info = deposit_info(deal, funder)
    if leg is not None and leg != info.leg and token is None:
        raise NexotcError(
            f"{info.funder} funds the {info.leg.name.lower()} leg: to return what its {leg.name.lower()}-leg "
            "deposit address holds, name the token (--token)"
        )
    token = info.token if token is None else token
    if not isinstance(token, str) or not is_valid_address(token):
        raise NexotcError(f"token is not an address: {token!r}")
    factory = deal.factory
    leg_id = info.leg if leg is None else leg
    args = (deal.address, info.funder, int(leg_id), to_checksum_address(token))
    return _send(factory, {factory.address, deal.address}, "return_deposit", sender, *args)


# ------------------------------------------------- an address that is no deal
@dataclass(frozen=True)
class OrphanDeposit:
    """The deposit address of (`deal`, `funder`, `leg`) where `deal` is no deal of the factory: a deal never
    created (or not yet). Nothing there can be swept; only `funder` can take it back (`return_orphan`)."""

    factory: str
    deal: str
    funder: str
    leg: LegId
    address: str
    deployed: bool
    balances: dict[str, int]
    """token address (`ETHER` for ether) => what the address holds of it."""

    def return_command(self, token: str) -> str:
        return (
            f"nexotc deal return-deposit {self.deal} --funder {self.funder} --leg {self.leg.name.lower()} "
            f"--token {token} --account {self.funder}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_deal": False,
            "deal": self.deal,
            "factory": self.factory,
            "funder": self.funder,
            "leg": self.leg.name.lower(),
            "deposit_address": self.address,
            "deployed": self.deployed,
            "balances": dict(self.balances),
            "state": "no_deal",
            "accepts_deposit": False,
            "to_send": 0,
        }


def orphan_info(factory: Factory, deal: str, funder: str, leg: LegId, tokens: list[str]) -> OrphanDeposit:
    """The deposit address of `funder`'s `leg` of `deal`, an address that is no deal of `factory`, and what
    it holds of `tokens` (addresses, `ETHER` for ether)."""
    from ape import chain

    for what, value in (("deal", deal), ("funder", funder)):
        if not is_valid_address(value):
            raise NexotcError(f"{what} is not an address: {value!r}")
    deal, funder = to_checksum_address(deal), to_checksum_address(funder)
    if factory.is_deal(deal):
        raise NexotcError(f"{deal} is a deal of the factory at {factory.address}: its terms name the funder's leg")
    offline = deposit_address(factory.address, deal, funder, int(leg))
    on_chain = factory.deposit_address(deal, funder, int(leg))
    if offline != on_chain:
        raise NexotcError(
            f"the factory at {factory.address} reports deposit address {on_chain}, this client computes "
            f"{offline}: not a factory of this build"
        )
    balances = balances_at(offline, tokens)
    with reverts_as_errors("reading the deposit address"):
        deployed = bool(chain.provider.get_code(offline))
    return OrphanDeposit(factory.address, deal, funder, LegId(int(leg)), offline, deployed, balances)


def balances_at(address: str, tokens: list[str]) -> dict[str, int]:
    """What `address` holds of each of `tokens` (addresses, `ETHER` for ether), in base units."""
    from ape import chain

    balances: dict[str, int] = {}
    with reverts_as_errors("reading the deposit address"):
        for token in dict.fromkeys(to_checksum_address(t) for t in tokens):
            if token == ETHER:
                balances[token] = int(chain.provider.get_balance(address))
            else:
                balances[token] = int(erc20(token).balanceOf(address))
    return balances


def return_orphan(factory: Factory, deal: str, funder: str, leg: LegId, token: str, sender: AccountAPI) -> TxResult:
    """Send what the deposit address of (`deal`, `funder`, `leg`) holds of `token` back to `funder`, where `deal`
    is no deal of `factory`: only `funder` itself may (for all the factory knows, the deal may still come)."""
    info = orphan_info(factory, deal, funder, leg, [token])
    if sender.address.lower() != info.funder.lower():
        raise NexotcError(
            f"{info.deal} is not a deal of the factory at {factory.address}: only the funder {info.funder} may take "
            f"back a deposit made for it, not {sender.address} (pass --account {info.funder})"
        )
    token = next(iter(info.balances))
    if not info.balances[token]:
        what = "ether" if token == ETHER else token_label(token)
        raise NexotcError(f"nothing to return: {info.address} holds no {what}")
    return _send(factory, {factory.address}, "return_deposit", sender, info.deal, info.funder, int(leg), token)


def _send(factory: Factory, emitters: set[str], method: str, sender: AccountAPI, *args: Any) -> TxResult:
    contract = factory.contract
    with reverts_as_errors(method):
        simulate(contract, method, args, sender.address)
        receipt = getattr(contract, method)(*args, sender=sender)
    return tx_result(receipt, emitters)


__all__ = [
    "ETHER",
    "DepositInfo",
    "OrphanDeposit",
    "clone_initcode",
    "create2_address",
    "create_address",
    "deposit_address",
    "deposit_info",
    "deposit_salt",
    "excess_left",
    "orphan_info",
    "return_orphan",
    "return_deposit",
    "sweep",
    "wallet_implementation",
]
