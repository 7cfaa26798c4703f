"""Guards of the desk engine's chain-facing commands (quote lock / take, settle track / mark) through the CLI
against a node started by `nexotc node start`: tokens must carry the RFQ's pair, a quote is locked once, the
client and the wallets are checked before anything is signed, `settle track --quote` never links a quote the
deal does not lock, and an on-chain mark after an identical off-chain one upgrades the record (checked before
the transaction is sent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import Cli, assert_one_line_error, node_cli

WALLETS = ("--platform", "test:0", "--resolver", "test:4")


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-desk-guards"), deploy=True) as c:
        yield c


def accepted(cli: Cli, rfq_id: str, symbol: str, size: str) -> str:
    cli.ok("rfq", "new", "--client", "test:1", "--side", "buy", "--size", size, "--symbol", symbol, "--id", rfq_id)
    cli.ok("quote", "new", rfq_id, "--ttl", "10m")
    cli.ok("quote", "accept", f"{rfq_id}-q1")
    return f"{rfq_id}-q1"


def test_lock_checks_tokens_client_wallets_and_out_before_signing(cli: Cli, tmp_path: Path) -> None:
    qid = accepted(cli, "RE", "ETH/USDT", "2")
    lock = ("quote", "lock", qid, "--account", "test:2", *WALLETS)
    assert_one_line_error(
        cli(*lock, "--client", "test:1", "--base-token", "WBTC"), "is WBTC, but the quote's base asset is ETH"
    )
    usdt = cli.state["deployment"]["tokens"]["USDT"]
    assert_one_line_error(
        cli(*lock, "--client", "test:1", "--base-token", usdt), "is USDT, but the quote's base asset is ETH"
    )
    assert_one_line_error(cli(*lock, "--client", "test:3"), "is not RFQ RE's client")
    same = (
        "quote",
        "lock",
        qid,
        "--account",
        "test:2",
        "--client",
        "test:1",
        "--platform",
        "test:2",
        "--resolver",
        "test:4",
    )
    assert_one_line_error(cli(*same), "--platform (the desk's fee wallet) is the same wallet as --account")
    out = tmp_path / "nonexistent" / "dir" / "x.json"
    assert_one_line_error(cli(*lock, "--client", "test:1", "--out", out), "--out", "no directory")
    taken = tmp_path / "taken.json"
    taken.write_text("keep me")
    assert_one_line_error(cli(*lock, "--client", "test:1", "--out", taken), "exists", "--force")
    assert taken.read_text() == "keep me"
    # the default tokens follow the pair: WETH (18 decimals) for ETH/USDT
    signed = cli.ok(*lock, "--client", "test:1", "--json").json()
    assert signed["base_amount"] == 2 * 10**18


def test_a_quote_locks_once_and_settle_guards(cli: Cli) -> None:
    qid = accepted(cli, "RB", "BTC/USDT", "1")
    lock = ("quote", "lock", qid, "--account", "test:2", "--client", "test:1", *WALLETS, "--offchain-base", "--json")
    link = cli.ok(*lock).json()["link"]
    deal = cli.ok("quote", "take", link, "--account", "test:1", "--fund", "--json").json()["deal"]
    assert_one_line_error(cli(*lock), f"quote {qid} is already locked into deal {deal}")
    assert_one_line_error(cli("quote", "take", link, "--account", "test:1"), "already locked")

    assert_one_line_error(cli("settle", "track", deal, "--quote", "NOPE"), "no quote 'NOPE'")
    other = accepted(cli, "RX", "BTC/USDT", "1")
    assert_one_line_error(cli("settle", "track", deal, "--quote", other), f"locks quote {qid}, not {other}")
    tracked = cli.ok("settle", "track", deal, "--confirmations", "1", "--json").json()
    assert tracked["quote_id"] == qid and tracked["mode"] == "escrowed"
    assert_one_line_error(cli("settle", "track", deal, "--quote", other), f"locks quote {qid}, not {other}")

    mark = ("settle", "mark", deal, "0", "--milestone", "delivered", "--evidence", "btc-txid-1", "--json")
    assert cli.ok(*mark).json()["tx_hash"] is None  # off chain
    assert_one_line_error(
        cli("settle", "mark", deal, "0", "--milestone", "delivered", "--evidence", "other"),
        "already has a 'delivered' mark with other evidence",
    )
    upgraded = cli.ok(*mark, "--on-chain", "--account", "test:2").json()
    assert upgraded["tx_hash"] and upgraded["evidence_hash"].startswith("0x")
    status = cli.ok("settle", "status", deal, "--json").json()
    assert status["tranches"][0]["status"] == "marked" and status["tranches"][0]["offchain"] == ["delivered"]
    # a second on-chain mark is refused before anything is sent
    assert_one_line_error(
        cli(*mark, "--on-chain", "--account", "test:2"),
        "already has a 'delivered' mark with this evidence, marked on chain",
    )
    human = cli.ok("settle", "status", deal).out
    assert "None" not in human and "[]" not in human and "off-chain leg: delivered" in human
    assert "1 confirmation)" in cli.ok("settle", "track", deal, "--confirmations", "1").out
