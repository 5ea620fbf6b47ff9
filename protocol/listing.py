"""Listings: a vendor's signed offer of one item.

Version 1 is the listing Torv started with; version 2 adds what a shop needs (a type,
condition, categories, processing time, terms, photos), all optional. A vendor's node signs a
listing as v1 while it uses none of the v2 fields, so nodes that know only v1 still read it;
every node reads both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import fields as f
from . import shipping, variants
from .coupons import validate_coupons
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity
from .photos import validate_photos
from .signed import MAX_SIGNED_SIZE, SignedObject

LISTING_TYPE = "listing"
LISTING_VERSION = 1
LISTING_V2 = 2
VERSIONS = (LISTING_VERSION, LISTING_V2)
MAX_TITLE = 140
MAX_DESCRIPTION = 10_000
MAX_TAGS = 10
MAX_TAG = 40
MAX_SHIPPING = 20
MAX_REGION = 64
MAX_LISTING_MODERATORS = 10
DEFAULT_ESCROW_TIMEOUT_HOURS = 1080  # 45 days, as OpenBazaar 2
MAX_ESCROW_TIMEOUT_HOURS = 24 * 365
LISTING_ID_RE = re.compile(r"[0-9a-f]{32}")  # always matched whole (fullmatch)

BODY_KEYS = {
    "id", "vendor", "seq", "title", "description", "price", "quantity", "tags", "shipping",
    "created", "expires", "escrow_timeout_hours",
}
OPTIONAL_KEYS = frozenset({"moderators"})
V2_KEYS = frozenset({"type", "condition", "categories", "processing_days", "terms", "photos",
                     "unlimited", "coupons", "options", "skus", "shipping_profile",
                     "markets"})
KINDS = ("physical", "digital", "service")
CONDITIONS = ("new", "used", "refurbished")
MAX_CATEGORIES = 5
MAX_CATEGORY = 60
MAX_PROCESSING_DAYS = 365
MAX_TERMS = 5_000
MAX_LISTING_MARKETS = 8  # community markets a listing names (protocol/markets.py)
MARKET_ID_RE = re.compile(r"[0-9a-f]{64}")
# Fields a change may remove (given as None): the optional ones.
REMOVABLE = OPTIONAL_KEYS | V2_KEYS
# Fields a caller may set or change; the rest are managed by the node.
EDITABLE = ("title", "description", "price", "quantity", "tags", "shipping",
            "escrow_timeout_hours", "expires", "moderators", *sorted(V2_KEYS))


def version_for(body: dict[str, Any]) -> int:
    """The version a body is signed as: v2 only when it uses a v2 field."""
    return LISTING_V2 if V2_KEYS & set(body) else LISTING_VERSION


def _validate_v2(b: dict[str, Any], err: f.ErrorClass) -> None:
    if "type" in b and b["type"] not in KINDS:
        f.fail(err, "type", f"must be one of {list(KINDS)}")
    if "condition" in b:
        if b["condition"] not in CONDITIONS:
            f.fail(err, "condition", f"must be one of {list(CONDITIONS)}")
        if b.get("type", "physical") != "physical":
            f.fail(err, "condition", "only a physical item has a condition")
    if "categories" in b:
        cats = b["categories"]
        if not isinstance(cats, list) or len(cats) > MAX_CATEGORIES:
            f.fail(err, "categories", f"must be a list of at most {MAX_CATEGORIES}")
        for i, cat in enumerate(cats):
            f.text(err, f"categories[{i}]", cat, MAX_CATEGORY, 1)
        if len(set(cats)) != len(cats):
            f.fail(err, "categories", "names a category twice")
    if "processing_days" in b:
        f.integer(err, "processing_days", b["processing_days"], 0, MAX_PROCESSING_DAYS)
    if "terms" in b:
        f.text(err, "terms", b["terms"], MAX_TERMS)
    if "photos" in b:
        validate_photos(err, "photos", b["photos"])
    if "coupons" in b:
        validate_coupons(err, "coupons", b["coupons"])
    variants.validate(err, b)
    if "shipping_profile" in b:
        shipping.validate(err, "shipping_profile", b["shipping_profile"])
        if b["shipping"]:
            f.fail(err, "shipping", "a listing has a shipping_profile or shipping options, "
                   "not both")
    if "markets" in b:
        ids = b["markets"]
        if not isinstance(ids, list) or len(ids) > MAX_LISTING_MARKETS:
            f.fail(err, "markets", f"must be a list of at most {MAX_LISTING_MARKETS} market ids")
        for i, mid in enumerate(ids):
            f.pattern(err, f"markets[{i}]", mid, MARKET_ID_RE, 64, "a market id (64 hex)")
        if len(set(ids)) != len(ids):
            f.fail(err, "markets", "names a market twice")
    if "unlimited" in b:
        if not isinstance(b["unlimited"], bool):
            f.fail(err, "unlimited", "must be true or false")
        if b["unlimited"] and b.get("type", "physical") == "physical":
            f.fail(err, "unlimited", "only digital goods and services are unlimited")


def validate_body(body: Any, err: f.ErrorClass, version: int = LISTING_VERSION
                  ) -> dict[str, Any]:
    optional = OPTIONAL_KEYS | V2_KEYS if version == LISTING_V2 else OPTIONAL_KEYS
    b = f.exact_keys(err, "listing", body, BODY_KEYS, optional)
    f.pattern(err, "id", b["id"], LISTING_ID_RE, 32, "32 lower-case hex characters")
    f.peer_id(err, "vendor", b["vendor"])
    f.integer(err, "seq", b["seq"], 1)
    f.text(err, "title", b["title"], MAX_TITLE, 1)
    f.text(err, "description", b["description"], MAX_DESCRIPTION)
    f.price(err, "price", b["price"])
    f.integer(err, "quantity", b["quantity"], 0, 10**9)
    tags = b["tags"]
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        f.fail(err, "tags", f"must be a list of at most {MAX_TAGS} tags")
    for i, tag in enumerate(tags):
        f.text(err, f"tags[{i}]", tag, MAX_TAG, 1)
    ship = b["shipping"]
    if not isinstance(ship, list) or len(ship) > MAX_SHIPPING:
        f.fail(err, "shipping", f"must be a list of at most {MAX_SHIPPING} options")
    for i, opt in enumerate(ship):
        o = f.exact_keys(err, f"shipping[{i}]", opt, {"region", "price"})
        f.text(err, f"shipping[{i}].region", o["region"], MAX_REGION, 1)
        f.price(err, f"shipping[{i}].price", o["price"])
    created = f.integer(err, "created", b["created"])
    expires = f.integer(err, "expires", b["expires"])
    if expires <= created:
        f.fail(err, "expires", "must be after created")
    f.integer(err, "escrow_timeout_hours", b["escrow_timeout_hours"], 1, MAX_ESCROW_TIMEOUT_HOURS)
    if "moderators" in b:
        f.peer_ids(err, "moderators", b["moderators"], MAX_LISTING_MODERATORS)
    if version == LISTING_V2:
        if not V2_KEYS & set(b):
            f.fail(err, "listing", "a v2 listing uses at least one v2 field (else it is v1)")
        _validate_v2(b, err)
    return b


@dataclass(frozen=True)
class Listing:
    signed: SignedObject

    @property
    def body(self) -> dict[str, Any]:
        return self.signed.body

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def vendor(self) -> str:
        return str(self.body["vendor"])

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def moderators(self) -> list[str] | None:
        """The moderators the vendor accepts for this listing (None: its profile's list)."""
        value = self.body.get("moderators")
        return list(value) if value is not None else None

    @property
    def kind(self) -> str:
        """physical, digital or service (a v1 listing is physical)."""
        return str(self.body.get("type", "physical"))

    @property
    def unlimited(self) -> bool:
        """Digital goods or a service sold without counting stock."""
        return bool(self.body.get("unlimited", False))

    @property
    def photos(self) -> list[dict[str, str]]:
        return list(self.body.get("photos", []))

    @property
    def expires(self) -> int:
        return int(self.body["expires"])

    @property
    def digest(self) -> bytes:
        return self.signed.digest

    def to_wire(self) -> bytes:
        return self.signed.to_wire()

    @classmethod
    def from_signed(cls, so: SignedObject) -> Listing:
        """Check a verified signed object is a well-formed listing by its vendor."""
        if so.type != LISTING_TYPE or so.version not in VERSIONS:
            raise RemoteProtocolError(f"not a listing v{LISTING_VERSION} or v{LISTING_V2}")
        validate_body(so.body, RemoteProtocolError, so.version)
        if so.body["vendor"] != so.signer_peer_id:
            raise RemoteProtocolError("listing is not signed by its vendor")
        if len(so.to_wire()) > MAX_SIGNED_SIZE:
            raise RemoteProtocolError("listing too large")
        return cls(so)

    @classmethod
    def from_wire(cls, data: bytes) -> Listing:
        return cls.from_signed(SignedObject.from_wire(data, LISTING_TYPE))

    @classmethod
    def from_trusted(cls, data: bytes) -> Listing:
        """A listing this node verified when it stored it (see ``SignedObject.from_trusted``)."""
        return cls(SignedObject.from_trusted(data, LISTING_TYPE))

    @classmethod
    def create(cls, identity: Identity, body: dict[str, Any]) -> Listing:
        """Sign a listing body (caller supplies id, seq and times). LocalProtocolError if bad."""
        body = dict(body)
        body["vendor"] = identity.peer_id
        body.setdefault("tags", [])
        body.setdefault("shipping", [])
        body.setdefault("description", "")
        body.setdefault("escrow_timeout_hours", DEFAULT_ESCROW_TIMEOUT_HOURS)
        version = version_for(body)
        validate_body(body, LocalProtocolError, version)
        so = SignedObject.create(identity, LISTING_TYPE, version, body)
        if len(so.to_wire()) > MAX_SIGNED_SIZE:
            raise LocalProtocolError(f"listing encodes to more than {MAX_SIGNED_SIZE} bytes",
                                     field="listing")
        return cls(so)

    def updated(self, identity: Identity, changes: dict[str, Any]) -> Listing:
        """A new version with ``changes`` applied and ``seq`` + 1; an optional field changed
        to None is removed."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise LocalProtocolError(f"{sorted(unknown)[0]}: cannot be changed",
                                     field=sorted(unknown)[0])
        body = dict(self.body)
        for key, value in changes.items():
            if value is None and key in REMOVABLE:
                body.pop(key, None)  # an optional field removed (a v2 one: maybe v1 again)
            else:
                body[key] = value
        body["seq"] = self.seq + 1
        return Listing.create(identity, body)

    def to_json(self) -> dict[str, Any]:
        """The JSON view used by the RPC API (every value JSON-native)."""
        return dict(self.body)
