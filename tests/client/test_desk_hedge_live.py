"""`nexotc hedge start --live`: a hedge on the exchanges themselves, through ccxt, run by the real CLI against a
local exchange gateway (tests/client/venuekit.py): ccxt's proxy_url sends every request to it and it answers from
the exchanges' emulators over simulated venues, so nothing leaves the machine (any request that bypassed the
gateway would meet a dead proxy). Credentials come from the environment only and are never stored; the hedge's
fills are booked and reconciled; a network failure mid-hedge is a one-line error that leaves the hedge resumable,
and resume neither loses nor doubles a fill; cancel cancels the orders resting at the exchange; option mistakes
and missing credentials are one-line errors that create nothing."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from clikit import ROOT, Result, assert_one_line_error, free_port, nexotc_command, run_nexotc
from deskkit import accept_quote_cli
from venuekit import HOSTS, ORDER_PATHS, SECRET, ExchangeGateway, emulated, exchange_gateway

from nexotc_client.desk.db import Database
from nexotc_client.desk.engine import fixture_books
from nexotc_client.desk.exchange import wall_ms
from nexotc_client.desk.hedge import HedgeLock
from nexotc_client.desk.models import HedgeState, HedgeStatus, OrderStatus, Side
from nexotc_client.desk.sim import SimVenue
from nexotc_client.desk.store import DeskStore, StoreError
from nexotc_client.desk.venues import CCXT_VENUES, CcxtVenue, credential_vars, has_sandbox

VENUES = ("binance", "okx")
#: the credentials of the test accounts (the secret: base64, as Kraken's and Coinbase's are)
CREDS = {
    "NEXOTC_BINANCE_API_KEY": "binance-key-7f3a9c",
    "NEXOTC_BINANCE_SECRET": "YmluYW5jZS1zZWNyZXQtZG8tbm90LWxlYWs=",
    "NEXOTC_OKX_API_KEY": "okx-key-51e0b2",
    "NEXOTC_OKX_SECRET": "b2t4LXNlY3JldC1kby1ub3QtbGVhaw==",
    "NEXOTC_OKX_PASSWORD": "okx-passphrase-c0ffee",
}
H = "H-R1-q1"


@dataclass
class Desk:
    home: Path
    gateway: ExchangeGateway
    """The desk's egress gateway (a test that moves it replaces it here)."""
    sims: dict[str, SimVenue]
    env: dict[str, str]

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = run_nexotc([*args, "--home", str(self.home)], env if env is not None else self.env, timeout=60)
        for secret in CREDS.values():  # never printed, whatever happened
            assert secret not in result.out + result.err
        return result

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, f"nexotc {' '.join(args)} -> {result.code}: {result.err}"
        return result

    def live(self, *args: str) -> list[str]:
        return ["--live", "--sandbox", "--venues", ",".join(VENUES), "--proxy-url", self.gateway.url, *args]

    def store(self) -> DeskStore:
        return DeskStore(Database.open(f"sqlite:///{self.home / 'desk.db'}"))

    def hedge(self) -> HedgeState:
        store = self.store()
        try:
            return store.load_hedge(H)
        finally:
            store.db.close()

    def executed(self) -> dict[tuple[str, str], Decimal]:
        """Every trade the exchanges executed: (venue, trade id as the exchange reports it) -> size."""
        return {(v, exchange_id(t.fill.trade_id)): t.fill.size for v, sim in self.sims.items() for t in sim._trades}


def exchange_id(sim_id: str) -> str:
    """A simulated order or trade id (``binance-o8``, ``okx-t12``) as the emulated exchanges report it (8, 12)."""
    return sim_id.rsplit("-", 1)[1][1:]


def without_credentials(env: dict[str, str]) -> dict[str, str]:
    names = {var for v in CCXT_VENUES for var in credential_vars(v).values()}
    return {k: v for k, v in env.items() if k not in names}


