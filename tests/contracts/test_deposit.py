"""Deposit addresses (issue 3 §4): a counterfactual CREATE2 address per (deal, funder, leg) that a
funder able to make only plain transfers pays into and that anyone sweeps into the deal, crediting
that funder. Excess, another token or ether sent there can only go back to that funder.

`exchange` plays the funder's exchange or custodian: it can only make plain transfers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ape
import pytest
from dealkit import ACTIVE, BTC, CANCELLED, FUNDING, ZERO, events, expect_event

from nexotc_client.chain.deployment import Deployment, Registry
from nexotc_client.chain.deposit import (
    clone_initcode,
    create_address,
    deposit_address,
    deposit_salt,
    wallet_implementation,
)
from nexotc_client.chain.errors import NexotcError
from nexotc_client.terms import LegId

BASE, QUOTE = int(LegId.BASE), int(LegId.QUOTE)
PROXY_HEAD = bytes.fromhex("363d3d373d3d3d363d73")
PROXY_TAIL = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


@pytest.fixture(scope="session")
def exchange(accounts):
    """An exchange hot wallet: it can only send plain transfers on the funders' behalf."""
    return accounts[9]


@pytest.fixture(scope="module")
def fresh(mk_dvp, deploy, desk):
    """An unfunded 4-tranche DVP deal: 200 WBTC (seller) against 13,000,000 USDT (buyer)."""
    terms = mk_dvp()
    return terms, deploy(terms, desk)


@pytest.fixture(scope="module")
def wallet_type(project):
    return project.DepositWallet


def _pay(token, exchange, to, amount):
    """A plain transfer from the exchange (which gets the tokens minted first)."""
    token.mint(exchange, amount, sender=exchange)
    token.transfer(to, amount, sender=exchange)


def _code(chain, address) -> bytes:
    return bytes(chain.provider.get_code(address))


def _state(deal, wallet, tokens, holders) -> dict:
    """Deal flags and every relevant balance (to prove that a revert changed nothing)."""
    out: dict = {"phase": deal.phase(), "funded": (deal.funded(0), deal.funded(1))}
    for token in tokens:
        for who in (deal, wallet, *holders):
            key = who if isinstance(who, str) else who.address
            out[(token.address, key)] = token.balanceOf(key)
    return out


# ----------------------------------------------------------------- addresses
def test_address_is_known_before_deployment(fresh, factory, chain, wbtc, seller, exchange, attacker):
    terms, deal = fresh
    # the client derives the implementation and the address from the factory's address alone
    assert wallet_implementation(factory.address) == factory.deposit_implementation()
    assert create_address(factory.address, 1) == factory.implementation()
    offline = deposit_address(factory.address, deal.address, seller.address, BASE)
    assert offline == factory.deposit_address(deal, seller, BASE)
    assert _code(chain, offline) == b""
    # the legs, funders and deals give distinct addresses
    others = {
        factory.deposit_address(deal, seller, QUOTE),
        factory.deposit_address(deal, attacker, BASE),
        factory.deposit_address(factory.implementation(), seller, BASE),
    }
    assert offline not in others and len(others) == 3

    _pay(wbtc, exchange, offline, terms.base.amount)
    receipt = factory.sweep(deal, seller, sender=attacker)
    swept = events(receipt, factory.DepositSwept, factory)
    assert swept[0]["wallet"] == offline
    # what is deployed there: the 45-byte EIP-1167 proxy to the factory's DepositWallet
    implementation = factory.deposit_implementation()
    assert _code(chain, offline) == PROXY_HEAD + bytes.fromhex(implementation[2:]) + PROXY_TAIL
    assert clone_initcode(implementation)[:10] == bytes.fromhex("61002d80600a3d393df3")


