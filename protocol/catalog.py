"""The ``/torv/catalog/1.0.0`` request/response protocol, as data.

One request and one response per stream, each a frame: an unsigned LEB128 length (minimal)
followed by that many bytes of canonical msgpack. The requester writes its request and closes
its write side; the responder writes one response and closes the stream. Requests:

- ``{"op": "sync", "after"?: peer_id}`` -> ``{"objects": [wire], "next": peer_id | nil}``: the
  signed manifests and profiles this peer knows (its own included), ordered by vendor, starting
  after the vendor ``after``. A page never splits a vendor, holds at most ``MAX_SYNC_OBJECTS``
  objects and ``SYNC_PAGE_BYTES`` bytes of them; ``next`` is the ``after`` of the next page.
- ``{"op": "pages", "vendor": peer_id, "keys": [page keys]}`` -> ``{"pages": [wire]}``: the
  pages of that vendor's store it holds (those its current manifest names).
- ``{"op": "listings", "vendor": peer_id, "ids": [listing ids]}`` -> ``{"listings": [wire]}``:
  the unexpired listings it holds of that vendor (a vendor's own or a cached copy).
- ``{"op": "peers"}`` -> ``{"peers": [{"id": peer_id, "addrs": [multiaddr]}]}``: peer exchange.
- ``{"op": "digest"}`` -> ``{"count": int, "buckets": [bin(8) x 16]}``: a summary of every store
  it knows, in 16 buckets (``store_bucket``); two nodes that agree exchange just this.
- ``{"op": "summary", "bucket": 0..15, "after"?: peer_id}`` -> ``{"stores": [[vendor,
  manifest seq, manifest hash | nil, profile seq, profile hash | nil]], "next": peer_id | nil}``:
  the stores of one bucket, ordered by vendor, at most ``MAX_SUMMARY`` a page.
- ``{"op": "stores", "vendors": [peer_id]}`` -> ``{"objects": [wire]}``: the manifests and
  profiles it holds of those vendors (at most ``MAX_STORE_VENDORS``).
- ``{"op": "photo", "hash": hex sha256}`` -> ``{"photo": bytes}``: a listing photo or
  thumbnail it holds, by the sha256 of its bytes (``protocol.photos``); the requester checks
  the bytes against the hash. A peer that does not hold it answers an error.

A response may instead be ``{"error": "text"}``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import canonical
from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import is_peer_id
from .listing import LISTING_ID_RE
from .photos import PHOTO_HASH_RE, check_photo
from .store import MAX_PAGE_KEY, MAX_PAGES, PAGE_KEY_RE

MAX_REQUEST = 64 * 1024
MAX_RESPONSE = 16 * 1024 * 1024
MAX_IDS = 500
MAX_SYNC_OBJECTS = 2000
SYNC_PAGE_BYTES = 8 * 1024 * 1024  # leaves room for framing under MAX_RESPONSE
MAX_PEERS = 50
MAX_PEER_ADDRS = 8
MAX_ADDR_LEN = 256
MAX_SUMMARY = 2000
MAX_STORE_VENDORS = 100
BUCKETS = 16
OPS = ("sync", "listings", "pages", "peers", "digest", "summary", "stores", "photo")

# (vendor, manifest seq, manifest hash or None, profile seq, profile hash or None)
StoreSummary = tuple[str, int, bytes | None, int, bytes | None]


def store_bucket(vendor: str) -> int:
    """Which of the 16 digest buckets a vendor's store falls in: the top four bits of
    sha256(vendor peer id)."""
    return hashlib.sha256(vendor.encode()).digest()[0] >> 4


def bucket_digests(stores: list[StoreSummary]) -> list[bytes]:
    """The 16 bucket digests of ``stores``: for each bucket, the first 8 bytes of sha256 over
    its stores ordered by vendor, each as vendor || manifest hash || profile hash (32 zero
    bytes for a missing one); 8 zero bytes for an empty bucket."""
    groups: list[list[StoreSummary]] = [[] for _ in range(BUCKETS)]
    for entry in stores:
        groups[store_bucket(entry[0])].append(entry)
    out = []
    for group in groups:
        if not group:
            out.append(b"\x00" * 8)
            continue
        h = hashlib.sha256()
        for vendor, _, mhash, _, phash in sorted(group):
            h.update(vendor.encode() + (mhash or b"\x00" * 32) + (phash or b"\x00" * 32))
        out.append(h.digest()[:8])
    return out


def encode_varint(n: int) -> bytes:
    if n < 0:
        raise LocalProtocolError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint_prefix(buf: bytes, max_value: int) -> tuple[int, int] | None:
    """(value, header length) if ``buf`` starts with a full varint; None if more is needed."""
    value = shift = 0
    for i, byte in enumerate(buf[:10]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value > max_value:
                raise RemoteProtocolError(f"frame of {value} bytes exceeds {max_value}")
            if i > 0 and byte == 0:
                raise RemoteProtocolError("non-minimal varint")
            return value, i + 1
        shift += 7
    if len(buf) >= 10:
        raise RemoteProtocolError("varint too long")
    return None


def frame(message: dict[str, Any]) -> bytes:
    payload = canonical.encode(message)
    return encode_varint(len(payload)) + payload


def make_request(op: str, **params: Any) -> dict[str, Any]:
    req = {"op": op, **params}
    parse_request(req, LocalProtocolError)
    return req


def parse_request(
    req: Any, err: type[RemoteProtocolError] | type[LocalProtocolError] = RemoteProtocolError
) -> dict[str, Any]:
    def bad(msg: str) -> None:
        raise err(f"bad catalog request: {msg}")

    if not isinstance(req, dict) or req.get("op") not in OPS:
        bad("unknown op")
    op = req["op"]
    if op in ("peers", "digest"):
        if set(req) != {"op"}:
            bad("unexpected fields")
    elif op == "summary":
        if not {"op", "bucket"} <= set(req) <= {"op", "bucket", "after"}:
            bad("summary takes bucket and after")
        if not isinstance(req["bucket"], int) or isinstance(req["bucket"], bool) or not (
                0 <= req["bucket"] < BUCKETS):
            bad(f"bucket must be 0..{BUCKETS - 1}")
        if "after" in req and not is_peer_id(req["after"]):
            bad("after is not a peer id")
    elif op == "photo":
        if set(req) != {"op", "hash"}:
            bad("photo takes hash")
        if not isinstance(req["hash"], str) or not PHOTO_HASH_RE.fullmatch(req["hash"]):
            bad("hash must be 64 lower-case hex characters")
    elif op == "stores":
        if set(req) != {"op", "vendors"}:
            bad("stores takes vendors")
        vendors = req["vendors"]
        if not isinstance(vendors, list) or len(vendors) > MAX_STORE_VENDORS or not all(
                is_peer_id(v) for v in vendors):
            bad(f"vendors must be at most {MAX_STORE_VENDORS} peer ids")
    elif op == "sync":
        if not set(req) <= {"op", "after"}:
            bad("sync takes only after")
        if "after" in req and not is_peer_id(req["after"]):
            bad("after is not a peer id")
    elif op == "pages":
        if set(req) != {"op", "vendor", "keys"}:
            bad("pages takes vendor and keys")
        if not is_peer_id(req["vendor"]):
            bad("vendor is not a peer id")
        keys = req["keys"]
        if not isinstance(keys, list) or len(keys) > MAX_PAGES:
            bad(f"keys must be a list of at most {MAX_PAGES}")
        if not all(isinstance(k, str) and len(k) <= MAX_PAGE_KEY and PAGE_KEY_RE.fullmatch(k)
                   for k in keys):
            bad("keys must be page keys")
    else:
        if set(req) != {"op", "vendor", "ids"}:
            bad("listings takes vendor and ids")
        if not is_peer_id(req["vendor"]):
            bad("vendor is not a peer id")
        ids = req["ids"]
        if not isinstance(ids, list) or len(ids) > MAX_IDS:
            bad(f"ids must be a list of at most {MAX_IDS}")
        if not all(isinstance(i, str) and len(i) == 32 and LISTING_ID_RE.fullmatch(i)
                   for i in ids):
            bad("ids must be listing ids")
    return dict(req)


def sync_page(objects: list[tuple[str, bytes]], more: bool = False) -> dict[str, Any]:
    """A ``sync`` response from (vendor, wire) pairs ordered by vendor, whole vendors only.

    Takes vendors until the next one would break a limit; ``next`` is set when objects were
    left for a later page, or when ``more`` says the caller holds more than it passed.
    """
    out: list[bytes] = []
    size = 0
    i = 0
    while i < len(objects):
        vendor = objects[i][0]
        j = i
        while j < len(objects) and objects[j][0] == vendor:
            j += 1
        group = [w for _, w in objects[i:j]]
        group_size = sum(len(w) for w in group)
        if out and (len(out) + len(group) > MAX_SYNC_OBJECTS
                    or size + group_size > SYNC_PAGE_BYTES):
            return {"objects": out, "next": objects[i - 1][0]}
        out.extend(group)
        size += group_size
        i = j
    return {"objects": out, "next": objects[-1][0] if more and objects else None}


def parse_digest(resp: Any) -> list[bytes]:
    if not isinstance(resp, dict):
        raise RemoteProtocolError("catalog response must be a map")
    if "error" in resp:
        raise RemoteProtocolError(f"peer refused: {str(resp['error'])[:200]}")
    buckets = resp.get("buckets")
    if set(resp) != {"count", "buckets"} or not isinstance(resp["count"], int) or not (
            isinstance(buckets, list) and len(buckets) == BUCKETS
            and all(isinstance(b, bytes) and len(b) == 8 for b in buckets)):
        raise RemoteProtocolError(f"a digest is {{count, buckets: {BUCKETS} x bin(8)}}")
    return list(buckets)


def parse_summary(bucket: int, resp: Any) -> tuple[list[StoreSummary], str | None]:
    entries = parse_response("summary", resp)
    out: list[StoreSummary] = []
    for e in entries:
        if not isinstance(e, list) or len(e) != 5:
            raise RemoteProtocolError("a summary entry is [vendor, mseq, mhash, pseq, phash]")
        vendor, mseq, mhash, pseq, phash = e
        f.peer_id(RemoteProtocolError, "summary.vendor", vendor)
        if store_bucket(vendor) != bucket:
            raise RemoteProtocolError("a summary entry from another bucket")
        for seq in (mseq, pseq):
            f.integer(RemoteProtocolError, "summary.seq", seq)
        for h in (mhash, phash):
            if h is not None:
                f.raw(RemoteProtocolError, "summary.hash", h, 32, 32)
        out.append((vendor, mseq, mhash, pseq, phash))
    return out, next_cursor(resp)


def parse_photo(expected: str, thumb: bool, resp: Any) -> bytes:
    """The bytes of a ``photo`` response, checked against the hash asked for."""
    if not isinstance(resp, dict):
        raise RemoteProtocolError("catalog response must be a map")
    if "error" in resp:
        raise RemoteProtocolError(f"peer refused: {str(resp['error'])[:200]}")
    if set(resp) != {"photo"}:
        raise RemoteProtocolError("a photo response is {photo}")
    return check_photo(expected, resp["photo"], thumb)


def parse_response(op: str, resp: Any) -> list[Any]:
    """The payload list of a response to ``op``; RemoteProtocolError if malformed/an error."""
    if not isinstance(resp, dict):
        raise RemoteProtocolError("catalog response must be a map")
    if "error" in resp:
        raise RemoteProtocolError(f"peer refused: {str(resp['error'])[:200]}")
    field, limit = {"sync": ("objects", MAX_SYNC_OBJECTS), "listings": ("listings", MAX_IDS),
                    "pages": ("pages", MAX_PAGES), "peers": ("peers", MAX_PEERS),
                    "summary": ("stores", MAX_SUMMARY),
                    "stores": ("objects", 2 * MAX_STORE_VENDORS)}[op]
    expected = {field, "next"} if op in ("sync", "summary") else {field}
    items = resp.get(field)
    if set(resp) != expected or not isinstance(items, list) or len(items) > limit:
        raise RemoteProtocolError(f"catalog response needs a list '{field}' of <= {limit}")
    if op == "peers":
        for p in items:
            if not isinstance(p, dict) or set(p) != {"id", "addrs"}:
                raise RemoteProtocolError("bad peer entry")
            f.peer_id(RemoteProtocolError, "peers.id", p["id"])
            addrs = p["addrs"]
            if not isinstance(addrs, list) or len(addrs) > MAX_PEER_ADDRS:
                raise RemoteProtocolError(f"a peer entry holds at most {MAX_PEER_ADDRS} addrs")
            for a in addrs:
                f.text(RemoteProtocolError, "peers.addrs", a, MAX_ADDR_LEN, 1)
    elif op != "summary" and not all(isinstance(x, bytes) for x in items):
        raise RemoteProtocolError(f"{field} must be byte strings")
    return list(items)


def next_cursor(resp: dict[str, Any]) -> str | None:
    """The ``next`` of a parsed ``sync`` response (None: the last page)."""
    cursor = resp.get("next")
    if cursor is None:
        return None
    if not is_peer_id(cursor):
        raise RemoteProtocolError("sync next must be a peer id or nil")
    return str(cursor)
