"""Generate the venue fixtures of the desk engine's tests (tests/fixtures/venues/<venue>/...).

    .venv/bin/python scripts/gen_venue_fixtures.py            (deterministic: seed 20251123)

The fixtures are **generated, not recorded**: every file is in the exchange's RAW REST response format (the JSON
the endpoint returns: Binance ``/api/v3/depth`` and ``/api/v3/exchangeInfo``, Coinbase Advanced Trade
``/api/v3/brokerage/market/product_book`` and ``/market/products`` plus the ``/v2`` currency endpoints, OKX
``/api/v5/market/books`` and ``/public/instruments``, Kraken ``/0/public/Depth``, ``AssetPairs`` and ``Assets``),
so that ccxt's own parsers read them; the market-list files hold only the markets the desk uses.

Book model (per venue and symbol, seeded): a reference mid (BTC/USDT 65,000; ETH/USDT 3,400), a venue offset of a
fraction of a basis point, a top-of-book spread of a few ticks, then ``levels`` price levels per side whose gaps
are exponential with a mean that grows with the distance from the mid and whose sizes are log-normal with a mean
that grows linearly with the distance. The parameters are calibrated to the *typical* (order of magnitude)
figures of those venues' BTC/USDT and ETH/USDT books as published in market-structure reports (top-of-book spread
around 0.1-2 bps; ±1% depth of a few hundred BTC on Binance, less on OKX, Coinbase and Kraken in that order; ETH
depth about 15x BTC's in ETH units). They are a plausible model for testing and benchmarking, NOT market
data: the printed table shows each generated book's spread and cumulative depth. Every venue's book alone is deep
enough for a 200 BTC (or 3,000 ETH) order on either side.
"""

from __future__ import annotations

import json
import random
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "venues"
SEED = 20251123
TS_MS = 1_763_900_000_000  # 2025-11-23T12:13:20Z: the snapshots' exchange timestamp where the format has one

MIDS = {"BTC/USDT": Decimal("65000"), "ETH/USDT": Decimal("3400")}
# per venue: tick (price step) per symbol, lot (size step), level limit of the endpoint, depth scale
# (relative to Binance), venue mid offset in bps, top-of-book half-spread in ticks
VENUES = {
    "binance": {
        "tick": {"BTC/USDT": "0.01", "ETH/USDT": "0.01"},
        "lot": "0.00001",
        "levels": 1000,
        "scale": 1.0,
        "offset_bps": 0.0,
        "half_spread_ticks": 1,
    },
    "okx": {
        "tick": {"BTC/USDT": "0.1", "ETH/USDT": "0.01"},
        "lot": "0.00000001",
        "levels": 400,
        "scale": 0.7,
        "offset_bps": 0.4,
        "half_spread_ticks": 1,
    },
    "coinbase": {
        "tick": {"BTC/USDT": "0.01", "ETH/USDT": "0.01"},
        "lot": "0.00000001",
        "levels": 1000,
        "scale": 0.45,
        "offset_bps": -0.6,
        "half_spread_ticks": 40,
    },
    "kraken": {
        "tick": {"BTC/USDT": "0.1", "ETH/USDT": "0.01"},
        "lot": "0.00000001",
        "levels": 500,
        "scale": 0.4,
        "offset_bps": 0.9,
        "half_spread_ticks": 5,
    },
}
# size model (base units) at the top and its growth per bp of distance; gap model in bps
SIZE0 = {"BTC/USDT": 0.35, "ETH/USDT": 5.0}
SIZE_GROWTH_PER_BP = 0.02
GAP0_BPS = 0.25
GAP_GROWTH = 0.004


