"""The store form's variants and coupons as typed, to ``listing.create``'s ``options``,
``skus`` and ``coupons`` (the node checks them again; this gives the error as it is typed).

    variants:  size=S|M|L+0.005; wood=oak|birch
               options and their values; ``+AMOUNT`` after a value adds that to the price of
               every variant with it. Every combination is a variant: one already in the
               listing keeps its stock (and, with no ``+`` typed, its surcharge); a new one
               starts with the form's quantity.
    coupons:   SPRING=10% until 2027-03-31, FRIEND=0.001
               codes with a percentage or an amount off, valid through a day (UTC) if one is
               given; the node hashes them, so a listing's coupons are never shown again, only
               how many it has (kept on update).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

# the listing rules (protocol/variants.py, protocol/coupons.py), for errors as typed
MAX_OPTIONS = 5
MAX_VALUES = 20
MAX_SKUS = 200
MAX_TEXT = 40
MAX_COUPONS = 10
CODE_RE = re.compile(r"[A-Z0-9_-]{1,40}")
Amount = Callable[[str], int]  # typed money to base units (ValueError: why not)


def parse_variants(text: str, amount_of: Amount, quantity: int,
                   existing: list[dict[str, Any]] | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``options`` and ``skus`` from the variants field (ValueError with a readable message)."""
    options: list[dict[str, Any]] = []
    extra: list[dict[str, int]] = []  # per option: value -> surcharge typed
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, values_text = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"variants: {part[:40]!r} is not name=value|value")
        if len(name) > MAX_TEXT or any(o["name"] == name for o in options):
            raise ValueError(f"variants: {name[:40]!r} is too long or named twice")
        values: list[str] = []
        surcharges: dict[str, int] = {}
        for item in (v.strip() for v in values_text.split("|")):
            value, plus, money = item.partition("+")
            value = value.strip()
            if not value or len(value) > MAX_TEXT or value in values:
                raise ValueError(f"variants: {name}: {value[:40]!r} is empty, too long or "
                                 "given twice")
            if plus:
                try:
                    surcharges[value] = amount_of(money)
                except ValueError as exc:
                    raise ValueError(f"variants: {name}: {value}: {exc}") from None
            values.append(value)
        if len(values) > MAX_VALUES:
            raise ValueError(f"variants: {name}: at most {MAX_VALUES} values")
        options.append({"name": name, "values": values})
        extra.append(surcharges)
    if not options:
        return [], []
    if len(options) > MAX_OPTIONS:
        raise ValueError(f"variants: at most {MAX_OPTIONS} options")
    count = math.prod(len(o["values"]) for o in options)  # before making any of them
    if count > MAX_SKUS:
        raise ValueError(f"variants: {count} combinations; at most {MAX_SKUS}")
    typed = any(extra)
    old = {tuple(s["values"]): s for s in existing or []}
    skus = []
    for combo in itertools.product(*(o["values"] for o in options)):
        before = old.get(combo)
        surcharge = sum(e.get(v, 0) for e, v in zip(extra, combo, strict=True))
        sku: dict[str, Any] = {
            "values": list(combo),
            "surcharge": surcharge if typed or before is None else before["surcharge"],
            "quantity": quantity if before is None else before["quantity"]}
        if before is not None and "code" in before:
            sku["code"] = before["code"]
        skus.append(sku)
    return options, skus


def variants_text(options: list[dict[str, Any]]) -> str:
    """A listing's options as the field shows them (surcharges stay with its variants)."""
    return "; ".join(f"{o['name']}={'|'.join(o['values'])}" for o in options)


def parse_coupons(text: str, amount_of: Amount) -> list[dict[str, Any]]:
    """``[{code, percent | amount}]`` from the coupons field (ValueError: why not)."""
    out: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        code, sep, off = part.partition("=")
        code, off = code.strip().upper(), off.strip()
        off, until, day = off.partition(" until ")
        off = off.strip()
        if not sep or not CODE_RE.fullmatch(code):
            raise ValueError(f"coupons: {part[:40]!r} is not CODE=10% or CODE=AMOUNT (a code "
                             "is 1..40 letters, digits, _ or -)")
        if any(c["code"] == code for c in out):
            raise ValueError(f"coupons: {code} given twice")
        if off.endswith("%"):
            number = off[:-1].strip()
            if not number.isdigit() or not 1 <= int(number) <= 100:
                raise ValueError(f"coupons: {code}: a percentage is a whole number 1..100")
            out.append({"code": code, "percent": int(number), **_expiry(code, until, day)})
            continue
        try:
            amount = amount_of(off)
        except ValueError as exc:
            raise ValueError(f"coupons: {code}: {exc}") from None
        if amount <= 0:
            raise ValueError(f"coupons: {code}: the amount off must be more than 0")
        out.append({"code": code, "amount": amount, **_expiry(code, until, day)})
    if len(out) > MAX_COUPONS:
        raise ValueError(f"coupons: at most {MAX_COUPONS}")
    return out


def _expiry(code: str, until: str, day: str) -> dict[str, int]:
    """``until YYYY-MM-DD``: valid through that day (UTC), so ``expires`` is the next midnight."""
    if not until:
        return {}
    try:
        last = datetime.strptime(day.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"coupons: {code}: until a day written 2027-03-31") from None
    return {"expires": int((last + timedelta(days=1)).timestamp())}