@pytest.fixture
def desk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Desk]:
    """A desk home with quote R1-q1 (acme buys 6 BTC) accepted, and the gateway to the emulated binance and okx
    sandboxes (seeded from the same recorded books the quote was made from)."""
    books = {b.venue: b for b in fixture_books("BTC/USDT", venues=VENUES)}
    emulators = {v: emulated(books, v, wall_ms, seed=5, late=0.3, late_ms=200) for v in VENUES}
    with exchange_gateway({v: e for v, (_, e) in emulators.items()}) as gateway:
        dead = f"http://127.0.0.1:{free_port()}"  # a request that bypassed the gateway fails here, offline
        env = without_credentials({k: v for k, v in os.environ.items() if k != "NEXOTC_DEBUG"})
        env.update(CREDS, HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead, NO_PROXY="127.0.0.1,localhost")
        env["NEXOTC_HOME"] = str(tmp_path / "home")
        d = Desk(tmp_path / "home", gateway, {v: sim for v, (sim, _) in emulators.items()}, env)
        accept_quote_cli(d.home, f"sqlite:///{d.home / 'desk.db'}", "6", capsys)  # in-process: no exchange in it
        try:
            yield d
        finally:
            d.gateway.stop()  # where a test moved it


def client_ids_sent(gateway: ExchangeGateway) -> Counter[str]:
    """How many order placements with each client order id reached an exchange."""
    sent: Counter[str] = Counter()
    for v in VENUES:
        for r in gateway.requests(v, "POST", ORDER_PATHS[v]):
            sent[r.params["newClientOrderId" if v == "binance" else "clOrdId"]] += 1
    return sent


def assert_books_match_the_exchanges(d: Desk, state: HedgeState) -> None:
    """Every trade the exchanges executed is stored once, the totals are their sums, each fill is booked once."""
    executed = d.executed()
    store = d.store()
    try:
        stored = store.fills(H)
        keys = [f.key for f in stored]
        assert len(keys) == len(set(keys)) and set(keys) == set(executed)
        assert state.filled == sum(executed.values()) == sum(f.size for f in stored)
        assert state.venue_filled == {
            v: sum(s for (venue, _), s in executed.items() if venue == v) for v in {k[0] for k in executed}
        }
        assert sorted(b.ref for b in store.bookings(quote_id="R1-q1")) == sorted(f"{v}:{t}" for v, t in keys)
    finally:
        store.db.close()


def assert_no_secret_stored(home: Path) -> None:
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in CREDS.values():
                assert secret.encode() not in data, path


def test_live_sandbox_hedge_fills_books_and_reconciles(desk: Desk) -> None:
    r = desk("hedge", "start", "R1-q1", *desk.live("--clips", "3", "--interval", "100ms", "--json"))
    state = desk.hedge()
    assert r.code == (0 if state.status is HedgeStatus.DONE else 3), r.err
    assert state.status in (HedgeStatus.DONE, HedgeStatus.PARTIAL) and state.next_clip == 3
    assert Decimal(0) < state.filled <= Decimal(6) and (state.filled == 6) == (state.status is HedgeStatus.DONE)
    out = r.json()
    record = {"mode": "live", "venues": list(VENUES), "sandbox": True, "proxy_url": desk.gateway.url}
    # the JSON's decimals are canonical (no trailing zero: "5.6300166" for a stored 5.63001660): compare values
    assert out["venues"] == record and Decimal(out["filled"]) == state.filled
    # every request went through the gateway to the sandboxes, signed with the environment's credentials
    log = desk.gateway.log
    assert log and all(r.forwarded and r.status < 500 for r in log)
    assert {r.host for r in log} == {HOSTS[v] for v in VENUES}
    private = [r for r in log if r.method != "GET" or "/trade/" in r.path or r.path.endswith(("order", "myTrades"))]
    assert {r.venue for r in private} == set(VENUES)
    for r in private:
        if r.venue == "binance":
            assert r.headers.get("X-MBX-APIKEY") == CREDS["NEXOTC_BINANCE_API_KEY"]
        else:
            assert r.headers.get("OK-ACCESS-KEY") == CREDS["NEXOTC_OKX_API_KEY"]
            assert r.headers.get("OK-ACCESS-PASSPHRASE") == CREDS["NEXOTC_OKX_PASSWORD"]
    assert all(r.headers.get("x-simulated-trading") == "1" for r in log if r.venue == "okx")  # OKX demo trading
    # the exchanges executed each child order once; the desk's books are the exchanges'
    sent = client_ids_sent(desk.gateway)
    assert sent and set(sent.values()) == {1}
    assert set(sent) == {o.client_order_id for o in state.orders}
    assert all(o.order_id and o.status in (OrderStatus.FILLED, OrderStatus.CANCELED) for o in state.orders)
    assert_books_match_the_exchanges(desk, state)
    # the record that resume and cancel reopen the venues from: no secret in it, nor anywhere in the home
    journal = desk.home / "exchange" / H
    assert json.loads((journal / "venues.json").read_text()) == record
    assert not list(journal.glob("*.jsonl"))  # no simulated venue journal: the exchange is the record
    assert_no_secret_stored(desk.home)
    # show and list say where the hedge traded
    assert desk.ok("hedge", "show", H, "--json").json()["venues"] == record
    assert [row["venues"] for row in desk.ok("hedge", "list", "--json").json()] == [record]
    assert "live sandbox binance, okx" in desk.ok("hedge", "show", H).out
    assert "live sandbox binance, okx" in desk.ok("hedge", "list").out
    # reconciliation: bookings against the stored fills, and the hedge's TCA
    recon = desk("recon", "R1-q1", "--json")
    assert recon.code == 0, recon.err
    rec = recon.json()
    assert rec["breaks"] == {} and rec["hedged"] and rec["matched"] == rec["compared"] > 0
    assert Decimal(rec["tca"]["filled"]) == state.filled


