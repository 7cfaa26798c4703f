"""Desk engine benchmarks, printed as a table.

    .venv/bin/python bench/desk.py [--markdown | --json] [--seeds 1000] [--rfqs 2000] [--fills 200000]

1. RFQ -> two-way quote latency over 4 venues x 1,000 levels per side (books from the documented fixture model of
   scripts/gen_venue_fixtures.py, every venue at 1,000 levels): guards + fee-adjusted VWAP walk of both sides +
   tiers/vol/skew + the Quote. "warm": the venue books are already prepared (market data arrives before RFQs);
   "cold": every RFQ sees new books (the per-book fee-adjusted preparation is included).
2. TWAP (20 clips, 60 s apart) vs one immediate sweep for 200 BTC on the simulated venues (sim.py, seeded; the
   BTC/USDT fixture books of the 4 venues, top 300 levels each), mean arrival slippage over the seeds.
3. Reconciliation throughput: bookings vs venue fills joined and compared (with 1% of breaks of every kind).
"""

from __future__ import annotations

import importlib.util
import json
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nexotc_client.desk.hedge import HedgeExecutor  # noqa: E402
from nexotc_client.desk.models import (  # noqa: E402
    RFQ,
    Book,
    Booking,
    BookingKind,
    Fill,
    HedgePlan,
    Level,
    Side,
)
from nexotc_client.desk.quote import QuoteEngine  # noqa: E402
from nexotc_client.desk.sim import SimClock, SimVenue  # noqa: E402
from nexotc_client.desk.tca import reconcile  # noqa: E402
from nexotc_client.desk.venues import CCXT_VENUES, CcxtVenue, FixtureResponder, RawTransport  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "venues"
TS = 1_763_900_000_000


