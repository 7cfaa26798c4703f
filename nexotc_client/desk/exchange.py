"""The exchanges of a hedge. Simulated exchanges that outlive the desk process: a
:class:`~nexotc_client.desk.sim.SimVenue` whose every state-changing call is journaled to a file, so a fresh
process rebuilds exactly the same venue (same books, same open impact, same trades, same RNG position) by
replaying the journal.

This is what makes "kill the desk mid-hedge, restart, resume" meaningful offline: a real exchange keeps the
orders it executed whatever happens to the client. Here the journal line is the exchange's commit point — it
is written (and fsynced) after the venue executed a call and before the answer goes back — so an order either
happened at the exchange (the resumed hedge finds it by its client order id and adopts its fills) or did not
(the resumed hedge sends it). Replay feeds each call the clock value it originally saw; the simulated venue is
deterministic given its seed, its initial books and that sequence.

    venues = open_sim_venues(books, journal_dir, seed=7)       # {name: JournaledVenue}

A hedge on live exchanges (``nexotc hedge start --live``) has no journal: the exchange itself is the record.
Its journal directory holds instead a :data:`VENUES_FILE` (:class:`LiveVenues`: mode, venue names, sandbox,
proxy URL; never a credential) from which another process rebuilds the same :class:`CcxtVenue` instances,
credentials read again from the environment (:func:`open_hedge_venues`). When the desk's egress gateway moves,
`hedge resume | cancel --proxy-url URL | --no-proxy` rewrites the record (:meth:`LiveVenues.via`) before reopening.

    LiveVenues(("binance", "okx"), sandbox=True).save(journal_dir)
    venues = open_hedge_venues(journal_dir, environ=os.environ)  # {name: CcxtVenue} or {name: JournaledVenue}
    LiveVenues.load(journal_dir).via("http://gw2:8080/").save(journal_dir)   # the same venues, another gateway
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nexotc_client.desk.models import Book, Fill, Side, from_dict, to_dict
from nexotc_client.desk.sim import SimParams, SimVenue
from nexotc_client.desk.venues import (
    CCXT_VENUES,
    CcxtVenue,
    ExecutionVenue,
    MissingCredentialsError,
    OrderAck,
    VenueError,
    ccxt_credentials,
    missing_credentials,
)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class _ReplayableClock:
    """The venue's clock: the desk's clock, or during replay the time each journaled call saw."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.fixed: int | None = None

    def __call__(self) -> int:
        return self.fixed if self.fixed is not None else self.clock()


