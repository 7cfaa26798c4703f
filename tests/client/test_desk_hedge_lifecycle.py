"""A hedge's life cycle from the CLI: a rejected `hedge start` creates nothing; a quote is hedged once (a second
hedge only with --residual, sized at what is left); one process at a time runs a hedge (a file lock the kernel
drops when the process dies, so `hedge list` tells a running hedge from a stale one); an under-filled hedge ends
PARTIAL with its residual and exit 3; `hedge cancel` cancels through the venue API and is idempotent; human
output prints decimals plainly. Real subprocesses, real SIGKILL, real SQLite/PostgreSQL files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from clikit import ROOT, Result, assert_one_line_error, run_nexotc
from deskkit import accept_quote_cli, desk_argv

from nexotc_client.cli import run
from nexotc_client.desk.db import Database
from nexotc_client.desk.engine import fixture_books, hedge_plan
from nexotc_client.desk.exchange import open_sim_venues
from nexotc_client.desk.hedge import HedgeError, HedgeExecutor
from nexotc_client.desk.models import HedgeStatus, OrderStatus
from nexotc_client.desk.sim import SimClock
from nexotc_client.desk.store import DeskStore, StoreError


@pytest.fixture
def nx(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "home"
    db = f"sqlite:///{tmp_path / 'desk.db'}"

    def call(*argv: str) -> Result:
        code = run([*argv, "--home", str(home), "--db", db])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    call.home = home  # type: ignore[attr-defined]
    call.db = db  # type: ignore[attr-defined]
    return call


def accepted_quote(nx, rfq_id: str = "R1", size: str = "20", side: str = "buy") -> str:
    assert nx("rfq", "new", "--client", "acme", "--side", side, "--size", size, "--id", rfq_id).code == 0
    assert nx("quote", "new", rfq_id, "--ttl", "5m").code == 0
    assert nx("quote", "accept", f"{rfq_id}-q1").code == 0
    return f"{rfq_id}-q1"


def test_a_rejected_start_creates_nothing_and_the_default_id_stays_usable(nx) -> None:
    q = accepted_quote(nx)
    for bad, fragment in (
        (["--participation", "2"], "participation cap must be in (0, 1]"),
        (["--participation", "-0.1"], "participation cap must be in (0, 1]"),
        (["--venue-cap", "foo=5"], "unknown venue 'foo'"),
        (["--venue-cap", "okx=-5"], "okx=-5: must be >= 0"),
        (["--venue-cap", "okx"], "VENUE=SIZE"),
        (["--fixtures", "/nonexist"], "/nonexist"),
        (["--limit-bps", "nonsense"], "not a decimal"),
        (["--limit-bps", "1e9"], "price limit must be within"),
        (["--interval", "soon"], "not a duration"),
        (["--id", "../escape"], "--id '../escape'"),
    ):
        assert_one_line_error(nx("hedge", "start", q, "--clips", "2", "--interval", "10ms", *bad), fragment)
        assert not (nx.home / "exchange").exists() or not list((nx.home / "exchange").rglob("*.jsonl")), bad
        assert_one_line_error(nx("hedge", "show", f"H-{q}"), "no hedge")
    # the default id was never taken: the valid start works, no "holds another hedge's venue journals"
    r = nx("hedge", "start", q, "--clips", "2", "--interval", "10ms", "--json")
    assert r.code in (0, 3), r.err
    assert r.json()["parent_id"] == f"H-{q}" and Decimal(r.json()["filled"]) > 0


def test_a_quote_is_hedged_once_unless_residual_sized_at_what_is_left(nx) -> None:
    q = accepted_quote(nx)
    first = nx("hedge", "start", q, "--id", "HX", "--clips", "2", "--interval", "10ms", "--json")
    assert first.code in (0, 3), first.err
    filled = Decimal(first.json()["filled"])
    assert filled > 0
    assert_one_line_error(nx("hedge", "start", q, "--id", "H10"), "was hedged by HX", "--residual")
    assert_one_line_error(nx("hedge", "show", "H10"), "no hedge 'H10'")
    if filled < 20:
        second = nx("hedge", "start", q, "--residual", "--clips", "2", "--interval", "10ms", "--json")
        assert second.code in (0, 3), second.err
        data = second.json()
        assert data["parent_id"] == f"H-{q}-2" and Decimal(data["target"]) == 20 - filled
        assert filled + Decimal(data["filled"]) <= 20  # never over-hedged
    store = DeskStore(Database.open(nx.db))
    hedged = sum(Decimal(h["filled"]) for h in store.hedges() if h["quote_id"] == q)
    store.db.close()
    assert hedged <= 20
    if hedged == 20:
        assert_one_line_error(nx("hedge", "start", q, "--residual"), "fully hedged", "nothing left")


def test_an_underfilled_hedge_ends_partial_with_its_residual_and_exit_3(nx) -> None:
    q = accepted_quote(nx)
    # a limit 5 bps *better* than the arrival mid: the immediate-or-cancel child orders never fill
    r = nx("hedge", "start", q, "--clips", "2", "--interval", "10ms", "--limit-bps", "-5")
    assert r.code == 3
    assert "hedge H-R1-q1 partial: buy 0/20" in r.out and "residual 20 unhedged" in r.out
    assert r.err.strip().splitlines()[-1] == (
        f"warning: hedge H-R1-q1 partial, 20 left unhedged: `nexotc hedge start {q} --residual`"
    )
    shown = nx("hedge", "show", "H-R1-q1", "--json").json()
    assert shown["status"] == "partial" and shown["residual"] == "20" and shown["process"] is None
    # once a residual hedge took over, the old partial hedge's hint counts it (not "20 left" again)
    second = nx("hedge", "start", q, "--residual", "--clips", "2", "--interval", "10ms", "--json")
    assert second.code in (0, 3), second.err
    left = 20 - Decimal(second.json()["filled"])
    again = nx("hedge", "resume", "H-R1-q1")
    assert again.code == 3
    expected = (
        f"quote {q} is fully hedged with H-R1-q1-2"
        if left == 0
        else f"quote {q} has {left.normalize():f} left after H-R1-q1-2: `nexotc hedge start {q} --residual`"
    )
    assert again.err.strip().splitlines()[-1] == f"warning: hedge H-R1-q1 partial, 20 left unhedged; {expected}"


def test_human_output_prints_decimals_plainly(nx) -> None:
    from nexotc_client.cli.desk_engine import _amount, _price

    assert _amount(Decimal("1E+3")) == "1000" and _amount(Decimal("1E-9")) == "0.000000001"
    assert _amount(Decimal("20.00000000")) == "20"
    assert _price(Decimal("65030.470797626743559085188527458513425925275380809")) == "65,030.47"
    assert _price(Decimal("-1234567.005")) == "-1,234,567.00" and _price(Decimal("-0.001")) == "-0.001"
    assert _price(Decimal("0.000012345678901")) == "0.000012345679" and _price(None) == "-"
    q = accepted_quote(nx, size="0.5")
    r = nx("hedge", "start", q, "--clips", "2", "--interval", "10ms")
    assert r.code in (0, 3), r.err
    head = r.out.splitlines()[0]
    avg = head.split(" avg ")[1].split(" ")[0]
    assert len(avg.split(".")[1]) == 2, head
    for out in (r.out, nx("hedge", "show", f"H-{q}").out, nx("hedge", "list").out, nx("recon", q).out):
        assert "E+" not in out and "E-" not in out, out
    recon = nx("recon", q).out
    tca = next(line for line in recon.splitlines() if "TCA" in line)
    assert "{" not in tca and len(tca.split(" avg ")[1].split(", ")[0].split(".")[1]) == 2, tca
    # --json keeps the exact values
    assert len(nx("hedge", "show", f"H-{q}", "--json").json()["avg_price"].split(".")[1]) > 2


def cli(home: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEXOTC_HOME": str(home)}
    argv = [*args, "--home", str(home), "--db", db]
    done = run_nexotc(argv, env)
    return subprocess.CompletedProcess(["nexotc", *argv], done.code, done.out, done.err)


def one_line_error(r: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert_one_line_error(Result(r.returncode, r.stdout, r.stderr), *fragments)


def test_one_process_runs_a_hedge_a_killed_one_is_stale_and_cancel_is_idempotent(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    accept_quote_cli(home, db_url, "50", capsys)
    env = {**os.environ, "NEXOTC_HOME": str(home)}
    proc = subprocess.Popen(
        desk_argv(home, db_url, "hedge", "start", "R1-q1", "--clips", "400", "--interval", "100ms", "--json"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    store = DeskStore(Database.open(db_url))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if store.load_hedge("H-R1-q1").next_clip >= 3:
                    break
            except StoreError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        # while it runs: a second process can neither resume, cancel nor double-hedge it
        running = f"hedge H-R1-q1 is running in process {proc.pid}"
        one_line_error(cli(home, db_url, "hedge", "resume", "H-R1-q1"), running)
        one_line_error(cli(home, db_url, "hedge", "cancel", "H-R1-q1"), running, "stop it")
        one_line_error(
            cli(home, db_url, "hedge", "start", "R1-q1", "--id", "H10"),
            "already being hedged by H-R1-q1",
            f"it is running in process {proc.pid}",  # not "resume or cancel it", both refused while it runs
        )
        one_line_error(cli(home, db_url, "hedge", "start", "R1-q1", "--residual"), "already being hedged by H-R1-q1")
        [row] = json.loads(cli(home, db_url, "hedge", "list", "--json").stdout)
        assert row["status"] == "running" and row["process"] == {"running": True, "pid": proc.pid, "stale": False}

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        listed = cli(home, db_url, "hedge", "list")
        assert "H-R1-q1  running (stale: no process runs it)" in listed.stdout, listed.stdout
        assert json.loads(cli(home, db_url, "hedge", "show", "H-R1-q1", "--json").stdout)["process"]["stale"]

        # two resumes at once: exactly one runs it, the other is refused; nothing is sent twice
        racers = [
            subprocess.Popen(
                desk_argv(home, db_url, "hedge", "resume", "H-R1-q1", "--json"),
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while all(r.poll() is None for r in racers) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        codes = [r.poll() for r in racers]
        refused = [r for r, c in zip(racers, codes, strict=True) if c is not None]
        assert len(refused) == 1, codes
        out, err = refused[0].communicate()
        assert refused[0].returncode == 1 and "is running in process" in err and "Traceback" not in err
        [runner] = [r for r in racers if r is not refused[0]]
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)

        before = store.load_hedge("H-R1-q1")
        cancelled = cli(home, db_url, "hedge", "cancel", "H-R1-q1", "--json")
        assert cancelled.returncode == 0, cancelled.stderr
        data = json.loads(cancelled.stdout)
        assert data["status"] == "cancelled" and not data["already_cancelled"]
        state = store.load_hedge("H-R1-q1")
        assert state.status is HedgeStatus.CANCELLED and state.next_clip == before.next_clip < 400
        assert all(o.status is not OrderStatus.NEW and o.order_id for o in state.orders)
        assert len(store.bookings(quote_id="R1-q1")) == len(store.fills("H-R1-q1"))
        again = cli(home, db_url, "hedge", "cancel", "H-R1-q1", "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["already_cancelled"]
        assert "was already cancelled" in cli(home, db_url, "hedge", "cancel", "H-R1-q1").stdout
        one_line_error(cli(home, db_url, "hedge", "resume", "H-R1-q1"), "was cancelled")
        assert "H-R1-q1  cancelled" in cli(home, db_url, "hedge", "list").stdout
        # what is left is hedged only on purpose, sized at the residual
        one_line_error(cli(home, db_url, "hedge", "start", "R1-q1"), "was hedged by H-R1-q1", "--residual")
        rest = cli(
            home, db_url, "hedge", "start", "R1-q1", "--residual", "--clips", "2", "--interval", "10ms", "--json"
        )
        assert rest.returncode in (0, 3), rest.stderr
        assert Decimal(json.loads(rest.stdout)["target"]) == 50 - state.filled
        rec = cli(home, db_url, "recon", "R1-q1", "--json")
        assert rec.returncode == 0 and json.loads(rec.stdout)["breaks"] == {}, rec.stdout
        # the TCA covers both hedges of the quote: the cancelled one and the residual, each with its chart
        recon = json.loads(rec.stdout)
        residual = json.loads(rest.stdout)["parent_id"]
        assert [h["hedge"] for h in recon["hedges"]] == ["H-R1-q1", residual]
        assert Decimal(recon["tca"]["filled"]) == Decimal(recon["hedges"][0]["filled"]) == state.filled
        assert Path(recon["files"][f"png_{residual}"]).is_file() and Path(recon["files"]["png"]).is_file()
        assert len(Path(recon["files"]["tca_csv"]).read_text().splitlines()) == 3  # header + one row per hedge
        human = cli(home, db_url, "recon", "R1-q1").stdout
        assert "TCA of H-R1-q1:" in human and f"TCA of {residual}:" in human, human
    finally:
        if proc.poll() is None:
            proc.kill()
        store.db.close()


def test_cancel_never_sends_an_order_persisted_but_not_sent(tmp_path: Path) -> None:
    """The crash window between persisting a child order (status NEW) and sending it: cancel looks it up by client
    order id, finds the venue never had it, and marks it cancelled; a resume afterwards sends nothing."""
    from nexotc_client.desk.models import RFQ, Quote, QuoteComponents, QuoteState, Side

    store = DeskStore(Database.open(f"sqlite:///{tmp_path / 'desk.db'}"))
    books = fixture_books("BTC/USDT")
    clock = SimClock(1_000_000)
    venues = open_sim_venues(books, tmp_path / "ex", clock=clock, seed=3)
    store.save_rfq(RFQ("R1", "acme", "BTC/USDT", Side.BUY, Decimal(10), 0))
    quote = Quote(
        "Q1", "R1", "BTC/USDT", Side.BUY, Decimal(10), Decimal(64990), Decimal(65010), Decimal(65010), Decimal(65000),
        QuoteComponents(Decimal(0), Decimal(0), Decimal(0), Decimal(0)), 0, 60_000, QuoteState.ACCEPTED,
    )  # fmt: skip

    class Crash(Exception):
        pass

    def save_then_crash(state) -> None:
        store.save_hedge(state, "Q1")
        if any(not o.order_id for o in state.orders):
            raise Crash

    executor = HedgeExecutor(venues, clock=clock, sleep=clock.sleep, on_change=save_then_crash)
    state = executor.start(hedge_plan(quote, clips=4, interval_ms=1_000, start_ms=clock()))
    with pytest.raises(Crash):
        executor.step(state)
    saved = store.load_hedge("H-Q1")
    unsent = [o for o in saved.orders if not o.order_id]
    assert unsent and saved.status is HedgeStatus.RUNNING

    fresh = HedgeExecutor(venues, clock=clock, sleep=clock.sleep, on_change=lambda s: store.save_hedge(s, "Q1"))
    fresh.cancel(saved)
    final = store.load_hedge("H-Q1")
    assert final.status is HedgeStatus.CANCELLED and final.filled == 0
    assert all(o.status is OrderStatus.CANCELED and o.order_id.startswith("unsent:") for o in final.orders)
    assert not any(v.client_order_ids() for v in venues.values())  # nothing reached a venue
    assert fresh.cancel(final) is final  # idempotent
    with pytest.raises(HedgeError, match="was cancelled"):
        fresh.resume(final)
    assert not any(v.client_order_ids() for v in venues.values())
    store.db.close()