def test_network_failure_mid_hedge_then_resume_neither_loses_nor_doubles(desk: Desk) -> None:
    """The gateway passes the second Binance order to the exchange, which executes it, then loses the answer and
    refuses every request after it: the desk cannot know whether the order was taken. The hedge stops with a
    one-line error, saved with that order NEW (never marked rejected, never re-sent); resume adopts it from the
    exchange by its client order id and finishes the hedge."""
    orders = []

    def second_binance_order(r) -> bool:
        if r.venue == "binance" and r.method == "POST" and r.path == ORDER_PATHS["binance"]:
            orders.append(r)
        return len(orders) == 2

    desk.gateway.break_on(second_binance_order, forward=True)
    r = desk("hedge", "start", "R1-q1", *desk.live("--clips", "4", "--interval", "150ms", "--json"))
    assert_one_line_error(r, f"hedge {H} interrupted", f"nexotc hedge resume {H}")
    assert desk.gateway.broken and len(orders) == 2 and orders[1].forwarded
    lost = orders[1].params["newClientOrderId"]
    assert lost in desk.sims["binance"]._orders  # the exchange took it
    stopped = desk.hedge()
    assert stopped.status is HedgeStatus.RUNNING and stopped.next_clip == 2
    (pending,) = [o for o in stopped.orders if o.client_order_id == lost]
    assert pending.status is OrderStatus.NEW and pending.order_id == ""
    assert not [o for o in stopped.orders if o.status is OrderStatus.REJECTED]
    shown = desk.ok("hedge", "show", H, "--json").json()
    assert shown["status"] == "running" and shown["process"]["stale"] and shown["venues"]["mode"] == "live"

    # resume needs the credentials again, from the environment: without them nothing changes
    desk.gateway.heal()
    before = len(desk.gateway.log)
    missing = desk("hedge", "resume", H, env=without_credentials(desk.env))
    assert_one_line_error(missing, "NEXOTC_BINANCE_API_KEY", "NEXOTC_OKX_PASSWORD")
    assert len(desk.gateway.log) == before and desk.hedge().orders == stopped.orders

    r = desk("hedge", "resume", H, "--json")
    state = desk.hedge()
    assert r.code == (0 if state.status is HedgeStatus.DONE else 3), r.err
    assert state.status in (HedgeStatus.DONE, HedgeStatus.PARTIAL) and state.next_clip == 4
    (adopted,) = [o for o in state.orders if o.client_order_id == lost]
    assert adopted.order_id == exchange_id(desk.sims["binance"]._orders[lost].order_id) and adopted.filled > 0
    sent = client_ids_sent(desk.gateway)
    assert set(sent.values()) == {1} and set(sent) == {o.client_order_id for o in state.orders}
    assert_books_match_the_exchanges(desk, state)
    assert stopped.filled < state.filled <= Decimal(6)
    assert desk("recon", "R1-q1", "--json").json()["breaks"] == {}


