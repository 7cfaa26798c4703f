"""The hedge executor: TWAP clips on a schedule, multi-venue routing by best fee-adjusted price with per-venue
caps, an optional participation cap, child-order and fill tracking.

All state lives in :class:`~nexotc_client.desk.models.HedgeState` (plan, progress, child orders, distinct fills),
so a caller can persist it after every :meth:`HedgeExecutor.step` and continue after a crash with
:meth:`HedgeExecutor.resume`. Crash safety comes from the order of operations: a child order is appended to the
state (status NEW, a deterministic client order id from parent, clip and venue: :func:`client_order_id`)
*before* it is sent, and on resume every NEW order is looked up by its client order id on its venue: an order
the venue knows is adopted (never re-sent), an unknown one is sent now. Orders still open are refreshed on every
poll (a venue may acknowledge before it reports the order's state). Fills are keyed by ``(venue, trade_id)``:
a fill seen twice (in the acknowledgement and again in ``fetch_my_trades``, or again after a restart) counts
once, late and out-of-order fills are accepted whenever they arrive, and the totals are sums over the distinct
fills. A venue error propagates out of :meth:`HedgeExecutor.step` with the state as persisted (resumable); an
order whose send failed and whose lookup failed too is left NEW (its fate is unknown: resume looks it up again),
never marked rejected and never re-sent blindly.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from nexotc_client.desk.aggregator import InsufficientDepthError, consolidate
from nexotc_client.desk.models import ChildOrder, Fill, HedgePlan, HedgeState, HedgeStatus, OrderStatus, Side
from nexotc_client.desk.money import BPS, quantize
from nexotc_client.desk.venues import ExecutionVenue, VenueError

__all__ = [
    "HedgeBusyError",
    "HedgeError",
    "HedgeExecutor",
    "HedgeLock",
    "client_order_id",
    "committed_size",
    "recompute_totals",
    "validate_plan",
]


def client_order_id(parent_id: str, clip: int, venue: str) -> str:
    """The deterministic client order id of a clip's child order on a venue: letters and digits only, at most
    32 characters (accepted by Binance, OKX, Coinbase and Kraken), readable prefix + a hash for uniqueness."""
    raw = f"{parent_id}/{clip}/{venue}"
    tag = "".join(ch for ch in parent_id if ch.isascii() and ch.isalnum())[:12]
    return f"{tag}c{clip}{venue[:3]}{hashlib.sha256(raw.encode()).hexdigest()[:10]}"[:32]


class HedgeError(RuntimeError):
    """A hedge plan that cannot run (no venue, a bad plan)."""


class HedgeBusyError(HedgeError):
    """Another process holds the hedge's lock (it is running the hedge)."""


def validate_plan(plan: HedgePlan, venues: Iterable[str]) -> None:
    """Everything about a plan that can be checked before anything is created (the venues it names exist, the
    size, clips, interval, participation cap, venue caps and price limit are in range): raises HedgeError."""
    known = sorted(venues)
    if plan.target_size <= 0:
        raise HedgeError(f"target size must be positive, not {plan.target_size}")
    if plan.clips < 1 or plan.interval_ms < 0:
        raise HedgeError("clips must be >= 1 and the interval >= 0")
    if plan.participation_cap is not None and not (0 < plan.participation_cap <= 1):
        raise HedgeError(f"participation cap must be in (0, 1], not {plan.participation_cap}")
    names = list(plan.venues) or known
    missing = [n for n in names if n not in known]
    if missing:
        raise HedgeError(f"unknown venues {missing} (venues: {', '.join(known)})")
    if not names:
        raise HedgeError("no venue to hedge on")
    for venue, cap in sorted(plan.venue_caps.items()):
        if venue not in names:
            raise HedgeError(f"venue cap for unknown venue {venue!r} (venues: {', '.join(names)})")
        if cap < 0:
            raise HedgeError(f"venue cap {venue}={cap}: must be >= 0")
    if plan.venue_caps and all(plan.venue_caps.get(n, plan.target_size) == 0 for n in names):
        raise HedgeError("the venue caps leave no venue to hedge on")
    if plan.limit_bps is not None and not (-BPS < plan.limit_bps < BPS):
        raise HedgeError(f"price limit must be within (-10000, 10000) bps, not {plan.limit_bps}")


