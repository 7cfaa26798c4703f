"""Invite links opened by a counterparty that keeps its own nexotc home (round 12).

A home that records no factory for the network uses the factory the offer was signed for, once checked on chain
(an EscrowFactory running nexotc's code, with nexotc's deal and deposit implementations, on the offer's chain),
and says so. A link naming a token, an empty address or a look-alike contract as its factory is refused with one
line and nothing sent. A home that records another factory still refuses the offer, naming both and the way out.
Everything runs through `nexotc` subprocesses against one anvil (`nexotc node start` on a free port)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, node_cli
from eth_account import Account

from nexotc_client.offers import SignedOffer

DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
BUYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # test:1
SELLER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # test:2
# test:2's key (the test mnemonic's third account, as anvil funds it): signs offers for other factories
SELLER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
USD = 10**6
BTC = 10**8


@pytest.fixture(scope="module")
def maker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """The maker's home: its own node, the factory, mock tokens and a KYC registry deployed and recorded."""
    state: dict[str, Any] = {"dir": tmp_path_factory.mktemp("round12-files")}
    with node_cli(tmp_path_factory.mktemp("round12-maker"), state) as c:
        c.state["deployment"] = c.ok("deploy", "--mock-tokens", "--kyc", "--account", "test:0", "--json").json()
        yield c


def home(maker: Cli, name: str) -> tuple[Cli, tuple[str, str]]:
    """Another nexotc home (not created yet: nothing recorded) on the maker's node, and the --rpc to reach it."""
    return Cli(home=maker.state["dir"] / name, port=maker.port, state={}), ("--rpc", f"http://127.0.0.1:{maker.port}")


def sent(cli: Cli, wallet: str) -> int:
    return int(cli.rpc("eth_getTransactionCount", [wallet, "latest"]), 16)


def make_offer(maker: Cli, name: str) -> tuple[Path, str, dict[str, Any]]:
    """A private offer by the seller (test:2) to the buyer (test:1), its leg approved; its file and invite link."""
    path = maker.state["dir"] / f"{name}.json"
    made = maker.ok(
        "offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--approve", "--out", path, "--json"
    ).json()
    link = maker.ok("offer", "invite", path, "--json").json()["link"]
    return path, link, made


def signed_for(path: Path, chain_id: int, factory: str) -> str:
    """The invite link of the offer in `path` signed by its maker (validly) for another chain id or factory."""
    signed = SignedOffer.from_json(json.loads(path.read_text()))
    assert Account.from_key(SELLER_KEY).address == signed.offer.maker == SELLER
    return signed.offer.sign(SELLER_KEY, chain_id, factory).to_link()


