"""Killing the process mid-hedge loses nothing: a restart resumes from the book.

`nexotc hedge start` runs in a subprocess (a 200 BTC TWAP on simulated venues whose journals are the
exchanges' own record); once a few clips have gone out it is SIGKILLed, then `nexotc hedge resume` finishes it
from the database. Every trade the venues executed is in the database exactly once, the hedge's totals are
the sums of those distinct fills, and no client order id was executed twice. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from clikit import ROOT
from deskkit import accept_quote_cli, desk_argv

from nexotc_client.desk.db import Database
from nexotc_client.desk.exchange import JournaledVenue
from nexotc_client.desk.models import HedgeStatus, OrderStatus
from nexotc_client.desk.store import DeskStore, StoreError

CLIPS = 30


def test_sigkill_mid_hedge_then_resume_loses_and_doubles_nothing(tmp_path: Path, db_url: str, capsys) -> None:
    home = tmp_path / "home"
    accept_quote_cli(home, db_url, "200", capsys)

    env = {**os.environ, "NEXOTC_HOME": str(home)}
    proc = subprocess.Popen(
        desk_argv(home, db_url, "hedge", "start", "R1-q1", "--clips", str(CLIPS), "--interval", "150ms", "--json"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    store = DeskStore(Database.open(db_url))
    try:
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            try:
                state = store.load_hedge("H-R1-q1")
            except StoreError:
                state = None
            if state is not None and state.next_clip >= 6:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        killed = store.load_hedge("H-R1-q1")
        assert killed.status is HedgeStatus.RUNNING and 6 <= killed.next_clip < CLIPS
        assert Decimal(0) < killed.filled < Decimal(200)

        resumed = subprocess.run(
            desk_argv(home, db_url, "hedge", "resume", "H-R1-q1", "--json"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        state = store.load_hedge("H-R1-q1")
        # every clip sent: DONE (exit 0), or PARTIAL with the residual named (exit 3)
        assert resumed.returncode == (0 if state.status is HedgeStatus.DONE else 3), resumed.stderr
        assert state.status in (HedgeStatus.DONE, HedgeStatus.PARTIAL) and state.next_clip == CLIPS

        # the exchanges' own record, rebuilt from their journals
        journals = sorted((home / "exchange" / "H-R1-q1").glob("*.jsonl"))
        venues = [JournaledVenue(p.stem, [], p) for p in journals]
        executed = [f for v in venues for f in v.executed("BTC/USDT")]
        stored = store.fills("H-R1-q1")
        keys = [f.key for f in stored]
        assert len(keys) == len(set(keys))  # nothing counted twice
        assert set(keys) == {f.key for f in executed}  # nothing lost, nothing invented
        assert state.filled == sum(f.size for f in executed) == sum(f.size for f in stored)
        assert state.fees == sum(f.fee for f in executed)
        assert (
            Decimal(190) < state.filled <= Decimal(200)
        )  # the sim executes IOC within limits: a small shortfall is possible
        # every client order id reached a venue at most once, and each stored order is the venue's
        sent = Counter(coid for v in venues for coid in v.client_order_ids())
        assert sent and max(sent.values()) == 1
        orders = [o for o in state.orders if o.status is not OrderStatus.REJECTED]
        assert {o.client_order_id for o in orders} == set(sent)
        by_order = Counter(f.order_id for f in stored)
        for o in orders:
            assert o.filled == sum(f.size for f in stored if f.order_id == o.order_id)
            assert by_order[o.order_id] == len([f for f in executed if f.order_id == o.order_id])
        # the desk booked each hedge fill once
        assert len(store.bookings(quote_id="R1-q1")) == len(stored)
    finally:
        if proc.poll() is None:
            proc.kill()
        store.db.close()