def committed_size(state: HedgeState) -> Decimal:
    """Size filled or reported filled by the venues (late fills not yet seen count here)."""
    return sum((max(o.filled, o.venue_filled) for o in state.orders), Decimal(0))


class HedgeLock:
    """An exclusive per-hedge process lock (``flock`` on ``path``, which holds the holder's pid): one process
    at a time starts, resumes or cancels a hedge. The kernel drops the lock when its process dies, however it
    dies, so a hedge whose lock is free is not running anywhere (a "running" status then is stale)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what  # "hedge H-1": the error names it
        self._fd: int | None = None

    def acquire(self, retries: int = 5) -> HedgeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(retries + 1):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if attempt == retries:  # a `hedge list` probe holds it for an instant: retry a little first
                    pid = _read_pid(fd)
                    os.close(fd)
                    who = f"process {pid}" if pid else "another process"
                    raise HedgeBusyError(f"{self.what} is running in {who}") from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HedgeLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @staticmethod
    def holder(path: Path) -> int | None:
        """The pid of the process running the hedge whose lock is ``path`` (0: a process whose pid is not
        written yet), None when no process holds it."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                return _read_pid(fd) or 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def recompute_totals(state: HedgeState) -> None:
    """Rebuild every total (state and per order) from the distinct fills: the single source of truth."""
    by_order: dict[tuple[str, str], ChildOrder] = {(o.venue, o.order_id): o for o in state.orders if o.order_id}
    for o in state.orders:
        o.filled = o.notional = o.fees = Decimal(0)
    state.filled = state.notional = state.fees = Decimal(0)
    state.venue_filled = {}
    for f in state.fills:
        state.filled += f.size
        state.notional += f.size * f.price
        state.fees += f.fee
        state.venue_filled[f.venue] = state.venue_filled.get(f.venue, Decimal(0)) + f.size
        o = by_order.get((f.venue, f.order_id))
        if o is not None:
            o.filled += f.size
            o.notional += f.size * f.price
            o.fees += f.fee
    for o in state.orders:
        if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) and o.order_id and o.filled >= o.size:
            o.status = OrderStatus.FILLED


