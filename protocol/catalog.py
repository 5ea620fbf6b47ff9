"""The ``/torv/catalog/1.0.0`` request/response protocol, as data.

One request and one response per stream, each a frame: an unsigned LEB128 length followed by
that many bytes of canonical msgpack. Requests:

- ``{"op": "sync"}`` -> ``{"objects": [signed manifest/profile wire bytes]}``: every store
  this peer knows (its own included), for anti-entropy.
- ``{"op": "listings", "vendor": peer_id, "ids": [listing ids]}`` -> ``{"listings": [wire]}``:
  the listings it holds of that vendor (a vendor's own or a cached copy).
- ``{"op": "peers"}`` -> ``{"peers": [{"id": peer_id, "addrs": [multiaddr]}]}``: peer exchange.

A response may instead be ``{"error": "text"}``.
"""

from __future__ import annotations

from typing import Any

from . import canonical
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import is_peer_id
from .listing import LISTING_ID_RE

MAX_REQUEST = 64 * 1024
MAX_RESPONSE = 16 * 1024 * 1024
MAX_IDS = 500
MAX_SYNC_OBJECTS = 2000
MAX_PEERS = 50
OPS = ("sync", "listings", "peers")


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
    if op in ("sync", "peers"):
        if set(req) != {"op"}:
            bad("unexpected fields")
    else:
        if set(req) != {"op", "vendor", "ids"}:
            bad("listings takes vendor and ids")
        if not isinstance(req["vendor"], str) or not is_peer_id(req["vendor"]):
            bad("vendor is not a peer id")
        ids = req["ids"]
        if not isinstance(ids, list) or len(ids) > MAX_IDS:
            bad(f"ids must be a list of at most {MAX_IDS}")
        if not all(isinstance(i, str) and LISTING_ID_RE.match(i) for i in ids):
            bad("ids must be listing ids")
    return dict(req)


def parse_response(op: str, resp: Any) -> list[Any]:
    """The payload list of a response to ``op``; RemoteProtocolError if malformed/an error."""
    if not isinstance(resp, dict):
        raise RemoteProtocolError("catalog response must be a map")
    if "error" in resp:
        raise RemoteProtocolError(f"peer refused: {str(resp['error'])[:200]}")
    field, limit = {"sync": ("objects", MAX_SYNC_OBJECTS), "listings": ("listings", MAX_IDS),
                    "peers": ("peers", MAX_PEERS)}[op]
    items = resp.get(field)
    if set(resp) != {field} or not isinstance(items, list) or len(items) > limit:
        raise RemoteProtocolError(f"catalog response needs a list '{field}' of <= {limit}")
    if op == "peers":
        for p in items:
            if (not isinstance(p, dict) or set(p) != {"id", "addrs"}
                    or not isinstance(p["id"], str) or not isinstance(p["addrs"], list)
                    or not all(isinstance(a, str) for a in p["addrs"][:16])):
                raise RemoteProtocolError("bad peer entry")
    elif not all(isinstance(x, bytes) for x in items):
        raise RemoteProtocolError(f"{field} must be byte strings")
    return list(items)
