"""A store as a spreadsheet: our listings to CSV and back (``listing.export``,
``listing.import``, ``torv listings export|import``; columns in docs/api.md).

    id, title, description, price, currency, quantity, tags, shipping, expires,
    escrow_timeout_hours, moderators, type, condition, categories, processing_days, terms,
    unlimited, photos, options, skus, shipping_profile, coupons

``price`` and each shipping price are in the currency's whole units with at most 8 decimals and
a point ("0.045"); ``tags`` and ``moderators`` are separated by ``;``; ``shipping`` is
``REGION=PRICE`` pairs separated by ``;`` ("EU=0.0005; US=0.001"); ``expires`` is a UTC date or
date and time (ISO 8601; empty: a year from now); an ``id`` of ours changes that listing, an
empty one makes a new listing, another makes a new listing under that id (a store moved from
another node keeps its ids); a tag cannot hold ``;``; empty ``escrow_timeout_hours`` and
``moderators`` take the defaults. The listing v2 columns (``type``, ``condition``,
``categories`` separated by ``;``, ``processing_days``, ``terms``, ``unlimited`` as
``true`` or ``false``, ``photos``: photo hashes this node holds or image files, separated by
``;``; ``options``, ``skus``, ``shipping_profile`` and ``coupons``: the listing field as JSON,
exactly as ``listing.create`` takes it, amounts in base units; a coupon as exported is its
hash, one given as ``{code, percent | amount}`` is hashed here) may be left out or empty (a
listing without them stays v1). A column left out of the file leaves that field of a listing
it changes as it was; an empty cell removes it. Parsing checks every row and reports every
error with its line number; nothing is written unless every row is right (the caller imports
all or nothing).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from protocol import variants
from protocol.coupons import with_coupon_hashes
from protocol.errors import LocalProtocolError
from protocol.identity import Identity
from protocol.listing import DEFAULT_ESCROW_TIMEOUT_HOURS, LISTING_ID_RE, Listing

JSON_COLUMNS = ("options", "skus", "shipping_profile", "coupons", "markets")  # as JSON
JSON_TYPES: dict[str, type] = {"options": list, "skus": list, "shipping_profile": dict,
                               "coupons": list, "markets": list}
COLUMNS = ("id", "title", "description", "price", "currency", "quantity", "tags", "shipping",
           "expires", "escrow_timeout_hours", "moderators", "type", "condition", "categories",
           "processing_days", "terms", "unlimited", "photos", *JSON_COLUMNS)
# optional listing fields: an empty cell leaves the field out
OPTIONAL = ("moderators", "type", "condition", "categories", "processing_days", "terms",
            "unlimited", "photos", *JSON_COLUMNS)
PhotoRefs = dict[str, dict[str, str]]  # a photos cell's entry -> {hash, thumb}
REQUIRED = ("title", "price", "currency", "quantity")
UNIT = Decimal(10) ** 8
MAX_ROWS = 10_000
MAX_CSV = 16 * 1024 * 1024
DEFAULT_DAYS = 365


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class Parsed:
    """The rows as signed listings (new ones, and new versions of ours that changed), how
    many rows left a listing as it was, or the errors."""

    created: list[Listing] = field(default_factory=list)
    updated: list[Listing] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.created) + len(self.updated) + self.unchanged


def coins(amount: int) -> str:
    """Base units as whole units with up to 8 decimals ("0.045")."""
    text = format(Decimal(amount) / UNIT, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def amount_of(text: str) -> int:
    """Whole units with a point and at most 8 decimals, to base units (ValueError: why not)."""
    t = text.strip()
    if "," in t:
        raise ValueError(f"{t!r}: use a point for decimals and no thousands separator")
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise ValueError(f"{t!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{t!r} is not an amount")
    base = value * UNIT
    if base != base.to_integral_value():
        raise ValueError(f"{t!r} has more than 8 decimals")
    return int(base)


def _time(text: str) -> int:
    t = text.strip()
    try:
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{t!r} is not a date (2027-06-30 or 2027-06-30T12:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def to_csv(listings: list[Listing]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for x in sorted(listings, key=lambda x: x.id):
        b = x.body
        w.writerow([
            b["id"], b["title"], b["description"], coins(b["price"]["amount"]),
            b["price"]["currency"], b["quantity"], "; ".join(b["tags"]),
            "; ".join(f"{s['region']}={coins(s['price']['amount'])}" for s in b["shipping"]),
            datetime.fromtimestamp(b["expires"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            b["escrow_timeout_hours"],
            "; ".join(x.moderators) if x.moderators is not None else "",
            b.get("type", ""), b.get("condition", ""), "; ".join(b.get("categories", [])),
            b.get("processing_days", ""), b.get("terms", ""),
            "" if "unlimited" not in b else "true" if b["unlimited"] else "false",
            "; ".join(p["hash"] for p in b.get("photos", [])),
            *(json.dumps(b[k], ensure_ascii=False, separators=(",", ":")) if k in b else ""
              for k in JSON_COLUMNS)])
    return out.getvalue()


def photo_entries(cell: str | None) -> list[str]:
    """The entries of a ``photos`` cell: photo hashes or file paths."""
    return [e.strip() for e in (cell or "").split(";") if e.strip()]


def photo_cells(text: str) -> list[tuple[int, str]]:
    """Every (line, entry) of the ``photos`` column, to be resolved before ``parse``."""
    out: list[tuple[int, str]] = []
    for line, raw in _rows(text, lambda header: None, []):
        out.extend((line, e) for e in photo_entries(raw.get("photos")))
    return out


def _row(raw: dict[str, str], now: int, photos: PhotoRefs | None = None) -> dict[str, Any]:
    """One row's listing fields (ValueError naming the field: "field: why")."""
    def need(name: str) -> str:
        value = (raw.get(name) or "").strip()
        if not value:
            raise ValueError(f"{name}: required")
        return value

    out: dict[str, Any] = {"title": need("title"),
                           "description": (raw.get("description") or "").strip()}
    currency = need("currency")
    try:
        out["price"] = {"amount": amount_of(need("price")), "currency": currency}
    except ValueError as exc:
        raise ValueError(f"price: {exc}") from None
    try:
        out["quantity"] = int(need("quantity"))
    except ValueError:
        raise ValueError(f"quantity: {raw.get('quantity')!r} is not a whole number") from None
    out["tags"] = [t.strip() for t in (raw.get("tags") or "").split(";") if t.strip()]
    shipping = []
    for part in (raw.get("shipping") or "").split(";"):
        if not part.strip():
            continue
        region, sep, price = part.partition("=")
        if not sep or not region.strip():
            raise ValueError(f"shipping: {part.strip()!r} is not REGION=PRICE")
        try:
            shipping.append({"region": region.strip(),
                             "price": {"amount": amount_of(price), "currency": currency}})
        except ValueError as exc:
            raise ValueError(f"shipping: {exc}") from None
    out["shipping"] = shipping
    expires = (raw.get("expires") or "").strip()
    try:
        out["expires"] = _time(expires) if expires else now + DEFAULT_DAYS * 86400
    except ValueError as exc:
        raise ValueError(f"expires: {exc}") from None
    hours = (raw.get("escrow_timeout_hours") or "").strip()
    try:
        out["escrow_timeout_hours"] = int(hours) if hours else DEFAULT_ESCROW_TIMEOUT_HOURS
    except ValueError:
        raise ValueError(f"escrow_timeout_hours: {hours!r} is not a whole number") from None
    mods = [m.strip() for m in (raw.get("moderators") or "").split(";") if m.strip()]
    if mods:
        out["moderators"] = mods
    for name in ("type", "condition", "terms"):
        value = (raw.get(name) or "").strip()
        if value:
            out[name] = value
    cats = [c.strip() for c in (raw.get("categories") or "").split(";") if c.strip()]
    if cats:
        out["categories"] = cats
    unlimited = (raw.get("unlimited") or "").strip().lower()
    if unlimited:
        if unlimited not in ("true", "false"):
            raise ValueError(f"unlimited: {unlimited!r} is not true or false")
        out["unlimited"] = unlimited == "true"
    entries = photo_entries(raw.get("photos"))
    if entries:
        missing = [e for e in entries if e not in (photos or {})]
        if missing:
            raise ValueError(f"photos: {missing[0][:80]!r} was not added")
        out["photos"] = [(photos or {})[e] for e in entries]
    for name in JSON_COLUMNS:
        cell = (raw.get(name) or "").strip()
        if not cell:
            continue
        try:
            value = json.loads(cell)
        except ValueError:
            raise ValueError(f"{name}: not JSON (the field as listing.create takes it)") from None
        if not isinstance(value, JSON_TYPES[name]):
            raise ValueError(f"{name}: must be a JSON "
                             f"{'list' if JSON_TYPES[name] is list else 'object'}")
        if name == "coupons" and not all(
                isinstance(c, dict) and ("hash" in c) != ("code" in c) for c in value):
            raise ValueError("coupons: each is {code, percent | amount} or, as exported, "
                             "{hash, percent | amount}")
        out[name] = value
    days = (raw.get("processing_days") or "").strip()
    if days:
        try:
            out["processing_days"] = int(days)
        except ValueError:
            raise ValueError(f"processing_days: {days!r} is not a whole number") from None
    return out


