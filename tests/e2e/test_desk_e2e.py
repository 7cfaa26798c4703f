"""End to end, from RFQ to escrow settlement on anvil, through the `nexotc` CLI only (subprocesses, one node
started by `nexotc node start`, one desk database): RFQ for 200 BTC → two-way quote from the four venues' books →
accept → the desk signs the lock offer (quote id in its salt) → the client takes it and funds the escrow →
TWAP hedge on the simulated venues → settlement tracked and both tranches released and booked →
reconciliation with no break, TCA, CSV and PNG. Then a tampered booking shows up as a classified break."""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))  # the shared CLI harness
from clikit import Cli, assert_one_line_error, node_cli  # noqa: E402

BUYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # test:1, the client
SELLER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # test:2, the desk's trading wallet
BTC = 10**8
USD = 10**6


def one_link(out: str) -> str:
    """The invite link of a command's human output: one whole line (a wrapped link leaves its tail on the
    lines after it)."""
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("nexotc://offer/")]
    assert len(starts) == 1, out
    link = lines[starts[0]]
    tail = lines[starts[0] + 1 :]
    assert not tail or not re.fullmatch(r"[A-Za-z0-9_=-]+", tail[0]), out  # no wrapped remainder
    return link


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-desk-e2e"), deploy=True) as c:
        yield c


