"""Exact money arithmetic for the desk engine: ``Decimal`` in a fixed context, or integer minor units.

Never float: :func:`D` refuses a ``float`` (its binary value is not the decimal the user meant). Every amount
is a ``Decimal`` computed in :data:`CTX` (50 significant digits, banker's rounding), quantised only at the
edges (a quote's price, an on-chain amount) with :func:`quantize`/:func:`to_minor`.

Asset decimals: BTC 8 (as WBTC), USDT/USDC 6 on chain, ETH and other tokens 18. Prices (quote asset per
base unit) are carried with :data:`PRICE_DP` = 8 decimals at least, and tokens' quantities with 18.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_UP, Decimal

__all__ = [
    "ASSET_DECIMALS",
    "BPS",
    "CTX",
    "D",
    "PRICE_DP",
    "ZERO",
    "MAX_DECIMALS",
    "MAX_INTEGER_DIGITS",
    "MoneyError",
    "asset_decimals",
    "decimal_places",
    "in_range",
    "bps_of",
    "from_minor",
    "quantize",
    "quantize_price",
    "to_bps",
    "to_minor",
    "ROUND_CEILING",
    "ROUND_DOWN",
    "ROUND_FLOOR",
    "ROUND_HALF_EVEN",
    "ROUND_UP",
]

#: 50 significant digits: an 18-decimal token amount of up to 10**30 units times a price still fits exactly.
CTX = decimal.Context(
    prec=50, rounding=ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
)
# The desk engine's modules compute with plain operators in this context: importing the package sets it for the
# importing thread and as the default of threads started afterwards (50 digits instead of 28, same traps).
decimal.setcontext(CTX)
decimal.DefaultContext.prec = CTX.prec

ZERO = Decimal(0)
BPS = Decimal(10_000)
PRICE_DP = 8

#: the range of an amount, price or rate the desk takes: fewer than 10**24 in magnitude, at most 18 decimals (an
#: 18-decimal token's smallest unit). 24 + 18 = 42 significant digits: every rounding to an asset's decimals
#: stays exact in CTX's 50, and the canonical text fits the store's 96-character amount column.
MAX_INTEGER_DIGITS = 24
MAX_DECIMALS = 18

ASSET_DECIMALS: dict[str, int] = {
    "BTC": 8,
    "WBTC": 8,
    "USDT": 6,
    "USDC": 6,
    "USD": 6,
    "ETH": 18,
    "WETH": 18,
}
TOKEN_DEFAULT_DECIMALS = 18


class MoneyError(ValueError):
    """A value that is not an exact decimal amount (a float, NaN, infinity, an unparsable string)."""


def D(value: Decimal | int | str) -> Decimal:
    """An exact ``Decimal`` from an int, a decimal string or a Decimal. Floats are refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"not a finite amount: {value}")
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"refusing {type(value).__name__} {value!r} for money: pass a str, int or Decimal")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            out = Decimal(value.strip())
        except decimal.InvalidOperation as exc:
            raise MoneyError(f"not a decimal amount: {value!r}") from exc
        if not out.is_finite():
            raise MoneyError(f"not a finite amount: {value!r}")
        return out
    raise MoneyError(f"refusing {type(value).__name__} for money")


def asset_decimals(asset: str) -> int:
    """Decimals of an asset's smallest unit (BTC 8, USDT 6, ETH and unknown tokens 18)."""
    return ASSET_DECIMALS.get(asset.upper(), TOKEN_DEFAULT_DECIMALS)


def quantize(amount: Decimal, asset_or_dp: str | int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``amount`` to an asset's decimals (or to ``dp`` decimals) with an explicit rounding mode."""
    dp = asset_or_dp if isinstance(asset_or_dp, int) else asset_decimals(asset_or_dp)
    return D(amount).quantize(Decimal(1).scaleb(-dp), rounding=rounding, context=CTX)


def quantize_price(price: Decimal, rounding: str = ROUND_HALF_EVEN, dp: int = PRICE_DP) -> Decimal:
    """A price rounded to :data:`PRICE_DP` decimals (ask up / bid down: pass ROUND_CEILING / ROUND_FLOOR)."""
    return quantize(price, dp, rounding)


def to_minor(amount: Decimal | int | str, asset_or_dp: str | int, rounding: str = ROUND_DOWN) -> int:
    """Integer minor units (e.g. satoshis) of an amount; rounds by ``rounding`` (default: toward zero)."""
    dp = asset_or_dp if isinstance(asset_or_dp, int) else asset_decimals(asset_or_dp)
    return int(quantize(D(amount), dp, rounding).scaleb(dp, context=CTX))


def from_minor(units: int, asset_or_dp: str | int) -> Decimal:
    """The decimal amount of ``units`` minor units (exact)."""
    if not isinstance(units, int) or isinstance(units, bool):
        raise MoneyError(f"minor units must be an int, not {type(units).__name__}")
    dp = asset_or_dp if isinstance(asset_or_dp, int) else asset_decimals(asset_or_dp)
    return Decimal(units).scaleb(-dp, context=CTX)


def bps_of(amount: Decimal, bps: Decimal | int) -> Decimal:
    """``amount × bps / 10 000`` exactly (within :data:`CTX`)."""
    return CTX.divide(CTX.multiply(D(amount), D(bps)), BPS)


def to_bps(diff: Decimal, reference: Decimal) -> Decimal:
    """``diff / reference`` in basis points (``reference`` must be non-zero)."""
    return CTX.divide(CTX.multiply(D(diff), BPS), D(reference))


def decimal_places(value: Decimal) -> int:
    """How many decimals a finite ``value`` needs (trailing zeros do not count: 1.50 -> 1, 2E1 -> 0)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "a finite decimal"
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros)) if any(digits) else 0


def in_range(value: Decimal) -> bool:
    """Whether a finite ``value`` is in the desk's range: magnitude below 10**:data:`MAX_INTEGER_DIGITS`, at most
    :data:`MAX_DECIMALS` decimals."""
    if value.is_zero():
        return True
    return value.adjusted() < MAX_INTEGER_DIGITS and decimal_places(value) <= MAX_DECIMALS
