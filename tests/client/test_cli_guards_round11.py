"""Defects found by exploratory testing (round 11), each fixed and held here.

Offline, in process: typed decimals are plain ASCII numbers in the desk's range (below 10**24, at most 18
decimals) and durations at most a year, refused before anything is saved; quotes stored before those bounds
(a 1e400 counter, a TTL past year 9999) still render; a quote whose TTL passed shows as expired without being
written; a proof file's field that is not a whole number is named; a hedge save writes only the child orders
that changed (SQLite, rows counted with SQLAlchemy's flush events), and a save that fails forgets nothing.

On a real anvil: `recon` matches the settled tranches of an off-chain-base lock (their base quantity is the
terms') and still breaks on a real mismatch; `msig propose` refuses out-of-range values, nonces, token amounts,
deadlines and a missing --out directory in one line, writing nothing, and says its batch order; `msig exec |
sign` name a directory given as a file; `kyc status` names a policy that does not exist and says that a deal is
not gated; `audit export` shows attestation expiries in UTC."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clikit import ROOT, Cli, Result, assert_one_line_error, kyc_node_cli
from sqlalchemy import event

from nexotc_client.desk.db import ChildOrderRow, Database
from nexotc_client.desk.models import (
    ChildOrder,
    Fill,
    HedgePlan,
    HedgeState,
    HedgeStatus,
    OrderStatus,
    QuoteState,
    Side,
)
from nexotc_client.desk.store import DeskStore, FillConflictError

DVP_EXAMPLE = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
RANGE = "out of range (at most 24 digits before the decimal point and 18 after)"
UINT256 = 2**256


def _store(home: Path) -> DeskStore:
    return DeskStore(Database.open(f"sqlite:///{home / 'desk.db'}"))


# ------------------------------------------------------------------ offline: typed decimals and durations
def test_typed_decimals_are_plain_ascii_numbers_in_range(nx) -> None:
    new = ("rfq", "new", "--client", "acme", "--side", "sell", "--id", "R1", "--size")
    for size, why in (
        ("1e400", RANGE),
        ("1" * 53, RANGE),
        ("1000000000000000000000000", RANGE),  # 10**24
        ("1e-19", RANGE),
        ("1_000", "is not a plain decimal number (ASCII digits 0-9, no '_' separators)"),
        ("١٠", "is not a plain decimal number"),  # Arabic-Indic digits: 10
        ("１０", "is not a plain decimal number"),  # full-width digits
    ):
        assert_one_line_error(nx(*new, size), f"size: {size!r} ", why)
    assert not (nx.home / "desk.db").exists()  # nothing was recorded
    assert nx(*new, "999999999999999999999999", "--json").json()["size"] == "999999999999999999999999"
    # match book sizes and prices go through the same parser
    offer = ("match", "offer", "--maker", "0x" + "ab" * 20, "--side", "sell", "--id", "O1", "--size", "1-5")
    assert_one_line_error(nx(*offer, "--price", "1e400"), "price: '1e400' is " + RANGE)
    assert_one_line_error(nx(*offer, "--price", "6_5000"), "price: '6_5000' is not a plain decimal number")


def test_an_out_of_range_counter_saves_nothing_and_a_stored_one_still_renders(nx) -> None:
    assert nx("rfq", "new", "--client", "acme", "--side", "sell", "--size", "2.5", "--id", "R2").code == 0
    assert nx("quote", "new", "R2", "--ttl", "1h").code == 0
    assert_one_line_error(nx("quote", "counter", "R2-q1", "--price", "1e400"), "price: '1e400' is " + RANGE)
    store = _store(nx.home)
    assert store.get_quote("R2-q1").state is QuoteState.QUOTED  # not countered
    # the largest counter in range renders to cents, and the desk's refusal names it
    top = "999999999999999999999999"
    assert "client counter 999,999,999,999,999,999,999,999.00" in nx("quote", "counter", "R2-q1", "--price", top).out
    assert_one_line_error(nx("quote", "accept", "R2-q1"), "bps through the desk's price", f"--override-price {top}")

    # a counter recorded before counters were bounded: every read renders it, accept refuses it, reject ends it
    q = store.get_quote("R2-q1")
    q.counter_price = Decimal("1e400")
    store.save_quote(q)
    for argv in (("quote", "show", "R2-q1"), ("quote", "list"), ("rfq", "show", "R2"), ("quote", "show", "R2-q1")):
        shown = nx(*argv)
        assert shown.code == 0 and "Traceback" not in shown.err + shown.out, shown.err
    assert "client counter 1.00E+400" in nx("quote", "show", "R2-q1").out
    assert nx("quote", "show", "R2-q1", "--json").json()["counter_price"] == "1" + "0" * 400
    assert_one_line_error(nx("quote", "accept", "R2-q1"), "the counter 1.00E+400 is out of range", "reject it")
    assert store.get_quote("R2-q1").state is QuoteState.COUNTERED
    assert nx("quote", "reject", "R2-q1", "--json").json()["state"] == "rejected"


def test_durations_are_at_most_a_year_and_stored_times_render(nx) -> None:
    assert nx("rfq", "new", "--client", "acme", "--side", "buy", "--size", "1", "--id", "R3").code == 0
    for ttl, why in (
        ("99999999999d", "ttl: '99999999999d' is too long (at most 365d)"),
        ("366d", "ttl: '366d' is too long (at most 365d)"),
        ("31536000001ms", "is too long (at most 365d)"),
        ("١٠s", "ttl: '١٠s' is not a duration"),
    ):
        assert_one_line_error(nx("quote", "new", "R3", "--ttl", ttl), why)
    assert nx("quote", "list", "--json").json() == []  # no quote was saved
    made = nx("quote", "new", "R3", "--ttl", "365d", "--json").json()
    assert made["ttl_ms"] == 365 * 86_400_000
    # other durations are bounded alike (a settlement window)
    offer = ("match", "offer", "--maker", "0x" + "ab" * 20, "--side", "sell", "--size", "1", "--price", "65000")
    assert_one_line_error(nx(*offer, "--window", "400d"), "window: '400d' is too long (at most 365d)")

    # a quote stored before TTLs were bounded expires past year 9999: shown, never a crash
    store = _store(nx.home)
    q = store.get_quote(made["quote_id"])
    q.ttl_ms = 99_999_999_999 * 86_400_000
    store.save_quote(q)
    shown = nx("quote", "show", q.quote_id)
    assert shown.code == 0 and "(expires after 9999-12-31T23:59:59.999Z)" in " ".join(shown.out.split()), shown.err
    assert nx("quote", "show", q.quote_id, "--json").json()["ttl_ms"] == q.ttl_ms
    assert nx("rfq", "show", "R3").code == 0 and nx("quote", "list").code == 0


def test_a_quote_past_its_ttl_shows_as_expired_without_being_written(nx) -> None:
    assert nx("rfq", "new", "--client", "acme", "--side", "buy", "--size", "1", "--id", "R5").code == 0
    assert nx("quote", "new", "R5", "--ttl", "50ms").code == 0
    assert nx("quote", "new", "R5", "--ttl", "1h").code == 0  # a live one beside it
    time.sleep(0.1)
    shown = nx("quote", "show", "R5-q1")
    assert shown.out.startswith("quote R5-q1 (expired) ") and "its TTL passed (recorded as quoted" in shown.out
    data = nx("quote", "show", "R5-q1", "--json").json()
    assert (data["state"], data["effective_state"]) == ("quoted", "expired")
    listed = nx("quote", "list", "--json").json()
    assert [(q["quote_id"], q["state"], q["effective_state"]) for q in listed] == [
        ("R5-q1", "quoted", "expired"),
        ("R5-q2", "quoted", "quoted"),
    ]
    assert "R5-q1  expired  buy 1 @" in nx("quote", "list").out
    assert "R5-q2  quoted  buy 1 @" in nx("quote", "list").out
    assert "R5-q1  expired   price" in nx("rfq", "show", "R5").out
    assert [q["effective_state"] for q in nx("rfq", "show", "R5", "--json").json()["quotes"]] == ["expired", "quoted"]
    assert _store(nx.home).get_quote("R5-q1").state is QuoteState.QUOTED  # reading wrote nothing
    # acting on it records the expiry, as before
    assert_one_line_error(nx("quote", "accept", "R5-q1"), "expired")
    assert _store(nx.home).get_quote("R5-q1").state is QuoteState.EXPIRED
    assert nx("quote", "show", "R5-q1", "--json").json()["effective_state"] == "expired"


def test_a_proof_file_field_that_is_not_a_whole_number_is_named(nx, tmp_path: Path) -> None:
    proof = {
        "kind": "proof",
        "policy_id": "x",
        "wallet": "0x" + "ab" * 20,
        "scope": "1",
        "now": 1,
        "valid_until": 2,
        "proof": {},
        "private": {"credential": {}, "salts": {"jurisdiction": "5"}},
    }
    path = tmp_path / "p.proof"
    for field, value, named in (
        ("policy_id", "x", "its policy_id 'x' is not a whole number"),
        ("valid_until", 1.5, "its valid_until 1.5 is not a whole number"),
        ("scope", "٣", "its scope '٣' is not a whole number"),
        ("salts", {"jurisdiction": "1e3"}, "its salt of jurisdiction '1e3' is not a whole number"),
    ):
        broken = json.loads(json.dumps(proof))
        if field == "salts":
            broken["policy_id"] = 1
            broken["private"]["salts"] = value
        else:
            broken.update({"policy_id": 1, field: value})
        path.write_text(json.dumps(broken))
        for argv in (("kyc", "submit", path, "--account", "test:1"),
                     ("kyc", "disclose", path, "--field", "jurisdiction", "--out", tmp_path / "d.json")):  # fmt: skip
            refused = nx(*map(str, argv))
            assert_one_line_error(refused, f"proof file {path} is malformed: {named}")
            assert "invalid literal" not in refused.err
    assert not (tmp_path / "d.json").exists()


# ------------------------------------------------------------------ offline: hedge saves
def _order(i: int) -> ChildOrder:
    return ChildOrder(f"O{i}", "H-1", "binance", "BTC/USDT", Side.BUY, Decimal("0.01"), None, i, OrderStatus.NEW,
                      clip=i, client_order_id=f"H-1-{i}")  # fmt: skip


def _fill(i: int, price: str = "65000") -> Fill:
    return Fill(f"T{i}", f"O{i}", "binance", Side.BUY, Decimal("0.01"), Decimal(price), Decimal("0.1"), "USDT", i)


@pytest.fixture
def order_writes() -> Iterator[list[str]]:
    """The child_orders rows each flush inserts or updates (their client order ids), as SQLAlchemy writes them."""
    written: list[str] = []

    def record(_mapper: Any, _connection: Any, row: ChildOrderRow) -> None:
        written.append(row.client_order_id)

    event.listen(ChildOrderRow, "before_insert", record)
    event.listen(ChildOrderRow, "before_update", record)
    yield written
    event.remove(ChildOrderRow, "before_insert", record)
    event.remove(ChildOrderRow, "before_update", record)


def test_a_hedge_save_writes_only_the_orders_that_changed(tmp_path: Path, order_writes: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    store = DeskStore(Database.open(url))
    state = HedgeState(HedgePlan("H-1", "BTC/USDT", Side.BUY, Decimal(5), 500, 1_000, 0), HedgeStatus.RUNNING)
    state.orders = [_order(i) for i in range(300)]
    store.save_hedge(state)
    assert len(order_writes) == 300  # the first save writes them all
    for n in range(300, 305):  # a TWAP step: the last order fills, a new one goes out
        last = state.orders[-1]
        last.status, last.filled, last.venue_filled, last.notional = OrderStatus.FILLED, last.size, last.size, 650
        state.fills.append(_fill(n - 1))
        state.orders.append(_order(n))
        order_writes.clear()
        store.save_hedge(state)
        assert sorted(order_writes) == sorted([f"H-1-{n - 1}", f"H-1-{n}"])
    order_writes.clear()
    store.save_hedge(state)
    assert order_writes == []  # nothing changed: no order row written

    # a save that fails is rolled back whole and forgets nothing: the next one writes the order it did not
    state.orders[7].status = OrderStatus.CANCELED
    state.fills.append(_fill(303, price="1"))  # the venue's trade T303 stored already at another price
    with pytest.raises(FillConflictError):
        store.save_hedge(state)
    state.fills.pop()
    order_writes.clear()
    store.save_hedge(state)
    assert order_writes == ["H-1-7"]

    # a process that resumes (a new store loading the hedge) writes only what changes after the load ...
    resumed = DeskStore(Database.open(url))
    again = resumed.load_hedge("H-1")
    assert [(o.client_order_id, o.status, o.filled) for o in again.orders] == [
        (o.client_order_id, o.status, o.filled) for o in state.orders
    ]
    assert len(again.fills) == 5 and again.mids == state.mids
    again.orders[-1].status = OrderStatus.PARTIALLY_FILLED
    again.mids.append((9, Decimal("65001.5")))
    order_writes.clear()
    resumed.save_hedge(again)
    assert order_writes == ["H-1-304"]
    # ... and one that never loaded it writes every order (it cannot know what the rows hold)
    order_writes.clear()
    DeskStore(Database.open(url)).save_hedge(again)
    assert len(order_writes) == 305
    final = DeskStore(Database.open(url)).load_hedge("H-1")
    assert final.orders[-1].status is OrderStatus.PARTIALLY_FILLED and final.orders[7].status is OrderStatus.CANCELED
    assert final.mids == [(9, Decimal("65001.5"))] and len(final.orders) == 305


# ------------------------------------------------------------------ on a node
ADMIN, BUYER, SELLER, ISSUER = "test:0", "test:1", "test:2", "test:9"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Factory with mock tokens and a KYC registry (policy #1, any KYC level); issuer test:9 holds the buyer's
    published credential."""
    with kyc_node_cli(tmp_path_factory.mktemp("nexotc-round11"), ADMIN, ISSUER) as env:
        yield env


