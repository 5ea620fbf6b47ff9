"""Listings: a vendor's signed offer of one item."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity
from .signed import MAX_SIGNED_SIZE, SignedObject

LISTING_TYPE = "listing"
LISTING_VERSION = 1
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
# Fields a caller may set or change; the rest are managed by the node.
EDITABLE = ("title", "description", "price", "quantity", "tags", "shipping",
            "escrow_timeout_hours", "expires", "moderators")


def validate_body(body: Any, err: f.ErrorClass) -> dict[str, Any]:
    b = f.exact_keys(err, "listing", body, BODY_KEYS, OPTIONAL_KEYS)
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
        if so.type != LISTING_TYPE or so.version != LISTING_VERSION:
            raise RemoteProtocolError(f"not a listing v{LISTING_VERSION}")
        validate_body(so.body, RemoteProtocolError)
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
        validate_body(body, LocalProtocolError)
        so = SignedObject.create(identity, LISTING_TYPE, LISTING_VERSION, body)
        if len(so.to_wire()) > MAX_SIGNED_SIZE:
            raise LocalProtocolError(f"listing encodes to more than {MAX_SIGNED_SIZE} bytes",
                                     field="listing")
        return cls(so)

    def updated(self, identity: Identity, changes: dict[str, Any]) -> Listing:
        """A new version with ``changes`` applied and ``seq`` + 1."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise LocalProtocolError(f"{sorted(unknown)[0]}: cannot be changed",
                                     field=sorted(unknown)[0])
        body = dict(self.body)
        body.update(changes)
        body["seq"] = self.seq + 1
        return Listing.create(identity, body)

    def to_json(self) -> dict[str, Any]:
        """The JSON view used by the RPC API (every value JSON-native)."""
        return dict(self.body)
