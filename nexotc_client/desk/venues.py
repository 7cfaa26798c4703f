"""Market-data and execution venues: the :class:`Venue` protocol, the ccxt adapter (:class:`CcxtVenue`), a
replay venue over recorded snapshots (:class:`ReplayVenue`), a raw-response transport for ccxt
(:class:`RawTransport`, :class:`FixtureResponder`) and the staleness and divergence guards.

The ccxt adapter reads ccxt's *unified* structures, whose numbers ccxt parses from the exchange's decimal strings
into doubles; :func:`exact` recovers each decimal string from the double exactly (``repr`` of a double is the
shortest string that round-trips, and every decimal of at most 15 significant digits round-trips: exchange prices,
sizes and fees have fewer), and the tests check every fixture level against its raw string. The adapter never
computes with a float: no float reaches the desk's arithmetic. (``exchange.number = Decimal`` is not used: ccxt
parses order books with ``safe_float`` whatever it is, and its order parser drops the fills of Binance's FULL
order response under it.) Tests and the
offline demo replace only ccxt's HTTP layer: :class:`RawTransport` is a ``requests`` adapter mounted on the
exchange's session that answers each request with a raw exchange response (a fixture file, or a responder
such as :class:`nexotc_client.desk.emulators.BinanceSandboxEmulator`), so ccxt's request building, signing, error
handling and parsing all run as they do against the exchange.

Execution goes through ccxt's unified calls, with venue-specific code where the unified call does not do what
the desk needs. Coinbase: ccxt replaces ``clientOrderId`` with its own ``ccxt-<uuid>`` (the raw
``client_order_id`` is sent instead), and Coinbase cannot look an order up by client order id (its get-order
endpoint takes the order id, and listing orders has no client-id filter), so :meth:`CcxtVenue.fetch_order` uses the
order id kept from :meth:`CcxtVenue.create_order` and otherwise (a restarted process) lists the recent orders and
matches ``client_order_id``. Kraken: ``cl_ord_id`` takes a UUID or at most 18 characters, so the desk's ids are sent
as a UUID derived from them (:func:`kraken_cl_ord_id`), and orders are looked up with the ``cl_ord_id`` filter of
``OpenOrders``/``ClosedOrders`` (ccxt's ``fetch_order`` would send it as the int32 ``userref``). Every venue lists
its fills a page at a time (Binance at most 1000, OKX 100, Kraken 50) and ccxt's ``fetch_my_trades`` reads one
page, so :meth:`CcxtVenue.fetch_my_trades` reads every page itself, each venue with its own cursor (ccxt's
``paginate`` option pages by timestamp, which drops the fills that share the boundary millisecond with the end of
a page, as the fills of one order do, and stops silently after ``paginationCalls`` pages).
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

from nexotc_client.desk.models import Book, Fill, Level, OrderStatus, Side, from_dict, to_dict
from nexotc_client.desk.money import BPS, D

__all__ = [
    "CCXT_VENUES",
    "DEFAULT_TAKER_FEE_BPS",
    "ENV_PREFIX",
    "MAX_DEPTH",
    "TRADES_PAGE_MAX",
    "CcxtVenue",
    "ExecutionVenue",
    "FixtureResponder",
    "GuardResult",
    "MissingCredentialsError",
    "OrderAck",
    "RawTransport",
    "ReplayVenue",
    "Venue",
    "VenueError",
    "apply_guards",
    "ccxt_credentials",
    "credential_vars",
    "divergence_guard",
    "exact",
    "has_sandbox",
    "kraken_cl_ord_id",
    "missing_credentials",
    "staleness_guard",
]

CCXT_VENUES = ("binance", "coinbase", "okx", "kraken")

#: Taker fees (bps) at each venue's entry tier, used when ccxt's market gives none (ccxt's own market figures
#: take precedence: binance 10, okx 15, coinbase 120, kraken 40 bps in 4.5.90); pass ``fee_bps`` for a desk tier.
DEFAULT_TAKER_FEE_BPS: dict[str, Decimal] = {
    "binance": Decimal(10),
    "okx": Decimal(10),
    "coinbase": Decimal(60),
    "kraken": Decimal(40),
}


class VenueError(RuntimeError):
    """A venue could not serve a request (unknown symbol, no snapshot yet, an exchange error)."""


class MissingCredentialsError(VenueError):
    """A live venue was asked for without its API credentials in the environment."""


# --- credentials (from the environment only) -----------------------------------------------------------------

#: the environment variables of a venue's credentials: ``NEXOTC_<VENUE>_API_KEY``, ``_SECRET`` and, where the
#: venue takes an API passphrase (OKX), ``_PASSWORD``
ENV_PREFIX = "NEXOTC_"
_PASSPHRASE_VENUES = ("okx",)


def credential_vars(venue: str) -> dict[str, str]:
    """ccxt credential name -> the environment variable it is read from, for ``venue``."""
    stem = f"{ENV_PREFIX}{venue.upper()}_"
    out = {"api_key": f"{stem}API_KEY", "secret": f"{stem}SECRET"}
    if venue in _PASSPHRASE_VENUES:
        out["password"] = f"{stem}PASSWORD"
    return out


def missing_credentials(venues: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """The credential variables of ``venues`` that are unset (or empty) in ``environ``, in order."""
    return [var for v in venues for var in credential_vars(v).values() if not environ.get(var, "").strip()]


def ccxt_credentials(venue: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``venue``'s credentials as :class:`CcxtVenue` keyword arguments, read from ``environ`` (never from a
    file or the command line); :class:`MissingCredentialsError` names the variables that are missing."""
    missing = missing_credentials([venue], environ)
    if missing:
        names = ", ".join(missing)
        raise MissingCredentialsError(f"{venue}: missing credentials {names} (set them in the environment)")
    return {name: environ[var].strip() for name, var in credential_vars(venue).items()}


