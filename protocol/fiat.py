"""Prices in local money (listing v2): a listing may be priced in a currency of ISO 4217 (EUR,
USD, DKK, ...), in its minor unit (cents, øre). The buyer's node prices the order with an
exchange rate from its own sources and the ORDER records it:

    rate: {currency, coin, price, time, source}

``price`` is what one whole coin (10^8 base units) costs in the currency's minor unit, ``time``
when the rate was read (Unix seconds) and ``source`` where from. Every node then computes the
same amount due in coin from the ORDER alone: the items and shipping in minor units, less any
coupon, times 10^8 / price, rounded up. Whether the rate is fair is the vendor's call, against
its own sources, before it takes the order (``check_rate``): within ``TOLERANCE_BP`` of its
own rate and read at most ``MAX_AGE`` seconds before the order.
"""

from __future__ import annotations

from typing import Any

from . import fields as f

# ISO 4217 codes with two decimals (the minor unit is a hundredth)
FIAT = frozenset({"EUR", "USD", "DKK", "SEK", "NOK", "GBP", "CHF", "CAD", "AUD", "NZD", "PLN",
                  "CZK", "BRL", "MXN", "ZAR", "INR", "SGD", "HKD"})
COIN = 10**8
TOLERANCE_BP = 200  # 2%
MAX_AGE = 600  # seconds between reading a rate and ordering with it
MAX_SOURCE = 100


def is_fiat(currency: str) -> bool:
    return currency in FIAT


def validate_rate(err: f.ErrorClass, value: Any) -> dict[str, Any]:
    r = f.exact_keys(err, "rate", value, {"currency", "coin", "price", "time", "source"})
    if r["currency"] not in FIAT:
        f.fail(err, "rate.currency", f"must be one of {sorted(FIAT)}")
    f.currency(err, "rate.coin", r["coin"])
    f.integer(err, "rate.price", r["price"], 1, 10**15)
    f.integer(err, "rate.time", r["time"])
    f.text(err, "rate.source", r["source"], MAX_SOURCE, 1)
    return r


def to_coin(minor: int, rate: dict[str, Any]) -> int:
    """``minor`` units of the rate's currency in coin base units, rounded up."""
    return -(-minor * COIN // int(rate["price"]))


def rate_problem(rate: dict[str, Any], ours: int | None) -> str | None:
    """Why the vendor does not take an ORDER's ``rate`` by its own rate ``ours`` (minor units
    per coin, None when it has none now): more than ``TOLERANCE_BP`` apart. None: it is fair."""
    if ours is None:
        return (f"this vendor has no {rate['currency']} exchange rate now: it cannot take "
                "orders priced in it")
    off = abs(int(rate["price"]) - ours) * 10_000 // ours
    if off > TOLERANCE_BP:
        return (f"the exchange rate moved {off / 100:.2f}% since the order was priced: "
                "order again")
    return None


def factors(coin: str, target: str, prices: dict[str, int]) -> dict[str, float] | None:
    """What one base unit of each currency is worth in ``target``'s (the coin's base units, or
    a currency's minor unit), by ``prices``: minor units per whole coin of each currency with
    a rate now. For comparing listings priced in different money (``listing.search
    {price_in}``); a currency without a price is missing (its listings do not compare). None
    when ``target`` is a currency without a price."""
    per_coin = {coin: 1.0, **{c: COIN / p for c, p in prices.items() if p > 0}}
    if target == coin:
        scale = 1.0
    elif prices.get(target, 0) > 0:
        scale = prices[target] / COIN
    else:
        return None
    return {c: f * scale for c, f in per_coin.items()}
