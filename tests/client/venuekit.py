"""Venue test helpers: simulated venues served through their exchange's raw REST API (the emulators of
`nexotc_client.desk.emulators`), and an :class:`ExchangeGateway`, a local HTTP server that stands for a desk's
egress gateway: ccxt's ``proxy_url`` sends it every exchange request (``http://127.0.0.1:PORT/`` + the exchange
URL, URL-encoded when it has a query string), and it answers each from the emulator of the exchange the URL names.
So a ``nexotc`` process trading "live" (``hedge start --live --proxy-url``) runs ccxt end to end, signing
included, and nothing leaves the machine. The gateway can also fail like a network: refuse requests, or pass one
to the exchange and lose its answer; and it can move to another port (:meth:`ExchangeGateway.moved`), as a desk's
egress gateway does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from nexotc_client.desk.emulators import BinanceSandboxEmulator, CoinbaseEmulator, KrakenEmulator, OkxSandboxEmulator
from nexotc_client.desk.models import Book
from nexotc_client.desk.sim import SimParams, SimVenue

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "venues"

#: the host each venue's requests go to (Binance and OKX in sandbox mode; Coinbase and Kraken have no sandbox)
HOSTS = {
    "binance": "testnet.binance.vision",
    "okx": "www.okx.com",
    "coinbase": "api.coinbase.com",
    "kraken": "api.kraken.com",
}
#: the path of each venue's order placement and of its own-trades list
ORDER_PATHS = {
    "binance": "/api/v3/order",
    "okx": "/api/v5/trade/batch-orders",  # ccxt's default
    "coinbase": "/api/v3/brokerage/orders",
    "kraken": "/0/private/AddOrder",
}
TRADE_PATHS = {
    "binance": "/api/v3/myTrades",
    "okx": "/api/v5/trade/fills-history",
    "coinbase": "/api/v3/brokerage/orders/historical/fills",
    "kraken": "/0/private/TradesHistory",
}
#: 64 bytes in base64, the shape of Kraken's secrets (signed with the decoded bytes) and of Coinbase's CDP Ed25519
#: keys (ccxt signs an EdDSA JWT with the first 32 bytes); Binance and OKX take it as an HMAC key
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="

Responder = Callable[[str, str, bytes | None], tuple[int, Any]]


def emulator_for(sim: SimVenue, exchange: str) -> Responder:
    """The emulator of `exchange`'s raw REST API over `sim` (BTC/USDT; the fixture's market list)."""
    markets = json.loads((FIX / exchange / "markets.json").read_text())
    if exchange == "binance":
        return BinanceSandboxEmulator(sim, markets, {"BTCUSDT": "BTC/USDT"})
    if exchange == "okx":
        return OkxSandboxEmulator(sim, markets)
    if exchange == "coinbase":
        return CoinbaseEmulator(sim, markets)
    return KrakenEmulator(sim, markets, {"XBTUSDT": "BTC/USDT"})


def emulated(
    books: Mapping[str, Book],
    exchange: str,
    clock: Callable[[], int],
    seed: int = 2,
    late: float = 0.4,
    late_ms: int = 2_000,
) -> tuple[SimVenue, Responder]:
    """A simulated venue (BTC/USDT from `books[exchange]`, a share `late` of its fills reported `late_ms` late)
    and the emulator of its exchange's raw REST API."""
    price_dp = 1 if exchange == "kraken" else 2  # Kraken's BTC/USDT tick is 0.1 (ccxt rounds limit prices to it)
    params = SimParams(late_fill_prob=late, price_dp=price_dp, late_ms=late_ms)
    sim = SimVenue(exchange, [books[exchange]], clock, seed=seed, params=params)
    return sim, emulator_for(sim, exchange)


# --- the exchange gateway ------------------------------------------------------------------------------------


@dataclass
class GatewayRequest:
    """One request the gateway received: the exchange (venue) it was for, the exchange URL, headers and body."""

    venue: str | None
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int = 0
    forwarded: bool = False
    received: str = ""
    """The path as the gateway received it (``/`` + the exchange URL, URL-encoded when it has a query)."""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def params(self) -> dict[str, str]:
        """The query and a form-encoded (or JSON object) body, first values."""
        out = dict(parse_qsl(urlsplit(self.url).query))
        if self.body:
            text = self.body.decode()
            if text.lstrip().startswith("{"):
                out.update({k: str(v) for k, v in json.loads(text).items()})
            elif text.lstrip().startswith("["):
                for item in json.loads(text):
                    out.update({k: str(v) for k, v in item.items()})
            else:
                out.update(dict(parse_qsl(text)))
        return out


def _venue_of(host: str) -> str | None:
    return next((v for v in HOSTS if v in host), None)