def model_books(levels: int) -> list[Book]:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_venue_fixtures.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rng = random.Random(7)
    fees = {"binance": Decimal(10), "okx": Decimal(10), "coinbase": Decimal(60), "kraken": Decimal(40)}
    out = []
    for v in gen.VENUES:
        gen.VENUES[v]["levels"] = levels
        bids, asks = gen.model_book(v, "BTC/USDT", rng)
        out.append(
            Book(
                v,
                "BTC/USDT",
                tuple(Level(Decimal(p), Decimal(s)) for p, s in bids),
                tuple(Level(Decimal(p), Decimal(s)) for p, s in asks),
                TS,
                fees[v],
            )
        )
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_quotes(n: int) -> dict:
    books = model_books(1000)
    engine = QuoteEngine(books=lambda s: books, clock=lambda: TS)
    rng = random.Random(1)
    rfqs = [
        RFQ(f"r{i}", "client", "BTC/USDT", rng.choice([Side.BUY, Side.SELL]), Decimal(rng.randint(1, 20000)) / 100, TS)
        for i in range(n)
    ]
    engine.quote(rfqs[0])
    warm, warm_cpu = [], []
    for r in rfqs:
        c = time.thread_time_ns()
        t = time.perf_counter_ns()
        engine.quote(r)
        warm.append((time.perf_counter_ns() - t) / 1e6)
        warm_cpu.append((time.thread_time_ns() - c) / 1e6)
    cold = []
    for r in rfqs[: max(1, n // 4)]:
        fresh = [Book(b.venue, b.symbol, b.bids, b.asks, b.ts_ms, b.fee_bps) for b in books]
        eng = QuoteEngine(books=lambda s, fresh=fresh: fresh, clock=lambda: TS)
        t = time.perf_counter_ns()
        eng.quote(r)
        cold.append((time.perf_counter_ns() - t) / 1e6)
    return {
        "levels": sum(len(b.asks) + len(b.bids) for b in books),
        "warm_p50_ms": pct(warm, 50),
        "warm_p99_ms": pct(warm, 99),
        "warm_cpu_p50_ms": pct(warm_cpu, 50),
        "warm_cpu_p99_ms": pct(warm_cpu, 99),
        "cold_p50_ms": pct(cold, 50),
        "cold_p99_ms": pct(cold, 99),
        "rfqs": n,
    }


def fixture_books() -> dict[str, Book]:
    out = {}
    for v in CCXT_VENUES:
        venue = CcxtVenue(v, transport=RawTransport(FixtureResponder(FIXTURES, v)), clock=lambda: TS)
        out[v] = venue.fetch_order_book("BTC/USDT")
    return out


def run_hedge(books: dict[str, Book], seed: int, clips: int) -> Decimal:
    clock = SimClock(TS)
    sims = {v: SimVenue(v, [b], clock, seed=seed) for v, b in books.items()}
    ex = HedgeExecutor(sims, clock=clock, sleep=clock.sleep, book_depth=300)
    plan = HedgePlan(f"h{seed}", "BTC/USDT", Side.BUY, Decimal(200), clips, 60_000 if clips > 1 else 0, clock())
    st = ex.start(plan)
    ex.run(st, poll_ms=60_000)
    return (st.avg_price - st.arrival_mid) / st.arrival_mid * 10_000


def bench_twap(seeds: int, console: Console | None) -> dict:
    books = fixture_books()
    twap, sweep = [], []
    with Progress(console=console or Console(stderr=True), transient=True) as prog:
        task = prog.add_task("TWAP vs sweep", total=seeds)
        for seed in range(seeds):
            twap.append(float(run_hedge(books, seed, 20)))
            sweep.append(float(run_hedge(books, seed, 1)))
            prog.advance(task)
    mt, ms = statistics.fmean(twap), statistics.fmean(sweep)
    return {
        "seeds": seeds,
        "twap_mean_bps": mt,
        "twap_sd_bps": statistics.pstdev(twap),
        "sweep_mean_bps": ms,
        "sweep_sd_bps": statistics.pstdev(sweep),
        "ratio": mt / ms,
    }


def bench_recon(n: int) -> dict:
    rng = random.Random(3)
    fills, bookings = [], []
    for i in range(n):
        f = Fill(
            f"t{i}",
            f"o{i // 10}",
            "binance",
            Side.BUY,
            Decimal(rng.randint(1, 10**8)) / 10**8,
            Decimal(rng.randint(6_400_000, 6_600_000)) / 100,
            Decimal(rng.randint(1, 10**6)) / 10**4,
            "USDT",
            TS + i,
        )
        fills.append(f)
        k = i % 100
        size = f.size + Decimal("0.00000001") if k == 1 else f.size
        price = f.price + 1 if k == 2 else f.price
        fee = f.fee + 1 if k == 3 else f.fee
        ts = f.ts_ms + 60_000 if k == 4 else f.ts_ms
        if k != 5:
            bookings.append(
                Booking(f"b{i}", BookingKind.HEDGE, f"binance:t{i}", "BTC/USDT", f.side, size, price, fee, ts)
            )
    fills += fills[: n // 100]  # duplicated fills
    t = time.perf_counter()
    rep = reconcile(bookings, fills)
    dt = time.perf_counter() - t
    return {"fills": len(fills), "seconds": dt, "fills_per_s": len(fills) / dt, "breaks": len(rep.breaks)}


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--markdown", is_flag=True)
@click.option("--seeds", default=1000, show_default=True)
@click.option("--rfqs", default=2000, show_default=True)
@click.option("--fills", default=200_000, show_default=True)
def main(as_json: bool, markdown: bool, seeds: int, rfqs: int, fills: int) -> None:
    q = bench_quotes(rfqs)
    tw = bench_twap(seeds, None)
    rc = bench_recon(fills)
    rows = [
        (
            "RFQ -> two-way quote, 4 venues x 1,000 levels/side, p50 / p99 (warm books)",
            f"{q['warm_p50_ms']:.3f} / {q['warm_p99_ms']:.3f} ms",
            "p99 <= 5 ms",
            q["warm_p99_ms"] <= 5,
        ),
        (
            "  same, CPU time of the quoting thread (excludes preemption by other processes), p50 / p99",
            f"{q['warm_cpu_p50_ms']:.3f} / {q['warm_cpu_p99_ms']:.3f} ms",
            "(informative)",
            None,
        ),
        (
            "  same, every RFQ on new books (per-book preparation included), p50 / p99",
            f"{q['cold_p50_ms']:.3f} / {q['cold_p99_ms']:.3f} ms",
            "(informative)",
            None,
        ),
        (
            f"TWAP (20 x 60 s) vs one sweep, 200 BTC, {tw['seeds']} seeds: mean arrival slippage",
            f"{tw['twap_mean_bps']:.2f} (sd {tw['twap_sd_bps']:.2f}) vs {tw['sweep_mean_bps']:.2f} bps"
            f" ({tw['ratio']:.0%})",
            "<= 50% of the sweep's",
            tw["ratio"] <= 0.5,
        ),
        (
            f"reconciliation, {rc['fills']:,} fills (1% duplicated, {rc['breaks']:,} breaks)",
            f"{rc['fills_per_s']:,.0f} fills/s",
            ">= 100,000 fills/s",
            rc["fills_per_s"] >= 100_000,
        ),
    ]
    if as_json:
        click.echo(json.dumps({"quote": q, "twap": tw, "recon": rc}, indent=2))
        return
    if markdown:
        click.echo("| benchmark | measured | target | met |\n|---|---|---|---|")
        for name, value, target, ok in rows:
            click.echo(f"| {name.strip()} | {value} | {target} | {'' if ok is None else ('yes' if ok else 'NO')} |")
        return
    table = Table(title="Desk engine")
    for col in ("benchmark", "measured", "target", "met"):
        table.add_column(col)
    for name, value, target, ok in rows:
        table.add_row(name, value, target, "" if ok is None else ("yes" if ok else "NO"))
    Console().print(table)


if __name__ == "__main__":
    main()
