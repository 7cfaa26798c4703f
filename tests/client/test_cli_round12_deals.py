"""Deal and multisig CLI defects found by exploratory testing (round 12), each fixed and held here.

A. `deal release` says whether the tranche was paid (a release signer's call before then only records its
   signature): `released`, `signed` and what is `missing` in --json, exit 0 either way.
B. `deal create --fund` of a gated deal names a flow that works: a proof for the address the deal will have
   when that address is fixed (a salt and absolute times), else create, prove for the created deal, fund; each
   with a complete `kyc prove` command line (placeholders for the credential, secret and proof files).
C. `deal cancel | expire | refund | mark | return-deposit` name the time or the cause and the way out before
   anything is sent, instead of the contract's bare revert.
D. `msig sign` refuses its existing default signature file without --force, as it does an --out file.
E. `msig exec` prints the amounts of deal and token events with their symbols, as the deal commands do.

One anvil for the module (factory with a KYC registry, policy #1, the buyer's credential); the tests that move
the chain's time run last."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, assert_one_line_error, kyc_node_cli
from eth_abi import encode

ESCROWED = ROOT / "examples" / "escrowed-btc-usdt.yaml"
DVP = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
ADMIN, BUYER, SELLER, ISSUER = "test:0", "test:1", "test:2", "test:9"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with kyc_node_cli(tmp_path_factory.mktemp("nexotc-round12"), ADMIN, ISSUER) as env:
        yield env


def _wallet(ref: str) -> str:
    from nexotc_client.cli.app import wallet_address

    return wallet_address(ref)


def _block(c: Cli) -> int:
    return int(c.rpc("eth_blockNumber", []), 16)


def _iso(ts: int) -> str:
    """A time as the CLI prints it (UTC)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _flat(text: str) -> str:
    """Human output with rich's line wrapping undone."""
    return " ".join(text.split())


def _escrowed(c: Cli, salt: str, fund: bool = True) -> dict[str, Any]:
    """An ESCROWED deal (BTC off chain, 650,000 USDT escrowed by the buyer, who approves and releases)."""
    argv = ["deal", "create", "--terms", ESCROWED, "--account", BUYER, "--salt", salt, "--json"]
    return c.ok(*argv, *(["--fund"] if fund else [])).json()


def _terms(c: Cli, deal: str) -> dict[str, Any]:
    return c.ok("deal", "show", deal, "--json").json()["terms"]