def _header_problem(header: list[str]) -> str | None:
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if not (unknown or missing or len(set(header)) != len(header)):
        return None
    why = (f"unknown column {unknown[0]!r}" if unknown else
           f"missing column {missing[0]!r}" if missing else "a column twice")
    return f"{why} (columns: {', '.join(COLUMNS)})"


def _rows(text: str, header_problem: Callable[[list[str]], str | None],
          errors: list[RowError]) -> Iterator[tuple[int, dict[str, str]]]:
    """The data rows of a CSV with their line numbers, once its size and header are right:
    at most ``MAX_ROWS`` (each row read ends as exactly one result or error), a row with more
    cells than columns reported here (the caller sees only whole rows)."""
    if len(text) > MAX_CSV:
        errors.append(RowError(0, "csv", f"larger than {MAX_CSV} bytes"))
        return
    reader = csv.DictReader(io.StringIO(text))
    problem = header_problem(list(reader.fieldnames or []))
    if problem is not None:
        errors.append(RowError(1, "header", problem))
        return
    for count, raw in enumerate(reader):
        line = reader.line_num
        if count >= MAX_ROWS:
            errors.append(RowError(line, "csv", f"more than {MAX_ROWS} rows"))
            return
        if None in raw:  # more cells than columns
            errors.append(RowError(line, "row", "more cells than columns"))
            continue
        yield line, raw