def test_a_live_quote_reads_the_sandbox_books_through_the_gateway_without_credentials(desk: Desk) -> None:
    """`quote new --live` takes the hedge's venue options: the public books of the chosen exchanges (their
    sandboxes here), through the proxy URL; a book needs no credential."""
    env = without_credentials(desk.env)
    assert desk("rfq", "new", "--client", "acme", "--side", "buy", "--size", "2", "--id", "R2", env=env).code == 0
    before = len(desk.gateway.requests())
    quoted = desk("quote", "new", "R2", *desk.live(), "--json", env=env)
    assert quoted.code == 0, quoted.err
    q = quoted.json()
    depth = [r for r in desk.gateway.requests()[before:] if "depth" in r.path or "books" in r.path]
    assert {r.venue for r in depth} == set(VENUES)  # one book per chosen exchange, nothing else asked
    assert all(urlsplit(r.url).hostname == HOSTS[r.venue] for r in depth)  # the sandbox hosts
    assert not any(r.headers.get("X-MBX-APIKEY") or r.headers.get("OK-ACCESS-KEY") for r in depth)
    assert Decimal(q["bid"]) < Decimal(q["mid"]) < Decimal(q["ask"])
    # the live options belong to --live, and --live reads no recorded fixtures
    for args, message in (
        (["--sandbox"], "--sandbox: only with --live"),
        (["--live", "--fixtures", str(desk.home)], "--live and --fixtures exclude each other"),
        (["--live", "--venues", "bitmex"], "--venues: unknown venue bitmex"),
    ):
        assert_one_line_error(desk("quote", "new", "R2", *args, env=env), message)


def test_cancel_of_a_live_hedge_cancels_its_resting_orders_at_the_exchange(desk: Desk) -> None:
    """The exchanges leave the first clip's orders resting on the book, in part filled; the network then fails
    (the hedge stops, resumable). `hedge cancel` cancels them at the exchanges, books their partial fills, sends
    nothing new, and is idempotent."""
    desk.gateway.resting = set(VENUES)
    desk.gateway.break_on(lambda r: r.method == "GET" and r.path in ("/api/v3/order", "/api/v5/trade/order"))
    r = desk("hedge", "start", "R1-q1", *desk.live("--clips", "2", "--interval", "30s", "--json"))
    assert_one_line_error(r, f"hedge {H} interrupted")
    stopped = desk.hedge()
    assert stopped.status is HedgeStatus.RUNNING and stopped.next_clip == 1
    resting = [o for o in stopped.orders if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]
    assert resting and all(o.order_id for o in resting)
    desk.gateway.heal()
    placed = len(desk.gateway.requests(method="POST", path=ORDER_PATHS["binance"])) + len(
        desk.gateway.requests(method="POST", path=ORDER_PATHS["okx"])
    )

    out = desk.ok("hedge", "cancel", H, "--json").json()
    assert out["status"] == "cancelled" and out["already_cancelled"] is False and out["venues"]["mode"] == "live"
    state = desk.hedge()
    assert state.status is HedgeStatus.CANCELLED
    cancels = desk.gateway.requests("binance", "DELETE", "/api/v3/order") + desk.gateway.requests(
        "okx", "POST", "/api/v5/trade/cancel-order"
    )
    assert sorted(r.venue for r in cancels) == sorted(o.venue for o in resting)
    binance_em = desk.gateway.responders["binance"]
    okx_em = desk.gateway.responders["okx"]
    for o in resting:  # cancelled at the exchange, with what it had filled
        if o.venue == "binance":
            assert binance_em.orders[o.client_order_id]["status"] == "CANCELED"
        else:
            assert o.client_order_id in okx_em.orders and o.client_order_id not in okx_em.resting
    by_id = {o.client_order_id: o for o in state.orders}
    assert all(by_id[o.client_order_id].status is OrderStatus.CANCELED for o in resting)
    assert 0 < state.filled < Decimal(6)
    assert_books_match_the_exchanges(desk, state)
    sent = len(desk.gateway.requests(method="POST", path=ORDER_PATHS["binance"])) + len(
        desk.gateway.requests(method="POST", path=ORDER_PATHS["okx"])
    )
    assert sent == placed  # nothing new was sent
    requests = len(desk.gateway.log)
    again = desk.ok("hedge", "cancel", H, "--json").json()
    assert again["already_cancelled"] is True and len(desk.gateway.log) == requests
    assert_no_secret_stored(desk.home)


