"""DvP against the real mainnet USDT and WBTC on an anvil fork.

Runs only when NEXOTC_FORK_RPC is set to a mainnet RPC URL (CI has none, and `-m 'not fork'` is the
default in pyproject.toml):

    NEXOTC_FORK_RPC=https://... ape test tests/e2e/test_fork.py -m fork

Balances are written into the tokens' storage on the fork (the balance mapping slot is found by
probing), so no whale address is assumed.
"""

from __future__ import annotations

import os

import pytest
from eth_abi import encode
from eth_utils import keccak

from nexotc_client.terms import Leg, Terms, even_tranches

USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
WBTC = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
DAY = 86_400

pytestmark = pytest.mark.fork


@pytest.fixture(scope="module")
def fork(networks):
    url = os.environ.get("NEXOTC_FORK_RPC")
    if not url:
        pytest.fail("set NEXOTC_FORK_RPC to a mainnet RPC URL to run fork tests")
    # ape-config.yaml points the node provider's mainnet URI at ${NEXOTC_FORK_RPC}
    settings = {"fork": {"ethereum": {"mainnet": {"upstream_provider": "node"}}}}
    with networks.parse_network_choice("ethereum:mainnet-fork:foundry", provider_settings=settings) as provider:
        yield provider


def _give(provider, token, holder: str, amount: int) -> None:
    """Write `amount` into `token`'s balance mapping for `holder` (slot found by probing)."""
    for slot in range(12):
        key = keccak(encode(["address", "uint256"], [holder, slot]))
        provider.make_request(
            "anvil_setStorageAt", [token.address, "0x" + key.hex(), "0x" + amount.to_bytes(32, "big").hex()]
        )
        if token.balanceOf(holder) == amount:
            return
        provider.make_request("anvil_setStorageAt", [token.address, "0x" + key.hex(), "0x" + "00" * 32])
    raise AssertionError(f"balance slot of {token.address} not found")


def test_dvp_with_mainnet_usdt_and_wbtc(fork, project, accounts, chain, Contract):
    desk, buyer, seller, introducer, resolver = (accounts.test_accounts[i] for i in range(5))
    usdt = Contract(USDT)
    wbtc = Contract(WBTC)
    factory = desk.deploy(
        project.EscrowFactory,
        project.DealEscrow.contract_type.deployment_bytecode.bytecode,
        project.DepositWallet.contract_type.deployment_bytecode.bytecode,
        "0x0000000000000000000000000000000000000000",
    )
    base, quote = 2 * 10**8, 130_000 * 10**6
    _give(fork, wbtc, seller.address, base)
    _give(fork, usdt, buyer.address, quote)
    now = chain.pending_timestamp
    terms = Terms.build(
        base=Leg(WBTC, base),
        quote=Leg(USDT, quote),
        buyer=buyer.address,
        seller=seller.address,
        platform=desk.address,
        resolver=resolver.address,
        tranches=even_tranches(base, quote, 2, now + 10, DAY, DAY),
        funding_deadline=now + DAY,
        final_expiry=now + 20 * DAY,
        desk_fee_bps=25,
        introducers=[(introducer.address, 10)],
    ).validate(now)
    salt = b"\x42" * 32
    deal_address = factory.predict_address(terms.as_struct(), seller.address, salt, 0)
    wbtc.approve(factory.address, base, sender=seller)
    factory.create_and_fund(terms.as_struct(), salt, sender=seller)
    deal = project.DealEscrow.at(deal_address)
    usdt.approve(deal_address, quote, sender=buyer)  # real USDT: no return value
    deal.fund(sender=buyer)
    for i, tranche in enumerate(terms.tranches):
        chain.pending_timestamp = tranche.unlock_time
        deal.release(i, sender=buyer)
    cuts = terms.commissions(quote // 2)
    assert wbtc.balanceOf(buyer) == base
    assert usdt.balanceOf(desk) == 2 * cuts[desk.address]
    assert usdt.balanceOf(seller) == quote - 2 * sum(cuts.values())
    assert usdt.balanceOf(deal_address) == 0 and wbtc.balanceOf(deal_address) == 0