def test_address_is_known_before_the_deal_exists(factory, mk_dvp, wbtc, usdt, seller, buyer, desk, exchange, project):
    """A funder can pay the deposit address of a deal that is not created yet: the deal's address
    is predictable (predict_address), so is its deposit address."""
    terms = mk_dvp()
    salt = b"\x42" * 32
    predicted = factory.predict_address(terms.as_struct(), desk, salt, 0)
    target = deposit_address(factory.address, predicted, buyer.address, QUOTE)
    _pay(usdt, exchange, target, terms.quote.amount)
    with ape.reverts("not a deal of this factory"):
        factory.sweep(predicted, buyer, sender=exchange)
    with ape.reverts("not a deal of this factory"):
        factory.return_deposit(predicted, buyer, QUOTE, usdt, sender=exchange)
    receipt = factory.create_deal(terms.as_struct(), salt, sender=desk)
    deal = project.DealEscrow.at(receipt.decode_logs(factory.DealCreated)[0].deal)
    assert deal.address == predicted
    factory.sweep(deal, buyer, sender=exchange)
    assert deal.funded(QUOTE) and usdt.balanceOf(deal) == terms.quote.amount and usdt.balanceOf(target) == 0


def test_a_deposit_for_a_deal_never_created_goes_back_to_its_funder(
    factory, mk_dvp, chain, usdt, buyer, desk, exchange, attacker
):
    """The deal was agreed but never created (here: not before its funding deadline, so never): the funder takes
    its deposit back; nobody else can move it (for all the factory knows, the deal may still come)."""
    terms = mk_dvp()
    predicted = factory.predict_address(terms.as_struct(), desk, b"\x77" * 32, 0)
    target = deposit_address(factory.address, predicted, buyer.address, QUOTE)
    _pay(usdt, exchange, target, terms.quote.amount)
    chain.pending_timestamp = terms.funding_deadline + 1
    chain.mine()
    with ape.reverts("funding deadline passed"):
        factory.create_deal(terms.as_struct(), b"\x77" * 32, sender=desk)
    with ape.reverts("not a deal of this factory"):
        factory.return_deposit(predicted, buyer, QUOTE, usdt, sender=attacker)
    before = usdt.balanceOf(buyer)
    factory.return_deposit(predicted, buyer, QUOTE, usdt, sender=buyer)
    assert usdt.balanceOf(buyer) - before == terms.quote.amount and usdt.balanceOf(target) == 0


def test_deposit_salt_matches_abi_encoding(factory, fresh, seller):
    _, deal = fresh
    from eth_abi import encode
    from eth_utils import keccak

    assert deposit_salt(deal.address, seller.address, BASE) == keccak(
        encode(["address", "address", "uint256"], [deal.address, seller.address, BASE])
    )
    with ape.reverts("bad leg"):
        factory.deposit_address(deal, seller, 2)
    with pytest.raises(NexotcError, match="bad leg"):
        deposit_address(factory.address, deal.address, seller.address, 2)


# ------------------------------------------------------------------- sweeps
def test_plain_transfers_then_sweeps_fund_the_deal(fresh, factory, wbtc, usdt, buyer, seller, exchange, attacker):
    terms, deal = fresh
    base_wallet = factory.deposit_address(deal, seller, BASE)
    quote_wallet = factory.deposit_address(deal, buyer, QUOTE)
    _pay(wbtc, exchange, base_wallet, terms.base.amount)
    # anyone sweeps: the deal credits the funder, not the caller
    receipt = factory.sweep(deal, seller, sender=attacker)
    expect_event(receipt, deal.Funded, deal, leg=BASE, funder=seller, amount=terms.base.amount)
    expect_event(
        receipt,
        factory.DepositSwept,
        factory,
        deal=deal,
        funder=seller,
        wallet=base_wallet,
        leg=BASE,
        token=wbtc,
        amount=terms.base.amount,
    )
    assert events(receipt, factory.DepositReturned) == []
    assert (deal.funded(BASE), deal.funded(QUOTE), deal.phase()) == (True, False, FUNDING)
    assert (wbtc.balanceOf(deal), wbtc.balanceOf(base_wallet)) == (terms.base.amount, 0)
    assert deal.held(BASE) == terms.base.amount
    # the quote leg is USDT (no return values), funded the same way
    _pay(usdt, exchange, quote_wallet, terms.quote.amount)
    receipt = factory.sweep(deal, buyer, sender=attacker)
    expect_event(receipt, deal.Funded, deal, leg=QUOTE, funder=buyer, amount=terms.quote.amount)
    assert (deal.funded(BASE), deal.funded(QUOTE), deal.phase()) == (True, True, ACTIVE)
    assert (usdt.balanceOf(deal), usdt.balanceOf(quote_wallet)) == (terms.quote.amount, 0)
    print(f"\nsweep gas: first {receipt.gas_used:,} (deploys the deposit address)")