@pytest.mark.parametrize("exchange", CCXT_VENUES)
def test_ccxt_venue_trades_through_the_gateway(exchange: str, caplog: pytest.LogCaptureFixture) -> None:
    """CcxtVenue with ccxt's proxy_url on each exchange (binance and okx in sandbox mode, coinbase and kraken on
    their real hosts): every request reaches the gateway as the proxy URL + the exchange URL, URL-encoded when it
    has a query string, and is answered by the exchange's emulator (a book, an order, its lookup, the own trades).
    With DEBUG logging on, no credential is logged (ccxt logs each request's headers at DEBUG)."""
    caplog.set_level(logging.DEBUG)
    books = {b.venue: b for b in fixture_books("BTC/USDT", venues=(exchange,))}
    sim, emulator = emulated(books, exchange, wall_ms, seed=3, late=0)
    key, passphrase = f"key-{exchange}-0a1b2c", "passphrase-9z8y7x"
    with exchange_gateway({exchange: emulator}) as gateway:
        sandbox = exchange in ("binance", "okx")
        assert has_sandbox(exchange) is sandbox
        venue = CcxtVenue(
            exchange, sandbox=sandbox, proxy_url=gateway.url, api_key=key, secret=SECRET, password=passphrase
        )
        book = venue.fetch_order_book("BTC/USDT")
        # the emulated exchange's book: the recorded one's depth (its prices walk with the simulated fair mid)
        assert [lv.size for lv in book.asks[:20]] == [lv.size for lv in books[exchange].asks[:20]]
        ack = venue.create_order("BTC/USDT", Side.BUY, Decimal("0.5"), book.asks[8].price, "gwTest0001")
        found = venue.fetch_order("BTC/USDT", "gwTest0001")
        assert found is not None and found.order_id == ack.order_id and found.status is OrderStatus.FILLED
        trades = venue.fetch_my_trades("BTC/USDT", wall_ms() - 60_000)
        assert sum(f.size for f in trades) == Decimal("0.5") == sum(t.fill.size for t in sim._trades)
    assert gateway.log and {r.host for r in gateway.log} == {HOSTS[exchange]}
    assert all(r.forwarded and r.status == 200 for r in gateway.log)
    queried = [r for r in gateway.log if urlsplit(r.url).query]
    assert queried and all(r.received == "/" + quote(r.url, safe="!'()*-._~") for r in queried)
    assert all(r.received == "/" + r.url for r in gateway.log if not urlsplit(r.url).query)
    logged = caplog.text
    assert key not in logged and SECRET not in logged and passphrase not in logged


#: (hedge start options, the credentials in the environment, what the one-line error says)
MISTAKES = [
    (["--live", "--sandbox"], "none", ["NEXOTC_BINANCE_API_KEY", "NEXOTC_BINANCE_SECRET", "NEXOTC_OKX_PASSWORD"]),
    (["--live", "--venues", "okx"], "no okx password", ["missing credentials NEXOTC_OKX_PASSWORD ("]),
    (["--live", "--venues", "binance,ftx"], "all", ["--venues: unknown venue ftx"]),
    (["--live", "--venues", "binance,,okx"], "all", ["--venues 'binance,,okx'"]),
    (["--live", "--venues", "okx,okx"], "all", ["named twice"]),
    (["--live", "--sandbox", "--venues", "binance,kraken"], "all", ["--sandbox: kraken has no sandbox"]),
    (["--sandbox"], "all", ["--sandbox: only with --live"]),
    (["--venues", "okx"], "all", ["--venues: only with --live"]),
    (["--live", "--proxy-url", "ftp://gw/"], "all", ["--proxy-url 'ftp://gw/'"]),
    (["--live", "--proxy-url", "http://user:pw@gw/"], "all", ["no credentials in the URL"]),
    (["--live", "--fixtures", "."], "all", ["--live and --fixtures"]),
    (["--live", "--seed", "0"], "all", ["--live and --seed"]),
]


def test_live_option_mistakes_are_one_line_errors_that_create_nothing(desk: Desk) -> None:
    """Missing credentials (every missing variable named; a blank one is missing), bad --venues, a venue without a
    sandbox, --sandbox/--venues without --live, a bad or credential-bearing --proxy-url, and --live with a
    simulated venue's option: each a one-line error before anything is created or any exchange is asked."""
    before = sorted(p.relative_to(desk.home) for p in desk.home.rglob("*"))
    for args, creds, fragments in MISTAKES:
        env = desk.env
        if creds == "none":
            env = without_credentials(env)
        elif creds == "no okx password":
            env = {**env, "NEXOTC_OKX_PASSWORD": " "}
        r = desk("hedge", "start", "R1-q1", *args, env=env)
        assert_one_line_error(r, *fragments)
        assert sorted(p.relative_to(desk.home) for p in desk.home.rglob("*")) == before, args  # no dir, no lock
    assert desk.gateway.log == []  # nothing reached an exchange
    # the exchanges unreachable while the plan's books are fetched: one line, nothing created
    desk.gateway.break_on(lambda r: True)
    r = desk("hedge", "start", "R1-q1", *desk.live())
    assert_one_line_error(r, "binance", "503")
    assert desk.gateway.log and not desk.gateway.requests()
    assert sorted(p.relative_to(desk.home) for p in desk.home.rglob("*")) == before
    assert not (desk.home / "exchange").exists()
    assert desk.ok("hedge", "list", "--json").json() == []  # no row