def has_sandbox(venue: str) -> bool:
    """Whether ccxt has a sandbox (test) environment for ``venue`` (binance and okx do; coinbase and kraken not)."""
    import ccxt

    return getattr(ccxt, venue)().urls.get("test") is not None


@dataclass(slots=True)
class OrderAck:
    """A venue's answer to an order: its id, status, and the fills reported with the answer (more may
    arrive later through :meth:`Venue.fetch_my_trades`)."""

    order_id: str
    client_order_id: str
    status: OrderStatus
    filled: Decimal
    fills: list[Fill] = field(default_factory=list)


@runtime_checkable
class Venue(Protocol):
    """A market-data venue; execution venues also implement create_order / fetch_order / fetch_my_trades."""

    name: str

    def fetch_order_book(self, symbol: str, depth: int | None = None) -> Book: ...


@runtime_checkable
class ExecutionVenue(Venue, Protocol):
    def create_order(
        self, symbol: str, side: Side, size: Decimal, limit_price: Decimal | None, client_order_id: str
    ) -> OrderAck: ...

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderAck | None: ...

    def cancel_order(self, symbol: str, client_order_id: str, order_id: str | None = None) -> OrderAck | None: ...

    def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[Fill]: ...


# --- raw transport for ccxt ---------------------------------------------------------------------------------

Responder = Callable[[str, str, bytes | None], tuple[int, Any]]


class RawTransport(BaseAdapter):
    """A ``requests`` transport adapter answering every request with ``responder(method, url, body)`` =
    ``(status, json_body)``: mount it on a ccxt exchange's ``session`` and ccxt never touches the network."""

    def __init__(self, responder: Responder) -> None:
        super().__init__()
        self.responder = responder
        self.requests: list[tuple[str, str]] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        self.requests.append((request.method, request.url))
        status, payload = self.responder(request.method, request.url, body)
        resp = requests.Response()
        resp.status_code = status
        resp._content = json.dumps(payload).encode()
        resp.headers["Content-Type"] = "application/json"
        resp.url = request.url
        resp.request = request
        resp.reason = "OK" if status < 400 else "Error"
        resp.encoding = "utf-8"
        return resp

    def close(self) -> None:  # pragma: no cover - nothing to release
        pass

    def mount(self, exchange: Any) -> None:
        exchange.session = requests.Session()
        exchange.session.mount("https://", self)
        exchange.session.mount("http://", self)


#: the order-book endpoint of each venue: URL path, the query parameter naming the market, the level-count one
BOOK_ROUTES: dict[str, tuple[str, str, str]] = {
    "binance": ("/api/v3/depth", "symbol", "limit"),
    "coinbase": ("/api/v3/brokerage/market/product_book", "product_id", "limit"),
    "okx": ("/api/v5/market/books", "instId", "sz"),
    "kraken": ("/0/public/Depth", "pair", "count"),
}


def _norm_id(market_id: str) -> str:
    out = market_id.upper().replace("-", "").replace("/", "")
    return "BTC" + out[3:] if out.startswith("XBT") else out