def test_rfq_to_escrow_settlement_and_reconciliation(cli: Cli) -> None:
    tokens = cli.state["deployment"]["tokens"]
    rfq = cli.ok("rfq", "new", "--client", "test:1", "--side", "buy", "--size", "200", "--id", "E2E", "--json").json()
    assert (rfq["side"], rfq["size"], rfq["symbol"]) == ("buy", "200", "BTC/USDT")

    quote = cli.ok("quote", "new", "E2E", "--ttl", "10m", "--json").json()
    qid = quote["quote_id"]
    bid, ask, mid = (Decimal(quote[k]) for k in ("bid", "ask", "mid"))
    assert qid == "E2E-q1" and quote["state"] == "quoted" and bid < mid < ask and Decimal(quote["price"]) == ask
    assert Decimal(quote["components"]["spread_bps"]) > 0
    # nothing happens to a quote that is not accepted
    assert_one_line_error(cli("hedge", "start", qid), "only an accepted quote is hedged")
    assert cli.ok("quote", "accept", qid, "--json").json()["state"] == "accepted"
    assert_one_line_error(cli("quote", "accept", qid), "accepted -> accepted is not allowed")

    # price lock: the desk's wallet signs, the client takes it and both legs are funded in one transaction
    offer_file = cli.home / "lock.json"
    lock = cli.ok(
        "quote", "lock", qid, "--account", "test:2", "--client", "test:1", "--platform", "test:0",
        "--resolver", "test:4", "--tranches", "2", "--interval", "1h", "--out", offer_file, "--json",
    ).json()  # fmt: skip
    assert lock["maker"] == SELLER and lock["taker"] == BUYER and lock["base_amount"] == 200 * BTC
    assert bytes.fromhex(lock["salt"][2:]).rstrip(b"\0") == b"nexotc:q:" + qid.encode()
    assert lock["quote_amount"] == int(-(-200 * ask * USD // 1))  # the client pays the quoted notional, rounded up
    assert_one_line_error(cli("quote", "take", lock["link"], "--account", "test:5"), "not the invited taker")
    buyer_usd = cli.balance_of(tokens["USDT"], BUYER)
    taken = cli.ok("quote", "take", lock["link"], "--account", "test:1", "--fund", "--json").json()
    deal = taken["deal"]
    assert taken["quote_id"] == qid and taken["funded"] is True
    assert cli.balance_of(tokens["WBTC"], deal) == 200 * BTC
    assert (
        cli.balance_of(tokens["USDT"], deal)
        == lock["quote_amount"]
        == buyer_usd - cli.balance_of(tokens["USDT"], BUYER)
    )
    assert cli.ok("quote", "show", qid, "--json").json()["lock"]["deal"] == deal

    # hedge: the desk sold 200 BTC to the client, it buys them back on the venues
    started = cli("hedge", "start", qid, "--clips", "6", "--interval", "100ms", "--seed", "3", "--json")
    hedge = started.json()
    # DONE (exit 0), or PARTIAL (exit 3) when the immediate-or-cancel clips left a residual, shown as such
    assert started.code == {"done": 0, "partial": 3}[hedge["status"]], started.err
    assert Decimal(hedge["residual"]) == 200 - Decimal(hedge["filled"])
    assert hedge["side"] == "buy" and Decimal("190") < Decimal(hedge["filled"]) <= 200
    assert set(hedge["venue_filled"]) <= {"binance", "coinbase", "okx", "kraken"} and hedge["fills"] > 0

    # settlement: tracked, funded; both tranches released after their unlock, booked and confirmed
    tracked = cli.ok("settle", "track", deal, "--confirmations", "1", "--json").json()
    assert tracked["quote_id"] == qid and tracked["mode"] == "dvp"
    status = cli.ok("settle", "status", deal, "--json").json()
    assert status["funded"] == [True, True] and status["phase"] == "active" and status["new_events"] >= 2
    cli.rpc("evm_increaseTime", [2 * 3_600 + 120])
    cli.rpc("evm_mine", [])
    releases = [cli.ok("settle", "release", deal, str(i), "--account", "test:1", "--json").json() for i in (0, 1)]
    assert [r["booking"]["ref"] for r in releases] == [f"{qid}/0", f"{qid}/1"]
    status = cli.ok("settle", "status", deal, "--json").json()
    assert status["settled"] and status["breaches"] == []
    assert [t["settled_tx"] for t in status["tranches"]] == [r["tx_hash"] for r in releases]
    assert cli.balance_of(tokens["WBTC"], BUYER) >= 1_200 * BTC - 1  # 1,000 minted + 200 delivered

    # reconciliation: every hedge fill and both settlements match their bookings; TCA; CSV and PNG
    recon = cli.ok("recon", qid, "--json").json()
    assert recon["breaks"] == {} and recon["matched"] == recon["compared"] == hedge["fills"] + 2
    assert Decimal(recon["tca"]["filled"]) == Decimal(hedge["filled"])
    components = recon["tca"]["shortfall_bps"]
    assert set(components) == {"delay", "execution", "opportunity", "fees"}
    total = sum(Decimal(v) for v in components.values())
    assert abs(total - Decimal(recon["tca"]["shortfall_total_bps"])) <= Decimal("0.0004")
    png = recon["files"]["png"]
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(recon["files"]["tca_csv"]).readline().startswith("parent_id,")

    # a booking that disagrees with the chain is a classified break (and a non-zero exit)
    db = sqlite3.connect(cli.home / "desk.db")
    db.execute("UPDATE bookings SET tx_hash = ? WHERE ref = ?", ("0x" + "00" * 32, f"{qid}/1"))
    first_hedge_booking = "SELECT MIN(booking_id) FROM bookings WHERE kind = 'hedge'"
    db.execute(f"UPDATE bookings SET size = '0.5' WHERE booking_id = ({first_hedge_booking})")
    db.commit()
    db.close()
    broken = cli("recon", qid, "--json")
    assert broken.code == 5
    assert broken.json()["breaks"] == {"tx_hash": 1, "quantity": 1}


def test_matchmaking_to_a_private_invite_the_taker_accepts(cli: Cli) -> None:
    """Maker offers and a taker's preferences; the ranking reads reputation from the chain (the deals above);
    the chosen match becomes an invite link that `nexotc offer open|accept` (the existing machinery) takes."""
    outsider = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"  # test:5
    for oid, maker, price in (("OM-1", "test:2", "65010"), ("OM-2", "test:6", "64995"), ("OM-3", "test:5", "64990")):
        cli.ok("match", "offer", "--maker", maker, "--side", "sell", "--size", "5-50", "--price", price, "--kyc", "2",
               "--id", oid)  # fmt: skip
    cli.ok(
        "match", "want", "--taker", "test:1", "--side", "buy", "--size", "10-20", "--ref-price", "65000",
        "--tolerance-bps", "10", "--min-kyc", "1", "--avoid", outsider, "--id", "PW-1",
    )  # fmt: skip
    ranked = cli.ok("match", "rank", "PW-1", "--json").json()
    assert [c["offer_id"] for c in ranked["candidates"]] == ["OM-1", "OM-2"]  # a settled deal on chain beats 15 bps
    assert {e["offer_id"]: e["reason"] for e in ranked["excluded"]} == {
        "OM-3": "counterparty on the taker's avoid list"
    }
    rep = ranked["candidates"][0]["features"]["reputation"]
    assert rep["detail"].startswith("1 completed, 0 disputed") and Decimal(rep["value"]) > Decimal("0.5")
    match_id = ranked["matches"][0]

    assert_one_line_error(
        cli("match", "invite", match_id, "--account", "test:6", "--platform", "test:0", "--resolver", "test:4"),
        "only the maker",
    )
    # human output to a pipe (rich's 160 columns): the ~900-character link is one line, never wrapped
    offer_file = cli.home / "invite.json"
    human = cli.ok(
        "match", "invite", match_id, "--account", "test:2", "--platform", "test:0", "--resolver", "test:4",
        "--out", offer_file,
    ).out  # fmt: skip
    link = one_link(human)
    assert len(link) > 160 and f"invite for {BUYER} (nonce " in human
    opened = cli.ok("offer", "open", link, "--json").json()
    assert opened["taker"] == BUYER and opened["maker"] == SELLER and opened["acceptable"] is True
    # --out writes the signed offer file (as `quote lock --out` does), which opens as the same offer
    assert cli.ok("offer", "open", offer_file, "--json").json()["offer_hash"] == opened["offer_hash"]
    assert_one_line_error(cli("offer", "accept", link, "--account", "test:5"), "not the invited taker")
    accepted = cli.ok("offer", "accept", link, "--account", "test:1", "--fund", "--json").json()
    assert cli.balance_of(cli.state["deployment"]["tokens"]["WBTC"], accepted["deal"]) == 20 * BTC
    listed = cli.ok("match", "list", "--json").json()
    assert {m["match_id"]: m["status"] for m in listed["matches"]}[match_id] == "invited"
    assert {m["match_id"]: m["link"] for m in listed["matches"]}[match_id] == link  # the invite sent
    assert [o["offer_id"] for o in listed["offers"]] == ["OM-2", "OM-3"]


def test_offchain_leg_breach_then_milestone_marked_on_chain(cli: Cli) -> None:
    """An ESCROWED lock (BTC delivered off chain): past the off-chain SLA `settle status` flags the breach
    (exit 4); the desk's "delivered" milestone with the BTC txid marks the tranche on chain and clears it."""
    cli.ok("rfq", "new", "--client", "test:1", "--side", "buy", "--size", "5", "--id", "OTC")
    qid = cli.ok("quote", "new", "OTC", "--ttl", "10m", "--json").json()["quote_id"]
    cli.ok("quote", "accept", qid)
    human = cli.ok(
        "quote", "lock", qid, "--account", "test:2", "--client", "test:1", "--platform", "test:0",
        "--resolver", "test:4", "--offchain-base",
    ).out  # fmt: skip
    # the link read back from redirected human output (one line, not wrapped at 160 columns) is the whole offer
    link_file = cli.home / "lock-link.txt"
    link_file.write_text(one_link(human) + "\n")
    deal = cli.ok("quote", "take", link_file, "--account", "test:1", "--fund", "--json").json()["deal"]
    assert cli.ok("settle", "track", deal, "--sla-offchain", "60s", "--json").json()["mode"] == "escrowed"
    cli.rpc("evm_increaseTime", [60 + 61 + 5])
    cli.rpc("evm_mine", [])
    late = cli("settle", "status", deal, "--json")
    assert late.code == 4
    assert [(b["kind"], b["tranche"]) for b in late.json()["breaches"]] == [("offchain_late", 0)]
    txid = "ab" * 32
    marked = cli.ok(
        "settle", "mark", deal, "0", "--milestone", "delivered", "--evidence", txid,
        "--on-chain", "--account", "test:2", "--json",
    ).json()  # fmt: skip
    assert marked["evidence_hash"] == "0x" + txid and marked["tx_hash"]
    status = cli.ok("settle", "status", deal, "--json").json()
    assert status["breaches"] == [] and status["tranches"][0]["status"] == "marked"
    assert status["tranches"][0]["offchain"] == ["delivered"]