class HedgeExecutor:
    """Runs hedge plans on execution venues (``venues`` by name). ``clock`` gives milliseconds and ``sleep``
    waits (a :class:`~nexotc_client.desk.sim.SimClock` in tests: nothing really sleeps). ``console`` shows a
    rich progress bar while :meth:`run` works (None: silent). ``on_change(state)`` is called after every
    change worth persisting."""

    #: how far a venue's clock may run behind ours: trades are read from this long before an order was sent
    clock_skew_ms: int = 60_000

    def __init__(
        self,
        venues: Mapping[str, ExecutionVenue],
        *,
        clock: Callable[[], int],
        sleep: Callable[[int], None],
        size_dp: int = 8,
        book_depth: int | None = None,
        console: Console | None = None,
        on_change: Callable[[HedgeState], None] | None = None,
    ) -> None:
        self.venues = dict(venues)
        self.clock = clock
        self.sleep = sleep
        self.size_dp = size_dp
        self.book_depth = book_depth
        self.console = console
        self.on_change = on_change
        self._seen: dict[str, set[tuple[str, str]]] = {}

    # --- setup --------------------------------------------------------------------------------------------

    def _plan_venues(self, plan: HedgePlan) -> list[str]:
        names = list(plan.venues) or list(self.venues)
        missing = [n for n in names if n not in self.venues]
        if missing:
            raise HedgeError(f"unknown venues {missing}")
        if not names:
            raise HedgeError("no venue to hedge on")
        return names

    def start(self, plan: HedgePlan) -> HedgeState:
        """A new hedge: validates the plan and records the arrival mid (consolidated book at start)."""
        validate_plan(plan, self.venues)
        names = self._plan_venues(plan)
        book = consolidate([self.venues[n].fetch_order_book(plan.symbol, self.book_depth) for n in names], plan.symbol)
        state = HedgeState(plan=plan, status=HedgeStatus.RUNNING, arrival_mid=book.mid, updated_ms=self.clock())
        state.mids.append((self.clock(), book.mid))
        self._seen[plan.parent_id] = set()
        self._changed(state)
        return state

    def _changed(self, state: HedgeState) -> None:
        state.updated_ms = self.clock()
        if self.on_change is not None:
            self.on_change(state)

    # --- fills --------------------------------------------------------------------------------------------

    def _seen_set(self, state: HedgeState) -> set[tuple[str, str]]:
        seen = self._seen.get(state.plan.parent_id)
        if seen is None or len(seen) != len(state.fills):
            seen = {f.key for f in state.fills}
            self._seen[state.plan.parent_id] = seen
        return seen

    def ingest(self, state: HedgeState, fills: Iterable[Fill]) -> int:
        """Add the fills not seen before (by venue + trade id) that belong to this hedge's orders; returns how
        many were new. Duplicates and fills of other orders are ignored; order does not matter."""
        seen = self._seen_set(state)
        mine = {(o.venue, o.order_id): o for o in state.orders if o.order_id}
        new = 0
        for f in fills:
            if f.key in seen:
                continue
            o = mine.get((f.venue, f.order_id))
            if o is None:
                continue
            seen.add(f.key)
            state.fills.append(f)
            state.filled += f.size
            state.notional += f.size * f.price
            state.fees += f.fee
            state.venue_filled[f.venue] = state.venue_filled.get(f.venue, Decimal(0)) + f.size
            o.filled += f.size
            o.notional += f.size * f.price
            o.fees += f.fee
            new += 1
        return new

    def poll(self, state: HedgeState) -> int:
        """Refresh the orders still open (a venue such as OKX acknowledges an order before it reports its state),
        then fetch each venue's trades from its earliest order still waiting for fills (see
        :meth:`trades_since`) and ingest the new ones."""
        new = 0
        for o in state.orders:
            if o.order_id and o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                ack = self.venues[o.venue].fetch_order(o.symbol, o.client_order_id)
                if ack is not None and (ack.status is not o.status or ack.filled != o.venue_filled):
                    o.status, o.venue_filled = ack.status, ack.filled
                    new += self.ingest(state, ack.fills)
        for name in sorted({o.venue for o in state.orders}):
            since = self.trades_since(state, name)
            if since is not None:
                new += self.ingest(state, self.venues[name].fetch_my_trades(state.plan.symbol, since))
        if new:
            self._changed(state)
        return new

    def trades_since(self, state: HedgeState, venue: str) -> int | None:
        """Where ``venue``'s trade list must be read from: the send time, less :attr:`clock_skew_ms`, of its
        earliest order still waiting for fills (open, or fewer fills seen than the venue reports). A fill is
        never older than its order, so the trades before that are all in already. None when every order there
        is complete: nothing to fetch (the venues list trades a page at a time, so reading from the start of a
        long hedge on every poll would cost ever more requests)."""
        waiting = [
            o.ts_ms
            for o in state.orders
            if o.venue == venue
            and (o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) or o.filled < o.venue_filled)
        ]
        return min(waiting) - self.clock_skew_ms if waiting else None

    # --- schedule and routing -----------------------------------------------------------------------------

    def committed(self, state: HedgeState) -> Decimal:
        """Size filled or reported filled by the venues (late fills not yet seen count here)."""
        return committed_size(state)

    def clip_due_ms(self, state: HedgeState, clip: int) -> int:
        return state.plan.start_ms + clip * state.plan.interval_ms

    def clip_size(self, state: HedgeState, book) -> Decimal:
        """The next clip: what is left spread over the clips left (catching up any shortfall), capped by the
        participation cap (a fraction of the depth displayed within the band around the mid)."""
        plan = state.plan
        left = plan.target_size - self.committed(state)
        clips_left = plan.clips - state.next_clip
        if left <= 0 or clips_left <= 0:
            return Decimal(0)
        size = left / clips_left if clips_left > 1 else left
        if plan.participation_cap is not None:
            size = min(size, plan.participation_cap * book.depth_within(plan.side, plan.participation_band_bps))
        return quantize(size, self.size_dp, ROUND_DOWN)

    def _route(self, state: HedgeState, book, size: Decimal) -> dict[str, tuple[Decimal, Decimal]]:
        """Per venue: (size, worst price) of the cheapest fee-adjusted sweep within the venue caps."""
        plan = state.plan
        room = {}
        for v, cap in plan.venue_caps.items():
            used = sum((max(o.filled, o.venue_filled) for o in state.orders if o.venue == v), Decimal(0))
            room[v] = max(Decimal(0), cap - used)
        try:
            slices = book.sweep(plan.side, size, room)
        except InsufficientDepthError as exc:
            if exc.available <= 0:
                return {}
            slices = book.sweep(plan.side, exc.available, room)
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for s in slices:
            q, worst = out.get(s.venue, (Decimal(0), s.price))
            worst = max(worst, s.price) if plan.side is Side.BUY else min(worst, s.price)
            out[s.venue] = (q + s.size, worst)
        if plan.limit_bps is not None and state.arrival_mid is not None:
            bound = state.arrival_mid * (1 + plan.side.sign * plan.limit_bps / BPS)
            out = {v: (q, min(p, bound) if plan.side is Side.BUY else max(p, bound)) for v, (q, p) in out.items()}
        return out

    def _send(self, state: HedgeState, order: ChildOrder) -> None:
        venue = self.venues[order.venue]
        try:
            ack = venue.create_order(order.symbol, order.side, order.size, order.limit_price, order.client_order_id)
        except VenueError as sent:
            # the request may still have reached the venue (a timeout): look the order up before giving up on it
            try:
                ack = venue.fetch_order(order.symbol, order.client_order_id)
            except VenueError as lookup:
                # the venue cannot say whether it took the order (the network is down): the order stays NEW, as
                # persisted before the send, and the hedge stops here; resume() looks it up again, never re-sends
                raise VenueError(
                    f"{order.venue}: order {order.client_order_id} may or may not have reached the venue "
                    f"({sent}; looking it up: {lookup})"
                ) from lookup
            if ack is None:
                order.status = OrderStatus.REJECTED
                order.order_id = f"rejected:{order.client_order_id}"
                return
        self._adopt(state, order, ack)

    def _adopt(self, state: HedgeState, order: ChildOrder, ack) -> None:
        order.order_id = ack.order_id
        order.status = ack.status
        order.venue_filled = ack.filled
        self.ingest(state, ack.fills)

    def step(self, state: HedgeState) -> bool:
        """Do what is due now: poll fills; send the next clip if its time has come. True if a clip was sent."""
        if state.status is not HedgeStatus.RUNNING:
            return False
        self.poll(state)
        plan = state.plan
        now = self.clock()
        if state.next_clip >= plan.clips or now < self.clip_due_ms(state, state.next_clip):
            self._maybe_done(state)
            return False
        names = self._plan_venues(plan)
        book = consolidate([self.venues[n].fetch_order_book(plan.symbol, self.book_depth) for n in names], plan.symbol)
        state.mids.append((now, book.mid))
        clip = state.next_clip
        size = self.clip_size(state, book)
        routes = self._route(state, book, size) if size > 0 else {}
        new_orders = []
        for venue, (q, worst) in sorted(routes.items()):
            q = quantize(q, self.size_dp, ROUND_DOWN)
            if q <= 0:
                continue
            order = ChildOrder(
                order_id="",
                parent_id=plan.parent_id,
                venue=venue,
                symbol=plan.symbol,
                side=plan.side,
                size=q,
                limit_price=worst,
                ts_ms=now,
                clip=clip,
                client_order_id=client_order_id(plan.parent_id, clip, venue),
            )
            state.orders.append(order)
            new_orders.append(order)
        state.next_clip = clip + 1
        self._changed(state)  # persisted before sending: a crash here is recovered by resume()
        for order in new_orders:
            self._send(state, order)
        self._changed(state)
        self._maybe_done(state)
        return True

    def _maybe_done(self, state: HedgeState) -> None:
        if state.next_clip >= state.plan.clips and all(
            o.status is not OrderStatus.NEW and o.filled >= o.venue_filled for o in state.orders
        ):
            # every clip sent and every reported fill in: DONE if the target filled, else PARTIAL (a residual)
            state.status = HedgeStatus.DONE if state.filled >= state.plan.target_size else HedgeStatus.PARTIAL
            self._changed(state)

    def resume(self, state: HedgeState) -> HedgeState:
        """Continue a persisted hedge: rebuild the totals from its distinct fills, adopt or send every order
        persisted as NEW (looked up by client order id, so nothing is sent twice), ingest the venues' trades.
        A cancelled hedge is never resumed (its unsent orders must stay unsent)."""
        if state.status is HedgeStatus.CANCELLED:
            raise HedgeError(f"hedge {state.plan.parent_id} was cancelled: it cannot be resumed")
        recompute_totals(state)
        self._seen[state.plan.parent_id] = {f.key for f in state.fills}
        for order in state.orders:
            if order.order_id:
                continue
            ack = self.venues[order.venue].fetch_order(order.symbol, order.client_order_id)
            if ack is None:
                self._send(state, order)
            else:
                self._adopt(state, order, ack)
        if state.status is HedgeStatus.PENDING:
            state.status = HedgeStatus.RUNNING
        self.poll(state)
        self._changed(state)
        return state

    def cancel(self, state: HedgeState) -> HedgeState:
        """Cancel a hedge (idempotent): every order persisted but never acknowledged is looked up by client
        order id (adopted if the venue has it, else marked cancelled: it is never sent), every order still open
        is cancelled at its venue, the fills that arrived meanwhile are ingested, and the hedge becomes
        CANCELLED (no clip is sent after that; resume refuses it)."""
        if state.status is HedgeStatus.CANCELLED:
            return state
        recompute_totals(state)
        self._seen[state.plan.parent_id] = {f.key for f in state.fills}
        for order in state.orders:
            venue = self.venues[order.venue]
            if not order.order_id:
                ack = venue.fetch_order(order.symbol, order.client_order_id)
                if ack is None:
                    order.status = OrderStatus.CANCELED
                    order.order_id = f"unsent:{order.client_order_id}"
                    continue
                self._adopt(state, order, ack)
            if order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                ack = venue.cancel_order(order.symbol, order.client_order_id, order.order_id)
                if ack is not None:
                    order.status, order.venue_filled = ack.status, ack.filled
                    self.ingest(state, ack.fills)
        self.poll(state)
        state.status = HedgeStatus.CANCELLED
        self._changed(state)
        return state

    def run(self, state: HedgeState, poll_ms: int = 1_000, max_wait_ms: int = 60_000) -> HedgeState:
        """Step until every clip is sent and every reported fill has arrived (or ``max_wait_ms`` after the
        last clip), sleeping ``poll_ms`` between steps; shows a progress bar when a console is set."""
        progress = None
        task = None
        if self.console is not None:
            progress = Progress(
                TextColumn(f"hedge {state.plan.parent_id} {state.plan.side.value} {state.plan.target_size}"),
                BarColumn(),
                TextColumn("{task.completed:.4f}/{task.total:.4f} {task.fields[clips]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            progress.start()
            task = progress.add_task("hedge", total=float(state.plan.target_size), clips="")
        try:
            last_clip_ms = None
            while state.status is HedgeStatus.RUNNING:
                self.step(state)
                if progress is not None:
                    progress.update(
                        task,
                        completed=float(state.filled),
                        clips=f"clip {state.next_clip}/{state.plan.clips}",
                    )
                if state.next_clip >= state.plan.clips:
                    last_clip_ms = last_clip_ms or self.clock()
                    if self.clock() - last_clip_ms > max_wait_ms:
                        state.status = HedgeStatus.STOPPED
                        self._changed(state)
                        break
                if state.status is HedgeStatus.RUNNING:
                    due = self.clip_due_ms(state, state.next_clip) if state.next_clip < state.plan.clips else None
                    now = self.clock()
                    self.sleep(min(poll_ms, due - now) if due is not None and due > now else poll_ms)
        finally:
            if progress is not None:
                progress.stop()
        return state
