"""A vendor's profile, and its store: a manifest of pages of listing entries.

A store is signed in two levels so that it can hold tens of thousands of listings and one
change costs the same whatever its size. A page holds the entries ``id -> {seq, hash}`` of the
listings whose id starts with its key (0 to 4 hex characters; at most ``MAX_PAGE_LISTINGS``
entries); the manifest maps each page key to the sha256 of the page's encoded form, and its
keys are prefix-free, so every listing id belongs to at most one page. A small store is one
page (key ""); a vendor splits a page into its 16 children when it outgrows the limit. A
change re-signs one page and the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity
from .listing import LISTING_ID_RE, MARKET_ID_RE
from .signed import MAX_SIGNED_SIZE, SignedObject

PROFILE_TYPE = "profile"
MANIFEST_TYPE = "manifest"
PAGE_TYPE = "page"
VERSIONS = {PROFILE_TYPE: 1, MANIFEST_TYPE: 2, PAGE_TYPE: 1}
# manifest v3 is v2 naming the community markets the store's listings name (``markets``): a
# store that names none is still signed as v2, so nodes that know only v2 keep reading it
MANIFEST_V3 = 3
ACCEPTED_VERSIONS = {PROFILE_TYPE: (1,), MANIFEST_TYPE: (2, MANIFEST_V3), PAGE_TYPE: (1,)}
MAX_STORE_MARKETS = 64
MAX_NAME = 64
MAX_ABOUT = 2000
MAX_PAGE_LISTINGS = 500
MAX_PAGES = 1024
MAX_PAGE_KEY = 4
PAGE_KEY_RE = re.compile(r"[0-9a-f]{0,4}")
MAX_PROFILE_ADDRS = 8
MAX_ADDR_LEN = 256
MAX_MODERATOR_DESCRIPTION = 500
MAX_MODERATOR_FEE_BP = 2500
XPUB_RE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{100,120}")
NETWORK_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
MODERATOR_KEYS = {"fee_bp", "fee_fixed", "description", "xpub", "network"}
MAX_ACCEPTED_MODERATORS = 20
MAX_MAILBOXES = 3


def _check_moderator(err: f.ErrorClass, value: Any) -> None:
    m = f.exact_keys(err, "moderator", value, MODERATOR_KEYS)
    f.integer(err, "moderator.fee_bp", m["fee_bp"], 0, MAX_MODERATOR_FEE_BP)
    f.integer(err, "moderator.fee_fixed", m["fee_fixed"], 0)
    f.text(err, "moderator.description", m["description"], MAX_MODERATOR_DESCRIPTION)
    f.pattern(err, "moderator.xpub", m["xpub"], XPUB_RE, 120, "an extended public key")
    f.pattern(err, "moderator.network", m["network"], NETWORK_RE, 32, "a network name")


def _check_profile(body: Any, err: f.ErrorClass, version: int = 1) -> dict[str, Any]:
    b = f.exact_keys(err, "profile", body, {"vendor", "seq", "name", "about"},
                     optional=frozenset({"moderator", "addrs", "moderators", "mailboxes"}))
    f.peer_id(err, "vendor", b["vendor"])
    f.integer(err, "seq", b["seq"], 1)
    f.text(err, "name", b["name"], MAX_NAME)
    f.text(err, "about", b["about"], MAX_ABOUT)
    if "moderator" in b:
        _check_moderator(err, b["moderator"])
    if "moderators" in b:
        f.peer_ids(err, "moderators", b["moderators"], MAX_ACCEPTED_MODERATORS)
    if "mailboxes" in b:
        f.peer_ids(err, "mailboxes", b["mailboxes"], MAX_MAILBOXES)
    if "addrs" in b:
        addrs = b["addrs"]
        if not isinstance(addrs, list) or len(addrs) > MAX_PROFILE_ADDRS:
            f.fail(err, "addrs", f"must be a list of at most {MAX_PROFILE_ADDRS} multiaddrs")
        for i, addr in enumerate(addrs):
            f.text(err, f"addrs[{i}]", addr, MAX_ADDR_LEN, 1)
    return b


def page_for(listing_id: str, keys: Iterable[str]) -> str | None:
    """The key among ``keys`` (prefix-free) that a listing id starts with, if any."""
    held = set(keys)
    for n in range(MAX_PAGE_KEY + 1):
        if listing_id[:n] in held:
            return listing_id[:n]
    return None


def new_page_key(listing_id: str, keys: Iterable[str]) -> str:
    """The key of a new page for a listing no page holds: its shortest prefix that overlaps no
    existing page."""
    held = list(keys)
    for n in range(MAX_PAGE_KEY + 1):
        prefix = listing_id[:n]
        if not any(k.startswith(prefix) for k in held):
            return prefix
    raise LocalProtocolError("the store has no room for this listing id", field="id")


def _prefix_free(keys: Iterable[str]) -> bool:
    ordered = sorted(keys)
    return all(not b.startswith(a) for a, b in zip(ordered, ordered[1:], strict=False))


def _check_manifest(body: Any, err: f.ErrorClass, version: int = 2) -> dict[str, Any]:
    if version == MANIFEST_V3:
        b = f.exact_keys(err, "manifest", body, {"vendor", "seq", "pages", "markets"})
        ids = b["markets"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_STORE_MARKETS:
            f.fail(err, "markets", f"must list 1 to {MAX_STORE_MARKETS} market ids")
        for i, mid in enumerate(ids):
            f.pattern(err, f"markets[{i}]", mid, MARKET_ID_RE, 64, "a market id (64 hex)")
        if ids != sorted(set(ids)):
            f.fail(err, "markets", "must be sorted, each market once")
    else:
        b = f.exact_keys(err, "manifest", body, {"vendor", "seq", "pages"})
    f.peer_id(err, "vendor", b["vendor"])
    f.integer(err, "seq", b["seq"], 1)
    pages = b["pages"]
    if not isinstance(pages, dict) or len(pages) > MAX_PAGES:
        f.fail(err, "pages", f"must map at most {MAX_PAGES} page keys")
    for key, digest in pages.items():
        f.pattern(err, "pages", key, PAGE_KEY_RE, MAX_PAGE_KEY,
                  "keyed by 0 to 4 lower-case hex characters")
        f.raw(err, f"pages.{key}", digest, 32, 32)
    if not _prefix_free(pages):
        f.fail(err, "pages", "no page key may be the prefix of another")
    return b


def _check_page(body: Any, err: f.ErrorClass, version: int = 1) -> dict[str, Any]:
    b = f.exact_keys(err, "page", body, {"vendor", "page", "listings"})
    f.peer_id(err, "vendor", b["vendor"])
    key = f.pattern(err, "page", b["page"], PAGE_KEY_RE, MAX_PAGE_KEY,
                    "0 to 4 lower-case hex characters")
    entries = b["listings"]
    if not isinstance(entries, dict) or not 1 <= len(entries) <= MAX_PAGE_LISTINGS:
        f.fail(err, "listings", f"must map 1 to {MAX_PAGE_LISTINGS} listing ids")
    for lid, entry in entries.items():
        f.pattern(err, "listings", lid, LISTING_ID_RE, 32, "keyed by listing ids")
        if not lid.startswith(key):
            f.fail(err, "listings", f"listing {lid} does not belong in page {key!r}")
        e = f.exact_keys(err, f"listings.{lid}", entry, {"seq", "hash"})
        f.integer(err, f"listings.{lid}.seq", e["seq"], 1)
        f.raw(err, f"listings.{lid}.hash", e["hash"], 32, 32)
    return b


_CHECKS = {PROFILE_TYPE: _check_profile, MANIFEST_TYPE: _check_manifest, PAGE_TYPE: _check_page}


@dataclass(frozen=True)
class StoreObject:
    """A verified profile or manifest."""

    signed: SignedObject

    @property
    def kind(self) -> str:
        return self.signed.type

    @property
    def vendor(self) -> str:
        return str(self.signed.body["vendor"])

    @property
    def seq(self) -> int:
        """A profile's or manifest's sequence number (a page has none: 0)."""
        return int(self.signed.body.get("seq", 0))

    @property
    def digest(self) -> bytes:
        return self.signed.digest

    @property
    def body(self) -> dict[str, Any]:
        return self.signed.body

    def to_wire(self) -> bytes:
        return self.signed.to_wire()

    @classmethod
    def from_signed(cls, so: SignedObject, kind: str | None = None) -> StoreObject:
        check = _CHECKS.get(so.type)
        if check is None or so.version not in ACCEPTED_VERSIONS[so.type] or (
                kind is not None and so.type != kind):
            raise RemoteProtocolError(f"unexpected object {so.type} v{so.version}")
        check(so.body, RemoteProtocolError, so.version)
        if so.body["vendor"] != so.signer_peer_id:
            raise RemoteProtocolError(f"{so.type} is not signed by its vendor")
        return cls(so)

    @classmethod
    def from_wire(cls, data: bytes, kind: str | None = None) -> StoreObject:
        return cls.from_signed(SignedObject.from_wire(data, kind), kind)

    @classmethod
    def from_trusted(cls, data: bytes, kind: str) -> StoreObject:
        """An object this node verified when it stored it (see ``SignedObject.from_trusted``)."""
        return cls(SignedObject.from_trusted(data, kind))

    @classmethod
    def from_trusted_any(cls, data: bytes) -> StoreObject:
        so = SignedObject.from_trusted(data)
        if so.type not in _CHECKS:
            raise RemoteProtocolError(f"not a profile or manifest: {so.type}")
        return cls(so)

    @classmethod
    def _create(cls, identity: Identity, kind: str, body: dict[str, Any]) -> StoreObject:
        body = {**body, "vendor": identity.peer_id}
        version = MANIFEST_V3 if kind == MANIFEST_TYPE and "markets" in body else VERSIONS[kind]
        _CHECKS[kind](body, LocalProtocolError, version)
        so = SignedObject.create(identity, kind, version, body)
        if len(so.to_wire()) > MAX_SIGNED_SIZE:
            raise LocalProtocolError(f"{kind} too large", field=kind)
        return cls(so)

    @classmethod
    def profile(cls, identity: Identity, seq: int, name: str, about: str,
                moderator: dict[str, Any] | None = None,
                addrs: list[str] | None = None,
                moderators: list[str] | None = None,
                mailboxes: list[str] | None = None) -> StoreObject:
        body: dict[str, Any] = {"seq": seq, "name": name, "about": about}
        if moderator is not None:
            body["moderator"] = moderator
        if addrs:
            body["addrs"] = addrs
        if moderators:
            body["moderators"] = moderators
        if mailboxes:
            body["mailboxes"] = mailboxes
        return cls._create(identity, PROFILE_TYPE, body)

    @property
    def moderator(self) -> dict[str, Any] | None:
        """A profile's moderator terms, or None when its node does not moderate."""
        value = self.body.get("moderator") if self.kind == PROFILE_TYPE else None
        return dict(value) if value is not None else None

    @property
    def mailboxes(self) -> list[str]:
        """The peers a node named to hold its mail."""
        return list(self.body.get("mailboxes", [])) if self.kind == PROFILE_TYPE else []

    @property
    def accepted_moderators(self) -> list[str]:
        """The moderators a vendor's profile accepts for its orders."""
        return list(self.body.get("moderators", [])) if self.kind == PROFILE_TYPE else []

    @classmethod
    def manifest(cls, identity: Identity, seq: int, pages: dict[str, bytes],
                 markets: Iterable[str] = ()) -> StoreObject:
        """A manifest naming ``pages`` (page key -> sha256 of the page's encoded form) and the
        community ``markets`` its listings name (v3; none: v2)."""
        body: dict[str, Any] = {"seq": seq, "pages": dict(pages)}
        named = sorted(set(markets))
        if named:
            body["markets"] = named
        return cls._create(identity, MANIFEST_TYPE, body)

    @property
    def markets(self) -> list[str]:
        """The community markets a manifest says its store's listings name."""
        return list(self.body.get("markets", [])) if self.kind == MANIFEST_TYPE else []

    @classmethod
    def page(cls, identity: Identity, key: str,
             listings: dict[str, tuple[int, bytes]]) -> StoreObject:
        entries = {lid: {"seq": s, "hash": h} for lid, (s, h) in listings.items()}
        return cls._create(identity, PAGE_TYPE, {"page": key, "listings": entries})

    def manifest_pages(self) -> dict[str, bytes]:
        if self.kind != MANIFEST_TYPE:
            raise LocalProtocolError("not a manifest")
        return {k: bytes(v) for k, v in self.body["pages"].items()}

    @property
    def page_name(self) -> str:
        if self.kind != PAGE_TYPE:
            raise LocalProtocolError("not a page")
        return str(self.body["page"])

    def page_entries(self) -> dict[str, tuple[int, bytes]]:
        if self.kind != PAGE_TYPE:
            raise LocalProtocolError("not a page")
        return {k: (int(v["seq"]), bytes(v["hash"])) for k, v in self.body["listings"].items()}