def model_book(venue: str, symbol: str, rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(bids, asks) as decimal strings, best first, from the documented model."""
    cfg = VENUES[venue]
    tick = Decimal(cfg["tick"][symbol])
    lot = Decimal(cfg["lot"])
    mid = MIDS[symbol] * (1 + Decimal(str(cfg["offset_bps"])) / 10_000)
    half = tick * cfg["half_spread_ticks"]
    levels = cfg["levels"]
    sides = []
    for sign in (-1, 1):
        out: list[tuple[str, str]] = []
        dist_bps = 0.0
        last = None
        for k in range(levels):
            if k:
                dist_bps += rng.expovariate(1 / (GAP0_BPS * (1 + GAP_GROWTH * k)))
            raw = mid + sign * (half + mid * Decimal(repr(round(dist_bps, 6))) / 10_000)
            price = (raw / tick).to_integral_value(rounding=ROUND_UP if sign > 0 else ROUND_DOWN) * tick
            if last is not None and (price <= last if sign > 0 else price >= last):
                price = last + sign * tick
            last = price
            mean = SIZE0[symbol] * cfg["scale"] * (1 + SIZE_GROWTH_PER_BP * dist_bps)
            size = Decimal(repr(rng.lognormvariate(0, 0.8) * mean)).quantize(lot, rounding=ROUND_DOWN)
            if size <= 0:
                size = lot
            out.append((format(price, "f"), format(size, "f")))
        sides.append(out)
    return sides[0], sides[1]


def product_id(venue: str, symbol: str) -> str:
    base, quote = symbol.split("/")
    if venue == "binance":
        return base + quote
    if venue == "kraken":
        return ("XBT" if base == "BTC" else base) + quote
    return f"{base}-{quote}"


def raw_book(venue: str, symbol: str, bids, asks) -> dict:
    if venue == "binance":
        return {"lastUpdateId": 74_219_998_131, "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]}
    if venue == "coinbase":
        return {
            "pricebook": {
                "product_id": product_id(venue, symbol),
                "bids": [{"price": p, "size": s} for p, s in bids],
                "asks": [{"price": p, "size": s} for p, s in asks],
                "time": "2025-11-23T12:13:20.000000Z",
            },
            "last": bids[0][0],
            "mid_market": str((Decimal(bids[0][0]) + Decimal(asks[0][0])) / 2),
            "spread_bps": "",
            "spread_absolute": str(Decimal(asks[0][0]) - Decimal(bids[0][0])),
        }
    if venue == "okx":
        return {
            "code": "0",
            "msg": "",
            "data": [
                {
                    "asks": [[p, s, "0", "1"] for p, s in asks],
                    "bids": [[p, s, "0", "1"] for p, s in bids],
                    "ts": str(TS_MS),
                }
            ],
        }
    if venue == "kraken":
        ts = TS_MS // 1000
        return {
            "error": [],
            "result": {
                product_id(venue, symbol): {
                    "asks": [[p, s, ts] for p, s in asks],
                    "bids": [[p, s, ts] for p, s in bids],
                }
            },
        }
    raise ValueError(venue)


def binance_symbol(base: str, quote: str, tick: str) -> dict:
    return {
        "symbol": base + quote,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "120.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def coinbase_product(base: str, quote: str, tick: str) -> dict:
    return {
        "product_id": f"{base}-{quote}",
        "price": str(MIDS[f"{base}/{quote}"]),
        "price_percentage_change_24h": "0.5",
        "volume_24h": "1000",
        "volume_percentage_change_24h": "1",
        "base_increment": "0.00000001",
        "quote_increment": tick,
        "quote_min_size": "1",
        "quote_max_size": "10000000",
        "base_min_size": "0.00000001",
        "base_max_size": "3400",
        "base_name": base,
        "quote_name": quote,
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online",
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": False,
        "auction_mode": False,
        "product_type": "SPOT",
        "quote_currency_id": quote,
        "base_currency_id": base,
        "fcm_trading_session_details": None,
        "mid_market_price": "",
        "alias": "",
        "alias_to": [],
        "base_display_symbol": base,
        "quote_display_symbol": quote,
        "view_only": False,
        "price_increment": tick,
        "display_name": f"{base}-{quote}",
        "product_venue": "CBE",
    }


def okx_instrument(base: str, quote: str, tick: str) -> dict:
    return {
        "alias": "",
        "auctionEndTime": "",
        "baseCcy": base,
        "category": "1",
        "ctMult": "",
        "ctType": "",
        "ctVal": "",
        "ctValCcy": "",
        "expTime": "",
        "instFamily": "",
        "instId": f"{base}-{quote}",
        "instType": "SPOT",
        "lever": "10",
        "listTime": "1548133413000",
        "lotSz": "0.00000001",
        "maxIcebergSz": "9999999999",
        "maxLmtAmt": "20000000",
        "maxLmtSz": "9999999999",
        "maxMktAmt": "1000000",
        "maxMktSz": "1000000",
        "maxStopSz": "1000000",
        "maxTriggerSz": "9999999999",
        "maxTwapSz": "9999999999",
        "minSz": "0.00001",
        "optType": "",
        "quoteCcy": quote,
        "ruleType": "normal",
        "settleCcy": "",
        "state": "live",
        "stk": "",
        "tickSz": tick,
        "uly": "",
    }


def kraken_pair(base: str, quote: str, tick: str) -> tuple[str, dict]:
    kb = "XXBT" if base == "BTC" else "XETH"
    alt = ("XBT" if base == "BTC" else base) + quote
    dp = len(tick.split(".")[1])
    return alt, {
        "altname": alt,
        "wsname": f"{'XBT' if base == 'BTC' else base}/{quote}",
        "aclass_base": "currency",
        "base": kb,
        "aclass_quote": "currency",
        "quote": quote,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": dp,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [2, 3],
        "leverage_sell": [2, 3],
        "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2]],
        "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.00005",
        "costmin": "0.5",
        "tick_size": tick,
        "status": "online",
        "long_position_limit": 270,
        "short_position_limit": 180,
    }


def markets(venue: str) -> dict[str, dict]:
    """Raw responses of the market-list endpoints ccxt calls in load_markets, keyed by URL path."""
    pairs = [("BTC", "USDT"), ("ETH", "USDT")]
    tick = VENUES[venue]["tick"]
    if venue == "binance":
        return {
            "/api/v3/exchangeInfo": {
                "timezone": "UTC",
                "serverTime": TS_MS,
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [binance_symbol(b, q, tick[f"{b}/{q}"]) for b, q in pairs],
            }
        }
    if venue == "coinbase":
        crypto = [
            {
                "asset_id": "5b71fc48-3dd3-540c-809b-f8c94d0e68b5",
                "code": "BTC",
                "name": "Bitcoin",
                "color": "#F7931A",
                "sort_index": 100,
                "exponent": 8,
                "type": "crypto",
                "address_regex": "^.+$",
            },
            {
                "asset_id": "d85dce9b-5b73-5c3c-8978-522ce1d1c1b4",
                "code": "ETH",
                "name": "Ethereum",
                "color": "#627EEA",
                "sort_index": 102,
                "exponent": 8,
                "type": "crypto",
                "address_regex": "^.+$",
            },
            {
                "asset_id": "b26327c1-9a32-5c1e-8d12-19a8b1a4b9f1",
                "code": "USDT",
                "name": "Tether",
                "color": "#26A17B",
                "sort_index": 141,
                "exponent": 6,
                "type": "crypto",
                "address_regex": "^.+$",
            },
        ]
        return {
            "/v2/currencies": {"data": [{"id": "USD", "name": "United States Dollar", "min_size": "0.01"}]},
            "/v2/currencies/crypto": {"data": crypto},
            "/v2/exchange-rates": {
                "data": {"currency": "USD", "rates": {"BTC": "0.0000153846", "ETH": "0.000294", "USDT": "1.0"}}
            },
            "/api/v3/brokerage/market/products": {
                "products": [coinbase_product(b, q, tick[f"{b}/{q}"]) for b, q in pairs],
                "num_products": 2,
            },
            "/api/v3/brokerage/market/products?product_type=FUTURE": {"products": [], "num_products": 0},
        }
    if venue == "okx":
        return {
            "/api/v5/public/instruments": {
                "code": "0",
                "msg": "",
                "data": [okx_instrument(b, q, tick[f"{b}/{q}"]) for b, q in pairs],
            }
        }
    if venue == "kraken":
        assets = {
            "XXBT": {
                "aclass": "currency",
                "altname": "XBT",
                "decimals": 10,
                "display_decimals": 5,
                "collateral_value": 1.0,
                "status": "enabled",
            },
            "XETH": {
                "aclass": "currency",
                "altname": "ETH",
                "decimals": 10,
                "display_decimals": 5,
                "collateral_value": 1.0,
                "status": "enabled",
            },
            "USDT": {
                "aclass": "currency",
                "altname": "USDT",
                "decimals": 8,
                "display_decimals": 4,
                "collateral_value": 1.0,
                "status": "enabled",
            },
        }
        return {
            "/0/public/Assets": {"error": [], "result": assets},
            "/0/public/AssetPairs": {
                "error": [],
                "result": dict(kraken_pair(b, q, tick[f"{b}/{q}"]) for b, q in pairs),
            },
        }
    raise ValueError(venue)


def depth_summary(bids, asks) -> str:
    mid = (Decimal(bids[0][0]) + Decimal(asks[0][0])) / 2
    spread = (Decimal(asks[0][0]) - Decimal(bids[0][0])) / mid * 10_000
    parts = [f"spread {spread:.2f} bps"]
    for bps in (10, 50, 100):
        lim = mid * (1 + Decimal(bps) / 10_000)
        depth = sum(Decimal(s) for p, s in asks if Decimal(p) <= lim)
        parts.append(f"ask depth ±{bps}bps {depth:.1f}")
    parts.append(
        f"total ask {sum(Decimal(s) for _, s in asks):.1f} to {Decimal(asks[-1][0]) / mid * 10000 - 10000:.0f} bps"
    )
    return ", ".join(parts)


def main() -> None:
    rng = random.Random(SEED)
    for venue in VENUES:
        d = OUT / venue
        d.mkdir(parents=True, exist_ok=True)
        (d / "markets.json").write_text(json.dumps(markets(venue), indent=1) + "\n")
        for symbol in MIDS:
            bids, asks = model_book(venue, symbol, rng)
            name = symbol.replace("/", "-") + ".json"
            (d / name).write_text(json.dumps(raw_book(venue, symbol, bids, asks), separators=(",", ":")) + "\n")
            print(f"{venue:9} {symbol:9} {len(bids)} levels/side: {depth_summary(bids, asks)}")


if __name__ == "__main__":
    main()