def _truncate(venue: str, raw: Any, n: int) -> Any:
    raw = json.loads(json.dumps(raw))
    if venue == "binance":
        raw["bids"], raw["asks"] = raw["bids"][:n], raw["asks"][:n]
    elif venue == "coinbase":
        pb = raw["pricebook"]
        pb["bids"], pb["asks"] = pb["bids"][:n], pb["asks"][:n]
    elif venue == "okx":
        d = raw["data"][0]
        d["bids"], d["asks"] = d["bids"][:n], d["asks"][:n]
    elif venue == "kraken":
        for v in raw["result"].values():
            v["bids"], v["asks"] = v["bids"][:n], v["asks"][:n]
    return raw


class FixtureResponder:
    """Serves a venue's raw responses from ``root/<venue>/``: ``markets.json`` maps ``path`` (or
    ``path?query``) to the raw response of a market-list endpoint; ``<BASE>-<QUOTE>.json`` is the raw response
    of the order-book endpoint for that market (truncated to the requested level count, as the exchange
    would). Unknown routes answer 404 with a JSON error body."""

    def __init__(self, root: str | Path, venue: str) -> None:
        self.venue = venue
        base = Path(root) / venue
        self.routes: dict[str, Any] = json.loads((base / "markets.json").read_text())
        self.books: dict[str, Any] = {}
        for f in base.glob("*-*.json"):
            self.books[_norm_id(f.stem)] = json.loads(f.read_text())

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        book_path, id_param, n_param = BOOK_ROUTES[self.venue]
        if parts.path == book_path:
            market = (query.get(id_param) or [""])[0]
            raw = self.books.get(_norm_id(market))
            if raw is None:
                return 400, {"code": -1121, "msg": f"Invalid symbol {market}"}
            n = query.get(n_param)
            return 200, (_truncate(self.venue, raw, int(n[0])) if n else raw)
        for key in (f"{parts.path}?{parts.query}", parts.path):
            if key in self.routes:
                return 200, self.routes[key]
        return 404, {"error": [f"no fixture for {method} {parts.path}"], "code": "404", "msg": "not found"}


# --- ccxt adapter ------------------------------------------------------------------------------------------

#: the deepest book each endpoint serves (the default depth asked for)
MAX_DEPTH: dict[str, int | None] = {"binance": 5000, "okx": 400, "kraken": 500, "coinbase": None}

_CCXT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}},
    "okx": {"fetchMarkets": {"types": ["spot"]}},
}


#: the most trades a page of the own-trades list holds, the page size asked for by default: Binance ``myTrades``
#: (default 500, max 1000), OKX ``fills-history`` (default and max 100)
TRADES_PAGE_MAX: dict[str, int] = {"binance": 1000, "okx": 100}

_DAY_MS = 24 * 3_600_000
#: Binance: how far the local clock may lag the exchange's before a trade could fall after a 24-hour window that
#: looks current
_CLOCK_SKEW_MS = 60_000


#: the states of an order still open at its venue
_OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


def exact(value: Any) -> Decimal:
    """A ccxt number as an exact Decimal: Decimal/str/int as they are; a float through its shortest
    round-trip repr (exact for every decimal of at most 15 significant digits)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return D(value)


def _ms() -> int:
    return time.time_ns() // 1_000_000


#: the namespace of the UUIDs sent to Kraken as ``cl_ord_id``: never change it (a persisted hedge's orders are
#: found again only under the same UUIDs)
_KRAKEN_CL_ORD_NS = uuid.uuid5(uuid.NAMESPACE_DNS, "cl-ord-id.desk.nexotc")


def kraken_cl_ord_id(client_order_id: str) -> str:
    """The ``cl_ord_id`` under which a desk client order id is sent to Kraken: a name-based UUID (v5) of it.
    Kraken's ``cl_ord_id`` is a UUID (long or short) or free text of at most 18 characters, and the desk's ids run
    to 32; ``userref``, the other client reference, is an int32 that Kraken does not keep unique. The UUID is the
    same in every process, so a restarted one finds its orders again."""
    return str(uuid.uuid5(_KRAKEN_CL_ORD_NS, client_order_id))


def _own_decimal_context(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a method that calls ccxt in a copy of the decimal context: ccxt's number formatting sets the
    thread's context to round half up and trap underflow, which would otherwise change every Decimal rounding
    the desk does after its first exchange call."""

    @functools.wraps(method)
    def isolated(*args: Any, **kwargs: Any) -> Any:
        with localcontext():
            return method(*args, **kwargs)

    return isolated