def test_sweep_mixes_with_other_funding_paths(fresh, factory, wbtc, usdt, buyer, seller, exchange, fund_leg):
    terms, deal = fresh
    fund_leg(deal, usdt, buyer, terms.quote.amount)  # the buyer funds the usual way
    _pay(wbtc, exchange, factory.deposit_address(deal, seller, BASE), terms.base.amount)
    factory.sweep(deal, seller, sender=seller)
    assert deal.phase() == ACTIVE


def test_escrowed_leg_by_deposit(mk_escrowed, deploy, factory, usdt, buyer, seller, desk, exchange):
    terms = mk_escrowed()
    deal = deploy(terms, desk)
    _pay(usdt, exchange, factory.deposit_address(deal, buyer, QUOTE), terms.quote.amount)
    factory.sweep(deal, buyer, sender=desk)
    assert deal.phase() == ACTIVE and usdt.balanceOf(deal) == terms.quote.amount
    # the seller delivers off chain: it has no leg to deposit
    with ape.reverts("nothing to fund"):
        factory.sweep(deal, seller, sender=desk)


def test_excess_goes_back_to_the_funder_in_the_same_sweep(fresh, factory, wbtc, seller, exchange, attacker):
    terms, deal = fresh
    wallet = factory.deposit_address(deal, seller, BASE)
    extra = 3 * BTC + 17
    _pay(wbtc, exchange, wallet, terms.base.amount + extra)
    receipt = factory.sweep(deal, seller, sender=attacker)
    expect_event(receipt, deal.Funded, deal, leg=BASE, funder=seller, amount=terms.base.amount)
    expect_event(
        receipt, factory.DepositReturned, factory, deal=deal, funder=seller, wallet=wallet, token=wbtc, amount=extra
    )
    assert (wbtc.balanceOf(deal), wbtc.balanceOf(seller), wbtc.balanceOf(wallet)) == (terms.base.amount, extra, 0)
    assert wbtc.balanceOf(attacker) == 0 and wbtc.balanceOf(exchange) == 0


def test_short_deposit_changes_nothing(fresh, factory, chain, wbtc, seller, exchange, attacker):
    terms, deal = fresh
    wallet = factory.deposit_address(deal, seller, BASE)
    _pay(wbtc, exchange, wallet, terms.base.amount - 1)
    before = _state(deal, wallet, [wbtc], [seller, attacker])
    with ape.reverts("deposit short"):
        factory.sweep(deal, seller, sender=attacker)
    assert _state(deal, wallet, [wbtc], [seller, attacker]) == before
    assert _code(chain, wallet) == b""  # the creation was rolled back too
    # topping up completes it
    _pay(wbtc, exchange, wallet, 1)
    factory.sweep(deal, seller, sender=attacker)
    assert deal.funded(BASE) and wbtc.balanceOf(wallet) == 0


