"""Guards of the desk engine's rfq / quote / recon / match commands, offline (in process, one desk database):
a client's counter needs the desk's explicit decision, ids are never overwritten, one accepted quote per RFQ,
read commands never create a database, the inventory skews quotes, ranking is idempotent, inputs are
validated, and the human output is human. The chain-facing guards are in test_desk_engine_guards_chain.py."""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from clikit import ROOT, assert_one_line_error, nexotc_command

from nexotc_client.desk.db import Database
from nexotc_client.desk.match import MakerOffer, MatchBook, MatchError, Preference
from nexotc_client.desk.models import Side
from nexotc_client.desk.store import DeskStore

MAKER, TAKER, TAKER2 = ("0x" + c * 40 for c in "abc")


def rfq(nx, rfq_id: str, side: str = "sell", size: str = "10", client: str = "bob") -> None:
    r = nx("rfq", "new", "--client", client, "--side", side, "--size", size, "--id", rfq_id)
    assert r.code == 0, r.err


def test_a_client_counter_needs_the_desks_decision(nx) -> None:
    rfq(nx, "R3")
    q = nx("quote", "new", "R3", "--ttl", "10m", "--json").json()
    assert nx("quote", "counter", "R3-q1", "--price", "1000000", "--json").json()["state"] == "countered"
    # 10 BTC bought by the desk at 1,000,000: refused, and nothing changes
    assert_one_line_error(nx("quote", "accept", "R3-q1"), "through the desk's price", "--override-price 1000000")
    assert nx("quote", "show", "R3-q1", "--json").json()["state"] == "countered"
    assert_one_line_error(nx("quote", "accept", "R3-q1", "--override-price", "999999"), "the counter is 1000000")
    assert nx("quote", "show", "R3-q1", "--json").json()["state"] == "countered"
    # a tighter explicit tolerance does not help either; an override naming the price does, and is recorded
    assert_one_line_error(nx("quote", "accept", "R3-q1", "--max-giveaway-bps", "100"), "tolerance 100 bps")
    taken = nx("quote", "accept", "R3-q1", "--override-price", "1000000", "--json").json()
    assert taken["state"] == "accepted" and taken["price"] == "1000000" and "override" in taken["reason"]

    # within the default tolerance (the quote's half-spread) the desk takes a counter without an override
    rfq(nx, "R4")
    q = nx("quote", "new", "R4", "--ttl", "10m", "--json").json()
    bid, half = Decimal(q["bid"]), Decimal(q["components"]["spread_bps"])
    inside = (bid * (1 + (half - 1) / 10_000)).quantize(Decimal("0.01"))
    nx("quote", "counter", "R4-q1", "--price", str(inside))
    ok = nx("quote", "accept", "R4-q1", "--json").json()
    assert ok["state"] == "accepted" and Decimal(ok["price"]) == inside and "within" in ok["reason"]
    # a counter better for the desk than its own price is always taken
    rfq(nx, "R5")
    q = nx("quote", "new", "R5", "--ttl", "10m", "--json").json()
    countered = nx("quote", "counter", "R5-q1", "--price", str(Decimal(q["bid"]) - 50), "--json").json()
    assert countered["warnings"] == []  # a few bps: no typing mistake suspected
    taken = nx("quote", "accept", "R5-q1", "--max-giveaway-bps", "0", "--json").json()
    favour = (50 / Decimal(q["bid"]) * 10_000).quantize(Decimal("0.01"))
    assert taken["state"] == "accepted" and taken["reason"].endswith(f"; {favour} bps in the desk's favour)")
    assert taken["warnings"] == []
    # a counter far worse for the client than the desk's own quote (2E3 typed for ~65,000) is warned about
    rfq(nx, "R6")
    nx("quote", "new", "R6", "--ttl", "10m")
    warned = nx("quote", "counter", "R6-q1", "--price", "2E3")
    assert warned.code == 0 and "worse for the client than the desk's quote" in warned.out
    assert "typing mistake" in nx("quote", "accept", "R6-q1", "--json").json()["warnings"][0]


def test_existing_ids_are_refused_never_overwritten(nx) -> None:
    rfq(nx, "R1", side="buy", size="200", client="acme")
    nx("quote", "new", "R1", "--ttl", "10m")
    nx("quote", "accept", "R1-q1")
    assert_one_line_error(
        nx("rfq", "new", "--client", "eve", "--side", "sell", "--size", "1", "--id", "R1"), "RFQ R1 exists"
    )
    shown = nx("rfq", "show", "R1", "--json").json()
    assert (shown["client"], shown["side"], shown["size"]) == ("acme", "buy", "200")
    assert (
        nx(
            "match", "offer", "--maker", MAKER, "--side", "sell", "--size", "1-5", "--price", "65000", "--id", "OM1"
        ).code
        == 0
    )
    again = nx("match", "offer", "--maker", TAKER, "--side", "buy", "--size", "1", "--price", "1", "--id", "OM1")
    assert_one_line_error(again, "offer OM1 exists")
    offers = nx("match", "list", "--json").json()["offers"]
    assert [(o["offer_id"], o["maker"].lower(), o["price"]) for o in offers] == [("OM1", MAKER, "65000")]
    want = ("match", "want", "--taker", TAKER, "--side", "buy", "--size", "1-2", "--ref-price", "65000", "--id", "P1")
    assert nx(*want).code == 0
    assert_one_line_error(nx(*want), "preference P1 exists")


