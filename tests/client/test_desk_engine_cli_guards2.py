"""More guards of the desk engine's CLI. Offline (in process): the hedge commands never create a desk database,
the zero address is never a wallet of the match book or a lock offer, and typed sizes are echoed without an
exponent. On a node: every settle command resolves a deal's creation number (`1`, `#1`) as `settle track`
does, a DVP deal has no off-chain leg to mark, and an ESCROWED tranche's milestones only move forward, on a
funded deal and an unsettled tranche."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import ROOT, Cli, assert_one_line_error, node_cli

MAKER, TAKER = ("0x" + c * 40 for c in "ab")
ZERO = "0x" + "0" * 40
DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
WALLETS = ("--platform", "test:0", "--resolver", "test:4")


# ------------------------------------------------------------------ offline
def test_hedge_commands_never_create_a_database(nx, tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    db = ("--db", f"sqlite:///{typo}")
    for argv in (
        ("hedge", "list"),
        ("hedge", "show", "H-1"),
        ("hedge", "start", "Q-1"),
        ("hedge", "resume", "H-1"),
        ("hedge", "cancel", "H-1"),
    ):
        assert_one_line_error(nx(*argv, *db), "no desk database at", str(typo), "check --db")
        assert_one_line_error(nx(*argv), "no desk database at")  # the home's default database, not created either
    assert not typo.exists() and not (nx.home / "desk.db").exists()
    # once a command that records something created it, the hedge commands read it
    assert nx("rfq", "new", "--client", "a", "--side", "buy", "--size", "1", *db).code == 0
    assert nx("hedge", "list", *db, "--json").json() == []
    assert_one_line_error(nx("hedge", "show", "H-1", *db), "H-1")


def test_the_zero_address_is_not_a_wallet(nx) -> None:
    offer = ("match", "offer", "--side", "sell", "--size", "1-5", "--price", "65000")
    assert_one_line_error(nx(*offer, "--maker", ZERO, "--id", "OZ"), "--maker: the zero address is not a wallet")
    assert_one_line_error(nx(*offer, "--maker", "0x" + "0" * 40, "--id", "OZ"), "zero address is not a wallet")
    want = ("match", "want", "--side", "buy", "--size", "1-2", "--ref-price", "65000", "--id", "PZ")
    assert_one_line_error(nx(*want, "--taker", ZERO), "--taker: the zero address is not a wallet")
    assert_one_line_error(nx(*want, "--taker", TAKER, "--avoid", ZERO), "--avoid: the zero address is not a wallet")
    # nothing was recorded (no database created either); a real maker is still ranked
    assert_one_line_error(nx("match", "list"), "no desk database")
    assert nx(*offer, "--maker", MAKER, "--id", "OK").code == 0
    assert nx(*want, "--taker", TAKER, "--avoid", TAKER.replace("b", "c")).code == 0
    listed = nx("match", "list", "--json").json()
    assert [o["offer_id"] for o in listed["offers"]] == ["OK"] and [p["pref_id"] for p in listed["preferences"]] == [
        "PZ"
    ]
    ranked = nx("match", "rank", "PZ", "--offline", "--json").json()
    assert [c["maker"].lower() for c in ranked["candidates"]] == [MAKER]


def test_the_match_book_refuses_the_zero_address(tmp_path: Path) -> None:
    from decimal import Decimal

    from nexotc_client.desk.db import Database
    from nexotc_client.desk.match import MakerOffer, MatchBook, MatchError, Preference
    from nexotc_client.desk.models import Side
    from nexotc_client.desk.store import DeskStore

    book = MatchBook(DeskStore(Database.open(f"sqlite:///{tmp_path / 'book.db'}")))
    one = Decimal(1)
    with pytest.raises(MatchError, match="maker: the zero address is not a wallet"):
        book.post_offer(MakerOffer("O", ZERO, "BTC/USDT", Side.SELL, one, one, Decimal(65000), 3600, 1))
    with pytest.raises(MatchError, match="avoid: the zero address is not a wallet"):
        book.post_preference(
            Preference("P", TAKER, "BTC/USDT", Side.BUY, one, one, Decimal(65000), Decimal(25), 3600, avoid=(ZERO,))
        )
    assert book.offers() == [] and book.preferences() == []


def test_sizes_are_echoed_without_an_exponent(nx) -> None:
    new = nx("rfq", "new", "--client", "acme", "--symbol", "BTC/USDT", "--side", "buy", "--size", "2E1", "--id", "R4")
    assert new.code == 0 and "RFQ R4: acme buys 20 BTC/USDT" in new.out and "E+" not in new.out
    assert (
        nx("rfq", "new", "--client", "a", "--side", "sell", "--size", "1.50E-1", "--id", "R5", "--json").json()["size"]
        == "0.15"
    )
    for argv in (("rfq", "list"), ("rfq", "show", "R4"), ("quote", "new", "R4", "--ttl", "10m"), ("quote", "list")):
        r = nx(*argv)
        assert r.code == 0 and "E+" not in r.out and "E-" not in r.out, r.out
    assert "R4  acme  buy 20 BTC/USDT" in nx("rfq", "list").out
    assert "RFQ R4: acme buys 20 BTC/USDT" in nx("rfq", "show", "R4").out
    assert "counter 64,000.00" in nx("quote", "counter", "R4-q1", "--price", "6.4E4").out
    offer = nx("match", "offer", "--maker", MAKER, "--side", "sell", "--size", "1E1-2E2", "--price", "6.5E4", "--json")
    assert (offer.json()["size_min"], offer.json()["size_max"], offer.json()["price"]) == ("10", "200", "65000")
    want = nx(
        "match", "want", "--taker", TAKER, "--side", "buy", "--size", "5E1-1.5E2", "--ref-price", "6.5E4",
        "--tolerance-bps", "2.5E1", "--id", "PE", "--json",
    ).json()  # fmt: skip
    assert (want["size_min"], want["size_max"], want["price_tolerance_bps"]) == ("50", "150", "25")
    listed = nx("match", "list").out
    assert "10-200" in listed and "50-150" in listed and "E+" not in listed


# ------------------------------------------------------------------ on a node
@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-desk-guards2"), deploy=True) as c:
        yield c


def index_of(cli: Cli, deal: str) -> int:
    [index] = [d["index"] for d in cli.ok("deal", "list", "--json").json() if d["deal"] == deal]
    return index


def test_settle_commands_resolve_deal_numbers_and_a_dvp_deal_has_no_offchain_leg(cli: Cli) -> None:
    deal = cli.ok("deal", "create", "--terms", str(DVP_EXAMPLE), "--account", "test:2", "--json").json()["deal"]
    n = str(index_of(cli, deal))
    assert cli.ok("settle", "track", n, "--confirmations", "1", "--json").json()["deal"] == deal
    # status and mark take the deal's number (and #N) as track and release do
    assert cli.ok("settle", "status", n, "--json").json()["deal"] == deal
    assert cli.ok("settle", "status", f"#{n}", "--json").json()["deal"] == deal
    assert_one_line_error(cli("settle", "status", "#999"), "no deal #999")
    # a DVP deal settles both legs on chain: no off-chain milestone, with or without --on-chain
    for ref in (n, f"#{n}", deal):
        for milestone in ("delivered", "initiated"):
            mark = ("settle", "mark", ref, "0", "--milestone", milestone, "--evidence", "text:x")
            assert_one_line_error(cli(*mark), "a DVP deal has no off-chain leg to mark")
    on_chain = ("settle", "mark", n, "0", "--milestone", "delivered", "--evidence", "x", "--on-chain")
    assert_one_line_error(cli(*on_chain, "--account", "test:2"), "a DVP deal has no off-chain leg to mark")
    status = cli.ok("settle", "status", n, "--json").json()
    assert all(t["offchain"] == [] for t in status["tranches"])
    assert "off-chain leg" not in cli.ok("settle", "status", n).out


def test_escrowed_milestones_move_forward_on_a_funded_unsettled_tranche(cli: Cli) -> None:
    cli.ok("rfq", "new", "--client", "test:1", "--side", "buy", "--size", "1", "--id", "RM")
    cli.ok("quote", "new", "RM", "--ttl", "10m")
    cli.ok("quote", "accept", "RM-q1")
    lock = ("quote", "lock", "RM-q1", "--account", "test:2", "--client", "test:1", *WALLETS, "--offchain-base")
    # a lock offer to the zero address would be a public offer: refused before anything is signed
    zero = ("quote", "lock", "RM-q1", "--account", "test:2", "--offchain-base")
    assert_one_line_error(cli(*zero, "--client", ZERO, *WALLETS), "--client: the zero address is not a wallet")
    assert_one_line_error(
        cli(*zero, "--client", "test:1", "--platform", ZERO, "--resolver", "test:4"),
        "--platform: the zero address is not a wallet",
    )
    link = cli.ok(*lock, "--json").json()["link"]
    deal = cli.ok("quote", "take", link, "--account", "test:1", "--json").json()["deal"]  # not funded
    n = str(index_of(cli, deal))
    assert cli.ok("settle", "track", n, "--confirmations", "1", "--json").json()["mode"] == "escrowed"

    def mark(milestone: str, evidence: str, *extra: str) -> object:
        return cli("settle", "mark", n, "0", "--milestone", milestone, "--evidence", evidence, *extra)

    # the seller delivers off chain against a funded escrow: nothing is recorded before
    assert_one_line_error(mark("initiated", "wire-1"), "is not funded yet (quote leg not deposited)")
    assert cli.ok("settle", "status", n, "--json").json()["tranches"][0]["offchain"] == []
    cli.ok("deal", "fund", n, "--account", "test:1")

    assert mark("sent", "btc-broadcast").code == 0  # steps may be skipped (no 'initiated')
    assert_one_line_error(mark("initiated", "wire-1"), "tranche 0 is already 'sent': 'initiated' comes before it")
    assert mark("delivered", "btc-txid", "--json").code == 0
    assert_one_line_error(mark("initiated", "wire-1"), "tranche 0 is already 'delivered': 'initiated' comes before it")
    # a milestone recorded already keeps its own refusals (the off-chain record is upgraded on chain by #N too)
    assert_one_line_error(mark("sent", "other"), "already has a 'sent' mark with other evidence")
    assert_one_line_error(mark("sent", "btc-broadcast"), "already has a 'sent' mark with this evidence")
    upgraded = cli.ok(
        "settle", "mark", f"#{n}", "0", "--milestone", "delivered", "--evidence", "btc-txid",
        "--on-chain", "--account", "test:2", "--json",
    ).json()  # fmt: skip
    assert upgraded["tx_hash"]
    status = cli.ok("settle", "status", n, "--json").json()
    assert status["tranches"][0]["status"] == "marked" and status["tranches"][0]["offchain"] == ["sent", "delivered"]
    assert "off-chain leg: sent, delivered" in cli.ok("settle", "status", n).out

    cli.ok("deal", "approve", n, "0", "--account", "test:1")
    # before its unlock time a signer's release only records the signature: nothing is booked
    early = cli.ok("settle", "release", n, "0", "--account", "test:1").out
    assert "tranche 0 not released yet (signature 1 recorded" in early and "nothing booked" in early
    assert_one_line_error(cli("settle", "release", n, "0", "--account", "test:1"), "tranche 0 unlocks")
    assert cli.ok("settle", "status", n, "--json").json()["tranches"][0]["status"] == "marked"
    cli.rpc("evm_increaseTime", [3_600])
    cli.rpc("evm_mine", [])
    released = cli.ok("settle", "release", n, "0", "--account", "test:1", "--json").json()
    assert released["released"] is True and released["booking"]["ref"] == "RM-q1/0"
    # a released tranche's settlement is over: no later milestone either
    assert_one_line_error(mark("confirmed", "6 confirmations"), "tranche 0 is already released")
    status = cli.ok("settle", "status", n, "--json").json()
    assert status["tranches"][0]["status"] == "released"
    assert status["tranches"][0]["offchain"] == ["sent", "delivered"]
