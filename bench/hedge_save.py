"""How long one hedge save takes as a TWAP's child orders pile up, printed as a table.

    .venv/bin/python bench/hedge_save.py [--orders 5000] [--db sqlite:///FILE | postgresql+psycopg://...]

A hedge is saved after every step of its executor (`DeskStore.save_hedge` through `on_change`): each clip sends
one order and fills the one before, so a step changes two orders and adds a fill. The benchmark replays that
on a real database (a temporary SQLite file by default) and reports, at each checkpoint, the mean time of the
saves around it and the rows of child_orders one save wrote (counted with SQLAlchemy's flush events). A save
that rewrote every order would grow with the order count (quadratic over the hedge); it must stay flat.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nexotc_client.desk.db import ChildOrderRow, Database  # noqa: E402
from nexotc_client.desk.models import (  # noqa: E402
    ChildOrder,
    Fill,
    HedgePlan,
    HedgeState,
    HedgeStatus,
    OrderStatus,
    Side,
)
from nexotc_client.desk.store import DeskStore  # noqa: E402

CHECKPOINTS = (10, 100, 250, 500, 1_000, 1_350, 2_000, 3_000, 5_000, 10_000)
WINDOW = 20  # saves timed around each checkpoint


def _step(state: HedgeState, i: int) -> None:
    """Clip i: the previous order fills (one fill), a new order goes out."""
    if state.orders:
        prev = state.orders[-1]
        size = prev.size
        prev.status, prev.filled, prev.venue_filled = OrderStatus.FILLED, size, size
        prev.notional, prev.fees = size * Decimal(65_000), Decimal("0.65")
        state.fills.append(
            Fill(f"T{i}", prev.order_id, prev.venue, Side.BUY, size, Decimal(65_000), Decimal("0.65"), "USDT", i)
        )
        state.filled += size
        state.notional += size * Decimal(65_000)
    state.orders.append(
        ChildOrder(
            f"O{i}",
            state.plan.parent_id,
            "binance",
            "BTC/USDT",
            Side.BUY,
            Decimal("0.01"),
            None,
            i,
            OrderStatus.NEW,
            clip=i,
            client_order_id=f"H-bench-{i}",
        )  # fmt: skip
    )
    state.next_clip = i + 1
    state.mids.append((i, Decimal(65_000)))


@click.command()
@click.option("--orders", default=5_000, show_default=True, help="Child orders (clips) of the hedge.")
@click.option("--db", "db_url", default=None, help="Database URL (default: a temporary SQLite file).")
def main(orders: int, db_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(db_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        store = DeskStore(db)
        written = [0]

        def count(_mapper: object, _connection: object, _target: object) -> None:
            written[0] += 1

        event.listen(ChildOrderRow, "before_insert", count)
        event.listen(ChildOrderRow, "before_update", count)
        plan = HedgePlan("H-bench", "BTC/USDT", Side.BUY, Decimal(orders) / 100, orders, 1_000, 0)
        state = HedgeState(plan, status=HedgeStatus.RUNNING, arrival_mid=Decimal(65_000))
        marks = [c for c in CHECKPOINTS if c <= orders]
        times: dict[int, list[float]] = {c: [] for c in marks}
        rows: dict[int, int] = {}
        started = time.perf_counter()
        for i in range(orders):
            _step(state, i)
            written[0] = 0
            t0 = time.perf_counter()
            store.save_hedge(state)
            elapsed = time.perf_counter() - t0
            n = len(state.orders)
            for c in marks:
                if c - WINDOW < n <= c:
                    times[c].append(elapsed)
                if n == c:
                    rows[c] = written[0]
        total = time.perf_counter() - started
        table = Table(
            title=f"hedge save vs child orders ({db.engine.dialect.name})",
            caption=f"{orders:,} clips, one save each, in {total:.1f} s",
        )
        table.add_column("orders", justify="right")
        table.add_column("save (ms, mean)", justify="right")
        table.add_column("order rows written", justify="right")
        for c in marks:
            table.add_row(f"{c:,}", f"{statistics.mean(times[c]) * 1000:.2f}", str(rows[c]))
        Console().print(table)
        db.close()


if __name__ == "__main__":
    main()