# --- a live hedge killed, and its egress gateway moved ---------------------------------------------------------
KILL_CLIPS = 10


def test_sigkill_mid_live_hedge_then_resume_through_a_moved_gateway_loses_and_doubles_nothing(desk: Desk) -> None:
    """`hedge start --live` runs as its own process through the gateway and is SIGKILLed once a few of its clips
    went out (the kernel frees its lock; orders it persisted may or may not have reached the exchanges). The
    gateway then moves to another port (the old one refuses connections) and `hedge resume --proxy-url NEW`
    finishes the hedge through it: every trade the emulated exchanges executed is stored and booked exactly once,
    the total is the target or the hedge is partial with its residual stated, no client order id reached an
    exchange twice, and the new route is recorded and shown."""
    old, old_url = desk.gateway, desk.gateway.url
    argv = [*nexotc_command(), "hedge", "start", "R1-q1", *desk.live("--clips", str(KILL_CLIPS), "--interval", "400ms")]
    err_path = desk.home.parent / "start.err"
    with (desk.home.parent / "start.out").open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [*argv, "--json", "--home", str(desk.home)], cwd=ROOT, env=desk.env, stdout=out, stderr=err
        )
        store = desk.store()
        try:
            deadline = time.monotonic() + 120
            while True:  # some clips sent, not all: the kill lands mid-hedge
                try:
                    sent_clips = store.load_hedge(H).next_clip
                except StoreError:
                    sent_clips = 0
                if sent_clips >= 3:
                    break
                assert proc.poll() is None, f"the hedge ended before the kill: {err_path.read_text()}"
                assert time.monotonic() < deadline, "the hedge never sent 3 clips"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            store.db.close()
    killed = desk.hedge()
    assert killed.status is HedgeStatus.RUNNING and 3 <= killed.next_clip < KILL_CLIPS
    assert Decimal(0) < killed.filled < Decimal(6)
    before_kill = client_ids_sent(old)
    assert before_kill and set(before_kill.values()) == {1}
    assert desk.ok("hedge", "show", H, "--json").json()["process"]["stale"]

    desk.gateway = old.moved()
    new_url = desk.gateway.url
    assert new_url != old_url
    r = desk("hedge", "resume", H, "--proxy-url", new_url, "--json")
    state = desk.hedge()
    assert r.code == (0 if state.status is HedgeStatus.DONE else 3), r.err
    assert state.status in (HedgeStatus.DONE, HedgeStatus.PARTIAL) and state.next_clip == KILL_CLIPS
    out = r.json()
    assert Decimal(out["residual"]) == Decimal(6) - state.filled and Decimal(out["filled"]) == state.filled
    if state.status is HedgeStatus.DONE:
        assert state.filled == Decimal(6)
    else:  # the residual is stated, with how to hedge it
        assert 0 < state.filled < Decimal(6)
        assert f"{out['residual']} left unhedged" in r.err and "--residual" in r.err
    # the resume went through the new gateway only (the old one is gone), and sent the clips left
    after_kill = client_ids_sent(desk.gateway)
    assert after_kill and desk.gateway.log and all(q.forwarded and q.status < 500 for q in desk.gateway.log)
    # nothing doubled: each client order id reached an exchange once, over both gateways; the exchanges' orders
    # are the desk's orders
    sent = before_kill + after_kill
    assert set(sent.values()) == {1} and set(sent) == {o.client_order_id for o in state.orders}
    at_exchanges = [coid for sim in desk.sims.values() for coid in sim._orders]
    assert sorted(at_exchanges) == sorted(sent)
    # nothing lost: the trades the exchanges executed are the stored fills, their sum the hedge's, booked once
    assert_books_match_the_exchanges(desk, state)
    assert desk("recon", "R1-q1", "--json").json()["breaks"] == {}
    # the new route is the hedge's record from now on
    record = {"mode": "live", "venues": list(VENUES), "sandbox": True, "proxy_url": new_url}
    assert out["venues"] == record
    assert json.loads((desk.home / "exchange" / H / "venues.json").read_text()) == record
    assert desk.ok("hedge", "show", H, "--json").json()["venues"] == record
    assert f"via {new_url}" in desk.ok("hedge", "show", H).out
    assert_no_secret_stored(desk.home)


