"""`nexotc deal` guards found by exploratory testing: a refused action sends nothing (no approval either),
mistakes are named precisely, and amounts are shown in human units. One anvil for the module, driven through
the console entry point; the time-travel test runs last."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, node_cli
from eth_abi import encode
from eth_utils import keccak

DVP = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ESCROWED = ROOT / "examples" / "escrowed-btc-usdt.yaml"
TXID = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-guards"), deploy=True) as c:
        yield c


def tokens(cli: Cli) -> dict[str, str]:
    return cli.state["deployment"]["tokens"]


def wallet(cli: Cli, ref: str) -> str:
    from nexotc_client.cli.app import wallet_address

    return wallet_address(ref)


def set_blocked(cli: Cli, token: str, who: str) -> None:
    data = "0x" + keccak(text="set_blocked(address,bool)")[:4].hex() + encode(["address", "bool"], [who, True]).hex()
    cli.send({"from": wallet(cli, "test:0"), "to": token, "data": data})


def status(cli: Cli, deal: str) -> dict[str, Any]:
    return cli.ok("deal", "show", deal, "--json").json()["status"]


def event_lines(out: str, name: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip().startswith(name + "(")]


# ------------------------------------------------------------------ 1. fund
def test_refused_fund_sends_no_approval(cli):
    """`deal fund` on an already funded leg used to mine an approval of the full leg before the revert."""
    created = cli.ok(
        "deal", "create", "--terms", DVP, "--fund", "--account", "test:2", "--salt", "0x11", "--json"
    ).json()
    deal = created["deal"]
    cli.ok("deal", "fund", deal, "--account", "test:1")
    seller, buyer = wallet(cli, "test:2"), wallet(cli, "test:1")
    for account, token, owner in (("test:2", "WBTC", seller), ("test:1", "USDT", buyer)):
        before = cli.allowance(tokens(cli)[token], owner, deal)
        leg = "base" if token == "WBTC" else "quote"
        assert_one_line_error(cli("deal", "fund", deal, "--account", account), f"the {leg} leg is already funded")
        assert cli.allowance(tokens(cli)[token], owner, deal) == before


# ------------------------------------------------------------ 2, 6, 7, 8, 13
def test_escrowed_guards_name_the_cause(cli):
    deal = cli.ok(
        "deal", "create", "--terms", ESCROWED, "--fund", "--account", "test:1", "--salt", "0x21", "--json"
    ).json()["deal"]
    cli.state["escrowed"] = deal

    # 2. a mistyped txid is refused, not hashed and written on chain
    for bad, digits in ((TXID[:-1], "63"), ("0x1234", "4")):
        assert_one_line_error(
            cli("deal", "mark", deal, "1", "--evidence", bad, "--account", "test:2"),
            f"looks like hex but has {digits} digits, not 64",
            f"text:{bad}",
        )
    assert [t["status"] for t in status(cli, deal)["tranches"]] == ["pending", "pending"]

    # 8. release before unlock by a non-signer: the causes, not "release conditions not met"
    cli.ok("deal", "mark", deal, "1", "--evidence", TXID, "--account", "test:2")
    stranger, buyer = wallet(cli, "test:5"), wallet(cli, "test:1")
    result = cli("deal", "release", deal, "1", "--account", "test:5")
    assert_one_line_error(
        result,
        "release: tranche 1 unlocks ",
        "(in 23h",
        f"needs 1 more approval(s) from the buyer {buyer}",
        f"needs 1 more signature(s) from the buyer {buyer} ({stranger} is not a release signer)",
    )
    assert re.search(r"unlocks \d{4}-\d{2}-\d{2} ", result.err), result.err

    # 8. approve a marked-then-disputed tranche: "tranche 0 is disputed", not "tranche not marked"
    cli.ok("deal", "mark", deal, "0", "--evidence", "text:wire ABC-42", "--account", "test:2")
    cli.ok("deal", "dispute", deal, "0", "--reason", "short delivery", "--account", "test:1")
    assert_one_line_error(cli("deal", "approve", deal, "0", "--account", "test:1"), "approve: tranche 0 is disputed")
    assert_one_line_error(cli("deal", "approve", deal, "1", "--account", "test:2"), "is not an approver")
    # 8. settle too early / resolver fee above the cap
    assert_one_line_error(
        cli("deal", "settle", deal, "0", "--account", "test:5"), "settle: tranche 0 was disputed at", "settleable from"
    )
    assert_one_line_error(
        cli("deal", "resolve", deal, "0", "--receiver-bps", "5000", "--resolver-bps", "200", "--account", "test:4"),
        "200 bps exceeds the deal's 100 bps resolver cap",
    )
    assert_one_line_error(
        cli("deal", "resolve", deal, "1", "--receiver-bps", "5000", "--account", "test:4"),
        "resolve: tranche 1 is marked, not disputed",
    )

    # 6. the off-chain leg is not shown as a plain number of units
    human = cli.ok("deal", "show", deal).out
    assert "1,000,000,000 units (off-chain asset)" in human, human
    assert "the base leg is off chain: its amounts are units of the off-chain asset" in human, human
    labelled = cli.ok("deal", "show", deal, "--terms", ESCROWED).out
    assert "10 BTC (off chain, 8 decimals)" in labelled and "│ 5 BTC " in labelled, labelled
    # 13. tranche dates carry their year
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \(in ", human), human

    # 7. events in human units (raw integers stay in --json)
    events = cli.ok("deal", "events", deal).out
    assert "amount=650,000 USDT" in events, events
    raw = cli.ok("deal", "events", deal, "--json").json()
    assert [e["args"]["amount"] for e in raw if e["name"] == "Funded"] == [650_000 * 10**6]


# -------------------------------------------------------------- 7, 12, 3-5, 13
def test_create_mistakes_are_explained(cli):
    # 12. the seller of an escrowed deal with an off-chain base leg funds nothing on chain
    assert_one_line_error(
        cli("deal", "create", "--terms", ESCROWED, "--fund", "--account", "test:2", "--salt", "0x22"),
        "the base leg (BTC) is off chain: the seller funds nothing on chain; only the buyer deposits",
    )
    # 7. the balance error in token units
    short = cli(
        "deal",
        "create",
        "--terms",
        DVP,
        "--fund",
        "--account",
        "test:1",
        "--salt",
        "0x23",
        "--set",
        "quote.amount=200,000,000",
    )
    assert_one_line_error(short, " USDT, the quote leg needs 200,000,000 USDT")
    assert re.search(r"holds \d{2},\d{3},\d{3} USDT, ", short.err), short.err
    # 3, 4. --set typos and ambiguous numbers are refused
    for sets, fragment in (
        ("fee.desk_bps=50", "--set fee.desk_bps: neither a field of the terms format nor a placeholder"),
        ("bogus=1", "--set bogus: neither a field"),
        ("quote.amount=1,5", "quote.amount: ambiguous number '1,5'"),
        ("quote.amount=2_00", "quote.amount: ambiguous number '2_00'"),
        ("fees.introducers=[{wallet: test:3, bps: 10},{wallet: test:3, bps: 10}]", "is already fees.introducers[0]"),
    ):
        assert_one_line_error(
            cli("deal", "create", "--terms", DVP, "--dry-run", "--account", "test:1", "--set", sets), fragment
        )
    # 13. no Markdown backticks in the dry-run line
    dry = cli.ok("deal", "create", "--terms", DVP, "--dry-run", "--account", "test:1").out
    assert "`" not in dry and "would create" in dry


# ------------------------------------------------------------ 7, 9, 10, 13
def test_release_claim_and_settled_fund(cli):
    seller, buyer, stranger = wallet(cli, "test:2"), wallet(cli, "test:1"), wallet(cli, "test:7")
    wbtc = tokens(cli)["WBTC"]
    deal = cli.ok(
        "deal",
        "create",
        "--terms",
        DVP,
        "--fund",
        "--account",
        "test:2",
        "--salt",
        "0x31",
        "--set",
        "tranches.count=1",
        "--json",
    ).json()["deal"]
    cli.ok("deal", "fund", deal, "--account", "test:1")
    set_blocked(cli, wbtc, buyer)  # the base receiver: its payment is deferred to a pull balance
    released = cli.ok("deal", "release", deal, "0", "--account", "test:5").out
    assert "Released(tranche=0" in released and "quote_amount=13,000,000 USDT" in released, released
    assert "fees=45,500 USDT" in released and "amount=200 WBTC" in released, released  # 7.
    assert event_lines(released, "PaymentDeferred"), released

    shown = cli.ok("deal", "show", deal).out
    row = next(line for line in shown.splitlines() if line.startswith("│ 0 "))
    assert "released" in row and "0/0" not in row, row  # 10. no "signatures 0/N" after a payout
    claims = shown[shown.index("claimable") :]
    assert "WBTC 0x" in claims and "200 WBTC" in claims, claims  # 13. the symbol, not only the address

    # 9. a blocked payee claiming to itself gets a hint; --to takes test:N, --token a symbol
    assert_one_line_error(
        cli("deal", "claim", deal, "--token", "wbtc", "--account", "test:1"),
        "the token refuses transfers to this address; claim to another with --to",
    )
    before = cli.balance_of(wbtc, stranger)
    claimed = cli.ok("deal", "claim", deal, "--token", "wbtc", "--to", "test:7", "--account", "test:1").out
    assert "amount=200 WBTC" in claimed, claimed
    assert cli.balance_of(wbtc, stranger) == before + 200 * 10**8
    assert_one_line_error(
        cli("deal", "claim", deal, "--token", "wbtc", "--account", "test:1"), "has no pull balance of WBTC"
    )

    # 1. a settled deal: the refusal sends no approval
    allowance = cli.allowance(wbtc, seller, deal)
    assert_one_line_error(
        cli("deal", "fund", deal, "--account", "test:2"), "the base leg is already funded (the deal is settled)"
    )
    assert cli.allowance(wbtc, seller, deal) == allowance


# ------------------------------------------------- time travel: keep it last
def test_after_deadlines(cli):
    buyer = wallet(cli, "test:1")
    usdt = tokens(cli)["USDT"]
    unfunded = cli.ok("deal", "create", "--terms", DVP, "--account", "test:0", "--salt", "0x41", "--json").json()
    cli.rpc("evm_increaseTime", [3 * 86_400 + 3_600])
    cli.rpc("evm_mine", [])
    # 1. after the funding deadline: refused, no approval mined
    before = cli.allowance(usdt, buyer, unfunded["deal"])
    assert_one_line_error(cli("deal", "fund", unfunded["deal"], "--account", "test:1"), "fund: funding closed at")
    assert cli.allowance(usdt, buyer, unfunded["deal"]) == before == 0

    # 11. a default settlement names its caller, not a "resolver"; amounts in USDT
    settled = cli.ok("deal", "settle", cli.state["escrowed"], "0", "--account", "test:5").out
    line = " ".join(settled.split())
    line = line[line.index("Resolved(") :]
    assert ", caller=" in line and ", resolver=" not in line and "by_default=True" in line, line
    assert "base=(off chain)" in line and "to_funder=325,000 USDT" in line, line