class JournaledVenue:
    """An execution venue over a SimVenue, journaled to `path` (JSON lines)."""

    def __init__(
        self,
        name: str,
        books: Sequence[Book],
        path: Path,
        clock: Callable[[], int] = wall_ms,
        seed: int = 0,
        params: SimParams | None = None,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self._clock = _ReplayableClock(clock)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        params = params or SimParams()
        header = {"venue": name, "seed": seed, "params": to_dict(params), "books": [to_dict(b) for b in books]}
        if self.path.exists() and self.path.stat().st_size:
            raw = self.path.read_bytes()
            if not raw.endswith(b"\n"):  # a torn last line: that call never committed; drop it
                raw = raw[: raw.rfind(b"\n") + 1]
                self.path.write_bytes(raw)
            lines = raw.decode().splitlines()
            first = json.loads(lines[0])
            books = [from_dict(Book, b) for b in first["books"]]
            seed = int(first["seed"])
            params = from_dict(SimParams, first["params"])
            # journals written before accounts existed replay with their original (unprefixed) ids
            self.account = str(first.get("account", ""))
            self._clock.fixed = int(first.get("t0", 0))
            self.sim = SimVenue(name, list(books), self._clock, seed=seed, params=params, account=self.account)
            self.replayed = 0
            for line in lines[1:]:
                entry = json.loads(line)
                self._clock.fixed = int(entry["t"])
                self._apply(entry["m"], entry["a"])
                self.replayed += 1
            self._clock.fixed = None
            self._fh = self.path.open("a")
        else:
            # a fresh account at the venue: its order and trade ids are unique across hedges and processes
            # (two hedges' venues never issue the same trade id, as a real exchange never does)
            self.account = uuid.uuid4().hex[:12]
            header["account"] = self.account
            header["t0"] = self._clock()
            self._clock.fixed = header["t0"]
            self.sim = SimVenue(name, list(books), self._clock, seed=seed, params=params, account=self.account)
            self._clock.fixed = None
            self.replayed = 0
            self._fh = self.path.open("w")
            self._write(header)

    # ------------------------------------------------------------------ journal
    def _write(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _call(self, method: str, args: list[Any]) -> Any:
        now = self._clock()
        self._clock.fixed = now
        try:
            result = self._apply(method, args)
        finally:
            self._clock.fixed = None
        self._write({"t": now, "m": method, "a": args})
        return result

    def _apply(self, method: str, args: list[Any]) -> Any:
        if method == "book":
            return self.sim.fetch_order_book(args[0], args[1])
        if method == "order":
            symbol, side, size, limit, coid = args
            return self.sim.create_order(
                symbol, Side(side), Decimal(size), Decimal(limit) if limit is not None else None, coid
            )
        if method == "trades":
            return self.sim.fetch_my_trades(args[0], args[1])
        if method == "cancel":
            return self.sim.cancel_order(args[0], args[1], args[2])
        raise ValueError(f"unknown journal entry {method!r}")

    def close(self) -> None:
        self._fh.close()

    # ------------------------------------------------------------------ venue protocol
    def fetch_order_book(self, symbol: str, depth: int | None = None) -> Book:
        return self._call("book", [symbol, depth])

    def create_order(
        self, symbol: str, side: Side, size: Decimal, limit_price: Decimal | None, client_order_id: str
    ) -> OrderAck:
        args = [symbol, side.value, str(size), str(limit_price) if limit_price is not None else None, client_order_id]
        return self._call("order", args)

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderAck | None:
        return self.sim.fetch_order(symbol, client_order_id)  # a read: no state change, nothing to journal

    def cancel_order(self, symbol: str, client_order_id: str, order_id: str | None = None) -> OrderAck | None:
        return self._call("cancel", [symbol, client_order_id, order_id])  # journaled: it changes the order

    def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        return self._call("trades", [symbol, since_ms])  # journaled: it draws from the RNG (shuffle)

    def executed(self, symbol: str) -> list[Fill]:
        """Every trade the venue executed for `symbol`, visible yet or not (the exchange's own record)."""
        return [t.fill for t in self.sim._trades if t.fill.symbol == symbol]

    def client_order_ids(self) -> list[str]:
        return list(self.sim._orders)


def open_sim_venues(
    books: Sequence[Book],
    journal_dir: Path | str,
    clock: Callable[[], int] = wall_ms,
    seed: int = 0,
    params: SimParams | None = None,
) -> dict[str, JournaledVenue]:
    """One journaled simulated venue per venue of `books` (journal ``<dir>/<venue>.jsonl``; replayed if present)."""
    by_venue: dict[str, list[Book]] = {}
    for book in books:
        by_venue.setdefault(book.venue, []).append(book)
    root = Path(journal_dir)
    return {
        name: JournaledVenue(name, vb, root / f"{name}.jsonl", clock=clock, seed=seed, params=params)
        for name, vb in sorted(by_venue.items())
    }


# --- live venues ----------------------------------------------------------------------------------------------

#: the record, in a hedge's journal directory, of the live venues it trades on
VENUES_FILE = "venues.json"


def check_proxy_url(url: str) -> str:
    """A proxy URL for ccxt's ``proxy_url``: http(s), a host, no credentials in it (the URL is recorded in
    :data:`VENUES_FILE`; a gateway's credentials do not belong in a file). A URL without a path gets ``/``
    (ccxt appends the exchange URL to it as it is)."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VenueError(f"--proxy-url {url!r}: an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise VenueError("--proxy-url: no credentials in the URL (it is recorded with the hedge)")
    return text if parts.path or parts.query else text + "/"


@dataclass(frozen=True, slots=True)
class LiveVenues:
    """The live exchanges of a hedge, as recorded in its journal directory (no secret: credentials come from the
    environment, in every process that opens the venues)."""

    names: tuple[str, ...]
    sandbox: bool = False
    proxy_url: str | None = None

    def __post_init__(self) -> None:
        if not self.names:
            raise VenueError("no live venue")
        unknown = [n for n in self.names if n not in CCXT_VENUES]
        if unknown:
            raise VenueError(f"unknown venue {', '.join(unknown)} (venues: {', '.join(CCXT_VENUES)})")
        if len(set(self.names)) != len(self.names):
            raise VenueError(f"a venue named twice: {', '.join(self.names)}")

    def to_json(self) -> dict[str, Any]:
        return {"mode": "live", "venues": list(self.names), "sandbox": self.sandbox, "proxy_url": self.proxy_url}

    def save(self, journal_dir: Path) -> Path:
        """Write the record (fsynced, atomically replaced)."""
        journal_dir.mkdir(parents=True, exist_ok=True)
        path = journal_dir / VENUES_FILE
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump(self.to_json(), fh)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, journal_dir: Path) -> LiveVenues | None:
        """The record of ``journal_dir``; None when it has none (a hedge on simulated venues)."""
        path = journal_dir / VENUES_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise VenueError(f"{path}: not a venues record ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("mode") != "live" or not isinstance(raw.get("venues"), list):
            raise VenueError(f"{path}: not a venues record")
        proxy = raw.get("proxy_url")
        return cls(tuple(str(v) for v in raw["venues"]), bool(raw.get("sandbox")), str(proxy) if proxy else None)

    def via(self, proxy_url: str | None) -> LiveVenues:
        """The same venues reached through another proxy URL (checked by :func:`check_proxy_url`), or directly
        (None): a desk whose egress gateway moved resumes or cancels its hedge through the new one."""
        return replace(self, proxy_url=check_proxy_url(proxy_url) if proxy_url is not None else None)

    def missing_credentials(self, environ: Mapping[str, str]) -> list[str]:
        return missing_credentials(self.names, environ)

    def require_credentials(self, environ: Mapping[str, str]) -> None:
        """Raise :class:`MissingCredentialsError` naming every credential variable missing from ``environ``."""
        missing = self.missing_credentials(environ)
        if missing:
            raise MissingCredentialsError(
                f"missing credentials for the live venues: {', '.join(missing)} (set them in the environment)"
            )

    def open(self, environ: Mapping[str, str], clock: Callable[[], int] = wall_ms) -> dict[str, CcxtVenue]:
        """One :class:`CcxtVenue` per venue, credentials from ``environ`` (every missing variable named at once,
        before any venue is built). Nothing goes over the network here."""
        self.require_credentials(environ)
        return {
            name: CcxtVenue(
                name, sandbox=self.sandbox, proxy_url=self.proxy_url, clock=clock, **ccxt_credentials(name, environ)
            )
            for name in self.names
        }


def venues_info(journal_dir: Path) -> dict[str, Any]:
    """What a hedge trades on, for `hedge show | list`: live (venues, sandbox, proxy URL) or simulated (the
    venues of its journals)."""
    try:
        live = LiveVenues.load(journal_dir)
    except VenueError:
        live = None
    if live is not None:
        return live.to_json()
    names = sorted(p.stem for p in journal_dir.glob("*.jsonl")) if journal_dir.is_dir() else []
    return {"mode": "simulated", "venues": names, "sandbox": False, "proxy_url": None}


def open_hedge_venues(
    journal_dir: Path, environ: Mapping[str, str] | None = None, clock: Callable[[], int] = wall_ms
) -> dict[str, ExecutionVenue]:
    """The venues of the hedge whose journal directory is ``journal_dir``: its live exchanges when it has a
    :data:`VENUES_FILE` (credentials from ``environ``, default the process's environment), else its simulated
    venues rebuilt from their journals."""
    live = LiveVenues.load(journal_dir)
    if live is not None:
        return dict(live.open(os.environ if environ is None else environ, clock=clock))
    return {p.stem: JournaledVenue(p.stem, [], p, clock=clock) for p in sorted(journal_dir.glob("*.jsonl"))}


__all__ = [
    "VENUES_FILE",
    "JournaledVenue",
    "LiveVenues",
    "check_proxy_url",
    "open_hedge_venues",
    "open_sim_venues",
    "venues_info",
    "wall_ms",
]
