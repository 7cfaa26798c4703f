"""`nexotc offer ...`: a negotiation on a real anvil started by `nexotc node start`, driven through
subprocesses (seller offers, buyer counters, seller counters back, invite link opened and accepted by
the invited buyer with --fund; another account and a cancelled offer are refused with one line and
nothing sent). Offline commands (diff, thread, invite) run in-process, and the chain wrappers
(nexotc_client.chain.offers) are tested directly on ape's test network: expiry, EIP-1271 makers,
public offers, foreign domains."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, node_cli

from nexotc_client.chain import NexotcError, Registry, deploy_factory
from nexotc_client.chain.offers import (
    accept_offer,
    approve_leg,
    check_domain,
    inspect_offer,
    nonce_used,
    require_invited,
    sign_offer,
)
from nexotc_client.cli import run
from nexotc_client.offers import Offer, SignedOffer
from nexotc_client.terms import ZERO_ADDRESS, Party, Phase

DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ESCROWED_EXAMPLE = ROOT / "examples" / "escrowed-btc-usdt.yaml"
BUYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # test:1
SELLER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # test:2
OUTSIDER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"  # test:5
USD = 10**6


def in_process(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = run([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    state = {"dir": tmp_path_factory.mktemp("offer-files")}
    with node_cli(tmp_path_factory.mktemp("nexotc-offers"), state, deploy=True) as c:
        yield c


# ------------------------------------------------------------ negotiation
def test_offer_counter_invite_open_and_accept(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    files: Path = cli.state["dir"]
    a, b, c = files / "A.json", files / "B.json", files / "C.json"
    tokens = cli.state["deployment"]["tokens"]

    # the seller offers to the buyer of the terms file and approves the factory for its leg
    made = cli.ok(
        "offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--approve", "--out", a, "--json"
    ).json()
    assert (made["maker"], made["maker_role"], made["taker"], made["public"]) == (SELLER, "seller", BUYER, False)
    assert made["approval_tx"] and made["maker_leg_approved"] is True
    assert len(made["digest"]) == 66 and made["previous"] is None and made["nonce"] == 1
    assert json.loads(a.read_text())["offer_hash"] == made["offer_hash"]

    # the buyer counters with a lower price: the diff shows the price (timers count from the offer's time)
    countered = cli.ok(
        "offer",
        "counter",
        a,
        "--terms",
        DVP_EXAMPLE,
        "--set",
        "quote.amount=12900000",
        "--account",
        "test:1",
        "--out",
        b,
        "--json",
    ).json()
    assert countered["previous"] == made["offer_hash"] and countered["taker"] == SELLER
    terms_changes = {
        ch["field"]: (ch["old"], ch["new"]) for ch in countered["changes"] if ch["field"].startswith("terms")
    }
    assert terms_changes["terms.quote_amount"] == (13_000_000 * USD, 12_900_000 * USD)
    assert set(terms_changes) == {"terms.quote_amount", *(f"terms.tranches[{i}].quote_amount" for i in range(4))}
    # the same counter on the buyer's own machine from the invite link alone: the link carries the offer's time
    # base, so relative timers resolve to the same times and only the price shows as changed
    link = cli.ok("offer", "invite", a, "--json").json()["link"]
    elsewhere = Cli(home=files / "buyer-home", port=cli.port, state={})
    elsewhere.home.mkdir()
    shutil.copy(cli.home / "deployments.json", elsewhere.home / "deployments.json")
    rpc = ("--rpc", f"http://127.0.0.1:{cli.port}")
    via_link = elsewhere.ok(
        "offer", "counter", link, "--terms", DVP_EXAMPLE, "--set", "quote.amount=12900000", "--account", "test:1",
        *rpc, "--json",
    ).json()  # fmt: skip
    assert {ch["field"] for ch in via_link["changes"] if ch["field"].startswith("terms")} == set(terms_changes)
    opened = elsewhere.ok("offer", "open", link, *rpc, "--json").json()
    assert opened["offer_hash"] == made["offer_hash"]
    stored = json.loads((elsewhere.home / "offers" / f"{made['offer_hash']}.json").read_text())
    assert stored["time_base"] == json.loads(a.read_text())["time_base"]  # kept, not dropped by `open`

    # the seller meets halfway
    final = cli.ok(
        "offer",
        "counter",
        b,
        "--terms",
        DVP_EXAMPLE,
        "--set",
        "quote.amount=12950000",
        "--account",
        "test:2",
        "--out",
        c,
        "--json",
    ).json()
    # the seller's counter reuses its nonce in the thread: at most one of A and C can ever be filled
    assert final["previous"] == countered["offer_hash"] and final["nonce"] == made["nonce"] == 1
    assert final["replaces"] == [made["offer_hash"]] and final["warnings"] == []

    # the thread, from files given out of order (earlier ones also found in the home's store)
    thread = cli.ok("offer", "thread", c, a, b, "--json").json()
    assert [o["offer_hash"] for o in thread["offers"]] == [
        made["offer_hash"],
        countered["offer_hash"],
        final["offer_hash"],
    ]
    assert all(o["eoa_signed"] for o in thread["offers"])
    assert [o["maker_role"] for o in thread["offers"]] == ["seller", "buyer", "seller"]
    assert "terms.quote_amount" in {ch["field"] for ch in thread["changes"][1]}
    # read on chain: the seller has moved past A (same nonce as C)
    assert thread["chain_checked"] is True
    assert [o["state"] for o in thread["offers"]] == ["superseded", "open", "open"]
    assert thread["offers"][0]["superseded_by"] == [final["offer_hash"]]
    assert "same nonce 1" in thread["offers"][0]["warnings"][0]
    # amounts in the tables are human, with the token's symbol
    shown = cli.ok("offer", "thread", a, b, c).out
    assert "12,900,000 USDT" in shown and "13,000,000 USDT" in shown and "13000000000000" not in shown
    shown = cli.ok("offer", "diff", a, b).out
    assert "12,900,000 USDT" in shown and "3,250,000 USDT" in shown and "3250000000000" not in shown
    superseded = cli.ok("offer", "open", a, "--json").json()
    assert superseded["acceptable"] is True and superseded["superseded_by"] == [final["offer_hash"]]
    assert "superseded" in superseded["warnings"][0]
    code, out, err = in_process(capsys, "offer", "diff", a, c, "--json")
    assert code == 0, err
    assert json.loads(out)["b_counters_a"] is False
    code, out, err = in_process(capsys, "offer", "invite", c, "--json")
    assert code == 0, err
    link = json.loads(out)["link"]
    body = link.removeprefix("nexotc://offer/")
    assert link.startswith("nexotc://offer/") and body.replace("-", "").replace("_", "").isalnum()
    assert json.loads(out)["taker"] == BUYER

    # the invited buyer opens it: verified, and what it must fund and approve
    opened = cli.ok("offer", "open", link, "--json").json()
    assert opened["acceptable"] is True and opened["problems"] == []
    assert (opened["maker_signature"], opened["offer_hash"], opened["taker"]) == ("eoa", final["offer_hash"], BUYER)
    funding = {f["side"]: f for f in opened["funding"]}
    assert funding["taker"]["wallet"] == BUYER and funding["taker"]["leg"] == "quote"
    assert funding["taker"]["amount"] == 12_950_000 * USD and funding["taker"]["formatted"] == "12,950,000 USDT"
    assert funding["taker"]["balance_ok"] is True and funding["taker"]["allowance_ok"] is False
    assert funding["maker"]["allowance_ok"] is True

    # another account is refused at once: one line, nothing sent
    refused = cli("offer", "accept", link, "--account", "test:5", "--fund")
    assert_one_line_error(refused, f"{OUTSIDER} is not the invited taker", f"only {BUYER} can accept")
    assert int(cli.rpc("eth_getTransactionCount", [OUTSIDER, "latest"]), 16) == 0

    # the buyer accepts: its own counter B is cancelled first (it would stay acceptable by the seller),
    # then it approves its leg, the deal is created and both legs funded in one transaction
    accepted = cli.ok("offer", "accept", link, "--account", "test:1", "--fund", "--json").json()
    assert accepted["deal"] == opened["deal"] and accepted["phase"] == "active" and accepted["funded"] is True
    assert accepted["approval_tx"] is not None
    names = [e["name"] for e in accepted["events"]]
    assert names == ["DealCreated", "Funded", "Funded", "OfferAccepted"]
    assert accepted["events"][-1]["args"]["previous"] == countered["offer_hash"]
    assert cli.allowance(tokens["USDT"], BUYER, cli.state["deployment"]["factory"]) == 0  # exactly consumed
    assert accepted["own_offers"] == [countered["offer_hash"]] and accepted["cancelled_nonces"] == [1]
    assert accepted["cancel_tx"] and accepted["warnings"] == []

    again = cli("offer", "accept", c, "--account", "test:1")
    assert_one_line_error(again, "cannot accept this offer", "nonce 1 is used or cancelled")
    # neither the seller's first offer A nor the buyer's counter B can be filled any more: both void
    for void in (a, b):
        shown = cli("offer", "open", void, "--json")
        assert shown.code == 1 and shown.json()["void"] is True and shown.json()["acceptable"] is False
    refused = cli("offer", "accept", a, "--account", "test:1", "--fund")
    assert_one_line_error(refused, "nonce 1 is used or cancelled: this offer is void")
    cli.state["files"] = (a, b, c)


def sent(cli: Cli, wallet: str) -> int:
    return int(cli.rpc("eth_getTransactionCount", [wallet, "latest"]), 16)


def test_cancel_skips_used_nonces_and_cancelled_offer_is_refused(cli: Cli) -> None:
    a, _, _ = cli.state["files"]
    tokens = cli.state["deployment"]["tokens"]
    factory = cli.state["deployment"]["factory"]
    # A's nonce was used by the accepted C: nothing left to cancel, nothing sent
    before = sent(cli, SELLER)
    nothing = cli("offer", "cancel", a, "--account", "test:2")
    assert_one_line_error(nothing, "nonce 1 already used or cancelled", "nothing left to cancel")
    assert sent(cli, SELLER) == before
    # a mix: only the unused nonce is cancelled, the used one reported
    cancelled = cli.ok("offer", "cancel", "--nonce", "1", "--nonce", "7", "--account", "test:2", "--json").json()
    assert cancelled["nonces"] == [7] and cancelled["already_used"] == [1]
    assert [e["name"] for e in cancelled["events"]] == ["NoncesCancelled"] and sent(cli, SELLER) == before + 1
    refused = cli("offer", "accept", a, "--account", "test:1", "--fund")
    assert_one_line_error(refused, "cannot accept this offer", "nonce 1 is used or cancelled")
    assert cli.allowance(tokens["USDT"], BUYER, factory) == 0  # refused before approving anything
    not_mine = cli("offer", "cancel", a, "--account", "test:1")
    assert_one_line_error(not_mine, f"made by {SELLER}, not by {BUYER}")


def test_used_nonces_and_existing_files_are_refused(cli: Cli) -> None:
    a, b, _ = cli.state["files"]
    files: Path = cli.state["dir"]
    # an explicit nonce already used (1: accepted) or cancelled (7) on chain
    for nonce in ("1", "7"):
        used = cli("offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--nonce", nonce)
        assert_one_line_error(used, f"nonce {nonce} already used or cancelled")
    # the seller's nonce in this negotiation is used: a counter with it could never be filled
    stale = cli("offer", "counter", b, "--terms", DVP_EXAMPLE, "--account", "test:2")
    assert_one_line_error(stale, "your nonce 1 in this negotiation", "already used or cancelled")
    # --out does not overwrite an existing file unless --force
    before = a.read_text()
    clash = cli("offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--out", a)
    assert_one_line_error(clash, f"{a} already exists", "--force")
    assert a.read_text() == before
    clash = cli("offer", "counter", a, "--terms", DVP_EXAMPLE, "--account", "test:1", "--out", b)
    assert_one_line_error(clash, f"{b} already exists")
    forced = files / "forced.json"
    forced.write_text("old")
    made = cli.ok(
        "offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--out", forced, "--force", "--json"
    )
    assert json.loads(forced.read_text())["offer_hash"] == made.json()["offer_hash"]


def test_outsider_open_maker_approve_and_own_public_offer(cli: Cli) -> None:
    private = cli.state["dir"] / "private.json"
    cli.ok("offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--out", private)
    tokens = cli.state["deployment"]["tokens"]
    factory = cli.state["deployment"]["factory"]
    # the maker has not approved its leg: human amounts, and the hint names the command that approves it
    short = cli("offer", "open", private, "--account", "test:1")
    assert_one_line_error(short, "has approved the factory for 0 WBTC", "needs 200 WBTC", "nexotc offer approve")
    # an outsider is told plainly it cannot accept; the offer is still shown (for its invited taker)
    outsider = cli("offer", "open", private, "--account", "test:5", "--json")
    assert outsider.code == 1
    shown = outsider.json()
    assert shown["account"] == OUTSIDER and shown["account_can_accept"] is False
    assert shown["problems"][0].startswith(f"{OUTSIDER} is not the invited taker of this offer and cannot accept it")
    assert {f["side"]: f["wallet"] for f in shown["funding"]}["taker"] == BUYER
    text = cli("offer", "open", private, "--account", "test:5")
    assert f"{OUTSIDER} is not the invited taker" in text.out and "to accept" in text.out
    # the maker approves exactly its leg of the existing offer (nothing signed anew); others may not
    other = cli("offer", "approve", private, "--account", "test:1")
    assert_one_line_error(other, f"{BUYER} is not the maker of this offer")
    approved = cli.ok("offer", "approve", private, "--account", "test:2", "--json").json()
    assert approved["approval_tx"] and approved["formatted"] == "200 WBTC"
    assert cli.allowance(tokens["WBTC"], SELLER, factory) == 200 * 10**8
    assert cli.ok("offer", "approve", private, "--account", "test:2", "--json").json()["already_approved"] is True
    assert cli.ok("offer", "open", private, "--account", "test:1", "--json").json()["acceptable"] is True
    # the maker of a public offer cannot accept it: said plainly, nothing sent
    public = cli.state["dir"] / "public.json"
    cli.ok("offer", "create", "--terms", DVP_EXAMPLE, "--public", "--account", "test:2", "--out", public)
    before = sent(cli, SELLER)
    own = cli("offer", "accept", public, "--account", "test:2", "--fund")
    assert_one_line_error(own, "the maker cannot accept its own offer")
    assert sent(cli, SELLER) == before
    own = cli("offer", "open", public, "--account", "test:2", "--json")
    assert own.code == 1 and "the maker cannot accept its own offer" in own.json()["problems"][0]


def test_agreement_is_signed_shown_and_audited_with_the_deal(cli: Cli) -> None:
    """An ESCROWED offer signs its agreement document (the off-chain BTC leg's asset and delivery) by hash:
    a changed document no longer verifies; a counter's changes list it; the deal made from the offer shows
    it; the audit bundle carries the offer and `audit verify` names a changed agreement."""
    files: Path = cli.state["dir"]
    a, b = files / "agr-A.json", files / "agr-B.json"
    made = cli.ok(
        "offer", "create", "--terms", ESCROWED_EXAMPLE, "--set", "BTC_ADDRESS=bc1q-buyer-1", "--account", "test:2",
        "--out", a, "--json",
    ).json()  # fmt: skip
    expected_legs = {"base": {"asset": "BTC", "decimals": 8}}
    assert made["agreement"]["off_chain"] == expected_legs
    assert made["agreement"]["terms"]["delivery"].startswith("bc1q-buyer-1, 1 confirmation")
    assert int(made["agreement_hash"], 16) != 0
    shown = cli.ok("offer", "open", a).out
    assert "bc1q-buyer-1" in shown and "10 BTC" in shown and "agreement" in shown

    # the same signature over another delivery address does not verify: one line, exit 1
    tampered = files / "agr-tampered.json"
    data = json.loads(a.read_text())
    data["agreement"]["terms"]["delivery"] = "bc1q-attacker"
    tampered.write_text(json.dumps(data))
    assert_one_line_error(cli("offer", "open", tampered), "the signature is not the maker's", "agreement document")
    countering = cli("offer", "counter", tampered, "--terms", ESCROWED_EXAMPLE, "--account", "test:1")
    assert_one_line_error(countering, "the offer countered does not verify", "the signature is not the maker's")

    # the buyer counters with its own address: the change is listed field by field
    countered = cli.ok(
        "offer", "counter", a, "--terms", ESCROWED_EXAMPLE, "--set", "BTC_ADDRESS=bc1q-buyer-2", "--account",
        "test:1", "--out", b, "--json",
    ).json()  # fmt: skip
    rows = {ch["field"]: (ch["old"], ch["new"]) for ch in countered["changes"]}
    assert {f for f in rows if f.startswith(("terms", "agreement"))} == {"agreement.terms.delivery"}
    assert rows["agreement.terms.delivery"][1].startswith("bc1q-buyer-2")

    # the buyer approves its leg, the seller accepts; the deal shows the agreement it was made under
    cli.ok("offer", "approve", b, "--account", "test:1")
    deal = cli.ok("offer", "accept", b, "--account", "test:2", "--json").json()["deal"]
    shown = cli.ok("deal", "show", deal, "--json").json()
    assert shown["offer"]["offer_hash"] == countered["offer_hash"] and shown["offer"]["found"] is True
    assert shown["offer"]["agreement"]["terms"]["delivery"].startswith("bc1q-buyer-2")
    assert shown["assets"]["base"] == {"label": "BTC", "decimals": 8, "off_chain": True}
    reported = next(d for d in cli.ok("report", "--json").json()["deals"] if d["deal"] == deal)
    base_leg = reported["legs"]["base"]
    assert (base_leg["symbol"], base_leg["decimals"], base_leg["on_chain"]) == ("BTC", 8, False)
    wrong = cli("deal", "show", deal, "--offer", a)
    assert_one_line_error(wrong, f"{made['offer_hash']} is not the offer that made deal")

    # the audit bundle takes the offer from the home; a changed agreement is a named mismatch
    bundle = files / "agr-bundle.json"
    exported = cli.ok("audit", "export", deal, "--out", bundle, "--json").json()
    assert exported["offer_hash"] == countered["offer_hash"] and exported["offer_included"] is True
    assert "OfferAccepted" in [e["name"] for e in json.loads(bundle.read_text())["events"]]
    assert cli.ok("audit", "verify", bundle, "--json").json()["ok"] is True
    altered = json.loads(bundle.read_text())
    altered["offer"]["agreement"]["terms"]["delivery"] = "bc1q-attacker"
    bundle.write_text(json.dumps(altered))
    failed = cli("audit", "verify", bundle, "--json")
    assert failed.code == 1
    offer_mismatches = [m for m in failed.json()["mismatches"] if m.startswith("offer:")]
    assert offer_mismatches[0] == (
        f"offer: {'0x' + SignedOffer.from_json(altered['offer']).offer.offer_hash().hex()} (agreement included) "
        f"is not the offer that made the deal ({countered['offer_hash']})"
    )
    assert offer_mismatches[1].startswith("offer: the signature is not the maker's") and len(offer_mismatches) == 2
    refused = cli("audit", "export", deal, "--offer", a, "--out", files / "agr-other.json")
    assert_one_line_error(refused, "is not the offer that made deal")
    assert not (files / "agr-other.json").exists()
    # a bundle without the offer is reported (not failed); a forged signature or domain is a mismatch
    altered = json.loads(bundle.read_text())
    altered["offer"]["agreement"]["terms"]["delivery"] = countered["agreement"]["terms"]["delivery"]
    for change, expected in (
        (lambda o: o.update(signature="00" * 65), "offer: the maker's signature is malformed"),
        (lambda o: o.update(factory="0x" + "33" * 20), "offer: signed for chain"),
    ):
        forged = json.loads(json.dumps(altered))
        change(forged["offer"])
        bundle.write_text(json.dumps(forged))
        mismatches = cli("audit", "verify", bundle, "--json").json()["mismatches"]
        assert [m for m in mismatches if m.startswith("offer:")][0].startswith(expected), mismatches
    del altered["offer"]
    bundle.write_text(json.dumps(altered))
    verified = cli.ok("audit", "verify", bundle, "--json").json()
    assert (verified["ok"], verified["offer"], verified["offer_hash"]) == (True, "absent", countered["offer_hash"])
    assert "which the bundle does not carry" in cli.ok("audit", "verify", bundle).out
    # a changed copy in the home store is not used, and said so; --terms never overrides the signed agreement
    stored = cli.home / "offers" / f"{countered['offer_hash']}.json"
    original = stored.read_text()
    changed_copy = json.loads(original)
    changed_copy["agreement"]["terms"]["delivery"] = "bc1q-attacker"
    stored.write_text(json.dumps(changed_copy))
    stale = cli.ok("deal", "show", deal, "--json").json()
    assert stale["offer"]["found"] is False and "was changed" in stale["warnings"][0]
    stored.write_text(original)
    eth = files / "agr-eth.yaml"
    eth.write_text(
        ESCROWED_EXAMPLE.read_text().replace("asset: BTC", "asset: ETH").replace("decimals: 8", "decimals: 2")
    )
    conflicting = cli.ok("deal", "show", deal, "--terms", eth, "--json").json()
    assert (
        conflicting["assets"]["base"]["label"] == "BTC"
        and "--terms names the base leg ETH" in conflicting["warnings"][0]
    )


def test_sibling_counters_share_the_makers_nonce_and_a_void_offer_is_not_approved(cli: Cli) -> None:
    """Two counters by the buyer to the same offer (two branches of one negotiation) share its nonce: once the
    seller accepts one, the other is void; `offer approve` of a void offer sends nothing."""
    files: Path = cli.state["dir"]
    a, b, c = files / "sib-A.json", files / "sib-B.json", files / "sib-C.json"
    cli.ok("offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--approve", "--out", a)

    def counter(out: Path, amount: str) -> dict:
        return cli.ok(
            "offer", "counter", a, "--terms", DVP_EXAMPLE, "--set", f"quote.amount={amount}", "--account", "test:1",
            "--out", out, "--json",
        ).json()  # fmt: skip

    first, second = counter(b, "12900000"), counter(c, "12800000")
    assert second["nonce"] == first["nonce"] and second["replaces"] == [first["offer_hash"]]
    cli.ok("offer", "approve", b, "--account", "test:1")
    deal = cli.ok("offer", "accept", b, "--account", "test:2", "--json").json()["deal"]
    assert deal
    refused = cli("offer", "accept", c, "--account", "test:2")
    assert_one_line_error(refused, f"nonce {first['nonce']} is used or cancelled")
    sent = int(cli.rpc("eth_getTransactionCount", [BUYER, "latest"]), 16)
    assert_one_line_error(cli("offer", "approve", c, "--account", "test:1"), "the offer is void", "nothing approved")
    assert int(cli.rpc("eth_getTransactionCount", [BUYER, "latest"]), 16) == sent


def test_accepting_an_offer_whose_answer_was_already_filled_is_refused(cli: Cli) -> None:
    """The seller fills the buyer's counter and keeps its own opening offer open: the buyer's client refuses to
    accept that opening offer too (a second deal), nothing sent; --keep-own-offers would accept it anyway."""
    files: Path = cli.state["dir"]
    d, e = files / "fill-D.json", files / "fill-E.json"
    cli.ok("offer", "create", "--terms", DVP_EXAMPLE, "--account", "test:2", "--approve", "--out", d)
    countered = cli.ok(
        "offer", "counter", d, "--terms", DVP_EXAMPLE, "--set", "quote.amount=12700000", "--account", "test:1",
        "--out", e, "--json",
    ).json()  # fmt: skip
    cli.ok("offer", "approve", e, "--account", "test:1")
    deal = cli.ok("offer", "accept", e, "--account", "test:2", "--keep-own-offers", "--json").json()["deal"]
    before = int(cli.rpc("eth_getTransactionCount", [BUYER, "latest"]), 16)
    refused = cli("offer", "accept", d, "--account", "test:1", "--fund")
    assert_one_line_error(
        refused,
        f"your offer {countered['offer_hash']} (nonce {countered['nonce']}) in this negotiation was accepted: "
        f"deal {deal}",
        "a second deal",
        "--keep-own-offers",
    )
    assert int(cli.rpc("eth_getTransactionCount", [BUYER, "latest"]), 16) == before


def test_offline_mistakes_print_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def check(argv: list[str | Path], fragment: str) -> None:
        code, _, err = in_process(capsys, *argv, "--home", tmp_path)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err

    check(["offer", "open", "nexotc://offer/AAAA"], "invite link: not a nexotc offer link")
    check(["offer", "diff", tmp_path / "missing.json", tmp_path / "missing.json"], "no offer file or invite link")
    (tmp_path / "bad.json").write_text('{"v": 99}')
    check(["offer", "invite", tmp_path / "bad.json"], "not a nexotc signed offer")
    # a thread whose second offer does not counter the first
    from eth_account import Account

    from nexotc_client.cli.offer import offer_document
    from nexotc_client.terms import Leg, Terms, Tranche

    keys = [Account.create() for _ in range(4)]
    terms = Terms.build(
        base=Leg("0x" + "11" * 20, 10),
        quote=Leg("0x" + "22" * 20, 20),
        buyer=keys[0].address,
        seller=keys[1].address,
        platform=keys[2].address,
        resolver=keys[3].address,
        tranches=[Tranche(10, 20, 2_000_000_000, 2_000_000_100)],
        funding_deadline=1_999_999_999,
        final_expiry=2_100_000_000,
    )
    factory = "0x" + "33" * 20
    first = Offer(terms, keys[1].address, 2_000_000_000, 1, taker=keys[0].address).sign(keys[1].key, 1, factory)
    unrelated = Offer(terms.with_changes(desk_fee_bps=5), keys[0].address, 2_000_000_000, 1, taker=keys[1].address)
    second = unrelated.sign(keys[0].key, 1, factory)
    for name, signed in (("1.json", first), ("2.json", second)):
        (tmp_path / name).write_text(json.dumps(offer_document(signed)))
    check(["offer", "thread", tmp_path / "1.json", tmp_path / "2.json"], "not one negotiation")
    code, out, _ = in_process(capsys, "offer", "diff", tmp_path / "1.json", tmp_path / "2.json", "--json")
    assert code == 0 and "terms.desk_fee_bps" in {c["field"] for c in json.loads(out)["changes"]}
    # an invite written to a file reads back
    assert in_process(capsys, "offer", "invite", tmp_path / "1.json", "--out", tmp_path / "link.txt")[0] == 0
    from nexotc_client.cli.offer import read_offer

    assert read_offer(str(tmp_path / "link.txt"))[0] == first


def test_thread_orders_offers_and_flags_a_maker_moving_past_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offers given in any order are put in thread order; an earlier offer whose maker countered later
    with ANOTHER nonce (both still fillable) is flagged with the command that withdraws it."""
    from eth_account import Account

    from nexotc_client.cli.offer import offer_document
    from nexotc_client.offers import order_offers
    from nexotc_client.terms import Leg, Terms, Tranche

    buyer, seller, platform, resolver = (Account.create() for _ in range(4))
    terms = Terms.build(
        base=Leg("0x" + "11" * 20, 10),
        quote=Leg("0x" + "22" * 20, 20),
        buyer=buyer.address,
        seller=seller.address,
        platform=platform.address,
        resolver=resolver.address,
        tranches=[Tranche(10, 20, 2_000_000_000, 2_000_000_100)],
        funding_deadline=1_999_999_999,
        final_expiry=2_100_000_000,
    )
    factory = "0x" + "33" * 20
    first = Offer(terms, seller.address, 2_000_000_000, 1, taker=buyer.address).sign(seller.key, 1, factory)
    second = first.offer.counter(
        terms.with_changes(desk_fee_bps=5), buyer.address, 2_000_000_000, 1, taker=seller.address
    ).sign(buyer.key, 1, factory)
    third = second.offer.counter(
        terms.with_changes(desk_fee_bps=3), seller.address, 2_000_000_000, 2, taker=buyer.address
    ).sign(seller.key, 1, factory)
    assert order_offers([third, first, second]) == [first, second, third]
    paths = []
    for name, signed in (("3.json", third), ("1.json", first), ("2.json", second)):
        (tmp_path / name).write_text(json.dumps(offer_document(signed)))
        paths.append(tmp_path / name)
    code, out, err = in_process(capsys, "offer", "thread", *paths, "--home", tmp_path / "home", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [o["nonce"] for o in data["offers"]] == [1, 1, 2] and data["chain_checked"] is False
    assert data["offers"][0]["superseded_by"] == ["0x" + third.offer.offer_hash().hex()]
    assert "another nonce (2)" in data["offers"][0]["warnings"][0]
    assert f"nexotc offer cancel --nonce 1 --account {seller.address}" in data["offers"][0]["warnings"][0]
    assert data["offers"][1]["warnings"] == [] and data["offers"][2]["warnings"] == []


# ------------------------------------------------- chain wrappers, in-process
@pytest.fixture(scope="module")
def nxf(desk: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The nexotc Factory of this module (not `nx`: that is conftest's function-scoped CLI runner, and ape's
    chain isolation, which tracks fixtures by name, mis-restores a module fixture sharing its name)."""
    return deploy_factory(desk, registry=Registry(tmp_path_factory.mktemp("nexotc") / "deployments.json"))


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(
    nxf: Any, wbtc: Any, usdt: Any, desk: Any, buyer: Any, seller: Any, resolver: Any, introducer: Any, attacker: Any
) -> None:
    """Set up module fixtures before the first test (ape's isolation snapshots)."""


def _private_offer(terms: Any, maker: Any, taker: str, now: int, nonce: int) -> Offer:
    return Offer(terms=terms, maker=maker.address, taker=taker, expiry=now + 600, nonce=nonce)


def test_expired_offer_is_refused_before_anything_is_sent(nxf, dvp_terms, wbtc, usdt, buyer, seller, chain, now):
    terms = dvp_terms()
    wbtc.mint(seller, terms.base.amount, sender=seller)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    signed = sign_offer(_private_offer(terms, seller, buyer.address, now, 7), seller, chain.chain_id, nxf.address)
    approve_leg(terms, "seller", seller, nxf.address)
    fresh = inspect_offer(nxf, signed)
    assert fresh.acceptable and fresh.maker_kind == "eoa" and fresh.taker == buyer.address
    assert fresh.deal == nxf.predict(terms, seller.address, signed.offer.offer_hash())
    chain.pending_timestamp = signed.offer.expiry + 1
    status = inspect_offer(nxf, signed)
    assert status.expired and "expired" in status.problems[0]
    from nexotc_client.spec import fmt_time

    assert f"the offer expired at {fmt_time(signed.offer.expiry)}" in status.problems[0]  # a UTC date, not an integer
    with pytest.raises(NexotcError, match="cannot accept this offer: the offer expired"):
        accept_offer(nxf, signed, buyer, fund=True)
    assert usdt.allowance(buyer, nxf.address) == 0 and not nonce_used(nxf, seller.address, 7)


def test_private_offer_accepted_by_its_taker_only(nxf, dvp_terms, wbtc, usdt, buyer, seller, attacker, chain, now):
    terms = dvp_terms()
    wbtc.mint(seller, terms.base.amount, sender=seller)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    signed = sign_offer(_private_offer(terms, seller, buyer.address, now, 8), seller, chain.chain_id, nxf.address)
    with pytest.raises(NexotcError, match=f"only {buyer.address} can accept"):
        require_invited(signed, attacker.address)
    with pytest.raises(NexotcError, match="has approved the factory for 0"):  # the maker has not approved yet
        accept_offer(nxf, signed, buyer)
    approve_leg(terms, "seller", seller, nxf.address)
    accepted = accept_offer(nxf, signed, buyer, fund=True)
    assert accepted.deal.phase() == Phase.ACTIVE and accepted.approval is not None
    assert accepted.deal.address == nxf.predict(terms, seller.address, signed.offer.offer_hash())
    assert nonce_used(nxf, seller.address, 8)


def test_contract_maker_is_verified_with_eip1271(nxf, escrowed_terms, project, usdt, buyer, desk, chain, now):
    wallet = desk.deploy(project.MockERC1271)
    terms = escrowed_terms(seller=wallet.address, markers=[wallet.address])
    offer = Offer(terms=terms, maker=wallet.address, taker=buyer.address, expiry=now + 600, nonce=1)
    signed = SignedOffer(offer, b"wallet-ok", chain.chain_id, nxf.address)
    with pytest.raises(NexotcError, match="is a contract and does not accept this signature"):
        inspect_offer(nxf, signed)
    wallet.set_valid(offer.digest(chain.chain_id, nxf.address), b"wallet-ok", True, sender=desk)
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    status = inspect_offer(nxf, signed)
    assert status.maker_kind == "contract" and status.acceptable
    assert [f.side for f in status.funding] == ["taker"]  # the maker delivers off chain
    accepted = accept_offer(nxf, signed, buyer, fund=True)
    assert accepted.deal.terms.seller == wallet.address and accepted.deal.phase() == Phase.ACTIVE


def test_public_offer_and_foreign_domains(nxf, dvp_terms, wbtc, usdt, buyer, seller, chain, now):
    terms = dvp_terms()
    parties = tuple(Party(ZERO_ADDRESS, p.roles, p.bps) if p.wallet == buyer.address else p for p in terms.parties)
    open_terms = replace(terms, parties=parties)
    offer = Offer(terms=open_terms, maker=seller.address, expiry=now + 600, nonce=9)
    signed = sign_offer(offer, seller, chain.chain_id, nxf.address)
    wbtc.mint(seller, terms.base.amount, sender=seller)
    approve_leg(terms, "seller", seller, nxf.address)
    anyone = inspect_offer(nxf, signed)
    assert anyone.public and anyone.taker is None and anyone.deal is None and anyone.acceptable
    assert [(f.side, f.wallet) for f in anyone.funding] == [("maker", seller.address), ("taker", None)]
    usdt.mint(buyer, terms.quote.amount, sender=buyer)
    accepted = accept_offer(nxf, signed, buyer)
    assert accepted.deal.terms.buyer == buyer.address and accepted.deal.phase() == Phase.FUNDING
    with pytest.raises(NexotcError, match=f"signed for chain {chain.chain_id + 1}"):
        check_domain(replace(signed, chain_id=chain.chain_id + 1), nxf)
    with pytest.raises(NexotcError, match="not the one recorded here"):
        check_domain(replace(signed, factory="0x" + "44" * 20), nxf)
    forged = replace(signed, signature=sign_offer(offer, seller, chain.chain_id + 1, nxf.address).signature)
    with pytest.raises(NexotcError, match="the signature is not the maker's"):
        inspect_offer(nxf, forged)
