"""`nexotc deal deposit-address|sweep|return-deposit|claim|settle|resolve` defects found by exploratory testing:
deposit addresses tell the truth after the funding deadline, after a cancellation and on a gated deal; a deposit
for an address that is no deal can be seen and taken back by its funder; a sweep that leaves the excess behind
says so; a claim to the deal or its factory is refused before anything is sent; a default outcome names its
caller in --json too. One anvil for the module (factory with a KYC registry); the time-travel test runs last."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, node_cli
from eth_abi import encode
from eth_utils import keccak

from nexotc_client.chain.deposit import deposit_address

DVP = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
NO_DEAL = "0x0000000000000000000000000000000000000123"
WBTC_LEG = 200 * 10**8
USDT_LEG = 13_000_000 * 10**6


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-deposit")) as c:
        c.state["deployment"] = c.ok("deploy", "--mock-tokens", "--kyc", "--account", "test:0", "--json").json()
        yield c


def token(cli: Cli, symbol: str) -> str:
    return cli.state["deployment"]["tokens"][symbol]


def factory(cli: Cli) -> str:
    return cli.state["deployment"]["factory"]


def wallet(ref: str) -> str:
    from nexotc_client.cli.app import wallet_address

    return wallet_address(ref)


def create(cli: Cli, account: str, salt: str, *sets: str, fund: bool = True) -> str:
    extra = [arg for s in ("tranches.count=1", *sets) for arg in ("--set", s)]
    args = ["deal", "create", "--terms", DVP, "--account", account, "--salt", salt, *extra, "--json"]
    return cli.ok(*args, *(["--fund"] if fund else [])).json()["deal"]


def transfer(cli: Cli, token_address: str, sender: str, to: str, amount: int) -> None:
    data = "0xa9059cbb" + encode(["address", "uint256"], [to, amount]).hex()
    cli.send({"from": sender, "to": token_address, "data": data})


def set_blocked(cli: Cli, token_address: str, who: str, flag: bool) -> None:
    selector = keccak(text="set_blocked(address,bool)")[:4].hex()
    data = "0x" + selector + encode(["address", "bool"], [who, flag]).hex()
    cli.send({"from": wallet("test:0"), "to": token_address, "data": data})


def block(cli: Cli) -> int:
    return int(cli.rpc("eth_blockNumber", []), 16)


def shown(cli: Cli, *args: str) -> tuple[dict[str, Any], str]:
    """`deal deposit-address ARGS` as JSON and for humans (spaces collapsed: rich wraps long lines)."""
    data = cli.ok("deal", "deposit-address", *args, "--json").json()
    return data, " ".join(cli.ok("deal", "deposit-address", *args).out.split())


# ------------------------------------------------------------- 1. claim --to
def test_claim_to_the_deal_or_its_factory_is_refused_before_sending(cli):
    deal = create(cli, "test:2", "0x01")
    for target, what in ((deal, "this deal itself"), (factory(cli), "this deal's factory")):
        before = block(cli)
        result = cli("deal", "claim", deal, "--token", "base", "--to", target, "--account", "test:1")
        assert_one_line_error(result, f"the recipient {target} is {what}", "recipient would lock the funds")
        assert block(cli) == before  # nothing sent


# ---------------------------------------------------- 8. resolve --receiver-bps
def test_resolve_help_says_what_receiver_bps_applies_to(cli):
    text = " ".join(cli.ok("deal", "resolve", "--help").out.split())
    assert "in bps of what is left of each leg's tranche amount after the resolver's fee (--resolver-bps)" in text
    assert "10 to the resolver, 495 to the receiver, 495 to the funder" in text
    assert "The resolver's fee, in bps of each leg's tranche amount" in text


# ------------------------------------------------- 3. an address that is no deal
def test_a_deposit_for_an_address_that_is_no_deal(cli):
    buyer, stranger, usdt = wallet("test:1"), wallet("test:5"), token(cli, "USDT")
    assert_one_line_error(
        cli("deal", "deposit-address", NO_DEAL, "--funder", "buyer"),
        f"--funder buyer: {NO_DEAL} is not a deal of the factory",
        "give the funder's address",
        "--leg base|quote",
    )
    assert_one_line_error(cli("deal", "deposit-address", NO_DEAL, "--funder", "test:1"), "pass --leg base|quote")
    # a deal's terms decide the leg: a --leg that contradicts them is refused
    deal = create(cli, "test:2", "0x03")
    assert_one_line_error(
        cli("deal", "deposit-address", deal, "--funder", "seller", "--leg", "quote"),
        f"--leg quote: {wallet('test:2')} funds the base leg",
    )

    data, _ = shown(cli, NO_DEAL, "--funder", "test:1", "--leg", "quote")
    address = data["deposit_address"]
    assert address == deposit_address(factory(cli), NO_DEAL, buyer, 1)
    assert (data["is_deal"], data["state"], data["accepts_deposit"], data["to_send"]) == (False, "no_deal", False, 0)
    assert data["balances"][usdt] == {"symbol": "USDT", "amount": 0} and data["next"] == []

    transfer(cli, usdt, buyer, address, 5 * 10**6)
    data, human = shown(cli, NO_DEAL, "--funder", "test:1", "--leg", "quote")
    assert data["balances"][usdt]["amount"] == 5 * 10**6
    back = f"nexotc deal return-deposit {NO_DEAL} --funder {buyer} --leg quote --token USDT --account {buyer}"
    assert data["next"] == [back]
    assert "is not a deal of this factory: do not send anything to this address" in human, human
    assert "5 USDT" in human and f"next: {back}" in human, human

    # nobody but the funder may take it back, and roles, legs and tokens need terms: refused, nothing sent
    before = block(cli)
    assert_one_line_error(
        cli("deal", "return-deposit", NO_DEAL, "--funder", "test:1", "--leg", "quote", "--token", "usdt",
            "--account", "test:5"),
        f"only the funder {buyer} may take back a deposit made for it, not {stranger}",
        f"(pass --account {buyer})",
    )  # fmt: skip
    assert_one_line_error(
        cli("deal", "return-deposit", NO_DEAL, "--funder", "test:1", "--leg", "quote", "--account", "test:1"),
        "pass --token",
    )
    assert_one_line_error(
        cli("deal", "return-deposit", NO_DEAL, "--funder", "buyer", "--leg", "quote", "--token", "usdt",
            "--account", "test:1"),
        "no terms name its buyer",
    )  # fmt: skip
    assert_one_line_error(cli("deal", "sweep", NO_DEAL, "--funder", "test:1", "--account", "test:1"), "not a deal")
    assert block(cli) == before and cli.balance_of(usdt, address) == 5 * 10**6

    held = cli.balance_of(usdt, buyer)
    returned = cli.ok(
        "deal", "return-deposit", NO_DEAL, "--funder", "test:1", "--leg", "quote", "--token", "usdt",
        "--account", "test:1", "--json",
    ).json()  # fmt: skip
    assert [(e["name"], e["args"]["amount"]) for e in returned["events"]] == [("DepositReturned", 5 * 10**6)]
    assert cli.balance_of(usdt, address) == 0 and cli.balance_of(usdt, buyer) == held + 5 * 10**6
    assert_one_line_error(
        cli("deal", "return-deposit", NO_DEAL, "--funder", "test:1", "--leg", "quote", "--token", "usdt",
            "--account", "test:1"),
        f"nothing to return: {address} holds no USDT",
    )  # fmt: skip


# ----------------------------------------------------------- 4. a gated deal
def test_gated_deposit_waits_for_the_funders_compliance(cli):
    cli.ok("kyc", "policy", "register", "--label", "any", "--account", "test:0")
    buyer = wallet("test:1")
    deal = create(cli, "test:2", "0x04", "compliance.policy=1", fund=False)
    data, _ = shown(cli, deal, "--funder", "buyer")
    transfer(cli, token(cli, "USDT"), buyer, data["deposit_address"], USDT_LEG)

    data, human = shown(cli, deal, "--funder", "buyer")
    assert data["state"] == "awaiting_compliance" and data["compliant"] is False
    assert (data["sweepable"], data["accepts_deposit"], data["to_send"]) == (False, True, 0)
    assert f"nexotc kyc prove --deal {deal}" in data["next"][0] and "nexotc kyc submit" in data["next"][0]
    assert f"the buyer {buyer} has no current attestation of policy #1" in data["next"][0]
    assert f"once attested: nexotc deal sweep {deal} --funder {buyer}" in data["next"][1]
    assert "ready to sweep" not in human and "the funder is not compliant yet: the sweep waits for its proof" in human
    assert f"next: the buyer {buyer} has no current attestation" in human and "nexotc kyc submit" in human, human

    before = block(cli)
    assert_one_line_error(
        cli("deal", "sweep", deal, "--funder", "buyer", "--account", "test:5"),
        "sweep: the buyer",
        "no current attestation of policy #1",
        "then `nexotc kyc submit PROOF.json`",
        f"the deposit waits at {data['deposit_address']}",
    )
    assert block(cli) == before


# ------------------------------------------------ 5. an excess that stays behind
def test_sweep_warns_about_an_excess_it_could_not_return(cli):
    seller, wbtc = wallet("test:2"), token(cli, "WBTC")
    deal = create(cli, "test:1", "0x05")  # the buyer funds its leg; the seller pays by plain transfer
    address = cli.ok("deal", "deposit-address", deal, "--funder", "seller", "--json").json()["deposit_address"]
    transfer(cli, wbtc, seller, address, WBTC_LEG + 7)
    set_blocked(cli, wbtc, seller, True)  # the excess cannot go back to it
    try:
        swept = cli.ok("deal", "sweep", deal, "--funder", "seller", "--account", "test:5", "--json")
        data = swept.json()
        assert [e["name"] for e in data["events"]] == ["Funded", "DepositSwept"]
        assert data["excess_left"] == 7 and data["deposit_address"] == address
        assert cli.balance_of(wbtc, address) == 7
        warning = data["warnings"][0]
        assert warning in swept.err and swept.err.startswith("warning: "), swept.err
        for fragment in ("0.00000007 WBTC", address, f"nexotc deal return-deposit {deal} --funder {seller}"):
            assert fragment in warning, warning
    finally:
        set_blocked(cli, wbtc, seller, False)
    cli.ok("deal", "return-deposit", deal, "--funder", "seller", "--account", "test:5")
    assert cli.balance_of(wbtc, address) == 0


def test_a_deposit_sent_to_the_other_legs_address_goes_back(cli):
    """The buyer pays USDT to its base-leg deposit address by mistake: it can never fund anything there, so
    anyone sends it back with `return-deposit --leg base --token`; deposit-address names that way out."""
    buyer, usdt = wallet("test:1"), token(cli, "USDT")
    deal = create(cli, "test:2", "0x16", fund=False)
    wrong = deposit_address(factory(cli), deal, buyer, 0)
    transfer(cli, usdt, buyer, wrong, 5 * 10**6)
    refused = cli("deal", "deposit-address", deal, "--funder", "buyer", "--leg", "base")
    assert_one_line_error(refused, f"nexotc deal return-deposit {deal} --funder {buyer} --leg base --token TOKEN")
    assert_one_line_error(
        cli("deal", "return-deposit", deal, "--funder", "buyer", "--leg", "base", "--account", "test:5"),
        "name the token (--token)",
    )
    before = cli.balance_of(usdt, buyer)
    back = cli.ok(
        "deal",
        "return-deposit",
        deal,
        "--funder",
        "buyer",
        "--leg",
        "base",
        "--token",
        "USDT",
        "--account",
        "test:5",
        "--json",
    ).json()
    assert "DepositReturned" in [e["name"] for e in back["events"]]
    assert cli.balance_of(usdt, wrong) == 0 and cli.balance_of(usdt, buyer) == before + 5 * 10**6


def test_a_deal_deposit_address_lists_another_token_sent_there(cli):
    """WBTC sent to the buyer's USDT deposit address by mistake is listed with the command that sends it back
    (found by a tester: only the leg's token was shown)."""
    buyer, wbtc = wallet("test:1"), token(cli, "WBTC")
    deal = create(cli, "test:2", "0x17", fund=False)
    address = deposit_address(factory(cli), deal, buyer, 1)
    data, text = shown(cli, deal, "--funder", "buyer")
    assert data["deposit_address"] == address and data["other_balances"] == {}
    transfer(cli, wbtc, wallet("test:2"), address, 10**8)
    data, text = shown(cli, deal, "--funder", "buyer")
    assert data["other_balances"] == {wbtc: {"symbol": "WBTC", "amount": 10**8}}
    assert "also holds 1 WBTC (not this leg's token" in text
    command = f"nexotc deal return-deposit {deal} --funder {buyer} --token WBTC"
    assert f"next: `{command}` sends the 1 WBTC back to the funder" in text
    cli.ok(*command.split()[1:], "--account", "test:5")
    assert cli.balance_of(wbtc, address) == 0 and shown(cli, deal, "--funder", "buyer")[0]["other_balances"] == {}
    transfer(cli, wbtc, buyer, wallet("test:2"), 10**8)  # the seller's balance as the later deals expect it


# ------------------------------------------ time travel: 2, 6, 7 (keep them last)
def test_after_the_funding_deadline_a_deposit_address_says_do_not_send(cli):
    buyer, usdt = wallet("test:1"), token(cli, "USDT")
    late = create(cli, "test:2", "0x06")  # the seller funded; the buyer's deposit arrives but is not swept in time
    cli.state["late"] = late
    buyer_address = cli.ok("deal", "deposit-address", late, "--funder", "buyer", "--json").json()["deposit_address"]
    transfer(cli, usdt, buyer, buyer_address, USDT_LEG)
    disputed = create(cli, "test:2", "0x07")
    cli.state["disputed"] = disputed
    cli.ok("deal", "fund", disputed, "--account", "test:1")
    cli.ok("deal", "dispute", disputed, "0", "--reason", "late", "--account", "test:1")
    cli.rpc("evm_increaseTime", [3 * 86_400 + 3_600])  # past the funding deadline and the dispute timeout
    cli.rpc("evm_mine", [])

    data, human = shown(cli, late, "--funder", "buyer")
    state = (data["state"], data["accepts_deposit"], data["to_send"], data["sweepable"])
    assert state == ("funding_closed", False, 0, False) and data["balance"] == USDT_LEG
    assert any(f"nexotc deal cancel {late}" in s for s in data["next"]), data["next"]
    assert any(f"nexotc deal return-deposit {late} --funder {buyer}" in s for s in data["next"]), data["next"]
    assert "funding closed at " in human and "do not send" in human, human
    assert "ready to sweep" not in human and "deal sweep" not in human and "send 13" not in human, human
    before = block(cli)
    assert_one_line_error(
        cli("deal", "sweep", late, "--funder", "buyer", "--account", "test:5"),
        "funding closed at",
        f"nexotc deal cancel {late}",
        "nexotc deal return-deposit",
    )
    assert block(cli) == before


def test_after_a_cancellation_a_deposit_address_says_cancelled(cli):
    buyer, seller = wallet("test:1"), wallet("test:2")
    usdt, wbtc, late = token(cli, "USDT"), token(cli, "WBTC"), cli.state["late"]
    cli.ok("deal", "cancel", late, "--account", "test:5")
    seller_address = cli.ok("deal", "deposit-address", late, "--funder", "seller", "--json").json()["deposit_address"]
    transfer(cli, wbtc, seller, seller_address, 3)
    data, human = shown(cli, late, "--funder", "seller")
    assert (data["state"], data["accepts_deposit"], data["to_send"]) == ("cancelled", False, 0)
    assert data["next"] == [f"to get it back: nexotc deal return-deposit {late} --funder {seller}"]
    assert "deal cancelled: do not send" in human and "already funded" not in human, human
    assert "the funder can take back any deposit here" in human, human
    assert shown(cli, late, "--funder", "buyer")[0]["state"] == "cancelled"
    held = cli.balance_of(usdt, buyer)
    cli.ok("deal", "return-deposit", late, "--funder", "buyer", "--account", "test:5")
    assert cli.balance_of(usdt, buyer) == held + USDT_LEG


def test_a_default_outcome_names_its_caller_in_json_too(cli):
    stranger, disputed = wallet("test:5"), cli.state["disputed"]
    settled = cli.ok("deal", "settle", disputed, "0", "--account", "test:5", "--json").json()
    resolved = [e["args"] for e in settled["events"] if e["name"] == "Resolved"]
    assert resolved and resolved[0]["by_default"] is True
    assert resolved[0]["caller"] == stranger and "resolver" not in resolved[0], resolved
    listed = [e["args"] for e in cli.ok("deal", "events", disputed, "--json").json() if e["name"] == "Resolved"]
    assert listed == resolved
    lines = " ".join(cli.ok("deal", "events", disputed).out.split())
    assert f"Resolved(tranche=0, caller={stranger[:8]}" in lines and ", resolver=" not in lines, lines