# How Torv cuts its own store: pages of at most 64 entries, so that re-signing one after a
# change stays cheap (receivers accept any valid cut, up to MAX_PAGE_LISTINGS a page).
PAGE_TARGET = 64


def partition(entries: dict[str, tuple[int, bytes]], key: str = "",
              limit: int = PAGE_TARGET) -> dict[str, dict[str, tuple[int, bytes]]]:
    """Split ``entries`` (all starting with ``key``) into pages of at most ``limit``: one page
    if they fit, else the 16 children of ``key``, recursively (empty pages left out)."""
    if len(entries) <= limit or len(key) >= MAX_PAGE_KEY:
        return {key: entries} if entries else {}
    out: dict[str, dict[str, tuple[int, bytes]]] = {}
    for digit in "0123456789abcdef":
        child = key + digit
        out.update(partition({k: v for k, v in entries.items() if k.startswith(child)}, child,
                             limit))
    return out


def build_store(identity: Identity, seq: int, entries: dict[str, tuple[int, bytes]],
                markets: Iterable[str] = ()) -> tuple[StoreObject, list[StoreObject]]:
    """A whole store at once: the pages of ``entries`` (listing id -> (seq, hash)) and the
    manifest naming them (and the community ``markets`` the listings name)."""
    pages = [StoreObject.page(identity, key, listings)
             for key, listings in sorted(partition(entries).items())]
    manifest = StoreObject.manifest(identity, seq, {p.page_name: p.digest for p in pages},
                                    markets)
    return manifest, pages