def _advance(c: Cli, seconds: int) -> None:
    c.rpc("evm_increaseTime", [seconds])
    c.rpc("evm_mine", [])


def _settle_tranche(c: Cli, deal: str, tranche: int) -> None:
    """The client marks the off-chain BTC delivered on chain, the desk (its receiver) approves and releases."""
    c.ok("settle", "mark", deal, str(tranche), "--milestone", "delivered", "--evidence", f"btc-tx-{tranche}",
         "--on-chain", "--account", "test:1")  # fmt: skip
    c.ok("deal", "approve", deal, str(tranche), "--account", "test:3")
    released = c.ok("settle", "release", deal, str(tranche), "--account", "test:3", "--json").json()
    assert released["released"] is True and Decimal(released["booking"]["size"]) == Decimal("1.25"), released


def test_recon_matches_the_settled_tranches_of_an_offchain_base_lock(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    c.ok("rfq", "new", "--client", "acme", "--side", "sell", "--size", "2.5", "--id", "R4")
    c.ok("quote", "new", "R4", "--ttl", "1h")
    c.ok("quote", "accept", "R4-q1")
    c.ok("quote", "lock", "R4-q1", "--account", "test:3", "--client", "test:1", "--platform", "test:0",
         "--resolver", "test:4", "--offchain-base", "--tranches", "2", "--out", d / "l4.json")  # fmt: skip
    deal = c.ok("quote", "take", d / "l4.json", "--account", "test:1", "--fund", "--json").json()["deal"]
    c.ok("settle", "track", deal)
    _advance(c, 120)  # both tranches unlocked
    _settle_tranche(c, deal, 0)
    c.ok("settle", "status", deal)
    first = c("recon", "R4-q1", "--json")
    assert first.code == 0, first.out
    assert (first.json()["matched"], first.json()["compared"], first.json()["breaks"]) == (1, 1, {})
    _settle_tranche(c, deal, 1)
    c.ok("settle", "status", deal)
    both = c("recon", "R4-q1")
    assert both.code == 0 and "2/2 matched" in both.out, both.out
    csv = (c.home / "reports" / "R4-q1-breaks.csv").read_text().splitlines()
    assert csv == ["kind,ref,left,right,expected,actual,detail"]

    # a real mismatch still breaks: a booking of another quantity
    store = _store(c.home)
    [booking] = [b for b in store.bookings(quote_id="R4-q1") if b.ref == "R4-q1/1"]
    from dataclasses import replace

    store.save_booking(replace(booking, size=Decimal("1.2")), quote_id="R4-q1")
    broken = c("recon", "R4-q1", "--json")
    assert broken.code == 5 and broken.json()["breaks"] == {"quantity": 1}, broken.out
    assert any(
        row.startswith("quantity,R4-q1/1,booking,chain,1.2,1.25,")
        for row in (c.home / "reports" / "R4-q1-breaks.csv").read_text().splitlines()
    )
    store.save_booking(booking, quote_id="R4-q1")

    # records stored with the event's zero base (before this fix) are completed on the next poll
    with sqlite3.connect(c.home / "desk.db") as db:
        db.execute("UPDATE settlement_records SET base_amount = '0' WHERE event = 'Released'")
    assert c("recon", "R4-q1").code == 5
    c.ok("settle", "status", deal)
    assert c("recon", "R4-q1").code == 0


def _wallet(c: Cli) -> str:
    created = c.ok("msig", "create", "--owner", "test:1", "--owner", "test:2", "--threshold", "1",
                   "--account", ADMIN, "--json")  # fmt: skip
    return created.json()["wallet"]


def test_msig_propose_refuses_out_of_range_values_and_writes_nothing(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    wallet = _wallet(c)
    out = d / "p.json"
    for args, fragments in (
        (("--to", "test:5", "--value", str(UINT256)), (f"--value: {UINT256} is out of range for uint256",)),
        (("--to", "test:5", "--nonce", str(UINT256)), (f"--nonce: {UINT256} is out of range for uint256",)),
        (("--erc20-transfer", "USDT:test:8:1e400"), ("--erc20-transfer AMOUNT: 1e400 is out of range for uint256",)),
        (("--call", "USDT.transfer(test:8,1e400)"),
         ("--call transfer argument amount: '1e400' is not a whole number", "raw base units")),
        (("--to", "test:5", "--deadline", "99999999999999999999"),
         ("--deadline: 99999999999999999999 is out of range (at most 253402300799, 9999-12-31T23:59:59Z)",)),
        (("--to", "test:5", "--deadline", "253402300800"), ("--deadline: 253402300800 is out of range",)),
        (("--to", "test:5", "--deadline", "+99999999999999d"), ("--deadline: ", "is out of range")),
    ):  # fmt: skip
        refused = c("msig", "propose", wallet, *args, "--out", out)
        assert_one_line_error(refused, *fragments)
        assert "invalid literal" not in refused.err and "internal error" not in refused.err
        assert not out.exists()
    # a missing --out directory is refused, never created
    missing = d / "nowhere" / "p.json"
    assert_one_line_error(c("msig", "propose", wallet, "--to", "test:5", "--out", missing), "no directory")
    assert not missing.parent.exists()
    # the last deadline a calendar shows is taken and shown; a batch says its order
    argv = ("msig", "propose", wallet, "--call", "USDT.transfer(test:8, 5)", "--erc20-transfer", "USDT:test:8:1",
            "--to", "test:5", "--deadline", "253402300799", "--out", out)  # fmt: skip
    batch = c.ok(*argv)
    assert "deadline 9999-12-31 23:59:59Z" in batch.out
    assert "batch order: the --to call, each --erc20-transfer, each --call" in batch.out
    summaries = c.ok(*argv, "--force", "--json").json()["summaries"]
    assert "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc" in summaries[0]  # --to test:5, given last
    assert "transfer 1 USDT" in summaries[1] and "transfer 0.000005 USDT" in summaries[2]
    help_text = " ".join(c.ok("msig", "propose", "--help").out.split())
    assert "the --to call, then each --erc20-transfer, then each --call" in help_text


def test_msig_exec_and_sign_name_a_directory_given_as_a_file(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    wallet = _wallet(c)
    proposal = d / "q.json"
    c.ok("msig", "propose", wallet, "--to", "test:5", "--out", proposal)
    assert_one_line_error(c("msig", "exec", proposal, d), f"SIG.json {d}: a directory, not a file")
    assert_one_line_error(c("msig", "exec", d, "--sign-with", "test:1"), f"PROPOSAL.json {d}: a directory")
    assert_one_line_error(c("msig", "sign", d, "--account", "test:1"), f"PROPOSAL.json {d}: a directory")
    refused = c("msig", "sign", proposal, "--account", "test:1", "--out", d / "nowhere" / "s.json")
    assert_one_line_error(refused, "no directory")
    assert not (d / "nowhere").exists()
    assert "Errno" not in c("msig", "exec", proposal, d).err


def _prove(c: Cli, d: Path, out: Path, *scope: str) -> Result:
    return c("kyc", "prove", "--credential", d / "buyer.cred", "--secret", d / "buyer.secret", "--policy", "1",
             *scope, "--account", BUYER, "--out", out, "--json", timeout=300)  # fmt: skip


def _deal_number(c: Cli, deal: str) -> str:
    return str(next(r["index"] for r in c.ok("deal", "list", "--json").json() if r["deal"] == deal))


def test_kyc_status_names_a_missing_policy_and_an_ungated_deal(env: dict[str, Any]) -> None:
    c = env["cli"]
    now = int(c.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    terms = ["--terms", DVP_EXAMPLE, "--salt", "0x1101", "--set", f"timers.funding_deadline={now + 86_400}",
             "--set", f"tranches.first_unlock={now + 600}"]  # fmt: skip
    deal = c.ok("deal", "create", *terms, "--account", SELLER, "--json").json()["deal"]
    number = _deal_number(c, deal)
    ungated = c("kyc", "status", BUYER, "--deal", number)
    assert ungated.code == 0, ungated.err
    assert f"deal {deal} is not gated: its terms carry no compliance policy" in " ".join(ungated.out.split())
    data = c("kyc", "status", BUYER, "--deal", number, "--json").json()
    assert data["gated"] is False and data["attested"] is False
    help_text = " ".join(c.ok("kyc", "status", "--help").out.split())
    assert "not gated" in help_text and "exit 0" in help_text
    # a policy asked for explicitly is checked (exit 3: no attestation); one that does not exist is named
    assert c("kyc", "status", BUYER, "--deal", number, "--policy", "1").code == 3
    for scope in (("--deal", number), ("--scope", "777")):
        refused = c("kyc", "status", BUYER, *scope, "--policy", "7")
        assert_one_line_error(refused, "--policy 7: no policy #7 in the kyc registry", "(policy #1 only)")
        assert "compliant with" not in refused.out


def test_audit_export_shows_attestation_expiries_in_utc(env: dict[str, Any]) -> None:
    c, d = env["cli"], env["dir"]
    now = int(c.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    terms = ["--terms", DVP_EXAMPLE, "--set", "compliance.policy=1", "--salt", "0x1102", "--set",
             f"timers.funding_deadline={now + 86_400}", "--set", f"tranches.first_unlock={now + 600}"]  # fmt: skip
    deal = c.ok("deal", "create", *terms, "--account", SELLER, "--json").json()["deal"]
    proved = _prove(c, d, d / "buyer.proof", "--deal", deal)
    assert proved.code == 0, proved.err
    c.ok("kyc", "submit", d / "buyer.proof", "--account", BUYER)
    expiry = c.ok("kyc", "status", BUYER, "--deal", deal, "--json").json()["expiry"]
    exported = c.ok("audit", "export", deal, "--out", d / "bundle.json")
    from datetime import UTC, datetime

    utc = datetime.fromtimestamp(expiry, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    assert f"attested policy #1 until {utc}" in exported.out, exported.out
    assert str(expiry) not in exported.out
    bundle = json.loads((d / "bundle.json").read_text())
    assert expiry in [a["expiry"] for a in bundle["attestations"].values() if a]  # the integers stay in the data

    # a real proof file whose policy id was edited into text is named malformed, never with int()'s words
    edited = json.loads((d / "buyer.proof").read_text())
    edited["policy_id"] = "x"
    (d / "edited.proof").write_text(json.dumps(edited))
    refused = c("kyc", "submit", d / "edited.proof", "--account", BUYER)
    assert_one_line_error(refused, f"proof file {d / 'edited.proof'} is malformed: its policy_id 'x' is not a whole")
    assert "invalid literal" not in refused.err