def test_blocklisted_funder_does_not_block_the_sweep(mk_dvp, deploy, factory, wbtc, usdc, buyer, desk, exchange):
    """The excess cannot reach a blocklisted funder: the leg is funded anyway and the excess stays
    in the deposit address until it can be returned."""
    terms = mk_dvp(quote_token=usdc)
    deal = deploy(terms, desk)
    wallet = factory.deposit_address(deal, buyer, QUOTE)
    _pay(usdc, exchange, wallet, terms.quote.amount + 5)
    usdc.set_blocked(buyer, True, sender=desk)
    receipt = factory.sweep(deal, buyer, sender=exchange)
    assert events(receipt, factory.DepositReturned) == []
    assert deal.funded(QUOTE) and usdc.balanceOf(wallet) == 5
    with ape.reverts("token transfer failed"):
        factory.return_deposit(deal, buyer, QUOTE, usdc, sender=exchange)
    usdc.set_blocked(buyer, False, sender=desk)
    factory.return_deposit(deal, buyer, QUOTE, usdc, sender=exchange)
    assert usdc.balanceOf(buyer) == 5 and usdc.balanceOf(wallet) == 0


# ------------------------------------------------------------------ returns
def test_wrong_token_goes_back_only_to_the_funder(fresh, factory, wbtc, weth, seller, buyer, exchange, attacker):
    terms, deal = fresh
    wallet = factory.deposit_address(deal, seller, BASE)
    _pay(weth, exchange, wallet, 5 * 10**18)
    # weth cannot fund the base leg; anyone returns it, and it can only go to the seller
    receipt = factory.return_deposit(deal, seller, BASE, weth, sender=attacker)
    expect_event(
        receipt,
        factory.DepositReturned,
        factory,
        deal=deal,
        funder=seller,
        wallet=wallet,
        token=weth,
        amount=5 * 10**18,
    )
    assert (weth.balanceOf(seller), weth.balanceOf(wallet), weth.balanceOf(attacker)) == (5 * 10**18, 0, 0)
    # naming another funder names another (empty) address: nothing to take
    with ape.reverts("nothing to return"):
        factory.return_deposit(deal, attacker, BASE, weth, sender=attacker)
    with ape.reverts("nothing to return"):
        factory.return_deposit(deal, buyer, QUOTE, weth, sender=attacker)
    with ape.reverts("not a deal of this factory"):
        factory.return_deposit(attacker, seller, BASE, weth, sender=attacker)
    # the leg's token while the leg is open: only a sweep moves it (or the funder itself takes it back)
    _pay(wbtc, exchange, wallet, 1)
    with ape.reverts("deposit can still fund the leg"):
        factory.return_deposit(deal, seller, BASE, wbtc, sender=attacker)
    factory.return_deposit(deal, seller, BASE, wbtc, sender=seller)
    assert wbtc.balanceOf(seller) == 1 and not deal.funded(BASE)


def test_deposit_for_the_wrong_leg_goes_back(fresh, factory, wbtc, seller, exchange, attacker):
    """The seller's quote-leg address can never be swept (the seller funds the base leg)."""
    terms, deal = fresh
    wallet = factory.deposit_address(deal, seller, QUOTE)
    _pay(wbtc, exchange, wallet, terms.base.amount)
    factory.return_deposit(deal, seller, QUOTE, wbtc, sender=attacker)
    assert wbtc.balanceOf(seller) == terms.base.amount and not deal.funded(BASE)


def test_after_the_leg_is_funded_deposits_go_back(fresh, factory, wbtc, seller, exchange, attacker, fund_leg):
    terms, deal = fresh
    fund_leg(deal, wbtc, seller, terms.base.amount)  # funded the usual way
    wallet = factory.deposit_address(deal, seller, BASE)
    _pay(wbtc, exchange, wallet, terms.base.amount)  # ... and paid again by the exchange
    with ape.reverts("already funded"):
        factory.sweep(deal, seller, sender=attacker)
    factory.return_deposit(deal, seller, BASE, wbtc, sender=attacker)
    assert (wbtc.balanceOf(seller), wbtc.balanceOf(wallet)) == (terms.base.amount, 0)
    assert wbtc.balanceOf(deal) == terms.base.amount