def test_one_accepted_quote_per_rfq(nx) -> None:
    rfq(nx, "R2", side="buy", size="200")
    nx("quote", "new", "R2", "--ttl", "10m")
    nx("quote", "new", "R2", "--ttl", "10m")
    assert nx("quote", "accept", "R2-q1").code == 0
    assert_one_line_error(nx("quote", "accept", "R2-q2"), "RFQ R2 already has an accepted quote (R2-q1)")
    assert nx("quote", "show", "R2-q2", "--json").json()["state"] == "quoted"
    assert_one_line_error(nx("quote", "new", "R2"), "RFQ R2 is filled by R2-q1")
    # a countered second quote cannot be taken by the desk either
    nx("quote", "counter", "R2-q2", "--price", "1")
    assert_one_line_error(nx("quote", "accept", "R2-q2", "--override-price", "1"), "already has an accepted quote")


def test_read_commands_never_create_a_database(nx, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    for argv in (("rfq", "list"), ("rfq", "show", "R1"), ("quote", "list"), ("match", "list"), ("recon", "Q")):
        assert_one_line_error(nx(*argv, "--db", f"sqlite:///{missing}"), "no desk database at", str(missing))
    assert not missing.parent.parent.exists()
    assert_one_line_error(nx("rfq", "list"), "no desk database")  # a fresh home: nothing recorded yet
    # a command that records state creates it
    assert nx("rfq", "new", "--client", "a", "--side", "buy", "--size", "1", "--db", f"sqlite:///{missing}").code == 0
    assert missing.exists() and len(nx("rfq", "list", "--db", f"sqlite:///{missing}", "--json").json()) == 1
    # a file that is not a database is a one-line error, and is left alone
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    assert_one_line_error(
        nx("rfq", "list", "--db", f"sqlite:///{junk}"), "cannot open the desk database", "not a database"
    )
    assert_one_line_error(
        nx("rfq", "new", "--client", "a", "--side", "buy", "--size", "1", "--db", f"sqlite:///{junk}"), "not a database"
    )
    assert junk.read_bytes() == b"this is not a database" * 100


def test_inventory_from_the_store_skews_the_next_quote(nx) -> None:
    rfq(nx, "RF", side="buy", size="10")
    flat = nx("quote", "new", "RF", "--ttl", "10m", "--json").json()
    assert Decimal(flat["components"]["skew_bps"]) == 0
    rfq(nx, "RL", side="sell", size="200")  # the desk buys 200 BTC: long, unhedged
    nx("quote", "new", "RL", "--ttl", "10m")
    nx("quote", "accept", "RL-q1")
    long = nx("quote", "new", "RF", "--ttl", "10m", "--json").json()
    assert Decimal(long["components"]["skew_bps"]) == Decimal(-4)  # 200 × 0.02 bps: a long desk lowers its prices
    assert Decimal(long["ask"]) < Decimal(flat["ask"]) and Decimal(long["bid"]) < Decimal(flat["bid"])


def test_ranking_is_idempotent_and_an_offer_has_one_live_invite(nx, tmp_path: Path) -> None:
    for oid, price in (("OA", "65010"), ("OB", "64995")):
        nx("match", "offer", "--maker", MAKER, "--side", "sell", "--size", "5-50", "--price", price, "--id", oid)
    nx("match", "want", "--taker", TAKER, "--side", "buy", "--size", "10-20", "--ref-price", "65000", "--id", "P1")
    first = nx("match", "rank", "P1", "--offline", "--json").json()["matches"]
    second = nx("match", "rank", "P1", "--offline", "--json").json()["matches"]
    assert len(first) == 2 and first == second
    assert len(nx("match", "list", "--json").json()["matches"]) == 2
    assert_one_line_error(nx("match", "invite", "NOPE", "--platform", MAKER, "--resolver", TAKER), "no match 'NOPE'")

    store = DeskStore(Database.open(f"sqlite:///{tmp_path / 'book.db'}"))
    book = MatchBook(store)
    book.post_offer(MakerOffer("O1", MAKER, "BTC/USDT", Side.SELL, Decimal(1), Decimal(50), Decimal(65000), 3600, 2))
    for pid, taker in (("PA", TAKER), ("PB", TAKER2)):
        book.post_preference(
            Preference(pid, taker, "BTC/USDT", Side.BUY, Decimal(1), Decimal(5), Decimal(65000), Decimal(25), 86400, 0)
        )
    ma = book.propose("PA")[1][0].match_id
    mb = book.propose("PB")[1][0].match_id
    assert ma != mb and book.propose("PA")[1][0].match_id == ma
    book.choose(ma, "nexotc://offer/x")
    with pytest.raises(MatchError, match=f"offer O1 already has a live invite \\(match {ma}\\)"):
        book.choose(mb, "nexotc://offer/y")
    assert book.match(mb).status == "proposed"


def test_inputs_are_validated(nx) -> None:
    new = ("rfq", "new", "--side", "buy")
    assert_one_line_error(nx(*new, "--client", "a", "--size", "1", "--symbol", "FOO/BAR"), "no market data for FOO/BAR")
    assert_one_line_error(nx(*new, "--client", "a", "--size", "1", "--symbol", "btcusdt"), "not a pair like BTC/USDT")
    assert_one_line_error(nx(*new, "--client", "", "--size", "1"), "client: empty")
    assert_one_line_error(nx(*new, "--client", " ", "--size", "1"), "client: empty")
    assert_one_line_error(nx(*new, "--client", "a", "--size", "1e-9"), "BTC has at most 8 decimals")
    assert_one_line_error(nx(*new, "--client", "a", "--size", "1", "--id", "x" * 30), "RFQ id")
    assert nx(*new, "--client", "a", "--size", "0.000000001", "--symbol", "eth/usdt", "--id", "RE").code == 0
    assert nx("rfq", "show", "RE", "--json").json()["symbol"] == "ETH/USDT"
    assert_one_line_error(nx("quote", "new", "RE", "--ttl", "0s"), "ttl: '0s' must be positive")
    assert nx("quote", "list", "--json").json() == []  # nothing was recorded
    r = nx("match", "offer", "--maker", MAKER, "--side", "sell", "--size", "1", "--price", "1", "--pair", "FOO/BAR")
    assert_one_line_error(r, "pair: the desk has no market data for FOO/BAR")
    assert_one_line_error(nx("quote", "list", "--rfq", "NOPE"), "no RFQ 'NOPE'")
    assert_one_line_error(nx("recon", "RE-q9"), "no quote 'RE-q9'")
    nx("rfq", "new", "--client", "a", "--side", "buy", "--size", "1", "--id", "RQ")
    nx("quote", "new", "RQ", "--ttl", "10m")
    assert_one_line_error(nx("recon", "RQ-q1"), "quote RQ-q1 is quoted: only an accepted quote is reconciled")


def test_accepted_unhedged_unlocked_recon_says_so(nx) -> None:
    rfq(nx, "RU", side="buy", size="2")
    nx("quote", "new", "RU", "--ttl", "10m")
    nx("quote", "accept", "RU-q1")
    r = nx("recon", "RU-q1")
    assert r.code == 0 and "not hedged" in r.out and "not locked on chain" in r.out
    data = nx("recon", "RU-q1", "--json").json()
    assert data["hedged"] is False and data["locked"] is False and data["compared"] == 0


def test_live_books_offline_is_a_one_line_error(nx, monkeypatch: pytest.MonkeyPatch) -> None:
    import ccxt

    import nexotc_client.desk.engine as engine

    def offline(symbol: str, *venues: object, **options: object) -> list:
        raise ccxt.NetworkError("binance GET https://api.binance.com/api/v3/depth\nConnection refused")

    monkeypatch.setattr(engine, "live_books", offline)
    rfq(nx, "RN", side="buy", size="1")
    assert_one_line_error(nx("quote", "new", "RN", "--live"), "venue books unavailable (NetworkError)")
    assert nx("quote", "list", "--rfq", "RN", "--json").json() == []


def test_concurrent_quotes_get_distinct_ids(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'desk.db'}"
    env = {**os.environ, "NEXOTC_HOME": str(tmp_path / "home")}
    env.pop("NEXOTC_DEBUG", None)
    base = [*nexotc_command()]
    subprocess.run([*base, "rfq", "new", "--client", "a", "--side", "buy", "--size", "2", "--id", "R2", "--db", db],
                   cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
    procs = [
        subprocess.Popen(
            [*base, "quote", "new", "R2", "--db", db, "--json"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    store = DeskStore(Database.open(db))
    assert sorted(q.quote_id for q in store.quotes(rfq_id="R2")) == ["R2-q1", "R2-q2", "R2-q3", "R2-q4"]


def test_human_output_is_human(nx) -> None:
    rfq(nx, "RH", side="buy", size="2")
    shown = nx("quote", "new", "RH", "--ttl", "10m")
    assert "0000000000" not in shown.out and "TTL 10m" in shown.out
    assert "{" not in nx("rfq", "show", "RH").out and "RH-q1" in nx("rfq", "show", "RH").out
    nx("match", "offer", "--maker", MAKER, "--side", "sell", "--size", "5-50", "--price", "65000", "--id", "OH")
    listed = nx("match", "list").out
    assert "{" not in listed and "OH" in listed and "5-50" in listed
    nx("quote", "new", "RH", "--ttl", "1ms")
    import time

    time.sleep(0.01)
    expired = nx("quote", "accept", "RH-q2")
    assert_one_line_error(expired, "expired at 20")  # an ISO time, not epoch milliseconds
    assert "Z (" in expired.err and "ms ago" in expired.err
