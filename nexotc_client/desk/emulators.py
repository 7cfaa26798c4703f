"""Exchange emulators: responders for :class:`~nexotc_client.desk.venues.RawTransport` that serve a
:class:`~nexotc_client.desk.sim.SimVenue` through an exchange's raw REST API (Binance and OKX sandboxes, Coinbase
Advanced Trade, Kraken spot), so that the ccxt adapter's execution path (ccxt building and signing the requests,
parsing the raw responses) runs offline. They reproduce what the adapter depends on: the routes, the raw formats,
paging and its limits, and each exchange's client-order-id rules. Signatures are accepted, not checked: these are
test doubles of the exchanges, not of ccxt.

Orders: a market or immediate-or-cancel limit order is matched by the sim at once (its remainder cancelled, or
expired on Binance). A good-till-cancelled limit order (each exchange's plain limit order) takes what the book gives
at once and **rests** with the remainder, open until cancelled; the sim matches nothing against a resting order
afterwards (it never fills more), which is all a test of the cancel path needs. Every emulator serves its exchange's
cancel endpoint: an open order is cancelled (its partial fill kept), and cancelling an order that is not open
(filled, cancelled, expired, unknown) is refused as the exchange refuses it: Binance ``-2011 Unknown order sent.``,
OKX ``sCode 51400``, Coinbase ``success: false`` (HTTP 200) with a ``failure_reason``, Kraken
``EOrder:Unknown order``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nexotc_client.desk.models import Fill, OrderStatus, Side
from nexotc_client.desk.money import BPS, D
from nexotc_client.desk.sim import SimVenue
from nexotc_client.desk.venues import OrderAck, VenueError

__all__ = ["BinanceSandboxEmulator", "CoinbaseEmulator", "KrakenEmulator", "OkxSandboxEmulator"]


def _query(url: str, body: bytes | None) -> tuple[str, dict[str, list[str]]]:
    """The path and the query (plus a form-encoded body) of a request, every value kept (repeated keys)."""
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    if body and not body.lstrip().startswith((b"{", b"[")):
        for k, v in parse_qs(body.decode()).items():
            q.setdefault(k, []).extend(v)
    return parts.path, q


def _first(q: dict[str, list[str]], *keys: str) -> str | None:
    for k in keys:
        if q.get(k):
            return q[k][0]
    return None


def _num(x: Decimal) -> str:
    """A Decimal in plain notation, as the exchanges write numbers."""
    return format(x, "f")


def _visible(sim: SimVenue, symbol: str) -> list[Fill]:
    """The sim's trades of a symbol visible now, in the order they happened. Unlike
    :meth:`SimVenue.fetch_my_trades` this draws nothing from the sim's RNG: how many pages a client reads does not
    change the market."""
    now = sim.clock()
    return [t.fill for t in sim._trades if t.visible_ms <= now and t.fill.symbol == symbol]


class BinanceSandboxEmulator:
    """A responder for :class:`~nexotc_client.desk.venues.RawTransport` that answers ccxt's Binance (sandbox)
    requests from a :class:`SimVenue` in Binance's raw REST formats: ``GET /api/v3/exchangeInfo`` (from the
    fixture's markets), ``GET /api/v3/depth``, ``POST /api/v3/order`` (FULL response with ``fills``; a ``LIMIT``
    order with ``timeInForce=GTC`` rests with what it did not fill at once: ``NEW`` or ``PARTIALLY_FILLED``),
    ``GET /api/v3/order``, ``DELETE /api/v3/order`` (by ``orderId`` or ``origClientOrderId``; an order that is not
    open, or unknown, is refused as Binance refuses it: HTTP 400 ``{"code": -2011, "msg": "Unknown order
    sent."}``) and ``GET /api/v3/myTrades``. Signed requests are accepted (the signature is not checked: this is
    a test double of the exchange, not of ccxt).

    ``myTrades`` as Binance documents it: oldest first, ``limit`` per page (:attr:`trades_limit` = 500 when not
    sent, at most :attr:`trades_limit_max` = 1000; a test may lower both to page a short hedge); ``fromId`` gives
    the trades with id >= it; ``startTime``/``endTime`` are inclusive and at most 24 hours apart; only the
    documented combinations (symbol; + orderId; + startTime; + endTime; + fromId; + startTime + endTime;
    + orderId + fromId) are taken, anything else is refused (-1128). Without fromId or a time, the most recent
    trades. The emulator's choices where Binance is silent: ``startTime`` alone covers the 24 hours from it (and
    ``endTime`` alone the 24 hours to it), and a ``limit`` out of range is refused (-1130)."""

    #: myTrades: the page size when ``limit`` is not sent, and the largest ``limit`` taken
    trades_limit: int = 500
    trades_limit_max: int = 1000

    def __init__(self, sim: SimVenue, markets: dict[str, Any], symbols: dict[str, str]) -> None:
        self.sim = sim
        self.markets = markets
        self.symbols = symbols  # exchange id -> unified symbol ("BTCUSDT" -> "BTC/USDT")
        self.orders: dict[str, dict[str, Any]] = {}

    def _order_raw(
        self, ack: OrderAck, exid: str, side: Side, kind: str, qty: str, price: str, ts: int, tif: str
    ) -> dict:
        quote_qty = sum((f.size * f.price for f in ack.fills), Decimal(0))
        status = {OrderStatus.FILLED: "FILLED", OrderStatus.CANCELED: "EXPIRED"}.get(ack.status, "NEW")
        if tif == "GTC" and kind == "LIMIT" and ack.status is not OrderStatus.FILLED:
            status = "PARTIALLY_FILLED" if ack.filled else "NEW"  # resting with the remainder
        return {
            "symbol": exid,
            "orderId": int(ack.order_id.rsplit("o", 1)[1]),
            "orderListId": -1,
            "clientOrderId": ack.client_order_id,
            "transactTime": ts,
            "price": price or "0.00000000",
            "origQty": qty,
            "executedQty": _num(ack.filled),
            "cummulativeQuoteQty": _num(quote_qty),
            "status": status,
            "timeInForce": tif,
            "type": kind,
            "side": side.value.upper(),
            "workingTime": ts,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        path, values = _query(url, body)
        q = {k: v[0] for k, v in values.items()}
        if path == "/api/v3/exchangeInfo":
            return 200, self.markets["/api/v3/exchangeInfo"]
        if path == "/api/v3/depth":
            book = self.sim.fetch_order_book(self.symbols[q["symbol"]], int(q.get("limit", 100)))
            return 200, {
                "lastUpdateId": self.sim.clock(),
                "bids": [[_num(lv.price), _num(lv.size)] for lv in book.bids],
                "asks": [[_num(lv.price), _num(lv.size)] for lv in book.asks],
            }
        if path == "/api/v3/order" and method == "POST":
            sym = self.symbols[q["symbol"]]
            side = Side(q["side"].lower())
            kind = q["type"]
            limit = D(q["price"]) if kind == "LIMIT" else None
            try:
                ack = self.sim.create_order(sym, side, D(q["quantity"]), limit, q["newClientOrderId"])
            except VenueError as exc:
                return 400, {"code": -2010, "msg": str(exc)}
            ts = self.sim.clock()
            tif = q.get("timeInForce") or "GTC"
            raw = self._order_raw(ack, q["symbol"], side, kind, q["quantity"], q.get("price", ""), ts, tif)
            self.orders[ack.client_order_id] = raw
            full = dict(raw)
            full["fills"] = [
                {
                    "price": _num(f.price),
                    "qty": _num(f.size),
                    "commission": _num(f.fee),
                    "commissionAsset": f.fee_asset,
                    "tradeId": int(f.trade_id.rsplit("t", 1)[1]),
                }
                for f in ack.fills
            ]
            return 200, full
        if path == "/api/v3/order" and method == "GET":
            raw = self.orders.get(q.get("origClientOrderId", ""))
            if raw is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            return 200, raw
        if path == "/api/v3/order" and method == "DELETE":
            return self._cancel(q)
        if path == "/api/v3/myTrades":
            return self._my_trades(q)
        return 404, {"code": -1, "msg": f"no route {method} {path}"}

    def _cancel(self, q: dict[str, str]) -> tuple[int, Any]:
        """``DELETE /api/v3/order``: ``symbol`` and ``orderId`` or ``origClientOrderId`` (both: they must name the
        same order). Answers the cancelled order (``origClientOrderId``: the order's; ``clientOrderId``: the
        cancel's own, ``newClientOrderId`` or a generated one, as Binance does)."""
        if "orderId" not in q and "origClientOrderId" not in q:
            return 400, {
                "code": -1102,
                "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            }
        raw = next(
            (
                r
                for r in self.orders.values()
                if r["symbol"] == q.get("symbol")
                and ("orderId" not in q or str(r["orderId"]) == q["orderId"])
                and ("origClientOrderId" not in q or r["clientOrderId"] == q["origClientOrderId"])
            ),
            None,
        )
        if raw is None or raw["status"] not in ("NEW", "PARTIALLY_FILLED"):  # filled, expired, cancelled, unknown
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        ts = self.sim.clock()
        raw.update(status="CANCELED", updateTime=ts)
        keep = ("symbol", "orderId", "orderListId", "price", "origQty", "executedQty", "cummulativeQuoteQty", "status")
        return 200, {
            **{k: raw[k] for k in keep},
            "origClientOrderId": raw["clientOrderId"],
            "clientOrderId": q.get("newClientOrderId")
            or uuid.uuid5(uuid.NAMESPACE_OID, f"cancel/{raw['orderId']}").hex[:22],
            "transactTime": ts,
            "timeInForce": raw["timeInForce"],
            "type": raw["type"],
            "side": raw["side"],
            "selfTradePreventionMode": raw["selfTradePreventionMode"],
        }

    def _my_trades(self, q: dict[str, str]) -> tuple[int, Any]:
        day = 24 * 3_600_000
        given = frozenset(k for k in ("orderId", "startTime", "endTime", "fromId") if k in q)
        allowed = ({"orderId"}, {"startTime"}, {"endTime"}, {"fromId"}, {"startTime", "endTime"}, {"orderId", "fromId"})
        if given and given not in {frozenset(a) for a in allowed}:
            return 400, {"code": -1128, "msg": "Combination of optional parameters invalid."}
        limit = int(q.get("limit", self.trades_limit))
        if not 1 <= limit <= self.trades_limit_max:
            return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
        start = int(q["startTime"]) if "startTime" in q else None
        end = int(q["endTime"]) if "endTime" in q else None
        if start is not None and end is not None and end - start > day:
            return 400, {"code": -1127, "msg": "More than 24 hours between startTime and endTime."}
        if start is not None and end is None:
            end = start + day
        elif end is not None and start is None:
            start = end - day
        fills = sorted(_visible(self.sim, self.symbols[q["symbol"]]), key=lambda f: int(f.trade_id.rsplit("t", 1)[1]))
        if "orderId" in q:
            fills = [f for f in fills if f.order_id.rsplit("o", 1)[1] == q["orderId"]]
        if "fromId" in q:
            fills = [f for f in fills if int(f.trade_id.rsplit("t", 1)[1]) >= int(q["fromId"])]
        if start is not None and end is not None:
            fills = [f for f in fills if start <= f.ts_ms <= end]
        page = fills[-limit:] if not given else fills[:limit]  # no id and no time: the most recent trades
        return 200, [
            {
                "symbol": q["symbol"],
                "id": int(f.trade_id.rsplit("t", 1)[1]),
                "orderId": int(f.order_id.rsplit("o", 1)[1]),
                "orderListId": -1,
                "price": _num(f.price),
                "qty": _num(f.size),
                "quoteQty": _num(f.size * f.price),
                "commission": _num(f.fee),
                "commissionAsset": f.fee_asset,
                "time": f.ts_ms,
                "isBuyer": f.side is Side.BUY,
                "isMaker": False,
                "isBestMatch": True,
            }
            for f in page
        ]


class OkxSandboxEmulator:
    """A responder for :class:`~nexotc_client.desk.venues.RawTransport` answering ccxt's OKX requests (demo
    trading: ``x-simulated-trading: 1``) from a :class:`SimVenue` in OKX's raw v5 formats. Unlike Binance, OKX
    acknowledges an order without its fills: they arrive only through ``GET /api/v5/trade/fills-history``
    (and the order's state through ``GET /api/v5/trade/order``). Routes: ``public/instruments`` (from the
    fixture's markets), ``market/books``, ``POST trade/order`` and ``trade/batch-orders`` (ccxt's default; an
    ``ordType=limit`` order rests with what it did not fill at once: ``live`` or ``partially_filled``),
    ``GET trade/order``, ``POST trade/cancel-order`` (``instId`` and ``ordId`` or ``clOrdId``; an order that is
    not open, or unknown, is refused as OKX refuses it: HTTP 200, ``code`` 1 and ``sCode`` 51400),
    ``trade/fills-history`` (and ``trade/fills``, its last-3-days twin, served alike).

    The fills lists as OKX documents them: most recent first (by ``billId``), ``limit`` per page (default and
    maximum 100: :attr:`fills_limit`, which a test may lower to page a short hedge), ``after``/``before`` (a
    ``billId``: the fills earlier / newer than it), ``begin``/``end`` (timestamps in ms), ``instType`` required.
    The emulator's choices where OKX is silent: ``begin`` and ``end`` are exclusive (the stricter reading; ccxt
    notes both bounds exclusive on OKX's statistics endpoints), and a ``limit`` above the maximum is refused."""

    #: fills-history: the page size when ``limit`` is not sent, and the largest ``limit`` taken
    fills_limit: int = 100
    #: the first billId (OKX's are 18-digit numbers); a fill's billId is this plus the sim's trade sequence number
    BILL_BASE = 600_000_000_000_000_000

    def __init__(self, sim: SimVenue, markets: dict[str, Any]) -> None:
        self.sim = sim
        self.markets = markets
        # clOrdId -> ack, instId, side, sz, px, ordType
        self.orders: dict[str, tuple[OrderAck, str, str, str, str, str]] = {}
        self.resting: set[str] = set()  # the clOrdIds of the orders open on the book

    @staticmethod
    def _ok(data: list[dict[str, Any]]) -> tuple[int, Any]:
        return 200, {"code": "0", "msg": "", "data": data}

    def _order_raw(self, cl_ord_id: str) -> dict[str, Any]:
        ack, inst, side, sz, px, ord_type = self.orders[cl_ord_id]
        fills = [t.fill for t in self.sim._trades if t.fill.order_id == ack.order_id]
        acc = sum((f.size for f in fills), Decimal(0))
        avg = sum((f.size * f.price for f in fills), Decimal(0)) / acc if acc else Decimal(0)
        fee = sum((f.fee for f in fills), Decimal(0))
        if cl_ord_id in self.resting:
            state = "partially_filled" if acc else "live"
        else:  # IOC (and a cancelled resting order): the remainder was cancelled
            state = "filled" if ack.status is OrderStatus.FILLED else "canceled"
        ts = str(fills[0].ts_ms if fills else self.sim.clock())
        return {
            "accFillSz": _num(acc),
            "avgPx": _num(avg) if acc else "",
            "cTime": ts,
            "category": "normal",
            "ccy": "",
            "clOrdId": cl_ord_id,
            "fee": _num(-fee),
            "feeCcy": inst.split("-")[1],
            "fillPx": _num(fills[-1].price) if fills else "",
            "fillSz": _num(fills[-1].size) if fills else "0",
            "fillTime": ts,
            "instId": inst,
            "instType": "SPOT",
            "lever": "",
            "ordId": ack.order_id.rsplit("o", 1)[1],
            "ordType": ord_type,
            "pnl": "0",
            "posSide": "",
            "px": px,
            "rebate": "0",
            "rebateCcy": inst.split("-")[0],
            "side": side,
            "state": state,
            "sz": sz,
            "tag": "",
            "tdMode": "cash",
            "tgtCcy": "",
            "tradeId": "",
            "uTime": ts,
        }

    def _place(self, req: dict[str, Any]) -> dict[str, Any]:
        inst, side, ord_type = req["instId"], Side(req["side"]), req["ordType"]
        limit = D(req["px"]) if ord_type in ("limit", "ioc", "fok") and req.get("px") else None
        try:
            ack = self.sim.create_order(inst.replace("-", "/"), side, D(req["sz"]), limit, req["clOrdId"])
        except VenueError as exc:
            return {"clOrdId": req.get("clOrdId", ""), "ordId": "", "tag": "", "sCode": "51000", "sMsg": str(exc)}
        self.orders[req["clOrdId"]] = (ack, inst, req["side"], req["sz"], req.get("px", ""), ord_type)
        if ord_type == "limit" and ack.status is not OrderStatus.FILLED:
            self.resting.add(req["clOrdId"])
        return {
            "clOrdId": req["clOrdId"],
            "ordId": ack.order_id.rsplit("o", 1)[1],
            "tag": "",
            "ts": str(self.sim.clock()),
            "sCode": "0",
            "sMsg": "Order placed",
        }

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        path, values = _query(url, body)
        q = {k: v[0] for k, v in values.items()}
        if path == "/api/v5/public/instruments":
            return 200, self.markets["/api/v5/public/instruments"]
        if path == "/api/v5/market/books":
            book = self.sim.fetch_order_book(q["instId"].replace("-", "/"), int(q.get("sz", 400)))
            return self._ok(
                [
                    {
                        "asks": [[_num(lv.price), _num(lv.size), "0", "1"] for lv in book.asks],
                        "bids": [[_num(lv.price), _num(lv.size), "0", "1"] for lv in book.bids],
                        "ts": str(book.ts_ms),
                    }
                ]
            )
        if path in ("/api/v5/trade/order", "/api/v5/trade/batch-orders") and method == "POST":
            body_json = json.loads(body or b"{}")
            return self._ok([self._place(req) for req in (body_json if isinstance(body_json, list) else [body_json])])
        if path == "/api/v5/trade/order" and method == "GET":
            cl = q.get("clOrdId", "")
            if cl not in self.orders:
                return 200, {"code": "51603", "msg": "Order does not exist", "data": []}
            return self._ok([self._order_raw(cl)])
        if path == "/api/v5/trade/cancel-order" and method == "POST":
            return self._cancel(json.loads(body or b"{}"))
        if path in ("/api/v5/trade/fills-history", "/api/v5/trade/fills"):
            return self._fills(q)
        return 404, {"code": "50000", "msg": f"no route {method} {path}", "data": []}

    def _cancel(self, req: dict[str, Any]) -> tuple[int, Any]:
        """``POST /api/v5/trade/cancel-order``: ``instId`` and ``ordId`` or ``clOrdId`` (``clOrdId`` first when
        both are sent). Every answer is HTTP 200; a refused cancel has ``code`` 1 and the reason in ``data``."""
        cl, ord_id, ts = req.get("clOrdId") or "", req.get("ordId") or "", str(self.sim.clock())
        if not cl and not ord_id:
            msg = "Either order ID or client order ID is required."
            return 200, {"code": "1", "msg": "All operations failed", "data": [{"sCode": "51407", "sMsg": msg}]}
        if not cl:
            cl = next((c for c, (a, *_rest) in self.orders.items() if a.order_id.rsplit("o", 1)[1] == ord_id), "")
        found = self.orders.get(cl)
        if found is None or found[1] != req.get("instId") or cl not in self.resting:  # filled, cancelled, unknown
            fail = {"clOrdId": req.get("clOrdId") or "", "ordId": ord_id, "ts": ts, "sCode": "51400"}
            msg = "Cancellation failed as the order has been filled, canceled or does not exist."
            return 200, {"code": "1", "msg": "All operations failed", "data": [{**fail, "sMsg": msg}]}
        self.resting.discard(cl)
        ord_id = found[0].order_id.rsplit("o", 1)[1]
        return self._ok([{"clOrdId": cl, "ordId": ord_id, "ts": ts, "sCode": "0", "sMsg": ""}])

    def _bill_id(self, f: Fill) -> int:
        return self.BILL_BASE + int(f.trade_id.rsplit("t", 1)[1])

    def _fills(self, q: dict[str, str]) -> tuple[int, Any]:
        if not q.get("instType"):
            return 200, {"code": "50014", "msg": "Parameter instType can not be empty.", "data": []}
        limit = int(q.get("limit", self.fills_limit))
        if not 1 <= limit <= self.fills_limit:
            return 200, {"code": "51000", "msg": "Parameter limit error", "data": []}
        inst = q.get("instId")
        syms = [inst.replace("-", "/")] if inst else sorted(self.sim._fee)
        begin, end = q.get("begin"), q.get("end")
        after, before = q.get("after"), q.get("before")
        fills = [
            f
            for sym in syms
            for f in _visible(self.sim, sym)
            if (begin is None or f.ts_ms > int(begin))
            and (end is None or f.ts_ms < int(end))
            and (after is None or self._bill_id(f) < int(after))
            and (before is None or self._bill_id(f) > int(before))
        ]
        fills.sort(key=self._bill_id, reverse=True)  # most recent first
        page = fills[-limit:] if before is not None and after is None else fills[:limit]  # before: the nearest
        cl_of = {a.order_id: cl for cl, (a, *_rest) in self.orders.items()}
        return self._ok(
            [
                {
                    "instType": "SPOT",
                    "instId": f.symbol.replace("/", "-"),
                    "tradeId": f.trade_id.rsplit("t", 1)[1],
                    "ordId": f.order_id.rsplit("o", 1)[1],
                    "clOrdId": cl_of.get(f.order_id, ""),
                    "billId": str(self._bill_id(f)),
                    "subType": "1",
                    "tag": "",
                    "fillPx": _num(f.price),
                    "fillSz": _num(f.size),
                    "side": f.side.value,
                    "posSide": "net",
                    "execType": "T",
                    "feeCcy": f.fee_asset,
                    "fee": _num(-f.fee),
                    "ts": str(f.ts_ms),
                    "fillTime": str(f.ts_ms),
                }
                for f in page
            ]
        )


def _iso_us(ms: int) -> str:
    """RFC 3339 with microseconds, as Coinbase writes its times ("2023-01-18T01:37:37.975552Z")."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class CoinbaseEmulator:
    """A responder for :class:`~nexotc_client.desk.venues.RawTransport` answering ccxt's Coinbase Advanced Trade
    requests from a :class:`SimVenue` in Coinbase's raw ``/api/v3/brokerage`` formats. Coinbase has no sandbox for
    this API: the requests go to ``api.coinbase.com`` and the transport answers them. Routes: the market lists
    (``/v2/currencies``, ``/v2/currencies/crypto``, ``/v2/exchange-rates``, ``market/products``, from the
    fixture's markets), ``transaction_summary`` (the fee tier, from the sim's taker fee), ``market/product_book``,
    ``POST orders`` (``sor_limit_ioc``, ``market_market_ioc`` or ``limit_limit_gtc`` without ``post_only``, with
    ``base_size``; acknowledged with the order id only, like Coinbase: state and fills come later; a
    ``limit_limit_gtc`` order rests ``OPEN`` with what it did not fill at once), ``POST orders/batch_cancel``
    (``order_ids``; always HTTP 200, each order's result ``success`` or not with a ``failure_reason``:
    ``ORDER_IS_FULLY_FILLED`` for a filled order, ``UNKNOWN_CANCEL_ORDER`` for one that is not open otherwise or
    unknown), ``GET orders/historical/{order_id}``, ``orders/historical/batch`` (list orders: ``product_id(s)``,
    ``start_date``, ``limit``, ``cursor``; most recent first; **no client-order-id filter**, as in the real API)
    and ``orders/historical/fills`` (``product_id(s)``, ``start_sequence_timestamp``, ``limit``, ``cursor``).
    Lists are paged with an opaque cursor, ``limit`` per page (100 when not given: the emulator's choice, not a
    documented Coinbase default). Order and trade ids are UUIDs derived from the sim's. Signatures are accepted,
    not checked."""

    DEFAULT_PAGE = 100

    def __init__(self, sim: SimVenue, markets: dict[str, Any]) -> None:
        self.sim = sim
        self.markets = markets
        self.orders: dict[str, dict[str, Any]] = {}  # order_id -> {ack, product, side, config, kind, ts}
        self.resting: set[str] = set()  # the ids of the orders open on the book
        self._uuid_ns = uuid.uuid5(uuid.NAMESPACE_URL, f"nexotc-sim/{sim.name}")

    def _uuid(self, text: str) -> str:
        return str(uuid.uuid5(self._uuid_ns, text))

    def _fills_of(self, sim_order_id: str) -> list[Fill]:
        return [t.fill for t in self.sim._trades if t.fill.order_id == sim_order_id]

    def _order_raw(self, order_id: str) -> dict[str, Any]:
        o = self.orders[order_id]
        ack: OrderAck = o["ack"]
        fills = self._fills_of(ack.order_id)
        filled = sum((f.size for f in fills), Decimal(0))
        value = sum((f.size * f.price for f in fills), Decimal(0))
        fees = sum((f.fee for f in fills), Decimal(0))
        if order_id in self.resting:
            status = "OPEN"
        else:  # IOC (and a cancelled resting order): the remainder is cancelled
            status = "FILLED" if ack.status is OrderStatus.FILLED else "CANCELLED"
        size = D(next(iter(o["config"].values()))["base_size"])
        gtc = "limit_limit_gtc" in o["config"]
        return {
            "order_id": order_id,
            "product_id": o["product"],
            "user_id": "sim-user",
            "order_configuration": o["config"],
            "side": o["side"],
            "client_order_id": ack.client_order_id,
            "status": status,
            "time_in_force": "GOOD_UNTIL_CANCELLED" if gtc else "IMMEDIATE_OR_CANCEL",
            "created_time": _iso_us(o["ts"]),
            "completion_percentage": _num((filled / size * 100).quantize(Decimal("0.01"))),
            "filled_size": _num(filled),
            "average_filled_price": _num(value / filled) if filled else "0",
            "fee": "",
            "number_of_fills": str(len(fills)),
            "filled_value": _num(value),
            "pending_cancel": False,
            "size_in_quote": False,
            "total_fees": _num(fees),
            "size_inclusive_of_fees": False,
            "total_value_after_fees": _num(value + fees if o["side"] == "BUY" else value - fees),
            "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": o["kind"],
            "reject_reason": "",
            "settled": True,
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0",
            "is_liquidation": False,
            "last_fill_time": _iso_us(fills[-1].ts_ms) if fills else None,
            "edit_history": [],
            "leverage": "",
            "margin_type": "UNKNOWN_MARGIN_TYPE",
            "retail_portfolio_id": "sim-portfolio",
        }

    def _fill_raw(self, f: Fill) -> dict[str, Any]:
        return {
            "entry_id": hashlib.sha256(f.trade_id.encode()).hexdigest(),
            "trade_id": self._uuid(f.trade_id),
            "order_id": self._uuid(f.order_id),
            "trade_time": _iso_us(f.ts_ms),
            "trade_type": "FILL",
            "price": _num(f.price),
            "size": _num(f.size),
            "commission": _num(f.fee),
            "product_id": f.symbol.replace("/", "-"),
            "sequence_timestamp": _iso_us(f.ts_ms),
            "liquidity_indicator": "TAKER",
            "size_in_quote": False,
            "user_id": "sim-user",
            "side": f.side.value.upper(),
            "retail_portfolio_id": "sim-portfolio",
        }

    @staticmethod
    def _page(items: list[Any], q: dict[str, list[str]], default: int) -> tuple[list[Any], str]:
        start = int(_first(q, "cursor") or 0)
        n = int(_first(q, "limit") or default)
        nxt = start + n
        return items[start:nxt], (str(nxt) if nxt < len(items) else "")

    def _cancel(self, order_id: str) -> dict[str, Any]:
        """One order's result in ``batch_cancel``: Coinbase reports a refused cancel in the body, never by the HTTP
        status (ccxt's cancel_order then raises a bare BadRequest)."""
        if order_id in self.resting:
            self.resting.discard(order_id)
            return {"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id}
        o = self.orders.get(order_id)
        filled = o is not None and o["ack"].status is OrderStatus.FILLED
        reason = "ORDER_IS_FULLY_FILLED" if filled else "UNKNOWN_CANCEL_ORDER"
        return {"success": False, "failure_reason": reason, "order_id": order_id}

    def _create(self, req: dict[str, Any]) -> tuple[int, Any]:
        product, side_raw, cid = req["product_id"], req["side"], req.get("client_order_id", "")
        config = req.get("order_configuration") or {}
        kind, conf = next(iter(config.items()), ("", {}))
        fail = {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": ""}
        emulated = kind in ("sor_limit_ioc", "market_market_ioc") or (
            kind == "limit_limit_gtc" and not conf.get("post_only")
        )
        if not emulated or "base_size" not in conf:
            msg = f"order configuration {kind} {sorted(conf)} is not emulated"
            err = {"error": "UNSUPPORTED_ORDER_CONFIGURATION", "message": msg, "error_details": ""}
            return 200, {**fail, "error_response": {**err, "new_order_failure_reason": err["error"]}}
        limit = D(conf["limit_price"]) if kind in ("sor_limit_ioc", "limit_limit_gtc") else None
        try:
            ack = self.sim.create_order(
                product.replace("-", "/"), Side(side_raw.lower()), D(conf["base_size"]), limit, cid
            )
        except VenueError as exc:
            err = {"error": "INVALID_ARGUMENT", "message": str(exc), "error_details": ""}
            return 200, {**fail, "error_response": {**err, "new_order_failure_reason": "UNKNOWN_FAILURE_REASON"}}
        order_id = self._uuid(ack.order_id)
        self.orders[order_id] = {
            "ack": ack,
            "product": product,
            "side": side_raw,
            "config": config,
            "kind": "LIMIT" if limit is not None else "MARKET",
            "ts": self.sim.clock(),
        }
        if kind == "limit_limit_gtc" and ack.status is not OrderStatus.FILLED:
            self.resting.add(order_id)
        return 200, {
            "success": True,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": order_id,
            "success_response": {"order_id": order_id, "product_id": product, "side": side_raw, "client_order_id": cid},
            "order_configuration": config,
        }

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        parts = urlsplit(url)
        path, q = _query(url, body)
        for key in (f"{path}?{parts.query}", path):
            if key in self.markets:
                return 200, self.markets[key]
        base = "/api/v3/brokerage"
        if path == f"{base}/transaction_summary":
            rate = max(self.sim._fee.values()) / BPS
            tier = {"pricing_tier": "sim", "usd_from": "0", "usd_to": "10000", "taker_fee_rate": _num(rate)}
            return 200, {"total_volume": 0, "total_fees": 0, "fee_tier": {**tier, "maker_fee_rate": _num(rate)}}
        if path in (f"{base}/market/product_book", f"{base}/product_book"):
            product = _first(q, "product_id") or ""
            n = _first(q, "limit")
            book = self.sim.fetch_order_book(product.replace("-", "/"), int(n) if n else None)
            levels = {
                side: [{"price": _num(lv.price), "size": _num(lv.size)} for lv in lvs]
                for side, lvs in (("bids", book.bids), ("asks", book.asks))
            }
            bid, ask = book.bids[0].price, book.asks[0].price
            return 200, {
                "pricebook": {"product_id": product, **levels, "time": _iso_us(book.ts_ms)},
                "last": "",
                "mid_market": _num((bid + ask) / 2),
                "spread_bps": _num(((ask - bid) / ((bid + ask) / 2) * BPS).quantize(Decimal("0.0001"))),
                "spread_absolute": _num(ask - bid),
            }
        if path == f"{base}/orders" and method == "POST":
            return self._create(json.loads(body or b"{}"))
        if path == f"{base}/orders/batch_cancel" and method == "POST":
            return 200, {"results": [self._cancel(str(oid)) for oid in json.loads(body or b"{}").get("order_ids", [])]}
        products = set(q.get("product_id", []) + q.get("product_ids", []))
        if path == f"{base}/orders/historical/batch":
            since = _first(q, "start_date")
            rows = [
                oid
                for oid, o in self.orders.items()
                if (not products or o["product"] in products) and (since is None or o["ts"] >= _iso_ms(since))
            ]
            rows.sort(key=lambda oid: self.orders[oid]["ts"], reverse=True)  # most recent first
            page, cursor = self._page(rows, q, self.DEFAULT_PAGE)
            return 200, {
                "orders": [self._order_raw(oid) for oid in page],
                "sequence": "0",
                "has_next": bool(cursor),
                "cursor": cursor,
            }
        if path == f"{base}/orders/historical/fills":
            since = _first(q, "start_sequence_timestamp")
            fills = [
                f
                for sym in sorted({s.replace("-", "/") for s in products} or set(self.sim._fee))
                for f in self.sim.fetch_my_trades(sym, _iso_ms(since) if since else None)
            ]
            fills.sort(key=lambda f: (-f.ts_ms, f.trade_id))  # most recent first
            page, cursor = self._page(fills, q, self.DEFAULT_PAGE)
            return 200, {"fills": [self._fill_raw(f) for f in page], "cursor": cursor}
        if path.startswith(f"{base}/orders/historical/") and method == "GET":
            order_id = path.rsplit("/", 1)[1]
            if order_id not in self.orders:
                msg = "order with this orderID was not found"
                return 404, {"error": "unknown", "error_details": msg, "message": msg}
            return 200, {"order": self._order_raw(order_id)}
        return 404, {"error": "NOT_FOUND", "error_details": "", "message": f"no route {method} {path}"}


def _kraken_cl_ord_id_ok(value: str) -> bool:
    """Kraken's cl_ord_id formats: a long UUID (8-4-4-4-12 hex), a short UUID (32 hex digits) or free text of at
    most 18 ASCII characters."""
    if len(value) in (32, 36):
        try:
            uuid.UUID(value)
            return len(value) == 32 or value.count("-") == 4
        except ValueError:
            pass
    return 0 < len(value) <= 18 and value.isascii() and value.isprintable()


class KrakenEmulator:
    """A responder for :class:`~nexotc_client.desk.venues.RawTransport` answering ccxt's Kraken spot requests
    from a :class:`SimVenue` in Kraken's raw ``/0`` formats. Kraken has no spot sandbox: the requests go to
    ``api.kraken.com`` and the transport answers them. Routes: ``public/Assets`` and ``public/AssetPairs`` (from
    the fixture's markets), ``public/Depth``, ``private/AddOrder`` (``limit`` with ``timeinforce`` ``IOC`` or
    ``GTC``, the default, or ``market``; acknowledged with ``descr`` and ``txid`` only, like Kraken; a GTC limit
    order rests ``open`` with what it did not fill at once), ``private/CancelOrder`` (``txid``: a txid or a
    ``userref``, or ``cl_ord_id``; answers the ``count`` of orders cancelled; an order that is not open, or
    unknown, is refused as Kraken refuses it: ``EOrder:Unknown order``), ``private/QueryOrders`` (by
    ``txid``), ``private/OpenOrders`` and ``private/ClosedOrders`` (filters ``cl_ord_id`` and ``userref``;
    ``start``/``end``/``ofs``; 50 per page), ``private/TradesHistory`` (``start`` exclusive and ``end``
    inclusive, in seconds; 50 per page, most recent first, with ``count`` and ``ofs``). ``cl_ord_id`` must be a
    UUID (long or short) or free text of at most 18 characters, and ``userref`` an int32, as Kraken documents;
    anything else is refused with ``EGeneral:Invalid arguments``. An IOC order whose remainder was cancelled is
    reported ``canceled`` (with its ``vol_exec``). Signatures are accepted, not checked (the secret must still be
    base64 for ccxt to sign)."""

    PAGE = 50

    def __init__(self, sim: SimVenue, markets: dict[str, Any], symbols: dict[str, str]) -> None:
        self.sim = sim
        self.markets = markets
        self.symbols = symbols  # pair id -> unified symbol ("XBTUSDT" -> "BTC/USDT")
        self.pairs = {v: k for k, v in symbols.items()}
        # txid -> {ack, pair, side, kind, volume, price, ts, userref, tif, reason, closed_ms}
        self.orders: dict[str, dict[str, Any]] = {}
        self.resting: set[str] = set()  # the txids of the orders open on the book

    @staticmethod
    def _kid(prefix: str, text: str) -> str:
        h = base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()
        return f"{prefix}{h[:5]}-{h[5:10]}-{h[10:16]}"

    @staticmethod
    def _ok(result: Any) -> tuple[int, Any]:
        return 200, {"error": [], "result": result}

    @staticmethod
    def _err(*errors: str) -> tuple[int, Any]:
        return 200, {"error": list(errors)}

    @staticmethod
    def _num(x: Decimal, dp: int = 8) -> str:
        return _num(x.quantize(Decimal(1).scaleb(-dp)))

    def _order_raw(self, txid: str) -> dict[str, Any]:
        o = self.orders[txid]
        ack: OrderAck = o["ack"]
        fills = [t.fill for t in self.sim._trades if t.fill.order_id == ack.order_id]
        vol_exec = sum((f.size for f in fills), Decimal(0))
        cost = sum((f.size * f.price for f in fills), Decimal(0))
        fee = sum((f.fee for f in fills), Decimal(0))
        order_text = f"{o['side']} {o['volume']} {o['pair']} @ " + (f"limit {o['price']}" if o["price"] else "market")
        closed = ack.status is OrderStatus.FILLED
        closed_ms = o["closed_ms"] or (fills[-1].ts_ms if fills else o["ts"])
        end = {"reason": o["reason"], "closetm": closed_ms / 1000}  # a closed order's: an open one has neither
        return {
            "refid": None,
            "userref": o["userref"],
            "cl_ord_id": ack.client_order_id or None,
            "status": "open" if txid in self.resting else "closed" if closed else "canceled",
            **({} if txid in self.resting else end),
            "opentm": o["ts"] / 1000,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": o["pair"],
                "type": o["side"],
                "ordertype": o["kind"],
                "price": o["price"] or "0",
                "price2": "0",
                "leverage": "none",
                "order": order_text,
                "close": "",
            },
            "vol": o["volume"],
            "vol_exec": self._num(vol_exec),
            "cost": self._num(cost, 5),
            "fee": self._num(fee, 5),
            "price": self._num(cost / vol_exec, 5) if vol_exec else "0.00000",
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": "fciq",
            "timeinforce": o["tif"],
        }

    def _orders_where(self, q: dict[str, list[str]], open_: bool) -> tuple[int, Any]:
        cl, userref = _first(q, "cl_ord_id"), _first(q, "userref")
        start, end = _first(q, "start"), _first(q, "end")
        rows = [
            txid
            for txid, o in self.orders.items()
            if (txid in self.resting) == open_
            and (cl is None or o["ack"].client_order_id == cl)
            and (userref is None or str(o["userref"]) == userref)
            and (start is None or o["ts"] / 1000 > float(start))
            and (end is None or o["ts"] / 1000 <= float(end))
        ]
        rows.sort(key=lambda t: self.orders[t]["ts"], reverse=True)
        if open_:
            return self._ok({"open": {t: self._order_raw(t) for t in rows}})
        ofs = int(_first(q, "ofs") or 0)
        page = rows[ofs : ofs + self.PAGE]
        return self._ok({"closed": {t: self._order_raw(t) for t in page}, "count": len(rows)})

    def _add_order(self, q: dict[str, list[str]]) -> tuple[int, Any]:
        pair, side, kind = _first(q, "pair") or "", _first(q, "type") or "", _first(q, "ordertype") or ""
        cl, userref = _first(q, "cl_ord_id") or "", _first(q, "userref")
        if cl and userref is not None:
            return self._err("EGeneral:Invalid arguments:cl_ord_id and userref are mutually exclusive")
        if cl and not _kraken_cl_ord_id_ok(cl):
            return self._err("EGeneral:Invalid arguments:cl_ord_id")
        if userref is not None and not (userref.lstrip("-").isdigit() and -(2**31) <= int(userref) < 2**31):
            return self._err("EGeneral:Invalid arguments:userref")
        if pair not in self.symbols:
            return self._err("EQuery:Unknown asset pair")
        if kind not in ("limit", "market"):
            return self._err(f"EGeneral:Invalid arguments:ordertype {kind} is not emulated")
        tif = _first(q, "timeinforce") or "GTC"
        if kind == "limit" and tif not in ("IOC", "GTC"):
            return self._err("EGeneral:Invalid arguments:only IOC and GTC limit orders are emulated")
        price = _first(q, "price") if kind == "limit" else None
        volume = _first(q, "volume") or "0"
        try:
            ack = self.sim.create_order(
                self.symbols[pair], Side(side), D(volume), D(price) if price else None, cl or f"noid-{self.sim._seq}"
            )
        except VenueError:
            return self._err("EOrder:Order rejected")  # e.g. a duplicate id: the emulator keeps every one unique
        txid = self._kid("O", ack.order_id)
        self.orders[txid] = {
            "ack": ack,
            "pair": pair,
            "side": side,
            "kind": kind,
            "volume": volume,
            "price": price,
            "ts": self.sim.clock(),
            "userref": int(userref) if userref is not None else 0,
            "tif": tif if kind == "limit" else "GTC",
            "reason": None,
            "closed_ms": None,
        }
        if kind == "limit" and tif == "GTC" and ack.status is not OrderStatus.FILLED:
            self.resting.add(txid)
        text = f"{side} {volume} {pair} @ " + (f"limit {price}" if price else "market")
        return self._ok({"descr": {"order": text}, "txid": [txid]})

    def _cancel(self, q: dict[str, list[str]]) -> tuple[int, Any]:
        """``CancelOrder``: ``txid`` (an order's txid, or a ``userref``: every open order carrying it) or
        ``cl_ord_id``. Only open orders are found: a closed or unknown one is ``EOrder:Unknown order``."""
        ref, cl = _first(q, "txid"), _first(q, "cl_ord_id")
        if (ref is None) == (cl is None):
            return self._err("EGeneral:Invalid arguments:one of txid and cl_ord_id is required")
        hits = [
            t
            for t in sorted(self.resting)
            if t == ref
            or (ref is not None and ref.lstrip("-").isdigit() and str(self.orders[t]["userref"]) == ref)
            or (cl is not None and self.orders[t]["ack"].client_order_id == cl)
        ]
        if not hits:
            return self._err("EOrder:Unknown order")
        for t in hits:
            self.resting.discard(t)
            self.orders[t].update(reason="User requested", closed_ms=self.sim.clock())
        return self._ok({"count": len(hits)})

    def _trade_raw(self, f: Fill) -> dict[str, Any]:
        return {
            "ordertxid": self._kid("O", f.order_id),
            "postxid": self._kid("T", f"pos/{f.trade_id}"),
            "pair": self.pairs[f.symbol],
            "time": f.ts_ms / 1000,
            "type": f.side.value,
            "ordertype": "limit",
            "price": self._num(f.price, 5),
            "cost": self._num(f.size * f.price, 5),
            "fee": self._num(f.fee, 5),
            "vol": self._num(f.size),
            "margin": "0.00000",
            "leverage": "0",
            "misc": "",
            "trade_id": int(f.trade_id.rsplit("t", 1)[1]),
            "maker": False,
        }

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        path, q = _query(url, body)
        if path in self.markets:
            return 200, self.markets[path]
        if path == "/0/public/Depth":
            pair = _first(q, "pair") or ""
            if pair not in self.symbols:
                return self._err("EQuery:Unknown asset pair")
            n = _first(q, "count")
            book = self.sim.fetch_order_book(self.symbols[pair], int(n) if n else None)
            ts = book.ts_ms // 1000
            levels = {
                side: [[self._num(lv.price, 2), self._num(lv.size), ts] for lv in lvs]
                for side, lvs in (("asks", book.asks), ("bids", book.bids))
            }
            return self._ok({pair: levels})
        if path == "/0/private/AddOrder":
            return self._add_order(q)
        if path == "/0/private/QueryOrders":
            txids = [t.strip() for t in (_first(q, "txid") or "").split(",") if t.strip()]
            if not txids or any(t not in self.orders for t in txids):
                return self._err("EOrder:Invalid order")
            return self._ok({t: self._order_raw(t) for t in txids})
        if path == "/0/private/CancelOrder":
            return self._cancel(q)
        if path == "/0/private/OpenOrders":
            return self._orders_where(q, open_=True)
        if path == "/0/private/ClosedOrders":
            return self._orders_where(q, open_=False)
        if path == "/0/private/TradesHistory":
            start, end = _first(q, "start"), _first(q, "end")
            fills = [
                f
                for sym in sorted(self.pairs)
                for f in self.sim.fetch_my_trades(sym)
                if (start is None or f.ts_ms / 1000 > float(start)) and (end is None or f.ts_ms / 1000 <= float(end))
            ]
            fills.sort(key=lambda f: (-f.ts_ms, f.trade_id))  # most recent first
            ofs = int(_first(q, "ofs") or 0)
            page = fills[ofs : ofs + self.PAGE]
            trades = {self._kid("T", f.trade_id): self._trade_raw(f) for f in page}
            return self._ok({"trades": trades, "count": len(fills)})
        return self._err(f"EGeneral:Unknown method {method} {path}")