def test_after_funding_closes_deposits_go_back(fresh, factory, chain, wbtc, usdt, seller, buyer, exchange, attacker):
    terms, deal = fresh
    base_wallet = factory.deposit_address(deal, seller, BASE)
    quote_wallet = factory.deposit_address(deal, buyer, QUOTE)
    _pay(wbtc, exchange, base_wallet, terms.base.amount)
    factory.sweep(deal, seller, sender=attacker)
    _pay(usdt, exchange, quote_wallet, terms.quote.amount)  # too late: nobody swept it in time
    chain.pending_timestamp = terms.funding_deadline + 1
    with ape.reverts("funding closed"):
        factory.sweep(deal, buyer, sender=attacker)
    factory.return_deposit(deal, buyer, QUOTE, usdt, sender=attacker)
    assert usdt.balanceOf(buyer) == terms.quote.amount
    # the deal is cancelled as usual and the swept leg goes back to its funder
    deal.cancel_unfunded(sender=attacker)
    assert deal.phase() == CANCELLED and wbtc.balanceOf(seller) == terms.base.amount
    _pay(usdt, exchange, quote_wallet, 7)
    factory.return_deposit(deal, buyer, QUOTE, usdt, sender=attacker)
    assert usdt.balanceOf(buyer) == terms.quote.amount + 7


def test_ether_sent_before_deployment_goes_back(fresh, factory, chain, seller, exchange, attacker):
    terms, deal = fresh
    wallet = factory.deposit_address(deal, seller, BASE)
    exchange.transfer(wallet, 10**18)
    before = seller.balance
    receipt = factory.return_deposit(deal, seller, BASE, ZERO, sender=attacker)
    expect_event(
        receipt, factory.DepositReturned, factory, deal=deal, funder=seller, wallet=wallet, token=ZERO, amount=10**18
    )
    assert seller.balance == before + 10**18 and chain.provider.get_balance(wallet) == 0
    # once deployed, the address refuses ether
    with ape.reverts():
        exchange.transfer(wallet, 1)
    with ape.reverts("nothing to return"):
        factory.return_deposit(deal, seller, BASE, ZERO, sender=attacker)


# ----------------------------------------------------------------- refusals
def test_sweep_refuses_non_deals_and_non_funders(fresh, factory, wbtc, usdt, seller, attacker, exchange):
    terms, deal = fresh
    _pay(wbtc, exchange, factory.deposit_address(deal, attacker, BASE), terms.base.amount)
    with ape.reverts("nothing to fund"):
        factory.sweep(deal, attacker, sender=attacker)
    for not_a_deal in (attacker, wbtc, factory.implementation(), factory.deposit_implementation()):
        with ape.reverts("not a deal of this factory"):
            factory.sweep(not_a_deal, seller, sender=attacker)
    # the attacker's own address of this deal: its deposit goes back to it, never into the deal
    factory.return_deposit(deal, attacker, BASE, wbtc, sender=seller)
    assert wbtc.balanceOf(attacker) == terms.base.amount and not deal.funded(BASE)


def test_only_the_factory_moves_a_deposit(fresh, factory, wbtc, seller, exchange, attacker, wallet_type):
    terms, deal = fresh
    address = factory.deposit_address(deal, seller, BASE)
    _pay(wbtc, exchange, address, 2)
    factory.return_deposit(deal, seller, BASE, wbtc, sender=seller)  # deploys the clone
    _pay(wbtc, exchange, address, terms.base.amount)
    clone = wallet_type.at(address)
    implementation = wallet_type.at(factory.deposit_implementation())
    assert clone.factory() == factory.address and implementation.factory() == factory.address
    for target in (clone, implementation):
        for who in (attacker, seller, exchange):
            with ape.reverts("only factory"):
                target.transfer_out(wbtc, who, 1, sender=who)
            with ape.reverts("only factory"):
                target.transfer_out(ZERO, who, 0, sender=who)
    assert wbtc.balanceOf(address) == terms.base.amount


