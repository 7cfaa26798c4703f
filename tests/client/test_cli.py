"""The `nexotc` CLI: a real anvil started by `nexotc node start` on a free port, driven through
subprocesses (the console entry point, as a user runs it); mistakes that need no chain are checked
in-process. Every failure must be ONE line on stderr with a non-zero exit and no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, free_port, node_cli

from nexotc_client.cli import run

DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ESCROWED_EXAMPLE = ROOT / "examples" / "escrowed-btc-usdt.yaml"


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Iterator[Cli]:
    """A node started by the CLI itself, stopped at the end (by pid if `node stop` failed)."""
    with node_cli(tmp_path_factory.mktemp("nexotc-home")) as c:
        yield c


@pytest.fixture(scope="module")
def deployed(cli) -> dict[str, Any]:
    data = cli.ok("deploy", "--mock-tokens", "--account", "test:0", "--json").json()
    cli.state["deployment"] = data
    return data


# ---------------------------------------------------------------- node
def test_node_status_reports_the_running_node(cli):
    status = cli.ok("node", "status", "--json").json()
    assert status["running"] is True
    assert status["pid"] == cli.state["pid"]
    assert status["port"] == cli.port
    assert status["chain_id"] == 31337
    assert isinstance(status["block_number"], int)
    human = cli.ok("node", "status").out
    assert "running" in human and str(cli.port) in human
    again = cli("node", "start", "--port", str(cli.port))
    assert_one_line_error(again, "a node is already running", str(cli.state["pid"]))


# -------------------------------------------------------------- deploy
def test_deploy_records_the_factory_and_mock_tokens(cli, deployed):
    assert deployed["already_deployed"] is False
    assert deployed["network"] == "ethereum:local:31337"
    assert set(deployed["tokens"]) >= {"WBTC", "USDT"}
    registry = json.loads((cli.home / "deployments.json").read_text())
    entry = registry["ethereum:local:31337"]
    assert entry["factory"] == deployed["factory"]
    assert entry["block"] == deployed["block"] > 0
    again = cli.ok("deploy", "--account", "test:0", "--json").json()
    assert again["already_deployed"] is True and again["factory"] == deployed["factory"]


# --------------------------------------------------------------- deals
def test_dvp_example_create_show_fund_release(cli, deployed):
    created = cli.ok(
        "deal", "create", "--terms", str(DVP_EXAMPLE), "--account", "test:2", "--fund", "--salt", "0x01", "--json"
    ).json()
    deal = created["deal"]
    cli.state["dvp"] = deal
    assert created["funded"] is True
    assert [e["name"] for e in created["events"]] == ["DealCreated", "Funded"]

    shown = cli.ok("deal", "show", deal, "--json").json()
    assert shown["deal"] == deal and shown["factory"] == deployed["factory"]
    assert shown["terms"]["mode"] == "dvp"
    assert shown["terms"]["base"] == {"token": deployed["tokens"]["WBTC"], "amount": 200 * 10**8, "on_chain": True}
    assert shown["terms"]["quote"]["amount"] == 13_000_000 * 10**6
    assert shown["status"]["phase"] == "funding"
    assert shown["status"]["base"]["funded"] is True and shown["status"]["quote"]["funded"] is False
    assert shown["assets"]["base"] == {"label": "WBTC", "decimals": 8}

    funded = cli.ok("deal", "fund", deal, "--account", "test:1", "--json").json()
    assert [e["name"] for e in funded["events"]] == ["Funded"]
    released = cli.ok("deal", "release", deal, "0", "--account", "test:5").out
    assert "Released(tranche=0" in released

    human = cli.ok("deal", "show", deal).out
    assert "200 WBTC" in human and "13,000,000 USDT" in human and "released" in human
    listed = cli.ok("deal", "list", "--json").json()
    assert [(d["index"], d["deal"], d["phase"]) for d in listed] == [(1, deal, "active")]


def test_deposit_address_of_a_funded_leg_says_do_not_send(cli, deployed):
    """Both legs of the DVP deal are funded: nothing is to be sent."""
    deal = cli.state["dvp"]
    seller = cli.ok("deal", "deposit-address", deal, "--funder", "seller", "--json").json()
    assert seller["funded"] is True and seller["state"] == "funded"
    assert seller["accepts_deposit"] is False and seller["to_send"] == 0
    human = cli.ok("deal", "deposit-address", deal, "--funder", "seller").out
    assert "leg already funded: do not send" in human and "send 200" not in human, human


def test_return_deposit_takes_a_token_symbol(cli, deployed):
    """A stray token sent to a deposit address goes back to its funder, the token named by its symbol."""
    from eth_abi import encode

    deal = cli.state["dvp"]
    wbtc = deployed["tokens"]["WBTC"]
    buyer = cli.ok("deal", "deposit-address", deal, "--funder", "buyer", "--json").json()
    stray = buyer["deposit_address"]
    buyer_wallet = buyer["funder"]
    data = "0xa9059cbb" + encode(["address", "uint256"], [stray, 3 * 10**8]).hex()
    cli.send({"from": buyer_wallet, "to": wbtc, "data": data})
    held = cli.balance_of(wbtc, buyer_wallet)
    returned = cli.ok("deal", "return-deposit", deal, "--funder", "buyer", "--token", "wbtc", "--account", "test:5")
    assert returned.code == 0 and "amount=3 WBTC)" in returned.out, returned.out
    assert cli.balance_of(wbtc, stray) == 0 and cli.balance_of(wbtc, buyer_wallet) == held + 3 * 10**8
    assert_one_line_error(
        cli("deal", "return-deposit", deal, "--funder", "buyer", "--token", "DOGE", "--account", "test:5"),
        "unknown token 'DOGE'",
    )


def test_escrowed_example_create_and_mark(cli, deployed):
    created = cli.ok(
        "deal", "create", "--terms", str(ESCROWED_EXAMPLE), "--account", "test:1", "--fund", "--json"
    ).json()
    deal = created["deal"]
    txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    marked = cli.ok("deal", "mark", deal, "0", "--evidence", txid, "--account", "test:2", "--json").json()
    assert marked["events"][0]["args"]["evidence"] == "0x" + txid
    shown = cli.ok("deal", "show", deal, "--json").json()
    assert shown["terms"]["mode"] == "escrowed"
    assert shown["terms"]["base"]["on_chain"] is False
    assert [t["status"] for t in shown["status"]["tranches"]] == ["marked", "pending"]


def test_mistakes_print_one_line(cli, deployed, tmp_path):
    deal = cli.state["dvp"]
    assert_one_line_error(
        cli("deal", "show", "0x0000000000000000000000000000000000000001"),
        "is not a deal of the factory at",
    )
    assert_one_line_error(cli("deal", "show", "nonsense"), "not an address: 'nonsense'")
    assert_one_line_error(cli("deal", "release", deal, "0", "--account", "test:5"), "release: tranche 0 is released")
    assert_one_line_error(cli("deal", "fund", deal, "--account", "test:99"), "no test account 'test:99'")
    assert_one_line_error(cli("deal", "fund", deal, "--account", "no-such-alias"), "no ape account named")
    assert_one_line_error(cli("deal", "approve", deal, "7", "--account", "test:1"), "no tranche 7")
    assert_one_line_error(cli("deal", "fund", deal), "pass --account")
    bad = tmp_path / "terms.yaml"
    bad.write_text(DVP_EXAMPLE.read_text().replace("release_model: anyone", "release_model: dao"))
    assert_one_line_error(
        cli("deal", "create", "--terms", str(bad), "--account", "test:2"), "release_model: expected one of"
    )
    assert_one_line_error(
        cli("deal", "create", "--terms", str(DVP_EXAMPLE), "--account", "test:2", "--set", "WBTC=0x1234"),
        "tokens.WBTC: not an address: '0x1234'",
    )
    assert_one_line_error(cli("--network", "ethereum:nowhere:foundry", "deal", "list"), "ethereum:nowhere:foundry")


def test_state_survives_a_restart(cli, deployed):
    deal = cli.state["dvp"]
    before = cli.ok("deal", "show", deal, "--json").json()
    stopped = cli.ok("node", "stop", "--json").json()
    assert stopped["running"] is False
    down = cli("node", "status")
    assert down.code == 3 and "not running" in down.out
    # a stopped home never falls back to another node (127.0.0.1:8545)
    assert_one_line_error(cli("deal", "show", deal), f"the node of {cli.home} is stopped", "nexotc node start")
    assert_one_line_error(cli("node", "stop"), "no node is running")

    cli.ok("node", "start", "--port", str(cli.port))
    after = cli.ok("deal", "show", "1", "--json").json()  # by creation number, as `deal list` shows
    assert after["deal"] == deal
    assert after["terms"] == before["terms"]
    assert after["status"]["tranches"] == before["status"]["tranches"]
    assert after["status"]["phase"] == "active"
    assert after["status"]["block"] >= before["status"]["block"]
    listed = cli.ok("deal", "list", "--json").json()
    assert [d["deal"] for d in listed][0] == deal and len(listed) == 2
    events = cli.ok("deal", "events", deal, "--json").json()
    assert [e["name"] for e in events] == ["DealCreated", "Funded", "Funded", "Released"]

    # chain time moved ahead survives a restart: the next block is never dated before the last one
    cli.rpc("evm_increaseTime", [3 * 86_400])
    cli.rpc("evm_mine", [])
    ahead = int(cli.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    cli.ok("node", "stop")
    cli.ok("node", "start", "--port", str(cli.port))
    cli.rpc("evm_mine", [])
    assert int(cli.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) > ahead


# ------------------------------------------- mistakes caught without a chain
def test_in_process_errors_need_no_node(tmp_path, capsys):
    home = ["--home", str(tmp_path)]

    def check(argv: list[str], code: int, fragment: str) -> None:
        assert run(argv) == code
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], captured.err

    check(["node", "stop", *home], 1, "no node is running")
    check(["deal", "create", "--terms", str(tmp_path / "missing.yaml"), *home], 1, "terms file not found")
    (tmp_path / "broken.yaml").write_text("base: [1,\n")
    check(["deal", "create", "--terms", str(tmp_path / "broken.yaml"), *home], 1, "invalid YAML at line 2")
    (tmp_path / "typo.yaml").write_text("fess: 1\n")
    check(["deal", "create", "--terms", str(tmp_path / "typo.yaml"), *home], 1, "fess: unknown key at the top level")
    check(["deal", "create", "--terms", str(DVP_EXAMPLE), "--set", "oops", *home], 2, "expected KEY=VALUE")
    check(["deal", "fund", *home], 2, "Missing argument 'DEAL'")
    check(["deal", "frobnicate"], 2, "No such command 'frobnicate'")
    check(["deal", "show", "1", "--rpc", f"http://127.0.0.1:{free_port()}", *home], 1, "no node answers at")
    # a hex salt longer than 32 bytes is refused (it was hashed as text: not the salt the user gave)
    long_salt = "0x" + "22" + "11" * 32
    check(["deal", "create", "--terms", str(DVP_EXAMPLE), "--salt", long_salt, *home], 1, "33 bytes of hex, at most 32")
    assert run(["node", "status", *home]) == 3
    assert "not running" in capsys.readouterr().out
    # base-unit splits: `_` only between groups of three digits ("1_0" is a typo, not ten)
    deal = "0x" + "11" * 20
    resolve = ["deal", "resolve", deal, "0", "--quote", "0,0,0", *home]
    check([*resolve, "--base", "1_0,0,0"], 2, "grouped by three")
    check([*resolve, "--base", "1__000,0,0"], 2, "grouped by three")
    check([*resolve, "--base", "1_000,0"], 2, "TO_RECEIVER,TO_FUNDER,TO_RESOLVER")


def test_msig_call_integers_take_underscores_only_between_groups_of_three():
    from nexotc_client.chain.errors import NexotcError
    from nexotc_client.cli.msig import convert_arg

    assert convert_arg("1_000_000", "uint256", "--call") == 10**6
    assert convert_arg("0x10", "uint256", "--call") == 16 and convert_arg("-5", "int256", "--call") == -5
    for typo in ("1_0", "10_00", "_100", "1__000"):
        with pytest.raises(NexotcError, match=r"--call: ambiguous number|--call: invalid literal"):
            convert_arg(typo, "uint256", "--call")


def test_redeploy_keeps_the_recorded_tokens(cli, deployed):
    """`deploy --force` (a new factory, e.g. after `kyc deploy`) keeps the tokens terms files name."""
    before = cli.ok("deploy", "--json").json()
    assert before["already_deployed"] is True and set(before["tokens"]) == {"WBTC", "USDT", "WETH"}
    again = cli.ok("deploy", "--force", "--account", "test:0", "--json").json()
    assert again["already_deployed"] is False and again["factory"] != before["factory"]
    assert again["tokens"] == before["tokens"]
    # wallets do not depend on the escrow factory: the MultiSigFactory is kept, not deployed again
    assert again["multisig_factory"] == before["multisig_factory"] is not None
    assert again["multisig_factory_block"] == before["multisig_factory_block"]
    # ... and serves the same desks; --new-desk-registry gives it a registry of its own
    assert again["desk_registry"] == cli.ok("desk", "deploy", "--json").json()["address"]
    first_desks = again["desk_registry"]
    fresh = cli.ok("deploy", "--force", "--new-desk-registry", "--account", "test:0", "--json").json()
    assert fresh["desk_registry"] != first_desks
    assert cli.ok("desk", "deploy", "--json").json()["address"] == fresh["desk_registry"]
    # terms naming the tokens by symbol still resolve against the new factory
    dry = cli.ok("deal", "create", "--terms", str(DVP_EXAMPLE), "--account", "test:2", "--dry-run", "--json").json()
    assert dry["terms"]["base"]["token"] == before["tokens"]["WBTC"]
    assert dry["terms"]["quote"]["token"] == before["tokens"]["USDT"]
    # the replaced factories stay in the record, newest first, and their deals reachable by address
    record = json.loads((cli.home / "deployments.json").read_text())["ethereum:local:31337"]
    assert [p["factory"] for p in record["previous"]] == [again["factory"], before["factory"]]
    assert "no deals yet" in cli.ok("deal", "list").out
    old_deal = cli.state["dvp"]
    shown = cli.ok("deal", "show", old_deal, "--json").json()
    assert shown["deal"] == old_deal and shown["factory"] == before["factory"]
    assert_one_line_error(
        cli("deal", "show", "0x" + "22" * 20), "is not a deal of the factory at", "nor of the factories it replaced"
    )
    # --kyc cannot be added to a factory deployed without a KYC registry: it says how, instead of ignoring it
    refused = cli("deploy", "--kyc", "--account", "test:0")
    assert_one_line_error(refused, "--kyc: the factory at", "deploy --force --kyc")


def test_a_node_mining_every_second_gets_each_transaction_waited_for(tmp_path):
    """`node start --block-time 1`: ape hands back unmined receipts for a node that does not automine; every
    command must still wait for its transactions (a deploy used to end "did not create a contract", and the
    next transaction of the same command reused the nonce)."""
    with node_cli(tmp_path / "home", None, False, "--block-time", "1") as slow:
        deployed = slow.ok("deploy", "--account", "test:0", "--json").json()
        assert slow.rpc("eth_getCode", [deployed["factory"], "latest"]) not in ("0x", "0x0")
        created = slow.ok("msig", "create", "--owner", "test:1", "--threshold", "1", "--account", "test:1", "--json")
        wallet = created.json()["wallet"]
        assert slow.ok("msig", "owners", wallet, "--json").json()["threshold"] == 1