@dataclass
class ExchangeGateway:
    """A threaded HTTP server on 127.0.0.1 (a free port) answering ccxt's ``proxy_url`` requests from the
    emulators in `responders` (venue -> responder), chosen by the exchange URL's host. Every request is logged
    (:attr:`log`). :meth:`break_on` makes it fail like a network; :attr:`resting` makes the named venues' (binance,
    okx) orders rest on the book, as good-till-cancelled limit orders at the touch, instead of matching at once
    (so that a hedge has an order open to cancel)."""

    responders: dict[str, Responder]
    log: list[GatewayRequest] = field(default_factory=list)
    resting: set[str] = field(default_factory=set)
    _trigger: Callable[[GatewayRequest], bool] | None = None
    _forward_trigger: bool = False
    _broken: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def break_on(self, trigger: Callable[[GatewayRequest], bool], forward: bool = False) -> None:
        """From the first request `trigger` accepts, fail like a network: that request reaches the exchange
        (`forward`: the exchange executes it, its answer is lost) or not, it is answered 503, and so is every
        later request, until :meth:`heal`."""
        with self._lock:
            self._trigger, self._forward_trigger, self._broken = trigger, forward, False

    def heal(self) -> None:
        with self._lock:
            self._trigger, self._broken = None, False

    @property
    def broken(self) -> bool:
        return self._broken

    def requests(self, venue: str | None = None, method: str | None = None, path: str | None = None) -> list:
        """The logged requests that reached an exchange (forwarded), filtered."""
        return [
            r
            for r in self.log
            if r.forwarded
            and (venue is None or r.venue == venue)
            and (method is None or r.method == method)
            and (path is None or r.path == path)
        ]

    def _rest(self, req: GatewayRequest, responder: Responder) -> GatewayRequest:
        """An order of a resting venue as a good-till-cancelled limit order at the touch: it takes the best level
        and rests with the remainder."""
        sim: SimVenue = responder.sim  # type: ignore[attr-defined]
        if req.venue == "binance" and req.method == "POST" and req.path == ORDER_PATHS["binance"]:
            params = req.params
            book = sim.fetch_order_book("BTC/USDT", 1)
            touch = book.asks[0].price if params["side"] == "BUY" else book.bids[0].price
            params.update(timeInForce="GTC", type="LIMIT", price=format(touch, "f"))
            parts = urlsplit(req.url)
            url = parts._replace(query="").geturl()
            return GatewayRequest(
                req.venue, req.method, url, req.headers, urlencode(params).encode(), received=req.received
            )
        if req.venue == "okx" and req.method == "POST" and req.path in (ORDER_PATHS["okx"], "/api/v5/trade/order"):
            orders = json.loads(req.body or b"[]")
            book = sim.fetch_order_book("BTC/USDT", 1)
            for o in orders if isinstance(orders, list) else [orders]:
                touch = book.asks[0].price if o["side"] == "buy" else book.bids[0].price
                o.update(ordType="limit", px=format(touch, "f"))
            body = json.dumps(orders).encode()
            return GatewayRequest(req.venue, req.method, req.url, req.headers, body, received=req.received)
        return req

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, Any]:
        target = raw_path[1:]
        if not target.startswith(("http://", "https://")):
            target = unquote(target)  # ccxt URL-encodes an exchange URL with a query string
        req = GatewayRequest(
            _venue_of(urlsplit(target).hostname or ""), method, target, headers, body, received=raw_path
        )
        with self._lock:
            self.log.append(req)
            responder = self.responders.get(req.venue or "")
            if responder is None:
                req.status = 502
                return 502, {"error": f"gateway: no exchange for {target}"}
            lost = False
            if not self._broken and self._trigger is not None and self._trigger(req):
                self._broken, lost = True, self._forward_trigger
            if self._broken and not lost:
                req.status = 503
                return 503, None
            if req.venue in self.resting:
                req = self._rest(req, responder)
                self.log[-1] = req
            req.forwarded = True
            status, payload = responder(req.method, req.url, req.body)
            req.status = 503 if lost else status
            return (503, None) if lost else (status, payload)

    def start(self) -> ExchangeGateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                status, payload = gateway.handle(self.command, self.path, dict(self.headers.items()), body)
                data = b"Service Unavailable" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if payload is None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def moved(self) -> ExchangeGateway:
        """The gateway moved to another port: a new gateway answering from the same emulators (the exchanges keep
        their orders and trades) with the same resting venues, started before this one stops (so its port differs),
        with its own log; this one's URL then refuses connections."""
        moved = ExchangeGateway(self.responders, resting=set(self.resting)).start()
        self.stop()
        return moved

    def stop(self) -> None:
        """Stop serving (idempotent): the URL refuses connections from now on."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def exchange_gateway(responders: Mapping[str, Responder]) -> Iterator[ExchangeGateway]:
    gateway = ExchangeGateway(dict(responders)).start()
    try:
        yield gateway
    finally:
        gateway.stop()
