"""Post-trade: reconciliation (internal bookings vs hedge fills vs on-chain settlement records, every break
classified) and transaction-cost analysis per trade (arrival slippage, implementation shortfall split into delay /
execution / opportunity / fees, interval-VWAP slippage, markouts), written as CSV and a PNG per trade.

The reconciliation's join runs on integer minor units (amounts scaled by 10**dp once per record), so matching a
million fills is a dict lookup and a few integer comparisons each.

Implementation shortfall (Perold), for a hedge of ``X`` on side ``s`` (+1 buy, −1 sell) decided at mid ``P_d``
(the quote's mid), started at arrival mid ``P_a``, ending at mid ``P_e``, with fills ``(q_i, p_i)`` of total ``Q``
and fees ``F``::

    delay       = s × Q × (P_a − P_d)
    execution   = s × Σ q_i × (p_i − P_a)
    opportunity = s × (X − Q) × (P_e − P_d)
    fees        = F
    total       = s × Σ q_i × (p_i − P_d) + opportunity + fees  = delay + execution + opportunity + fees (exactly)

each also in bps of the paper notional ``X × P_d``.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

from nexotc_client.desk.models import (
    Booking,
    BookingKind,
    Break,
    BreakKind,
    Fill,
    HedgeState,
    SettlementRecord,
)
from nexotc_client.desk.money import BPS, CTX

__all__ = [
    "ReconReport",
    "ReconTolerance",
    "TCAReport",
    "plot_trade",
    "reconcile",
    "tca",
    "write_breaks_csv",
    "write_tca_csv",
]


@dataclass(frozen=True, slots=True)
class ReconTolerance:
    """``dp``: decimals compared for sizes and fees (8 for BTC); ``price_bps``: price tolerance;
    ``fee_abs``: absolute fee tolerance (quote units); ``ts_ms``: allowed timestamp skew."""

    dp: int = 8
    price_bps: Decimal = Decimal(0)
    fee_abs: Decimal = Decimal(0)
    ts_ms: int = 5_000


@dataclass(slots=True)
class ReconReport:
    breaks: list[Break] = field(default_factory=list)
    matched: int = 0
    compared: int = 0

    def by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.breaks:
            out[b.kind.value] = out.get(b.kind.value, 0) + 1
        return out


def _units(x: Decimal, scale: Decimal) -> int:
    return int(x * scale)


def reconcile(
    bookings: Iterable[Booking],
    fills: Iterable[Fill],
    settlements: Iterable[SettlementRecord] = (),
    tol: ReconTolerance = ReconTolerance(),
) -> ReconReport:
    """Match HEDGE bookings to venue fills (ref ``venue:trade_id``) and SETTLEMENT bookings to on-chain records
    (by ref) and classify every disagreement: MISSING (on one side only), QUANTITY, PRICE, FEE, TIMESTAMP_SKEW,
    TX_HASH (settlements). A duplicated fill (same venue and trade id twice) counts once."""
    scale = Decimal(1).scaleb(tol.dp)
    pscale = Decimal(1).scaleb(8)
    fee_tol = int(tol.fee_abs * scale)
    price_tol = tol.price_bps
    report = ReconReport()
    breaks = report.breaks
    hedge: dict[str, Booking] = {}
    sett: dict[str, Booking] = {}
    for b in bookings:
        (hedge if b.kind is BookingKind.HEDGE else sett)[b.ref] = b
    seen: set[str] = set()
    for f in fills:
        ref = f"{f.venue}:{f.trade_id}"
        if ref in seen:
            continue
        seen.add(ref)
        report.compared += 1
        b = hedge.pop(ref, None)
        if b is None:
            breaks.append(
                Break(BreakKind.MISSING, ref, "booking", "fill", "", f"{f.size}@{f.price}", "fill not booked")
            )
            continue
        ok = True
        if _units(b.size, scale) != _units(f.size, scale):
            breaks.append(Break(BreakKind.QUANTITY, ref, "booking", "fill", str(b.size), str(f.size)))
            ok = False
        bp, fp = _units(b.price, pscale), _units(f.price, pscale)
        if bp != fp and (not price_tol or abs(bp - fp) * BPS > price_tol * fp):
            breaks.append(Break(BreakKind.PRICE, ref, "booking", "fill", str(b.price), str(f.price)))
            ok = False
        if abs(_units(b.fee, scale) - _units(f.fee, scale)) > fee_tol:
            breaks.append(Break(BreakKind.FEE, ref, "booking", "fill", str(b.fee), str(f.fee)))
            ok = False
        if abs(b.ts_ms - f.ts_ms) > tol.ts_ms:
            breaks.append(Break(BreakKind.TIMESTAMP_SKEW, ref, "booking", "fill", str(b.ts_ms), str(f.ts_ms)))
            ok = False
        report.matched += ok
    for ref, b in hedge.items():
        report.compared += 1
        breaks.append(Break(BreakKind.MISSING, ref, "booking", "fill", f"{b.size}@{b.price}", "", "booked, no fill"))
    for r in settlements:
        report.compared += 1
        b = sett.pop(r.ref, None)
        if b is None:
            breaks.append(
                Break(BreakKind.MISSING, r.ref, "booking", "chain", "", r.tx_hash, "settled on chain, not booked")
            )
            continue
        ok = True
        if _units(b.size, scale) != _units(r.base_amount, scale):
            breaks.append(Break(BreakKind.QUANTITY, r.ref, "booking", "chain", str(b.size), str(r.base_amount)))
            ok = False
        if r.base_amount > 0:
            chain_price = CTX.divide(r.quote_amount, r.base_amount)
            diff = abs(b.price - chain_price)
            if diff * BPS > price_tol * chain_price and _units(b.price, pscale) != _units(chain_price, pscale):
                breaks.append(Break(BreakKind.PRICE, r.ref, "booking", "chain", str(b.price), str(chain_price)))
                ok = False
        if abs(_units(b.fee, scale) - _units(r.fee, scale)) > fee_tol:
            breaks.append(Break(BreakKind.FEE, r.ref, "booking", "chain", str(b.fee), str(r.fee)))
            ok = False
        if abs(b.ts_ms - r.ts_ms) > tol.ts_ms:
            breaks.append(Break(BreakKind.TIMESTAMP_SKEW, r.ref, "booking", "chain", str(b.ts_ms), str(r.ts_ms)))
            ok = False
        if b.tx_hash.lower() != r.tx_hash.lower():
            breaks.append(Break(BreakKind.TX_HASH, r.ref, "booking", "chain", b.tx_hash, r.tx_hash))
            ok = False
        report.matched += ok
    for ref, b in sett.items():
        report.compared += 1
        breaks.append(Break(BreakKind.MISSING, ref, "booking", "chain", b.tx_hash, "", "booked, not on chain"))
    return report


def write_breaks_csv(report: ReconReport, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "ref", "left", "right", "expected", "actual", "detail"])
        for b in report.breaks:
            w.writerow([b.kind.value, b.ref, b.left, b.right, b.expected, b.actual, b.detail])
    return path


# --- TCA ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TCAReport:
    parent_id: str
    symbol: str
    side: str
    target: Decimal
    filled: Decimal
    avg_price: Decimal
    decision_mid: Decimal
    arrival_mid: Decimal
    end_mid: Decimal
    interval_vwap: Decimal
    fees: Decimal
    arrival_slippage_bps: Decimal
    interval_vwap_slippage_bps: Decimal
    is_delay: Decimal
    is_execution: Decimal
    is_opportunity: Decimal
    is_fees: Decimal
    is_total: Decimal
    is_total_bps: Decimal
    markouts_bps: tuple[tuple[int, Decimal], ...] = ()

    def components_bps(self) -> dict[str, Decimal]:
        paper = self.target * self.decision_mid
        return {k: getattr(self, f"is_{k}") / paper * BPS for k in ("delay", "execution", "opportunity", "fees")}


def _mid_at(mids: Sequence[tuple[int, Decimal]], ts: int) -> Decimal:
    times = [t for t, _ in mids]
    i = bisect.bisect_right(times, ts) - 1
    return mids[max(i, 0)][1]


def tca(
    state: HedgeState,
    decision_mid: Decimal | None = None,
    end_mid: Decimal | None = None,
    mids: Sequence[tuple[int, Decimal]] | None = None,
    prints: Sequence[tuple[int, Decimal, Decimal]] | None = None,
    markout_ms: Sequence[int] = (60_000, 300_000, 900_000),
) -> TCAReport:
    """TCA of one hedge. ``mids``: the (ts, mid) series (default: the ones the executor sampled, plus later ones
    for markouts); ``prints``: market trades (ts, price, size) for the interval VWAP (default: the time-weighted
    mean of the mids sampled during the hedge, when no market prints are available)."""
    plan = state.plan
    s = plan.side.sign
    mids = sorted(mids if mids is not None else state.mids)
    if state.arrival_mid is None or not mids:
        raise ValueError("the hedge has no arrival mid")
    pa = state.arrival_mid
    pd = decision_mid if decision_mid is not None else pa
    fills = sorted(state.fills, key=lambda f: f.ts_ms)
    q = sum((f.size for f in fills), Decimal(0))
    notional = sum((f.size * f.price for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    t_end = fills[-1].ts_ms if fills else plan.start_ms
    pe = end_mid if end_mid is not None else _mid_at(mids, t_end)
    avg = notional / q if q else pa
    delay = s * q * (pa - pd)
    execution = s * (notional - q * pa)
    opportunity = s * (plan.target_size - q) * (pe - pd)
    total = s * (notional - q * pd) + opportunity + fees
    t0 = plan.start_ms
    if prints:
        win = [(p, z) for t, p, z in prints if t0 <= t <= t_end]
        vol = sum((z for _, z in win), Decimal(0))
        ivwap = sum((p * z for p, z in win), Decimal(0)) / vol if vol else pa
    else:
        win_m = [m for t, m in mids if t0 <= t <= t_end] or [pa]
        ivwap = sum(win_m, Decimal(0)) / len(win_m)
    markouts = tuple(
        (h, s * (_mid_at(mids, t_end + h) - avg) / avg * BPS) for h in markout_ms if mids[-1][0] >= t_end + h
    )
    paper = plan.target_size * pd
    return TCAReport(
        parent_id=plan.parent_id,
        symbol=plan.symbol,
        side=plan.side.value,
        target=plan.target_size,
        filled=q,
        avg_price=avg,
        decision_mid=pd,
        arrival_mid=pa,
        end_mid=pe,
        interval_vwap=ivwap,
        fees=fees,
        arrival_slippage_bps=s * (avg - pa) / pa * BPS,
        interval_vwap_slippage_bps=s * (avg - ivwap) / ivwap * BPS,
        is_delay=delay,
        is_execution=execution,
        is_opportunity=opportunity,
        is_fees=fees,
        is_total=total,
        is_total_bps=total / paper * BPS,
        markouts_bps=markouts,
    )


def write_tca_csv(reports: Iterable[TCAReport], path: str | Path) -> Path:
    path = Path(path)
    rows = list(reports)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        header = [k for k in asdict(rows[0]) if k != "markouts_bps"] if rows else []
        horizons = sorted({h for r in rows for h, _ in r.markouts_bps})
        w.writerow(header + [f"markout_{h // 1000}s_bps" for h in horizons])
        for r in rows:
            d = asdict(r)
            mk = dict(r.markouts_bps)
            w.writerow([str(d[k]) for k in header] + [str(mk.get(h, "")) for h in horizons])
    return path


def plot_trade(state: HedgeState, path: str | Path, mids: Sequence[tuple[int, Decimal]] | None = None) -> Path:
    """A PNG of one hedge: fills (price, dot size by quantity) and the mid over time, and the cumulative filled
    size against the TWAP schedule (Agg backend: no display needed). Floats appear only as plot coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = state.plan
    mids = sorted(mids if mids is not None else state.mids)
    fills = sorted(state.fills, key=lambda f: f.ts_ms)
    t0 = plan.start_ms
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 2])
    ax1.plot([(t - t0) / 1000 for t, _ in mids], [float(m) for _, m in mids], color="grey", label="mid")
    if fills:
        top = max(float(f.size) for f in fills)
        ax1.scatter(
            [(f.ts_ms - t0) / 1000 for f in fills],
            [float(f.price) for f in fills],
            s=[10 + 60 * float(f.size) / top for f in fills],
            alpha=0.6,
            label="fills",
        )
    if state.arrival_mid is not None:
        ax1.axhline(float(state.arrival_mid), ls="--", color="black", lw=0.8, label="arrival mid")
    ax1.set_ylabel("price")
    ax1.set_title(f"hedge {plan.parent_id}: {plan.side.value} {plan.target_size} {plan.symbol}")
    ax1.legend(loc="best")
    sched_t, sched_q = [], []
    for k in range(plan.clips + 1):
        sched_t.append((k * plan.interval_ms) / 1000)
        sched_q.append(float(plan.target_size) * k / plan.clips)
    ax2.step(sched_t, sched_q, where="post", label="TWAP schedule")
    cum, ts = [0.0], [0.0]
    total = Decimal(0)
    for f in fills:
        total += f.size
        ts.append((f.ts_ms - t0) / 1000)
        cum.append(float(total))
    ax2.step(ts, cum, where="post", label="filled")
    ax2.set_xlabel("seconds since start")
    ax2.set_ylabel("cumulative size")
    ax2.legend(loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