def _proxy_conflicts(exchange_id: str) -> Callable[[object, object], None]:
    """ccxt's check that a ``proxy_url`` is not combined with an HTTP(S)/SOCKS proxy agent, as ccxt means it. Its
    synchronous ``fetch`` (4.5.90) passes ``proxies is not None``, a bool, and the check takes ``False`` for a set
    agent (it only compares with None and ''), so ``proxy_url`` alone is refused ("multiple conflicting proxy
    settings") on every request. This one refuses only an agent that is really set."""

    def check(proxy_agent_set: object, proxy_url_set: object) -> None:
        agent = proxy_agent_set not in (None, False, "")
        if agent and proxy_url_set not in (None, ""):
            import ccxt

            raise ccxt.InvalidProxySettings(f"{exchange_id}: proxy_url and an HTTP(S)/SOCKS proxy exclude each other")

    return check


class CcxtVenue:
    """A venue through ccxt's unified API. ``transport`` (a :class:`RawTransport`) replaces ccxt's HTTP layer;
    ``sandbox`` switches the exchange to its test environment (``set_sandbox_mode``; a venue without one is a
    :class:`VenueError`); ``proxy_url`` is ccxt's ``proxy_url`` (an egress gateway: ccxt prepends it to each
    request's URL, URL-encoded when it has a query string); ``fee_bps`` overrides the taker fee (default: the
    market's ``taker`` fee as ccxt reports it, else :data:`DEFAULT_TAKER_FEE_BPS`)."""

    #: Coinbase: how far back a process that did not place an order looks for it by client order id
    lookup_window_ms: int = 7 * 24 * 3_600_000
    #: Coinbase: the page size asked for when listing orders and fills
    page_size: int = 250
    #: the most pages read for one lookup; beyond it a VenueError, never a wrong "not found"
    max_pages: int = 100
    #: Binance and OKX: the trades asked for per page of the own-trades list (None: :data:`TRADES_PAGE_MAX`)
    trades_page_size: int | None = None

    def __init__(
        self,
        exchange_id: str,
        *,
        transport: RawTransport | None = None,
        sandbox: bool = False,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        fee_bps: Decimal | None = None,
        clock: Callable[[], int] = _ms,
        proxy_url: str | None = None,
    ) -> None:
        import ccxt  # imported lazily: the pure-Python parts of the desk do not need it

        cls = getattr(ccxt, exchange_id)
        config: dict[str, Any] = {"enableRateLimit": False, "options": dict(_CCXT_OPTIONS.get(exchange_id, {}))}
        if api_key:
            config["apiKey"], config["secret"] = api_key, secret or ""
            if password:
                config["password"] = password  # OKX's API passphrase
        self.exchange = cls(config)
        if api_key:
            # ccxt logs every request with its headers (API key, OKX's passphrase) at DEBUG: never for a keyed venue
            quiet = logging.getLogger(f"{__name__}.ccxt.{exchange_id}")
            quiet.setLevel(logging.INFO)
            self.exchange.logger = quiet
        if proxy_url:
            self.exchange.proxy_url = proxy_url
            self.exchange.check_conflicting_proxies = _proxy_conflicts(self.exchange.id)
        if sandbox:
            if self.exchange.urls.get("test") is None:
                raise VenueError(f"{exchange_id} has no sandbox in ccxt")
            self.exchange.set_sandbox_mode(True)
        if transport is not None:
            transport.mount(self.exchange)
        self.name = exchange_id
        self.clock = clock
        self._fee_bps = fee_bps
        self._loaded = False
        self._order_ids: dict[str, str] = {}  # Coinbase: client order id -> order id, from create_order

    def _load(self) -> None:
        if not self._loaded:
            try:
                self.exchange.load_markets()
            except Exception as exc:  # ccxt's network and exchange errors: one named error
                raise VenueError(f"{self.name} load_markets: {exc}") from exc
            self._loaded = True

    @_own_decimal_context
    def fee_bps(self, symbol: str) -> Decimal:
        if self._fee_bps is not None:
            return self._fee_bps
        self._load()
        try:
            taker = self.exchange.market(symbol).get("taker")
        except Exception as exc:  # ccxt's BadSymbol
            raise VenueError(f"{self.name} {symbol}: {exc}") from exc
        if taker is None:
            return DEFAULT_TAKER_FEE_BPS.get(self.name, Decimal(0))
        return D(str(taker)) * BPS

    @_own_decimal_context
    def fetch_order_book(self, symbol: str, depth: int | None = None) -> Book:
        self._load()
        try:
            ob = self.exchange.fetch_order_book(symbol, depth if depth is not None else MAX_DEPTH.get(self.name))
        except Exception as exc:  # ccxt's exception hierarchy: surface one named error
            raise VenueError(f"{self.name} {symbol}: {exc}") from exc
        ts = ob.get("timestamp") or self.clock()
        return Book(
            venue=self.name,
            symbol=symbol,
            bids=tuple(Level(exact(p), exact(s)) for p, s, *_ in ob["bids"]),
            asks=tuple(Level(exact(p), exact(s)) for p, s, *_ in ob["asks"]),
            ts_ms=int(ts),
            fee_bps=self.fee_bps(symbol),
        )

    # execution (in the exchange's sandbox where it has one) -------------------------------------------------

    def _ack(self, order: dict[str, Any], symbol: str, client_order_id: str) -> OrderAck:
        status = {
            "open": OrderStatus.NEW,
            "closed": OrderStatus.FILLED,
            "canceled": OrderStatus.CANCELED,
            "expired": OrderStatus.CANCELED,
            "rejected": OrderStatus.REJECTED,
        }.get(order.get("status") or "open", OrderStatus.NEW)
        filled = exact(order.get("filled") or 0)
        if status is OrderStatus.NEW and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        fills = [
            self._fill(
                {**t, "side": t.get("side") or order.get("side"), "order": t.get("order") or order["id"]}, symbol
            )
            for t in order.get("trades") or []
        ]
        return OrderAck(str(order["id"]), client_order_id, status, filled, fills)

    def _fill(self, t: dict[str, Any], symbol: str) -> Fill:
        fee = t.get("fee") or {}
        return Fill(
            trade_id=str(t["id"]),
            order_id=str(t.get("order") or ""),
            venue=self.name,
            side=Side(t["side"]),
            size=exact(t["amount"]),
            price=exact(t["price"]),
            fee=exact(fee.get("cost") or 0),
            fee_asset=fee.get("currency") or "",
            ts_ms=int(t.get("timestamp") or self.clock()),
            symbol=symbol,
        )

    @_own_decimal_context
    def create_order(
        self, symbol: str, side: Side, size: Decimal, limit_price: Decimal | None, client_order_id: str
    ) -> OrderAck:
        self._load()
        if self.name == "coinbase":
            params: dict[str, Any] = {"client_order_id": client_order_id}  # ccxt ignores clientOrderId here
        elif self.name == "kraken":
            params = {"clientOrderId": kraken_cl_ord_id(client_order_id)}  # sent as cl_ord_id
        else:
            params = {"clientOrderId": client_order_id}
        if limit_price is not None:
            params["timeInForce"] = "IOC"  # a marketable limit: fill what the book gives, cancel the rest
        kind = "limit" if limit_price is not None else "market"
        try:
            order = self.exchange.create_order(symbol, kind, side.value, size, limit_price, params)
        except Exception as exc:
            raise VenueError(f"{self.name} create_order {symbol}: {exc}") from exc
        ack = self._ack(order, symbol, client_order_id)
        if self.name == "coinbase":
            self._order_ids[client_order_id] = ack.order_id
        return ack

    @_own_decimal_context
    def fetch_order(self, symbol: str, client_order_id: str) -> OrderAck | None:
        self._load()
        import ccxt

        try:
            if self.name == "coinbase":
                order = self._coinbase_order(symbol, client_order_id)
            elif self.name == "kraken":
                order = self._kraken_order(symbol, kraken_cl_ord_id(client_order_id))
            else:
                order = self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return None
        except VenueError:
            raise
        except Exception as exc:
            raise VenueError(f"{self.name} fetch_order {symbol}: {exc}") from exc
        return None if order is None else self._ack(order, symbol, client_order_id)

    @_own_decimal_context
    def cancel_order(self, symbol: str, client_order_id: str, order_id: str | None = None) -> OrderAck | None:
        """Cancel an open order (by the venue's order id, looked up by client order id when not given) and
        answer its state afterwards; an order already closed (filled, cancelled, expired) is answered as it is;
        None: the venue does not know it; VenueError: the cancel failed (the request, or the venue refused it and
        the order is still open).

        Looked up first and found closed, an order is answered without a cancel request. Otherwise the venue
        refuses to cancel an order that is no longer open (or unknown) in its own way, and the order is then
        looked up to answer its state: Binance (-2011), OKX (sCode 51400) and Kraken (``EOrder:Unknown order``)
        by an error that ccxt raises as OrderNotFound; Coinbase by HTTP 200 with ``success: false`` and a
        ``failure_reason`` in ``batch_cancel``'s result (see :meth:`_cancel`)."""
        self._load()
        if not order_id:
            known = self.fetch_order(symbol, client_order_id)
            if known is None or known.status not in _OPEN:
                return known  # unknown, or closed already: nothing to cancel
            order_id = known.order_id
        refused = self._cancel(symbol, order_id)
        if refused is None and self.name == "coinbase":
            self._order_ids.setdefault(client_order_id, order_id)  # the id just cancelled: read the order by it
        after = self.fetch_order(symbol, client_order_id)
        if refused is not None and after is not None and after.status in _OPEN:
            raise VenueError(f"{self.name} cancel_order {symbol} {client_order_id}: refused, still open: {refused}")
        return after

    def _cancel(self, symbol: str, order_id: str) -> str | None:
        """Send the cancel of an order: None when the venue took it, else why it refused (the order is not open,
        or unknown). Coinbase: ``POST orders/batch_cancel`` is called here and its result read, because it reports
        a refusal with HTTP 200 and ``success: false`` (``ORDER_IS_FULLY_FILLED``, ``UNKNOWN_CANCEL_ORDER``...),
        on which ccxt's cancel_order raises a bare BadRequest without the reason, as it does for a malformed
        request."""
        import ccxt

        try:
            if self.name == "coinbase":
                resp = self.exchange.v3PrivatePostBrokerageOrdersBatchCancel({"order_ids": [order_id]})
                result = next((r for r in resp.get("results") or [] if str(r.get("order_id")) == order_id), None)
                if result is None:
                    raise VenueError(f"{self.name} cancel_order {symbol}: no result for {order_id}: {resp}")
                return None if result.get("success") is True else str(result.get("failure_reason") or result)
            self.exchange.cancel_order(order_id, symbol)
        except ccxt.OrderNotFound as exc:
            return str(exc)
        except VenueError:
            raise
        except Exception as exc:
            raise VenueError(f"{self.name} cancel_order {symbol}: {exc}") from exc
        return None

    @_own_decimal_context
    def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        self._load()
        try:
            if self.name == "coinbase":
                trades = self._coinbase_trades(symbol, since_ms)
            elif self.name == "kraken":
                trades = self._kraken_trades(symbol, since_ms)
            elif self.name == "binance":
                trades = self._binance_trades(symbol, since_ms)
            elif self.name == "okx":
                trades = self._okx_trades(symbol, since_ms)
            else:
                trades = self.exchange.fetch_my_trades(symbol, since_ms)
        except VenueError:
            raise
        except Exception as exc:
            raise VenueError(f"{self.name} fetch_my_trades {symbol}: {exc}") from exc
        return [self._fill(t, symbol) for t in trades]

    # venue-specific lookups ---------------------------------------------------------------------------------

    def _coinbase_pages(
        self, call: Callable[[dict[str, Any]], Any], request: dict[str, Any], key: str
    ) -> Iterator[dict[str, Any]]:
        """The items of a Coinbase list endpoint, page after page (an opaque ``cursor``, empty on the last)."""
        cursor = None
        for _ in range(self.max_pages):
            resp = call({**request, "cursor": cursor} if cursor else request)
            yield from resp.get(key) or []
            cursor = resp.get("cursor")
            if not cursor or resp.get("has_next") is False:
                return
        raise VenueError(f"{self.name}: more than {self.max_pages} pages of {key}")

    def _coinbase_order(self, symbol: str, client_order_id: str) -> dict[str, Any] | None:
        """By the order id kept from :meth:`create_order` (``GET orders/historical/{order_id}``); else the orders
        of the last :attr:`lookup_window_ms` (``orders/historical/batch``, most recent first), matched on
        ``client_order_id``."""
        order_id = self._order_ids.get(client_order_id)
        if order_id is not None:
            return self.exchange.fetch_order(order_id, symbol)
        market = self.exchange.market(symbol)
        request = {
            "product_ids": market["id"],
            "limit": self.page_size,
            "start_date": self.exchange.iso8601(self.clock() - self.lookup_window_ms),
        }
        for raw in self._coinbase_pages(self.exchange.v3PrivateGetBrokerageOrdersHistoricalBatch, request, "orders"):
            if raw.get("client_order_id") == client_order_id:
                self._order_ids[client_order_id] = str(raw["order_id"])
                return self.exchange.parse_order(raw, market)
        return None

    def _coinbase_trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        market = self.exchange.market(symbol)
        request: dict[str, Any] = {"product_ids": market["id"], "limit": self.page_size}
        if since_ms is not None:
            request["start_sequence_timestamp"] = self.exchange.iso8601(since_ms)
        call = self.exchange.v3PrivateGetBrokerageOrdersHistoricalFills
        return self.exchange.parse_trades(list(self._coinbase_pages(call, request, "fills")), market, since_ms)

    def _kraken_order(self, symbol: str, cl_ord_id: str) -> dict[str, Any] | None:
        """``OpenOrders``, then ``ClosedOrders``, filtered by ``cl_ord_id`` (``QueryOrders`` takes only Kraken's
        txids). Open first: an order only moves from open to closed, so it cannot slip between the two reads."""
        for fetch in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
            found = [
                o for o in fetch(symbol, None, None, {"clientOrderId": cl_ord_id}) if o["clientOrderId"] == cl_ord_id
            ]
            if found:
                return found[-1]
        return None

    def _kraken_trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        """``TradesHistory``, every page (50 trades each, most recent first, ``ofs`` to page; ``count`` is the
        total). ``start`` is in whole seconds and exclusive: asked from the second before, so a trade in the very
        second of ``since_ms`` is not lost (ccxt drops what is older than ``since_ms``)."""
        market = self.exchange.market(symbol)
        request = {} if since_ms is None else {"start": since_ms // 1000 - 1}
        raw: dict[str, dict[str, Any]] = {}
        ofs = 0
        for _ in range(self.max_pages):
            result = self.exchange.privatePostTradesHistory({**request, "ofs": ofs}).get("result") or {}
            page = result.get("trades") or {}
            raw.update({tid: {**t, "id": tid} for tid, t in page.items()})
            ofs += len(page)
            if not page or ofs >= int(result.get("count") or 0):
                return self.exchange.parse_trades(list(raw.values()), market, since_ms)
        raise VenueError(f"{self.name}: more than {self.max_pages} pages of trades")

    def _trades_page(self) -> int:
        most = TRADES_PAGE_MAX[self.name]
        return min(self.trades_page_size or most, most)

    def _binance_trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades``, every page: oldest first, ``limit`` a page (a shorter page is the last).
        ``fromId`` (trades with id >= it) cannot be sent with a time, and ``startTime``/``endTime`` (inclusive) span
        at most 24 hours: the trades from ``since_ms`` are read a 24-hour window at a time until one holds a trade,
        then by ``fromId`` from the trade after the last one read (no time bound: everything after). A window
        that is not full and ends after now ends the list. ``since_ms`` None (or 0): every trade, by ``fromId``
        from 0."""
        market = self.exchange.market(symbol)
        limit = self._trades_page()
        raw: dict[str, dict[str, Any]] = {}
        from_id = 0 if not since_ms else None  # from the first trade ever
        start = since_ms or 0
        for _ in range(self.max_pages):
            if from_id is None:
                request = {"symbol": market["id"], "startTime": start, "endTime": start + _DAY_MS - 1, "limit": limit}
            else:
                request = {"symbol": market["id"], "fromId": from_id, "limit": limit}
            page = self.exchange.privateGetMyTrades(request) or []
            raw.update({str(t["id"]): t for t in page})
            current = start + _DAY_MS - 1 >= self.clock() + _CLOCK_SKEW_MS  # a window that ends after now
            if len(page) >= limit or (page and from_id is None and not current):
                from_id = max(int(t["id"]) for t in page) + 1
            elif from_id is not None or current:
                return self.exchange.parse_trades(list(raw.values()), market, since_ms)
            else:
                start += _DAY_MS  # an empty window in the past: the next one
        raise VenueError(f"{self.name}: more than {self.max_pages} pages of trades")

    def _okx_trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        """``GET /api/v5/trade/fills-history`` (ccxt's endpoint: the last 3 months), every page: most recent first,
        ``limit`` a page (at most 100; a shorter page is the last), ``after`` = the page's oldest ``billId`` for the
        fills before it. OKX does not say whether ``begin`` is inclusive: it is sent as ``since_ms - 1``, so a fill
        at ``since_ms`` is kept either way (ccxt drops what is older); a page reaching back before ``since_ms`` also
        ends the list, should OKX not apply ``begin`` together with ``after``."""
        market = self.exchange.market(symbol)
        limit = self._trades_page()
        inst_type = self.exchange.convert_to_instrument_type(market["type"])
        request: dict[str, Any] = {"instType": inst_type, "instId": market["id"], "limit": limit}
        if since_ms is not None:
            request["begin"] = since_ms - 1
        raw: dict[str, dict[str, Any]] = {}
        after = None
        for _ in range(self.max_pages):
            resp = self.exchange.privateGetTradeFillsHistory({**request, "after": after} if after else request)
            page = resp.get("data") or []
            raw.update({str(t["billId"]): t for t in page})
            oldest = min(page, key=lambda t: int(t["billId"]), default=None)
            if oldest is None or len(page) < limit or (since_ms is not None and int(oldest["ts"]) < since_ms):
                return self.exchange.parse_trades(list(raw.values()), market, since_ms)
            after = str(oldest["billId"])
        raise VenueError(f"{self.name}: more than {self.max_pages} pages of trades")


# --- replay venue ------------------------------------------------------------------------------------------


class ReplayVenue:
    """Serves recorded snapshots: :meth:`fetch_order_book` returns the latest snapshot of the symbol taken at
    or before ``clock()`` (every snapshot when no clock is given: the last one)."""

    def __init__(self, name: str, snapshots: Iterable[Book], clock: Callable[[], int] | None = None) -> None:
        self.name = name
        self.clock = clock
        self._by_symbol: dict[str, list[Book]] = {}
        for b in sorted(snapshots, key=lambda b: b.ts_ms):
            self._by_symbol.setdefault(b.symbol, []).append(b)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None, clock: Callable[[], int] | None = None) -> ReplayVenue:
        """Snapshots from a JSON-lines file of :func:`~nexotc_client.desk.models.to_dict`-encoded books."""
        books = [from_dict(Book, json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]
        return cls(name or (books[0].venue if books else Path(path).stem), books, clock)

    @staticmethod
    def record(venue: Venue, symbols: Sequence[str], path: str | Path, depth: int | None = None) -> list[Book]:
        """Append one snapshot of each symbol from ``venue`` to a JSON-lines file (a recording session)."""
        books = [venue.fetch_order_book(s, depth) for s in symbols]
        with Path(path).open("a") as fh:
            for b in books:
                fh.write(json.dumps(to_dict(b)) + "\n")
        return books

    def fetch_order_book(self, symbol: str, depth: int | None = None) -> Book:
        snaps = self._by_symbol.get(symbol)
        if not snaps:
            raise VenueError(f"{self.name}: no snapshot of {symbol}")
        book = snaps[-1]
        if self.clock is not None:
            now = self.clock()
            eligible = [b for b in snaps if b.ts_ms <= now]
            if not eligible:
                raise VenueError(f"{self.name}: no snapshot of {symbol} at or before {now}")
            book = eligible[-1]
        if depth is not None:
            book = Book(book.venue, book.symbol, book.bids[:depth], book.asks[:depth], book.ts_ms, book.fee_bps)
        return book


# --- guards -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class GuardResult:
    kept: list[Book]
    dropped: list[tuple[str, str]]  # (venue, reason)


def staleness_guard(books: Iterable[Book], now_ms: int, max_age_ms: int) -> GuardResult:
    """Drop every book older than ``max_age_ms`` at ``now_ms`` (and any book without both sides)."""
    kept, dropped = [], []
    for b in books:
        age = now_ms - b.ts_ms
        if age > max_age_ms:
            dropped.append((b.venue, f"stale: {age} ms old > {max_age_ms} ms"))
        elif not b.bids or not b.asks:
            dropped.append((b.venue, "one-sided book"))
        else:
            kept.append(b)
    return GuardResult(kept, dropped)


def divergence_guard(books: Iterable[Book], max_bps: Decimal | int) -> GuardResult:
    """Drop every venue whose mid is more than ``max_bps`` off the consolidated mid. The consolidated mid is
    the median of the venues' mids: robust to the very outlier the guard is meant to catch (a crossed
    consolidated top of book would not be)."""
    books = list(books)
    mids = [b.mid for b in books if b.mid is not None]
    if not mids:
        return GuardResult([], [(b.venue, "no mid") for b in books])
    ref = statistics.median(mids)
    limit = D(max_bps)
    kept, dropped = [], []
    for b in books:
        if b.mid is None:
            dropped.append((b.venue, "no mid"))
            continue
        off = abs(b.mid - ref) / ref * BPS
        if off > limit:
            dropped.append((b.venue, f"divergent: mid {b.mid} is {off:.2f} bps off consolidated {ref}"))
        else:
            kept.append(b)
    return GuardResult(kept, dropped)


def apply_guards(books: Iterable[Book], now_ms: int, max_age_ms: int, max_divergence_bps: Decimal | int) -> GuardResult:
    """Staleness first, then divergence among the fresh books."""
    fresh = staleness_guard(books, now_ms, max_age_ms)
    div = divergence_guard(fresh.kept, max_divergence_bps)
    return GuardResult(div.kept, fresh.dropped + div.dropped)