def stop_with_resting_orders(desk: Desk) -> HedgeState:
    """A live hedge stopped by a network failure (running, no process) with its first clip's orders resting at
    the exchanges, in part filled (as in the cancel test above); the gateway healed."""
    desk.gateway.resting = set(VENUES)
    desk.gateway.break_on(lambda r: r.method == "GET" and r.path in ("/api/v3/order", "/api/v5/trade/order"))
    r = desk("hedge", "start", "R1-q1", *desk.live("--clips", "2", "--interval", "30s", "--json"))
    assert_one_line_error(r, f"hedge {H} interrupted")
    stopped = desk.hedge()
    assert stopped.status is HedgeStatus.RUNNING and stopped.next_clip == 1
    assert [o for o in stopped.orders if o.order_id and o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]
    desk.gateway.heal()
    return stopped


def placements(gateway: ExchangeGateway) -> int:
    return sum(len(gateway.requests(v, "POST", ORDER_PATHS[v])) for v in VENUES)


def test_cancel_of_a_live_hedge_through_a_moved_gateway_and_with_no_proxy(desk: Desk) -> None:
    """The gateway moves while a live hedge is stopped with orders resting. `hedge cancel --no-proxy` records the
    direct route and goes direct (here into the environment's dead proxy: a one-line error, nothing cancelled,
    the hedge unchanged, nothing through the gateway); `hedge cancel --proxy-url NEW` then cancels the resting
    orders at the exchanges through the new gateway and records it; a repeated cancel sends nothing and leaves
    the record as it is."""
    stopped = stop_with_resting_orders(desk)
    resting = [o for o in stopped.orders if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]
    placed = placements(desk.gateway)
    old_url = desk.gateway.url
    desk.gateway = desk.gateway.moved()
    new_url = desk.gateway.url
    venues_json = desk.home / "exchange" / H / "venues.json"
    assert json.loads(venues_json.read_text())["proxy_url"] == old_url

    direct = desk("hedge", "cancel", H, "--no-proxy", "--json")
    assert_one_line_error(direct, "binance")
    assert json.loads(venues_json.read_text())["proxy_url"] is None  # the checks passed: the route was recorded
    assert desk.gateway.log == []
    assert desk.hedge() == stopped
    assert desk.ok("hedge", "show", H, "--json").json()["venues"]["proxy_url"] is None
    assert " via " not in desk.ok("hedge", "show", H).out

    out = desk.ok("hedge", "cancel", H, "--proxy-url", new_url, "--json").json()
    record = {"mode": "live", "venues": list(VENUES), "sandbox": True, "proxy_url": new_url}
    assert out["status"] == "cancelled" and out["already_cancelled"] is False and out["venues"] == record
    assert json.loads(venues_json.read_text()) == record
    assert desk.ok("hedge", "show", H, "--json").json()["venues"] == record
    state = desk.hedge()
    assert state.status is HedgeStatus.CANCELLED
    cancels = desk.gateway.requests("binance", "DELETE", "/api/v3/order") + desk.gateway.requests(
        "okx", "POST", "/api/v5/trade/cancel-order"
    )
    assert sorted(r.venue for r in cancels) == sorted(o.venue for o in resting)
    by_id = {o.client_order_id: o for o in state.orders}
    assert all(by_id[o.client_order_id].status is OrderStatus.CANCELED for o in resting)
    assert desk.gateway.responders["binance"].orders  # the exchanges' own record: cancelled there
    for o in resting:
        if o.venue == "binance":
            assert desk.gateway.responders["binance"].orders[o.client_order_id]["status"] == "CANCELED"
        else:
            assert o.client_order_id not in desk.gateway.responders["okx"].resting
    assert placements(desk.gateway) == 0 and placed > 0  # nothing new was sent
    assert_books_match_the_exchanges(desk, state)

    # cancelled already: nothing is sent, and the record (the route its last cancel took) stays as it is
    recorded, requests = venues_json.read_bytes(), len(desk.gateway.log)
    again = desk.ok("hedge", "cancel", H, "--proxy-url", "http://127.0.0.1:9/", "--json").json()
    assert again["already_cancelled"] is True and again["venues"] == record
    assert venues_json.read_bytes() == recorded and len(desk.gateway.log) == requests
    assert_no_secret_stored(desk.home)


