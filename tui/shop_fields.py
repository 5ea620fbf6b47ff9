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
    stock:     S/oak=3, L/birch=0
               how many of each variant are left (its values joined by ``/``); variants not
               named keep theirs.
    shipping:  DK SE NO: Post 3d 0.0004+0.0001, Express 1d 0.001; WORLDWIDE: Post 10d 0.0012;
               pickup; free above 0.02
               regions of country codes (or WORLDWIDE), each with its services: a name, the
               days it takes, the price of the first item and ``+`` that of each further one;
               ``pickup`` offers local pickup, ``free above AMOUNT`` free shipping from there.
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
MAX_REGIONS = 20
MAX_COUNTRIES = 250
MAX_SERVICES = 10
COUNTRY_RE = re.compile(r"[A-Z]{2}|WORLDWIDE")
SERVICE_RE = re.compile(r"(.+?)\s+(\d{1,3})d\s+(\S+?)(?:\s*\+\s*(\S+))?")
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


def parse_stock(text: str, skus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The variants with the stock typed for them (ValueError naming one not found)."""
    out = [dict(sku) for sku in skus]
    by_values = {"/".join(sku["values"]).lower(): sku for sku in out}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, count = part.rpartition("=")
        sku = by_values.get(name.strip().lower())
        if not sep or sku is None:
            raise ValueError(f"stock: {part[:40]!r} names no variant (write S/oak=3)")
        if not count.strip().isdigit():
            raise ValueError(f"stock: {name.strip()}: a whole number, e.g. 3")
        sku["quantity"] = int(count)
    return out


def stock_text(skus: list[dict[str, Any]]) -> str:
    return ", ".join(f"{'/'.join(s['values'])}={s['quantity']}" for s in skus)


def parse_shipping(text: str, amount_of: Amount) -> dict[str, Any] | None:
    """A ``shipping_profile`` from the shipping field (None when empty; ValueError: why)."""
    regions: list[dict[str, Any]] = []
    profile: dict[str, Any] = {"regions": regions}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if part.lower() == "pickup":
            profile["pickup"] = True
            continue
        if part.lower().startswith("free above"):
            try:
                profile["free_above"] = amount_of(part[len("free above"):])
            except ValueError as exc:
                raise ValueError(f"shipping: free above: {exc}") from None
            if profile["free_above"] < 1:
                raise ValueError("shipping: free above: more than 0")
            continue
        regions.append(_region(part, amount_of))
    if not regions:
        if len(profile) > 1:
            raise ValueError("shipping: name at least one region, e.g. DK: Post 3d 0.0004")
        return None
    if len(regions) > MAX_REGIONS:
        raise ValueError(f"shipping: at most {MAX_REGIONS} regions")
    return profile


def _region(part: str, amount_of: Amount) -> dict[str, Any]:
    where, sep, services_text = part.partition(":")
    countries = where.replace(",", " ").upper().split()
    if not sep or not countries:
        raise ValueError(f"shipping: {part[:40]!r} is not COUNTRIES: service 3d price")
    bad = [c for c in countries if not COUNTRY_RE.fullmatch(c)]
    if bad or len(set(countries)) != len(countries) or len(countries) > MAX_COUNTRIES:
        raise ValueError(f"shipping: {where.strip()[:40]!r}: two-letter country codes (or "
                         "WORLDWIDE), each once")
    services: list[dict[str, Any]] = []
    for item in (x.strip() for x in services_text.split(",")):
        match = SERVICE_RE.fullmatch(item)
        if match is None:
            raise ValueError(f"shipping: {item[:40]!r} is not a service: Post 3d 0.0004+0.0001")
        name, days, first, more = match.groups()
        if len(name) > MAX_TEXT or "/" in name or any(x["name"] == name for x in services):
            raise ValueError(f"shipping: {name[:40]!r}: a name of 1..40 characters without "
                             "/, each once in a region")
        try:
            price = {"first": amount_of(first), "additional": amount_of(more or "0")}
        except ValueError as exc:
            raise ValueError(f"shipping: {name}: {exc}") from None
        services.append({"name": name, "days": int(days), **price})
    if len(services) > MAX_SERVICES:
        raise ValueError(f"shipping: at most {MAX_SERVICES} services in a region")
    return {"countries": countries, "services": services}


def shipping_text(profile: dict[str, Any] | None, coins_of: Callable[[int], str]) -> str:
    """A listing's shipping profile as the field shows it."""
    if not profile:
        return ""
    parts = []
    for region in profile["regions"]:
        services = ", ".join(
            f"{s['name']} {s['days']}d {coins_of(s['first'])}"
            + (f"+{coins_of(s['additional'])}" if s["additional"] else "")
            for s in region["services"])
        parts.append(f"{' '.join(region['countries'])}: {services}")
    if profile.get("pickup"):
        parts.append("pickup")
    if profile.get("free_above"):
        parts.append(f"free above {coins_of(profile['free_above'])}")
    return "; ".join(parts)
