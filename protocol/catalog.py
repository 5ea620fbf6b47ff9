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

A response may instead be ``{"error": "text"}``.
"""

from __future__ import annotations

from typing import Any

from . import canonical
from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import is_peer_id
from .listing import LISTING_ID_RE
from .store import MAX_PAGES, PAGE_KEY_RE

MAX_REQUEST = 64 * 1024
MAX_RESPONSE = 16 * 1024 * 1024
MAX_IDS = 500
MAX_SYNC_OBJECTS = 2000
SYNC_PAGE_BYTES = 8 * 1024 * 1024  # leaves room for framing under MAX_RESPONSE
MAX_PEERS = 50
MAX_PEER_ADDRS = 8
MAX_ADDR_LEN = 256
OPS = ("sync", "listings", "pages", "peers")


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
    if op == "peers":
        if set(req) != {"op"}:
            bad("unexpected fields")
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
        if not all(isinstance(k, str) and len(k) == 2 and PAGE_KEY_RE.fullmatch(k)
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


def parse_response(op: str, resp: Any) -> list[Any]:
    """The payload list of a response to ``op``; RemoteProtocolError if malformed/an error."""
    if not isinstance(resp, dict):
        raise RemoteProtocolError("catalog response must be a map")
    if "error" in resp:
        raise RemoteProtocolError(f"peer refused: {str(resp['error'])[:200]}")
    field, limit = {"sync": ("objects", MAX_SYNC_OBJECTS), "listings": ("listings", MAX_IDS),
                    "pages": ("pages", MAX_PAGES), "peers": ("peers", MAX_PEERS)}[op]
    expected = {field, "next"} if op == "sync" else {field}
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
    elif not all(isinstance(x, bytes) for x in items):
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