def parse_stock(text: str, own: dict[str, Listing],
                identity: Identity) -> tuple[list[Listing], int, list[RowError]]:
    """``id,quantity`` rows (and ``sku``, the values of a variant separated by ``/``, for a
    listing with variants): the new versions of our listings whose stock changes, how many
    rows changed nothing, and every error by line (blocking: signs; run it off the loop)."""
    errors: list[RowError] = []
    unchanged = 0
    work: dict[str, dict[str, Any]] = {}  # listing id -> its body as the rows so far left it

    def header_problem(header: list[str]) -> str | None:
        return None if sorted(header) in (["id", "quantity"], ["id", "quantity", "sku"]) \
            else "the columns are: id, quantity (and sku for variants)"

    seen: set[tuple[str, tuple[str, ...]]] = set()
    for line, raw in _rows(text, header_problem, errors):
        lid = (raw.get("id") or "").strip()
        if lid not in own:
            errors.append(RowError(line, "id", f"{lid[:40]!r} is not one of your listings"))
            continue
        body = work.get(lid, dict(own[lid].body))
        sku_text = (raw.get("sku") or "").strip()
        values = [v.strip() for v in sku_text.split("/")] if sku_text else None
        if body.get("skus") and values is None:
            errors.append(RowError(line, "sku", "this listing has variants: name one (its "
                                   "values separated by /)"))
            continue
        if values is not None and variants.find(body, values) is None:
            errors.append(RowError(line, "sku", f"{sku_text[:60]!r} is not a variant of "
                                   "this listing" if body.get("skus") else
                                   "this listing has no variants"))
            continue
        key = (lid, tuple(values or ()))
        if key in seen:
            errors.append(RowError(line, "id", "the same listing (and variant) twice"))
            continue
        seen.add(key)
        text_q = (raw.get("quantity") or "").strip()
        if not text_q.isdigit() or int(text_q) > 10**9:
            errors.append(RowError(line, "quantity", f"{text_q[:20]!r} is not a whole number "
                                   "from 0 to 1,000,000,000"))
            continue
        quantity = int(text_q)
        if values is not None:
            entry = variants.find(body, values)
            assert entry is not None
            if int(entry["quantity"]) == quantity:
                unchanged += 1
                continue
            work[lid] = {**body, **variants.with_stock(body, values, quantity)}
        elif int(body["quantity"]) == quantity:
            unchanged += 1
        else:
            work[lid] = {**body, "quantity": quantity}
    changed = [own[lid].updated(identity, {k: b[k] for k in ("quantity", "skus") if k in b})
               for lid, b in work.items()]
    return changed, unchanged, errors