def test_fresh_home_opens_counters_and_accepts_a_private_link_with_fund(maker: Cli) -> None:
    deployment = maker.state["deployment"]
    factory, tokens = deployment["factory"], deployment["tokens"]
    path, link, made = make_offer(maker, "private")
    taker, rpc = home(maker, "taker-home")
    assert not taker.home.exists()

    # open: verified with the offer's own factory, checked on chain, and said so (human output and --json)
    opened = taker.ok("offer", "open", link, "--account", "test:1", *rpc, "--json").json()
    assert opened["acceptable"] is True and opened["problems"] == [] and opened["offer_hash"] == made["offer_hash"]
    assert opened["factory"] == factory and opened["factory_source"] == "offer"
    assert f"using the offer's factory {factory}" in opened["factory_note"]
    assert "none recorded in this home for ethereum:local:31337" in opened["factory_note"]
    funding = {f["side"]: f for f in opened["funding"]}
    assert funding["taker"]["formatted"] == "13,000,000 USDT" and funding["maker"]["allowance_ok"] is True
    shown = taker.ok("offer", "open", link, "--account", "test:1", *rpc).out
    assert f"note: using the offer's factory {factory}" in shown and "to accept" in shown

    # a counter from the link alone: the factory and the terms file's token placeholders come from the offer
    countered = taker.ok(
        "offer", "counter", link, "--terms", DVP_EXAMPLE, "--set", "quote.amount=12900000", "--account", "test:1",
        *rpc, "--json",
    ).json()  # fmt: skip
    assert countered["factory"] == factory and countered["factory_source"] == "offer"
    assert countered["tokens_from_offer"] == {"WBTC": tokens["WBTC"], "USDT": tokens["USDT"]}
    assert countered["previous"] == made["offer_hash"]
    terms_changed = {ch["field"] for ch in countered["changes"] if ch["field"].startswith("terms")}
    assert terms_changed == {"terms.quote_amount", *(f"terms.tranches[{i}].quote_amount" for i in range(4))}

    # the thread reads the chain with the offer's factory when a node is named, stays offline otherwise
    threaded = taker.ok("offer", "thread", countered["file"], link, *rpc, "--json").json()
    assert threaded["chain_checked"] is True and threaded["factory_source"] == "offer"
    assert [o["state"] for o in threaded["offers"]] == ["open", "open"]
    offline = taker.ok("offer", "thread", countered["file"], link, "--json").json()
    assert offline["chain_checked"] is False and offline["factory_source"] is None

    # accept --fund: its own counter is cancelled first, then the deal lands funded, through the offer's factory
    accepted = taker.ok("offer", "accept", link, "--account", "test:1", "--fund", *rpc, "--json").json()
    assert accepted["factory"] == factory and accepted["factory_source"] == "offer"
    assert accepted["phase"] == "active" and accepted["funded"] is True and accepted["deal"] == opened["deal"]
    assert accepted["cancelled_nonces"] == [countered["nonce"]] and accepted["cancel_tx"]
    assert [e["name"] for e in accepted["events"]] == ["DealCreated", "Funded", "Funded", "OfferAccepted"]
    deal = accepted["deal"]
    assert maker.balance_of(tokens["WBTC"], deal) == 200 * BTC
    assert maker.balance_of(tokens["USDT"], deal) == 13_000_000 * USD
    assert maker.allowance(tokens["USDT"], BUYER, factory) == 0  # exactly consumed
    # the maker's home sees the deal of its factory, funded
    shown_deal = maker.ok("deal", "show", deal, "--json").json()
    assert shown_deal["factory"] == factory and shown_deal["status"]["phase"].lower() == "active"
    assert shown_deal["offer"]["offer_hash"] == made["offer_hash"]
    # the taker's home manages the deal by address through the factory the deal names (checked on chain)
    from_taker = taker.ok("deal", "show", deal, *rpc, "--json").json()
    assert from_taker["factory"] == factory and from_taker["status"] == shown_deal["status"]
    assert_one_line_error(taker("deal", "show", "1", *rpc), "no factory recorded")  # a number needs the record
    deposit = taker.ok("deal", "deposit-address", deal, "--funder", "buyer", *rpc, "--json").json()
    assert deposit["state"] == "funded" and deposit["other_balances"] == {}
    assert_one_line_error(taker("deal", "show", tokens["WBTC"], *rpc), "is not a nexotc deal")
    # nothing was recorded as a deployment in the taker's home; the offers are kept in its store
    assert not (taker.home / "deployments.json").exists()
    assert (taker.home / "offers" / f"{made['offer_hash']}.json").is_file()


def test_link_whose_factory_is_no_factory_is_refused_and_nothing_sent(maker: Cli) -> None:
    deployment = maker.state["deployment"]
    tokens = deployment["tokens"]
    path, _, _ = make_offer(maker, "bogus-factory")
    taker, rpc = home(maker, "bogus-home")
    cases = (
        # a token: a contract, but no EscrowFactory
        (tokens["USDT"], ("the offer names the factory", tokens["USDT"], "not an EscrowFactory", "nothing sent")),
        # an empty address
        ("0x" + "12" * 20, ("holds no contract there", "nothing sent")),
        # a look-alike: the MultiSigFactory answers implementation() (what `deploy` probes), but runs other code
        (deployment["multisig_factory"], ("does not run this nexotc version's EscrowFactory code", "nothing sent")),
    )
    before = sent(maker, BUYER)
    for address, fragments in cases:
        link = signed_for(path, 31337, address)
        for command in (("open", link), ("accept", link, "--fund")):
            result = taker("offer", *command, "--account", "test:1", *rpc)
            assert_one_line_error(result, *fragments)
        assert maker.allowance(tokens["USDT"], BUYER, address) == 0
    # an offer signed for another chain: named, nothing sent
    other_chain = signed_for(path, 1, deployment["factory"])
    result = taker("offer", "accept", other_chain, "--account", "test:1", "--fund", *rpc)
    assert_one_line_error(result, "signed for chain 1, but the connected chain is 31337", "nothing sent")
    assert sent(maker, BUYER) == before
    assert not (taker.home / "deployments.json").exists()


def test_home_with_another_factory_recorded_is_refused_naming_both(maker: Cli) -> None:
    factory = maker.state["deployment"]["factory"]
    _, link, _ = make_offer(maker, "other-factory")
    other, rpc = home(maker, "other-home")
    recorded = other.ok("deploy", "--account", "test:0", *rpc, "--json").json()["factory"]
    assert recorded != factory
    before = sent(maker, BUYER)
    for command in (("open", link), ("accept", link, "--fund"), ("approve", link)):
        account = "test:2" if command[0] == "approve" else "test:1"
        result = other("offer", *command, "--account", account, *rpc)
        assert_one_line_error(
            result,
            f"the offer was signed for the factory {factory}, but this home records the factory {recorded}",
            "nothing sent",
            "--home NEW_DIR",
        )
    assert sent(maker, BUYER) == before
