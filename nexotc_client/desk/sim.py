"""A simulated matching venue (:class:`SimVenue`), a simulated clock, and a Binance-sandbox emulator that serves
the simulated venue through Binance's raw REST formats (so the ccxt adapter's execution path runs offline).

Model (seeded, deterministic for a seed): the venue's book is a set of levels at fixed offsets from a *fair mid*;
each level has a resting size. A taker order walks the levels best first up to its limit, one fill per level
(IOC: the rest is cancelled). Consumed size **replenishes** toward the level's original size exponentially with
time constant ``replenish_ms``. Each execution pushes the fair mid by a **temporary impact** of
``impact_bps_per_unit`` bps per base unit traded (in the trade's direction) that decays with time constant
``impact_decay_ms``, and moves the fair mid for good by a **permanent impact** of ``permanent_bps_per_unit``.
The fair mid also follows a random walk of ``vol_bps_per_min`` bps per √minute (integer
ppm steps drawn from the seeded RNG; all prices and sizes are exact Decimals). ``late_fill_prob`` withholds
fills from the order's acknowledgement: they appear only in :meth:`SimVenue.fetch_my_trades`, ``late_ms`` later,
which also returns every earlier trade again (duplicates) in shuffled order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nexotc_client.desk.models import Book, Fill, Level, OrderStatus, Side
from nexotc_client.desk.money import BPS, D, quantize
from nexotc_client.desk.venues import OrderAck, VenueError

__all__ = ["BinanceSandboxEmulator", "OkxSandboxEmulator", "SimClock", "SimParams", "SimVenue"]

PPM = Decimal(1_000_000)


class SimClock:
    """A simulated clock in milliseconds: call it for the time, :meth:`sleep` to advance it (no real sleep)."""

    def __init__(self, now_ms: int = 0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, ms: int) -> None:
        self.now_ms += max(0, int(ms))


@dataclass(slots=True)
class SimParams:
    replenish_ms: int = 20_000
    impact_bps_per_unit: Decimal = Decimal("0.15")
    impact_decay_ms: int = 30_000
    permanent_bps_per_unit: Decimal = Decimal("0.05")
    vol_bps_per_min: Decimal = Decimal(3)
    late_fill_prob: float = 0.0
    late_ms: int = 2_000
    size_dp: int = 8


@dataclass(slots=True)
class _Trade:
    fill: Fill
    visible_ms: int


@dataclass(slots=True)
class _SymbolState:
    fair_mid: Decimal
    impact: Decimal  # temporary impact, a relative price shift (fraction)
    ask_off: list[Decimal]  # relative offsets from the fair mid (ask: positive)
    bid_off: list[Decimal]  # (bid: positive, subtracted)
    ask_orig: list[Decimal]
    bid_orig: list[Decimal]
    ask_size: list[Decimal]
    bid_size: list[Decimal]
    t_ms: int
    depleted: dict[str, set[int]] = field(default_factory=lambda: {"ask": set(), "bid": set()})


@dataclass
class SimVenue:
    """A seeded simulated venue built from initial books (one per symbol)."""

    name: str
    books: list[Book]
    clock: Callable[[], int]
    seed: int = 0
    params: SimParams = field(default_factory=SimParams)
    fee_bps: Decimal | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.name}/{self.seed}")
        self._sym: dict[str, _SymbolState] = {}
        self._fee = {b.symbol: (self.fee_bps if self.fee_bps is not None else b.fee_bps) for b in self.books}
        now = self.clock()
        for b in self.books:
            mid = b.mid
            if mid is None:
                raise VenueError(f"{self.name}: one-sided initial book for {b.symbol}")
            self._sym[b.symbol] = _SymbolState(
                fair_mid=mid,
                impact=Decimal(0),
                ask_off=[(lv.price - mid) / mid for lv in b.asks],
                bid_off=[(mid - lv.price) / mid for lv in b.bids],
                ask_orig=[lv.size for lv in b.asks],
                bid_orig=[lv.size for lv in b.bids],
                ask_size=[lv.size for lv in b.asks],
                bid_size=[lv.size for lv in b.bids],
                t_ms=now,
            )
        self._orders: dict[str, OrderAck] = {}
        self._trades: list[_Trade] = []
        self._seq = 0

    # dynamics -----------------------------------------------------------------------------------------------

    def _advance(self, symbol: str) -> _SymbolState:
        st = self._sym.get(symbol)
        if st is None:
            raise VenueError(f"{self.name}: unknown symbol {symbol}")
        now = self.clock()
        dt = now - st.t_ms
        if dt <= 0:
            return st
        p = self.params
        # random walk: sigma (ppm) = vol_bps × 100 × sqrt(dt / 60 000); integer ppm step from the seeded RNG
        sigma_ppm = float(p.vol_bps_per_min) * 100 * (dt / 60_000) ** 0.5
        step = int(round(self.rng.gauss(0.0, sigma_ppm))) if sigma_ppm > 0 else 0
        st.fair_mid = st.fair_mid * (1 + Decimal(step) / PPM)
        decay_imp = (Decimal(-dt) / Decimal(p.impact_decay_ms)).exp()
        st.impact = st.impact * decay_imp
        keep = (Decimal(-dt) / Decimal(p.replenish_ms)).exp()
        q = Decimal(1).scaleb(-p.size_dp)
        for name, sizes, orig in (("ask", st.ask_size, st.ask_orig), ("bid", st.bid_size, st.bid_orig)):
            dep = st.depleted[name]
            for i in list(dep):
                o = orig[i]
                sizes[i] = (o - (o - sizes[i]) * keep).quantize(q)
                if sizes[i] >= o:
                    sizes[i] = o
                    dep.discard(i)
        st.t_ms = now
        return st

    def mid(self, symbol: str) -> Decimal:
        st = self._advance(symbol)
        return st.fair_mid * (1 + st.impact)

    def fetch_order_book(self, symbol: str, depth: int | None = None) -> Book:
        st = self._advance(symbol)
        m = st.fair_mid * (1 + st.impact)
        n = depth or len(st.ask_off)
        asks = tuple(
            Level(quantize(m * (1 + o), 2), s) for o, s in zip(st.ask_off[:n], st.ask_size[:n], strict=True) if s > 0
        )
        bids = tuple(
            Level(quantize(m * (1 - o), 2), s) for o, s in zip(st.bid_off[:n], st.bid_size[:n], strict=True) if s > 0
        )
        return Book(self.name, symbol, bids, asks, self.clock(), self._fee[symbol])

    # execution ----------------------------------------------------------------------------------------------

    def create_order(
        self, symbol: str, side: Side, size: Decimal, limit_price: Decimal | None, client_order_id: str
    ) -> OrderAck:
        if client_order_id in self._orders:
            raise VenueError(f"{self.name}: duplicate client order id {client_order_id}")
        size = D(size)
        if size <= 0:
            raise VenueError(f"{self.name}: size must be positive")
        st = self._advance(symbol)
        now = self.clock()
        self._seq += 1
        order_id = f"{self.name}-o{self._seq}"
        m = st.fair_mid * (1 + st.impact)
        offs, sizes = (st.ask_off, st.ask_size) if side is Side.BUY else (st.bid_off, st.bid_size)
        dep = st.depleted["ask" if side is Side.BUY else "bid"]
        left = size
        fills: list[Fill] = []
        late: list[Fill] = []
        fee_rate = self._fee[symbol] / BPS
        for i, o in enumerate(offs):
            if left <= 0:
                break
            avail = sizes[i]
            if avail <= 0:
                continue
            price = quantize(m * (1 + o) if side is Side.BUY else m * (1 - o), 2)
            if limit_price is not None and (price > limit_price if side is Side.BUY else price < limit_price):
                break
            take = min(avail, left)
            sizes[i] = avail - take
            dep.add(i)
            left -= take
            self._seq += 1
            f = Fill(
                trade_id=f"{self.name}-t{self._seq}",
                order_id=order_id,
                venue=self.name,
                side=side,
                size=take,
                price=price,
                fee=quantize(take * price * fee_rate, 8),
                fee_asset=symbol.split("/")[1],
                ts_ms=now,
                symbol=symbol,
            )
            if self.params.late_fill_prob and self.rng.random() < self.params.late_fill_prob:
                late.append(f)
                self._trades.append(_Trade(f, now + self.params.late_ms))
            else:
                fills.append(f)
                self._trades.append(_Trade(f, now))
        filled = size - left
        # temporary impact in the trade's direction
        st.impact += side.sign * self.params.impact_bps_per_unit * filled / BPS
        st.fair_mid *= 1 + side.sign * self.params.permanent_bps_per_unit * filled / BPS
        status = OrderStatus.FILLED if left == 0 else OrderStatus.CANCELED
        ack = OrderAck(order_id, client_order_id, status, filled, fills)
        self._orders[client_order_id] = ack
        return ack

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderAck | None:
        ack = self._orders.get(client_order_id)
        if ack is None:
            return None
        return OrderAck(ack.order_id, ack.client_order_id, ack.status, ack.filled, list(ack.fills))

    def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        """Every visible trade of the symbol since ``since_ms`` (duplicates of acknowledged fills, shuffled)."""
        now = self.clock()
        out = [
            t.fill
            for t in self._trades
            if t.visible_ms <= now and t.fill.symbol == symbol and (since_ms is None or t.fill.ts_ms >= since_ms)
        ]
        self.rng.shuffle(out)
        return out


class BinanceSandboxEmulator:
    """A responder for :class:`~nexotc_client.desk.venues.RawTransport` that answers ccxt's Binance (sandbox)
    requests from a :class:`SimVenue` in Binance's raw REST formats: ``GET /api/v3/exchangeInfo`` (from the
    fixture's markets), ``GET /api/v3/depth``, ``POST /api/v3/order`` (FULL response with ``fills``),
    ``GET /api/v3/order`` and ``GET /api/v3/myTrades``. Signed requests are accepted (the signature is not
    checked: this is a test double of the exchange, not of ccxt)."""

    def __init__(self, sim: SimVenue, markets: dict[str, Any], symbols: dict[str, str]) -> None:
        self.sim = sim
        self.markets = markets
        self.symbols = symbols  # exchange id -> unified symbol ("BTCUSDT" -> "BTC/USDT")
        self.orders: dict[str, dict[str, Any]] = {}

    def _order_raw(self, ack: OrderAck, exid: str, side: Side, kind: str, qty: str, price: str, ts: int) -> dict:
        quote_qty = sum((f.size * f.price for f in ack.fills), Decimal(0))
        status = {OrderStatus.FILLED: "FILLED", OrderStatus.CANCELED: "EXPIRED"}.get(ack.status, "NEW")
        return {
            "symbol": exid,
            "orderId": int(ack.order_id.rsplit("o", 1)[1]),
            "orderListId": -1,
            "clientOrderId": ack.client_order_id,
            "transactTime": ts,
            "price": price or "0.00000000",
            "origQty": qty,
            "executedQty": format(ack.filled, "f"),
            "cummulativeQuoteQty": format(quote_qty, "f"),
            "status": status,
            "timeInForce": "IOC" if kind == "LIMIT" else "GTC",
            "type": kind,
            "side": side.value.upper(),
            "workingTime": ts,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        parts = urlsplit(url)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if body:
            q.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        path = parts.path
        if path == "/api/v3/exchangeInfo":
            return 200, self.markets["/api/v3/exchangeInfo"]
        if path == "/api/v3/depth":
            book = self.sim.fetch_order_book(self.symbols[q["symbol"]], int(q.get("limit", 100)))
            return 200, {
                "lastUpdateId": self.sim.clock(),
                "bids": [[format(lv.price, "f"), format(lv.size, "f")] for lv in book.bids],
                "asks": [[format(lv.price, "f"), format(lv.size, "f")] for lv in book.asks],
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
            raw = self._order_raw(ack, q["symbol"], side, kind, q["quantity"], q.get("price", ""), ts)
            self.orders[ack.client_order_id] = raw
            full = dict(raw)
            full["fills"] = [
                {
                    "price": format(f.price, "f"),
                    "qty": format(f.size, "f"),
                    "commission": format(f.fee, "f"),
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
        if path == "/api/v3/myTrades":
            sym = self.symbols[q["symbol"]]
            since = int(q["startTime"]) if "startTime" in q else None
            return 200, [
                {
                    "symbol": q["symbol"],
                    "id": int(f.trade_id.rsplit("t", 1)[1]),
                    "orderId": int(f.order_id.rsplit("o", 1)[1]),
                    "orderListId": -1,
                    "price": format(f.price, "f"),
                    "qty": format(f.size, "f"),
                    "quoteQty": format(f.size * f.price, "f"),
                    "commission": format(f.fee, "f"),
                    "commissionAsset": f.fee_asset,
                    "time": f.ts_ms,
                    "isBuyer": f.side is Side.BUY,
                    "isMaker": False,
                    "isBestMatch": True,
                }
                for f in self.sim.fetch_my_trades(sym, since)
            ]
        return 404, {"code": -1, "msg": f"no route {method} {path}"}


class OkxSandboxEmulator:
    """A responder for :class:`~nexotc_client.desk.venues.RawTransport` answering ccxt's OKX requests (demo
    trading: ``x-simulated-trading: 1``) from a :class:`SimVenue` in OKX's raw v5 formats. Unlike Binance, OKX
    acknowledges an order without its fills: they arrive only through ``GET /api/v5/trade/fills-history``
    (and the order's state through ``GET /api/v5/trade/order``). Routes: ``public/instruments`` (from the
    fixture's markets), ``market/books``, ``POST trade/order`` and ``trade/batch-orders`` (ccxt's default),
    ``GET trade/order``, ``trade/fills-history``."""

    def __init__(self, sim: SimVenue, markets: dict[str, Any]) -> None:
        self.sim = sim
        self.markets = markets
        self.orders: dict[str, tuple[OrderAck, str, str, str, str]] = {}  # clOrdId -> ack, instId, side, sz, px

    @staticmethod
    def _ok(data: list[dict[str, Any]]) -> tuple[int, Any]:
        return 200, {"code": "0", "msg": "", "data": data}

    @staticmethod
    def _num(x: Decimal) -> str:
        return format(x, "f")

    def _order_raw(self, cl_ord_id: str) -> dict[str, Any]:
        ack, inst, side, sz, px = self.orders[cl_ord_id]
        fills = [t.fill for t in self.sim._trades if t.fill.order_id == ack.order_id]
        acc = sum((f.size for f in fills), Decimal(0))
        avg = sum((f.size * f.price for f in fills), Decimal(0)) / acc if acc else Decimal(0)
        fee = sum((f.fee for f in fills), Decimal(0))
        state = "filled" if ack.status is OrderStatus.FILLED else ("canceled" if acc == 0 else "partially_filled")
        if ack.status is OrderStatus.CANCELED and acc > 0:
            state = "canceled"  # IOC: the remainder was cancelled
        ts = str(fills[0].ts_ms if fills else self.sim.clock())
        return {
            "accFillSz": self._num(acc),
            "avgPx": self._num(avg) if acc else "",
            "cTime": ts,
            "category": "normal",
            "ccy": "",
            "clOrdId": cl_ord_id,
            "fee": self._num(-fee),
            "feeCcy": inst.split("-")[1],
            "fillPx": self._num(fills[-1].price) if fills else "",
            "fillSz": self._num(fills[-1].size) if fills else "0",
            "fillTime": ts,
            "instId": inst,
            "instType": "SPOT",
            "lever": "",
            "ordId": ack.order_id.rsplit("o", 1)[1],
            "ordType": "ioc" if px else "market",
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
        self.orders[req["clOrdId"]] = (ack, inst, req["side"], req["sz"], req.get("px", ""))
        return {
            "clOrdId": req["clOrdId"],
            "ordId": ack.order_id.rsplit("o", 1)[1],
            "tag": "",
            "ts": str(self.sim.clock()),
            "sCode": "0",
            "sMsg": "Order placed",
        }

    def __call__(self, method: str, url: str, body: bytes | None) -> tuple[int, Any]:
        parts = urlsplit(url)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path == "/api/v5/public/instruments":
            return 200, self.markets["/api/v5/public/instruments"]
        if path == "/api/v5/market/books":
            book = self.sim.fetch_order_book(q["instId"].replace("-", "/"), int(q.get("sz", 400)))
            return self._ok(
                [
                    {
                        "asks": [[self._num(lv.price), self._num(lv.size), "0", "1"] for lv in book.asks],
                        "bids": [[self._num(lv.price), self._num(lv.size), "0", "1"] for lv in book.bids],
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
        if path in ("/api/v5/trade/fills-history", "/api/v5/trade/fills"):
            inst = q["instId"]
            since = int(q["begin"]) if "begin" in q else None
            cl_of = {a.order_id: cl for cl, (a, *_rest) in self.orders.items()}
            return self._ok(
                [
                    {
                        "instType": "SPOT",
                        "instId": inst,
                        "tradeId": f.trade_id.rsplit("t", 1)[1],
                        "ordId": f.order_id.rsplit("o", 1)[1],
                        "clOrdId": cl_of.get(f.order_id, ""),
                        "billId": "",
                        "tag": "",
                        "fillPx": self._num(f.price),
                        "fillSz": self._num(f.size),
                        "side": f.side.value,
                        "posSide": "net",
                        "execType": "T",
                        "feeCcy": f.fee_asset,
                        "fee": self._num(-f.fee),
                        "ts": str(f.ts_ms),
                        "fillTime": str(f.ts_ms),
                    }
                    for f in self.sim.fetch_my_trades(inst.replace("-", "/"), since)
                ]
            )
        return 404, {"code": "50000", "msg": f"no route {method} {path}", "data": []}
