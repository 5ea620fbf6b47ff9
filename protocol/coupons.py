"""Coupons: a listing (v2) carries the hashes of its discount codes, never the codes; a buyer
enters a code, the ORDER records it, and every party's node checks it against the signed
listing when it takes the contract (the discount is part of the amount due).

A code is 1..40 characters of ``A-Z 0-9 _ -``, compared in upper case. Its hash is
sha256("torv-coupon/1:" || listing id || ":" || code) as 64 lower-case hex characters: tied to
the listing, so a code's hash in one listing says nothing about another's. A coupon takes
``percent`` (1..100) off the items, or a fixed ``amount`` (base units, at most the items'
price); shipping is never discounted. A coupon may carry ``expires`` (Unix seconds): an ORDER
made (its ``time``) at or after it does not get the discount, and the vendor's node, whose
clock an ORDER's time cannot change, declines at confirmation an order whose coupon has
expired by its own clock (``expired``).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import fields as f
from .errors import LocalProtocolError
from .photos import PHOTO_HASH_RE

MAX_COUPONS = 10
MAX_CODE = 40
CODE_RE = re.compile(r"[A-Z0-9_-]{1,40}")  # matched whole, after upper-casing


def normalize(code: str) -> str:
    """A code as typed, in the form that is hashed (LocalProtocolError if it cannot be one)."""
    text = code.strip().upper() if isinstance(code, str) else ""
    if not CODE_RE.fullmatch(text):
        raise LocalProtocolError("coupon: 1..40 letters, digits, _ or -", field="coupon")
    return text


def coupon_hash(listing_id: str, code: str) -> str:
    return hashlib.sha256(f"torv-coupon/1:{listing_id}:{code}".encode()).hexdigest()


def validate_coupons(err: f.ErrorClass, field: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_COUPONS:
        f.fail(err, field, f"must be a list of at most {MAX_COUPONS} coupons")
    seen: set[str] = set()
    for i, item in enumerate(value):
        name = f"{field}[{i}]"
        keys = set(item) - {"expires"} if isinstance(item, dict) else set()
        if keys not in ({"hash", "percent"}, {"hash", "amount"}):
            f.fail(err, name, "must be {hash, percent, expires?} or {hash, amount, expires?}")
        if "expires" in item:
            f.integer(err, f"{name}.expires", item["expires"], 1)
        f.pattern(err, f"{name}.hash", item["hash"], PHOTO_HASH_RE, 64,
                  "64 lower-case hex characters (a sha256)")
        if item["hash"] in seen:
            f.fail(err, field, "names a coupon twice")
        seen.add(item["hash"])
        if "percent" in item:
            f.integer(err, f"{name}.percent", item["percent"], 1, 100)
        else:
            f.integer(err, f"{name}.amount", item["amount"], 1)
    return list(value)


def find(listing_body: dict[str, Any], code: str) -> dict[str, Any]:
    """The listing's coupon of ``code``; ValueError when it has no such coupon."""
    try:
        wanted = coupon_hash(listing_body["id"], normalize(code))
    except LocalProtocolError as exc:
        raise ValueError(str(exc)) from None
    for coupon in listing_body.get("coupons", []):
        if coupon["hash"] == wanted:
            return dict(coupon)
    raise ValueError("this listing has no such coupon")


def expired(listing_body: dict[str, Any], code: str, at: int) -> str | None:
    """Why ``code`` gives no discount at ``at`` (its expiry passed), or None."""
    return _ended(find(listing_body, code), code, at)


def _ended(coupon: dict[str, Any], code: str, at: int) -> str | None:
    ends = coupon.get("expires")
    if ends is not None and at >= int(ends):
        return f"the coupon {normalize(code)} expired (at {int(ends)}, Unix time)"
    return None


def discount(listing_body: dict[str, Any], code: str, items: int, at: int | None = None
             ) -> int:
    """What ``code`` takes off ``items`` (the items' price) in this listing for an order made
    at ``at``; ValueError when the listing has no such coupon or it had expired."""
    coupon = find(listing_body, code)
    if at is not None and (why := _ended(coupon, code, at)) is not None:
        raise ValueError(why)
    if "percent" in coupon:
        return items * int(coupon["percent"]) // 100
    return min(items, int(coupon["amount"]))


def with_coupon_hashes(listing_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Listing fields with the coupons given as codes (``{code, percent | amount}``) turned
    into what the listing carries (``{hash, percent | amount}``): the codes never leave the
    vendor's node. Coupons already hashed are kept as they are."""
    if fields.get("coupons") is None:  # not given, or given as null (removed)
        return fields
    out = []
    for c in fields["coupons"]:
        if "hash" in c:
            out.append(c)
            continue
        if ("percent" in c) == ("amount" in c):
            raise LocalProtocolError("coupons: each takes percent or amount, one of them",
                                     field="coupons")
        rest = {k: v for k, v in c.items() if k in ("percent", "amount", "expires")}
        out.append({"hash": coupon_hash(listing_id, normalize(c["code"])), **rest})
    return {**fields, "coupons": out}