def test_fee_on_transfer_token_is_rejected(mk_dvp, deploy, factory, fee_token, seller, exchange, attacker):
    terms = mk_dvp(base_token=fee_token, base_amount=10**20)
    deal = deploy(terms, attacker)
    wallet = factory.deposit_address(deal, seller, BASE)
    _pay(fee_token, exchange, wallet, 2 * 10**20)  # the token burns 1% on the way in: enough
    held = fee_token.balanceOf(wallet)
    with ape.reverts("fee-on-transfer token"):
        factory.sweep(deal, seller, sender=attacker)
    assert fee_token.balanceOf(wallet) == held and fee_token.balanceOf(deal) == 0 and not deal.funded(BASE)
    # the funder can still take it back
    factory.return_deposit(deal, seller, BASE, fee_token, sender=seller)
    assert fee_token.balanceOf(wallet) == 0


@pytest.mark.parametrize("nested", ["sweep", "return_deposit"])
def test_reentrant_token_cannot_double_credit(
    nested, mk_dvp, deploy, factory, wbtc, reentrant_token, buyer, exchange, attacker, wallet_type
):
    """The token re-enters the factory on every transfer of the sweep (into the deal, then the excess
    back): a second sweep or a return of the whole deposit mid-sweep hits the factory's lock."""
    terms = mk_dvp(quote_token=reentrant_token, quote_amount=10**24)
    deal = deploy(terms, attacker)
    wallet = factory.deposit_address(deal, buyer, QUOTE)
    _pay(reentrant_token, exchange, wallet, 2 * terms.quote.amount)  # enough for two credits
    args = (deal, buyer) if nested == "sweep" else (deal, buyer, QUOTE, reentrant_token)
    reentrant_token.set_hook(factory, getattr(factory, nested).encode_input(*args), sender=attacker)
    receipt = factory.sweep(deal, buyer, sender=attacker)
    assert reentrant_token.hook_result() is False  # the nested call hit the lock
    assert len(events(receipt, deal.Funded)) == 1 and len(events(receipt, factory.DepositSwept)) == 1
    assert deal.funded(QUOTE)
    assert reentrant_token.balanceOf(deal) == terms.quote.amount  # credited once, holds exactly the leg
    assert reentrant_token.balanceOf(buyer) == terms.quote.amount  # the excess went back to the funder
    assert reentrant_token.balanceOf(wallet) == 0
    if nested == "return_deposit":
        # outside a sweep the same hook runs: a later deposit goes back to the funder
        _pay(reentrant_token, exchange, wallet, 5)
        assert reentrant_token.hook_result() is True
        assert reentrant_token.balanceOf(buyer) == terms.quote.amount + 5
    # the token calling the clone directly (as msg.sender) is refused too
    clone = wallet_type.at(wallet)
    reentrant_token.set_hook(wallet, clone.transfer_out.encode_input(reentrant_token, attacker, 1), sender=attacker)
    reentrant_token.mint(wallet, 1, sender=attacker)
    reentrant_token.transfer(exchange, 0, sender=attacker)
    assert reentrant_token.hook_result() is False
    assert reentrant_token.balanceOf(attacker) == 0 and reentrant_token.balanceOf(wallet) == 1