# ------------------------------------------------------------------ A. release says whether it paid
def test_release_says_whether_the_tranche_was_paid_and_what_it_still_needs(env: dict[str, Any]) -> None:
    c = env["cli"]
    deal = _escrowed(c, "0x1201")["deal"]
    c.ok("deal", "mark", deal, "0", "--evidence", "text:btc-tx-0", "--account", SELLER)
    buyer = _wallet(BUYER)

    # the buyer is the release signer and an approver: its release records its signature, nothing is paid
    signed = c("deal", "release", deal, "0", "--account", BUYER, "--json")
    assert signed.code == 0, signed.err  # the transaction did what it could: scripts read `released`
    data = signed.json()
    assert data["released"] is False and data["signed"] is True, data
    assert [e["name"] for e in data["events"]] == ["Signed"]
    assert data["missing"][0] == f"needs 1 more approval(s) from the buyer {buyer}", data["missing"]
    assert data["missing"][1].startswith("or, undisputed, releasable by anyone from "), data["missing"]
    assert data["tranche"] == 0 and data["deal"] == deal

    # the same for humans: not paid out, and what it still needs, read from the chain after the transaction
    # (tranche 1 also waits for its unlock time)
    c.ok("deal", "mark", deal, "1", "--evidence", "text:btc-tx-1", "--account", SELLER)
    unlock = _terms(c, deal)["tranches"][1]["unlock_time"]
    human = c("deal", "release", deal, "1", "--account", BUYER)
    assert human.code == 0, human.err
    out = _flat(human.out)
    assert f"signed tranche 1 {deal}: NOT released yet" in out, out
    assert "Signed(tranche=1" in out and "Released(" not in out, out
    assert f"tranche 1 not paid out (signature 1 of 1 recorded): tranche 1 unlocks {_iso(unlock)} (in " in out, out
    assert f"; needs 1 more approval(s) from the buyer {buyer}; or, undisputed, releasable by anyone from " in out
    assert "release tranche" not in out  # the old title, which read as a success

    # once approved, the release pays it out and says so
    c.ok("deal", "approve", deal, "0", "--account", BUYER)
    paid = _flat(c.ok("deal", "release", deal, "0", "--account", BUYER).out)
    assert f"released tranche 0 {deal}" in paid and "quote_amount=325,000 USDT" in paid, paid
    assert "not paid out" not in paid and "NOT released" not in paid
    other = _escrowed(c, "0x1206")["deal"]
    c.ok("deal", "mark", other, "0", "--evidence", "text:btc-tx-0", "--account", SELLER)
    c.ok("deal", "approve", other, "0", "--account", BUYER)
    data = c.ok("deal", "release", other, "0", "--account", BUYER, "--json").json()
    assert data["released"] is True and data["signed"] is True and data["missing"] == [], data
    assert [e["name"] for e in data["events"]] == ["Signed", "Released"]
    # a release that would do nothing is still refused before sending, naming what is missing
    assert_one_line_error(
        c("deal", "release", deal, "1", "--account", BUYER), "release: tranche 1 unlocks", "needs 1 more approval(s)"
    )