def parse(text: str, own: dict[str, Listing], now: int, identity: Identity,
          photos: PhotoRefs | None = None) -> Parsed:
    """Check every row against the listing rules and sign what it makes (blocking: many
    signatures; run it off the event loop); ``own`` are our listings by id, ``photos`` what
    the entries of the photos column resolved to (``photo_cells``)."""
    result = Parsed()
    seen: set[str] = set()
    for line, raw in _rows(text, _header_problem, result.errors):
        lid = (raw.get("id") or "").strip()
        if lid:
            if not LISTING_ID_RE.fullmatch(lid):
                result.errors.append(RowError(line, "id", f"{lid[:40]!r} is not a listing id "
                                              "(32 lower-case hex characters; leave it empty "
                                              "for a new listing)"))
                continue
            if lid in seen:
                result.errors.append(RowError(line, "id", "the same listing twice"))
                continue
            seen.add(lid)
        listing_id = lid or secrets.token_hex(16)
        try:
            fields = with_coupon_hashes(listing_id, _row(raw, now, photos))
        except ValueError as exc:
            name, _, why = str(exc).partition(": ")
            result.errors.append(RowError(line, name, why))
            continue
        except LocalProtocolError as exc:
            result.errors.append(RowError(line, str(exc.field or "coupons"), str(exc)))
            continue
        given = [k for k in OPTIONAL if k in raw]  # columns left out leave their field alone
        if lid in own:
            current = own[lid].body
            if all(current.get(k) == v for k, v in fields.items()) and \
                    all((k in fields) == (k in current) for k in given):
                result.unchanged += 1
                continue
            body = {**current, **fields, "seq": own[lid].seq + 1}
            for k in given:
                if k not in fields:
                    body.pop(k, None)
        else:  # a new listing, under the id given (a store moved from another node)
            body = {**fields, "id": listing_id, "seq": 1, "created": now}
        try:
            signed = Listing.create(identity, body)
        except LocalProtocolError as exc:
            result.errors.append(RowError(line, str(exc.field or "listing"), str(exc)))
            continue
        (result.updated if lid in own else result.created).append(signed)
    return result