def test_proxy_change_mistakes_are_one_line_errors_that_change_nothing(desk: Desk) -> None:
    """`hedge resume | cancel` with --proxy-url or --no-proxy: both options, a bad or credential-bearing URL,
    missing credentials, an unknown hedge, a hedge another process runs, a simulated hedge, resuming a cancelled
    hedge: each a one-line error (exit non-zero) before anything reaches an exchange, venues.json byte-identical."""
    stopped = stop_with_resting_orders(desk)
    journal = desk.home / "exchange" / H
    venues_json = journal / "venues.json"
    new_url = f"http://127.0.0.1:{free_port()}/"

    def snapshot() -> tuple[bytes, list[str], int]:
        return venues_json.read_bytes(), sorted(p.name for p in journal.iterdir()), len(desk.gateway.log)

    before = snapshot()
    lock = HedgeLock(journal / "hedge.lock", f"hedge {H}")
    mistakes: list[tuple[list[str], dict[str, str], list[str]]] = [
        (["--proxy-url", new_url, "--no-proxy"], desk.env, ["--proxy-url and --no-proxy exclude each other"]),
        (["--proxy-url", "ftp://gw/"], desk.env, ["--proxy-url 'ftp://gw/'"]),
        (["--proxy-url", "gw:8080"], desk.env, ["--proxy-url 'gw:8080'"]),
        (["--proxy-url", "http://user:pw@gw/"], desk.env, ["no credentials in the URL"]),
        (["--proxy-url", new_url], without_credentials(desk.env), ["NEXOTC_BINANCE_API_KEY", "NEXOTC_OKX_PASSWORD"]),
        (["--no-proxy"], {**desk.env, "NEXOTC_OKX_PASSWORD": " "}, ["missing credentials", "NEXOTC_OKX_PASSWORD"]),
    ]
    for command in ("resume", "cancel"):
        for args, env, fragments in mistakes:
            assert_one_line_error(desk("hedge", command, H, *args, env=env), *fragments)
            assert snapshot() == before, (command, args)
        # an unknown hedge: nothing created for it
        assert_one_line_error(desk("hedge", command, "H-nope", "--proxy-url", new_url), "no hedge 'H-nope'")
        assert not (desk.home / "exchange" / "H-nope").exists()
        # another process runs the hedge (holds its lock)
        with lock:
            assert_one_line_error(desk("hedge", command, H, "--proxy-url", new_url), f"process {os.getpid()}")
        assert snapshot() == before, command
    assert desk.hedge() == stopped

    # a hedge on simulated venues has no route to change
    for argv in (
        ["rfq", "new", "--client", "acme", "--side", "sell", "--size", "1", "--id", "R2"],
        ["quote", "new", "R2"],
        ["quote", "accept", "R2-q1"],
    ):
        desk.ok(*argv)
    assert desk("hedge", "start", "R2-q1", "--clips", "1", "--interval", "0s").code in (0, 3)  # done or partial
    sim_journal = desk.home / "exchange" / "H-R2-q1"
    sim_files = {p.name: p.read_bytes() for p in sim_journal.iterdir()}
    assert sim_files and "venues.json" not in sim_files
    for command in ("resume", "cancel"):
        for option in (["--proxy-url", new_url], ["--no-proxy"]):
            r = desk("hedge", command, "H-R2-q1", *option)
            assert_one_line_error(r, f"{option[0]}: only for a live hedge", "simulated")
            assert {p.name: p.read_bytes() for p in sim_journal.iterdir()} == sim_files
    assert snapshot() == before

    # a cancelled hedge is never resumed, through any gateway
    desk.ok("hedge", "cancel", H)
    after_cancel = snapshot()
    assert_one_line_error(desk("hedge", "resume", H, "--proxy-url", new_url), f"hedge {H} was cancelled")
    assert snapshot() == after_cancel and after_cancel[0] == before[0]