# ------------------------------------------------------------------ B. the gated --fund hint is a working flow
def test_gated_create_fund_hints_a_flow_that_works(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    buyer = _wallet(BUYER)
    gated = ["deal", "create", "--terms", DVP, "--set", "compliance.policy=1", "--set", "tranches.count=1"]

    # random salt and relative times: no address to prove for before the deal exists; the hint says so, twice alike
    before = _block(c)
    first, second = (c(*gated, "--account", BUYER, "--fund") for _ in range(2))
    for refused in (first, second):
        assert_one_line_error(
            refused,
            f"--fund: the buyer {buyer} has no current attestation of policy #1 in the new deal's scope",
            "no proof can be made before the deal exists",
            "a random salt (no --salt",
            "relative times (now, +1d, ...)",
            "Create it without --fund, then prove for it and fund it",
            "`nexotc kyc prove --deal DEAL --policy 1 --credential CREDENTIAL.json --secret SECRET.json "
            f"--out PROOF.json --account {buyer}`",
            f"`nexotc kyc submit PROOF.json --account {buyer}`",
            f"`nexotc deal fund DEAL --account {buyer}`",
            "nothing was sent",
        )
        assert "kyc prove --deal 0x" not in refused.err  # no address that will never exist
    assert first.err == second.err
    assert _block(c) == before

    # a fixed salt and absolute times: the address is known, and the hint proves for exactly that address
    now = int(c.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    fixed = [*gated, "--salt", "0x1202", "--set", f"timers.funding_deadline={now + 86_400}",
             "--set", f"tranches.first_unlock={now + 600}"]  # fmt: skip
    predicted = c.ok(*fixed, "--dry-run", "--account", BUYER, "--json").json()["deal"]
    refused = c(*fixed, "--account", BUYER, "--fund")
    assert_one_line_error(
        refused,
        f"(the deal would be {predicted}, fixed by the salt and the absolute times",
        f"`nexotc kyc prove --deal {predicted} --valid-for ",
        f"--policy 1 --credential CREDENTIAL.json --secret SECRET.json --out PROOF.json --account {buyer}`",
        "then run this `deal create --fund` again",
    )

    # the flow of the first hint, followed literally: create without --fund (which prints the same steps), prove
    # for the created deal, submit, fund
    created = c.ok(*gated, "--account", BUYER, "--json").json()
    deal = created["deal"]
    [prove_step] = [s for s in created["next"] if s.startswith("the buyer proves")]
    assert f"--deal {deal} --policy 1 --credential CREDENTIAL.json" in prove_step, created["next"]
    assert f"the buyer funds: `nexotc deal fund {deal} --account {buyer}`" in created["next"], created["next"]
    hint = first.err.split("then prove for it and fund it: ")[1]
    commands = re.findall(r"`([^`]*)`", hint)[:3]
    assert [cmd.split()[:3] for cmd in commands] == [
        ["nexotc", "kyc", "prove"],
        ["nexotc", "kyc", "submit"],
        ["nexotc", "deal", "fund"],
    ]
    files = {"DEAL": deal, "CREDENTIAL.json": str(d / "buyer.cred"), "SECRET.json": str(d / "buyer.secret"),
             "PROOF.json": str(d / "round12.proof")}  # fmt: skip
    for command in commands:
        argv = [files.get(word, word) for word in command.split()]
        assert argv[0] == "nexotc"
        ran = c(*argv[1:], timeout=300)
        assert ran.code == 0, (command, ran.err)
    shown = c.ok("deal", "show", deal, "--json").json()
    assert shown["status"]["quote"]["funded"] is True, shown["status"]  # the buyer's leg, once it proved


# ------------------------------------------------------------------ C. named before sending, with the way out
def test_cancel_expire_refund_mark_and_return_deposit_name_the_time_and_the_way_out(env: dict[str, Any]) -> None:
    c = env["cli"]
    buyer = _wallet(BUYER)
    unfunded = _escrowed(c, "0x1203", fund=False)["deal"]
    funded = _escrowed(c, "0x1204")["deal"]
    t_unfunded, t_funded = _terms(c, unfunded), _terms(c, funded)
    before = _block(c)

    assert_one_line_error(
        c("deal", "cancel", unfunded, "--account", "test:5"),
        f"cancel: funding is open until {_iso(t_unfunded['funding_deadline'])} (in ",
        "the buyer's quote leg can still be deposited (`nexotc deal fund",
    )
    assert_one_line_error(
        c("deal", "cancel", funded, "--account", "test:5"),
        "cancel: the deal is funded", f"`nexotc deal refund {funded} T`",
        f"from the final expiry, {_iso(t_funded['final_expiry'])}", f"`nexotc deal expire {funded}`",
    )  # fmt: skip
    assert_one_line_error(
        c("deal", "expire", funded, "--account", "test:5"),
        f"expire: the deal's final expiry is {_iso(t_funded['final_expiry'])} (in ",
        "it can be expired only from then",
    )
    assert_one_line_error(
        c("deal", "expire", unfunded, "--account", "test:5"),
        "an unfunded deal is cancelled after its funding deadline", f"`nexotc deal cancel {unfunded}`",
    )  # fmt: skip
    assert_one_line_error(
        c("deal", "refund", funded, "0", "--account", "test:5"),
        f"refund: tranche 0's deadline is {_iso(t_funded['tranches'][0]['deadline'])} (in ",
        "a pending tranche is refunded only after it", f"the seller {_wallet(SELLER)} can still mark it delivered",
    )  # fmt: skip
    assert_one_line_error(
        c("deal", "refund", unfunded, "0", "--account", "test:5"),
        "refund: the deal is not funded yet (the buyer's quote leg not deposited)",
    )
    assert _block(c) == before  # nothing was sent
    # a deposit that can still fund the leg is the funder's alone to take back
    usdt = env["deployment"]["tokens"]["USDT"]
    address = c.ok("deal", "deposit-address", unfunded, "--funder", "buyer", "--json").json()["deposit_address"]
    c.send({"from": buyer, "to": usdt, "data": "0xa9059cbb" + encode(["address", "uint256"], [address, 7]).hex()})
    before = _block(c)
    assert_one_line_error(
        c("deal", "return-deposit", unfunded, "--funder", "buyer", "--account", "test:5"),
        f"return-deposit: what {address} holds can still fund the quote leg (funding is open until "
        f"{_iso(t_unfunded['funding_deadline'])}",
        "so only the funder may take it back now",
        f"`nexotc deal return-deposit {unfunded} --funder {buyer} --account {buyer}`",
        "anyone may once the leg is funded or funding closes",
    )
    assert_one_line_error(
        c("deal", "return-deposit", funded, "--funder", "buyer", "--account", "test:5"),
        "return-deposit: nothing to return: ", "holds no USDT",
    )  # fmt: skip
    assert _block(c) == before
    # marked twice: the tranche's state and what it waits for
    c.ok("deal", "mark", funded, "0", "--evidence", "text:btc-0", "--account", SELLER)
    before = _block(c)
    assert_one_line_error(
        c("deal", "mark", funded, "0", "--evidence", "text:btc-0", "--account", SELLER),
        "mark: tranche 0 is marked already (a tranche is marked once): it was marked delivered at ",
        f"`nexotc deal release {funded} 0` once its conditions hold (needs 1 more approval(s) from the buyer",
        "or contested with `nexotc deal dispute`",
    )
    assert_one_line_error(
        c("deal", "refund", funded, "0", "--account", "test:5"),
        "refund: tranche 0 is marked, and only a pending tranche is refunded after its deadline",
    )
    assert _block(c) == before
    c.ok("deal", "dispute", funded, "0", "--reason", "short", "--account", BUYER)
    before = _block(c)
    assert_one_line_error(
        c("deal", "mark", funded, "0", "--evidence", "text:btc-0", "--account", SELLER),
        "mark: tranche 0 is disputed: it was disputed at ", "the resolver splits it (`nexotc deal resolve`)",
        f"anyone applies the default outcome (refund) with `nexotc deal settle {funded} 0`",
    )  # fmt: skip
    assert _block(c) == before  # nothing was sent
    # the funder itself may take its deposit back at any time (the contract's rule, unchanged)
    back = c.ok("deal", "return-deposit", unfunded, "--funder", "buyer", "--account", BUYER, "--json").json()
    assert [e["name"] for e in back["events"]] == ["DepositReturned"]


# ------------------------------------------------------------------ D. msig sign's default file
def _msig(c: Cli) -> str:
    created = c.ok("msig", "create", "--owner", BUYER, "--owner", SELLER, "--threshold", "1", "--account", ADMIN,
                   "--json")  # fmt: skip
    return created.json()["wallet"]


def test_msig_sign_refuses_to_overwrite_its_default_signature_file(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    wallet = _msig(c)
    proposal = d / "r12.json"
    c.ok("msig", "propose", wallet, "--to", "test:5", "--out", proposal)
    first = c.ok("msig", "sign", proposal, "--account", BUYER, "--json").json()
    default = Path(first["file"])
    assert default == d / f"r12.{_wallet(BUYER)[:10].lower()}.sig.json"
    kept = default.read_text()
    assert_one_line_error(
        c("msig", "sign", proposal, "--account", BUYER), f"{default} exists", "without --force", "nothing written"
    )
    assert default.read_text() == kept
    # another signer's default file is another file; --force overwrites
    assert Path(c.ok("msig", "sign", proposal, "--account", SELLER, "--json").json()["file"]) != default
    again = c.ok("msig", "sign", proposal, "--account", BUYER, "--force", "--json").json()
    assert again["file"] == str(default) and json.loads(default.read_text())["signer"] == _wallet(BUYER)
    assert "default PROPOSAL.<signer>.sig.json" in _flat(c.ok("msig", "sign", "--help").out)


# ------------------------------------------------------------------ E. msig exec shows token amounts
def test_msig_exec_shows_deal_and_token_amounts_with_symbols(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    wallet = _msig(c)
    tokens = env["deployment"]["tokens"]
    deal = c.ok("deal", "create", "--terms", DVP, "--account", SELLER, "--fund", "--salt", "0x1205", "--json")
    deal = deal.json()["deal"]
    c.ok("deal", "fund", deal, "--account", BUYER)
    mint = "0x40c10f19" + encode(["address", "uint256"], [wallet, 5_000_000]).hex()  # the mock's mint(to, amount)
    proposal = d / "r12-exec.json"
    c.ok("msig", "propose", wallet, "--to", tokens["USDT"], "--data", mint, "--call", "USDT.approve(test:8, 1500000)",
         "--call", f"{deal}.release(0)", "--out", proposal)  # fmt: skip
    executed = c("msig", "exec", proposal, "--sign-with", BUYER)
    assert executed.code == 0, executed.err
    out = _flat(executed.out)
    assert "Transfer(sender=0x000000…0000" in out and "value=5 USDT)" in out, out
    assert "Approval(" in out and "value=1.5 USDT)" in out, out
    assert "value=50 WBTC)" in out, out  # the deal pays the buyer its base tranche
    assert "base_amount=50 WBTC, quote_amount=3,250,000 USDT, fees=11,375 USDT)" in out, out
    assert "value=5000000" not in out and "base_amount=5000000000" not in out
    # --json keeps raw integers
    again = d / "r12-exec-2.json"
    c.ok("msig", "propose", wallet, "--to", tokens["USDT"], "--data", mint, "--out", again)
    data = c.ok("msig", "exec", again, "--sign-with", BUYER, "--json").json()
    assert [(e["name"], e["args"]["value"]) for e in data["events"] if e["name"] == "Transfer"] == [
        ("Transfer", 5_000_000)
    ]


# ------------------------------------------------------------------ C, after the times pass (moves the chain's time)
def test_after_the_deadlines_the_named_ways_out_work(env: dict[str, Any]) -> None:
    c = env["cli"]
    buyer = _wallet(BUYER)
    unfunded = _escrowed(c, "0x1207", fund=False)["deal"]
    funded = _escrowed(c, "0x1208")["deal"]
    usdt = env["deployment"]["tokens"]["USDT"]
    address = c.ok("deal", "deposit-address", unfunded, "--funder", "buyer", "--json").json()["deposit_address"]
    c.send({"from": buyer, "to": usdt, "data": "0xa9059cbb" + encode(["address", "uint256"], [address, 9]).hex()})
    terms = _terms(c, funded)
    now = int(c.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    c.rpc("evm_increaseTime", [terms["tranches"][0]["deadline"] - now + 60])  # past tranche 0's deadline
    c.rpc("evm_mine", [])

    before = _block(c)
    assert_one_line_error(
        c("deal", "mark", funded, "0", "--evidence", "text:late", "--account", SELLER),
        f"mark: tranche 0's delivery deadline passed at {_iso(terms['tranches'][0]['deadline'])} (",
        f"only refunded to its funder (`nexotc deal refund {funded} 0`, anyone)",
    )
    assert _block(c) == before
    refunded = c.ok("deal", "refund", funded, "0", "--account", "test:5", "--json").json()
    assert [e["name"] for e in refunded["events"]] == ["Refunded"]
    # funding closed: anyone returns the deposit, and the unfunded deal is cancelled
    back = c.ok("deal", "return-deposit", unfunded, "--funder", "buyer", "--account", "test:5", "--json").json()
    assert [(e["name"], e["args"]["amount"]) for e in back["events"]] == [("DepositReturned", 9)]
    cancelled = c.ok("deal", "cancel", unfunded, "--account", "test:5", "--json").json()
    assert [e["name"] for e in cancelled["events"]] == ["Cancelled"]
    assert_one_line_error(
        c("deal", "cancel", unfunded, "--account", "test:5"), f"cancel: the deal {unfunded} is already cancelled"
    )