# ------------------------------------------------------------------- client
def test_client_deposit_info_sweep_and_return(fresh, factory, wbtc, weth, seller, exchange, attacker):
    """nexotc_client.chain.deposit against the same chain: the address it computes is the factory's,
    it refuses a short sweep before sending, and returns what cannot fund the leg."""
    from nexotc_client.chain import deposit as dep
    from nexotc_client.chain.deal import Deal
    from nexotc_client.chain.factory import Factory

    terms, deal = fresh
    client = Deal.at(deal.address, Factory(factory))
    assert client.factory.deposit_implementation == factory.deposit_implementation()
    info = dep.deposit_info(client, seller.address)
    assert (
        info.address
        == factory.deposit_address(deal, seller, BASE)
        == client.factory.deposit_address(deal.address, seller.address, BASE)
    )
    assert (info.leg, info.token, info.amount, info.balance) == (LegId.BASE, wbtc.address, terms.base.amount, 0)
    assert (info.deployed, info.funded, info.sweepable, info.phase) == (False, False, False, "funding")
    with pytest.raises(NexotcError, match="funds nothing"):
        dep.deposit_info(client, attacker.address)
    with pytest.raises(NexotcError, match="deposit short: .* holds 0 WBTC, the base leg needs"):
        dep.sweep(client, seller.address, attacker)

    _pay(wbtc, exchange, info.address, terms.base.amount + 1)
    assert dep.deposit_info(client, seller.address).sweepable
    result = dep.sweep(client, seller.address, attacker)
    assert [e.name for e in result.events] == ["Funded", "DepositSwept", "DepositReturned"]
    assert result.events[0].args == {"leg": BASE, "funder": seller.address, "amount": terms.base.amount}
    after = dep.deposit_info(client, seller.address)
    assert (after.deployed, after.funded, after.balance, after.sweepable) == (True, True, 0, False)
    with pytest.raises(NexotcError, match="already funded"):
        dep.sweep(client, seller.address, attacker)

    _pay(weth, exchange, info.address, 10**18)
    result = dep.return_deposit(client, seller.address, attacker, token=weth.address)
    assert [e.name for e in result.events] == ["DepositReturned"]
    assert weth.balanceOf(seller) == 10**18
    with pytest.raises(NexotcError, match="return_deposit reverted: nothing to return"):
        dep.return_deposit(client, seller.address, attacker)


def test_cli_deposit_address_and_sweep(fresh, factory, chain, wbtc, seller, desk, exchange, tmp_path):
    """`nexotc deal deposit-address` and `nexotc deal sweep` as a user runs them, on this chain."""
    terms, deal = fresh
    web3 = chain.provider.web3
    # record the fixture's factory for the CLI by hand: deploy_factory() and network_key() ask ape-foundry's
    # provider `is_connected`, which replaces its web3 object (and the web3 contracts dealkit caches)
    head = chain.provider.get_block("latest")
    Registry(tmp_path / "deployments.json").record(
        Deployment(
            network=f"ethereum:local:{chain.chain_id}",
            factory=factory.address,
            implementation=factory.implementation(),
            block=int(head.number),
            block_hash="0x" + bytes(head.hash).hex(),
            tx_hash="",
            deployer=desk.address,
            timestamp=int(head.timestamp),
        )
    )
    deal = deal.address
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "NEXOTC_HOME": str(tmp_path), "PYTHONPATH": str(root)}
    env.pop("NEXOTC_DEBUG", None)

    def nexotc(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "nexotc_client.cli", *args, "--rpc", chain.provider.uri]
        return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)

    shown = nexotc("deal", "deposit-address", deal, "--funder", "seller", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["deposit_address"] == deposit_address(factory.address, deal, seller.address, BASE)
    assert (data["leg"], data["amount"], data["balance"], data["sweepable"]) == ("base", terms.base.amount, 0, False)

    short = nexotc("deal", "sweep", deal, "--funder", seller.address, "--account", "test:5")
    assert short.returncode != 0 and "Traceback" not in short.stderr
    assert short.stderr.strip().splitlines() == [
        f"error: deposit short: {data['deposit_address']} holds 0 WBTC, the base leg needs "
        f"{terms.base.amount // 10**8} WBTC (token {wbtc.address})"
    ]

    _pay(wbtc, exchange, data["deposit_address"], terms.base.amount)
    swept = nexotc("deal", "sweep", deal, "--funder", "seller", "--account", "test:5", "--json")
    assert swept.returncode == 0, swept.stderr
    out = json.loads(swept.stdout)
    assert out["funder"] == seller.address
    assert [e["name"] for e in out["events"]] == ["Funded", "DepositSwept"]
    assert wbtc.balanceOf(deal) == terms.base.amount
    human = nexotc("deal", "deposit-address", deal, "--funder", "seller")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == f"deposit address {data['deposit_address']}"
    assert "already funded" in human.stdout and "200 WBTC" in human.stdout
    assert chain.provider.web3 is web3  # (see above)
