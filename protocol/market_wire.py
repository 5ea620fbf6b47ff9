"""Community markets on the wire: the gossip topic of each market, what its messages carry,
the request protocol that serves a market's history, and the ``market`` letters stewards and
applicants send each other through the mail. Every value from a peer is checked here, size
first, before anything of it is used (the rules of the objects themselves: protocol/markets.py).
"""

from __future__ import annotations

from typing import Any

from . import canonical
from . import fields as f
from .errors import RemoteProtocolError
from .markets import HASH_RE, Descriptor, LogEntry

MARKETS_PROTOCOL = "/torv/markets/1.0.0"
TOPIC_PREFIX = "torv/market/1/"
MAX_ITEM = 768 * 1024  # a descriptor naming 10,000 members encodes to about 560 KiB
MAX_REQUEST = 256
MAX_RESPONSE = 8 * 1024 * 1024
PAGE = 64  # descriptors or log entries in one answer
MAX_NOTE = 1_000  # an application's note
MAX_APPLICATIONS = 500  # kept per market at a steward's node (the newest)
PROPOSAL, APPLY = "proposal", "apply"


def topic(market_id: str) -> str:
    """The gossip topic of one market: its descriptors and log entries (and nothing else)."""
    return TOPIC_PREFIX + market_id


def encode_item(item: Descriptor | LogEntry) -> bytes:
    key = "descriptor" if isinstance(item, Descriptor) else "entry"
    return canonical.encode({key: item.to_value()})


def decode_item(data: bytes) -> Descriptor | LogEntry:
    """A gossiped descriptor or log entry, well formed (signatures not yet counted)."""
    if not isinstance(data, bytes) or len(data) > MAX_ITEM:
        raise RemoteProtocolError(f"a market message is at most {MAX_ITEM} bytes")
    value = canonical.decode(data, MAX_ITEM)
    return item_from_value(RemoteProtocolError, value)


def item_from_value(err: f.ErrorClass, value: Any) -> Descriptor | LogEntry:
    if not isinstance(value, dict) or len(value) != 1:
        f.fail(err, "item", "must be {descriptor} or {entry}")
    (key, inner), = value.items()
    if key == "descriptor":
        return Descriptor.from_value(inner, err)
    if key == "entry":
        return LogEntry.from_value(inner, err)
    f.fail(err, "item", "must be {descriptor} or {entry}")
    raise AssertionError  # unreachable: fail raises


def check_request(raw: Any) -> dict[str, Any]:
    """``{op: "chain" | "log", market, from}``: descriptors (or log entries) of a market from
    seq ``from`` on, at most ``PAGE`` of them."""
    r = f.exact_keys(RemoteProtocolError, "request", raw, {"op", "market", "from"})
    if r["op"] not in ("chain", "log"):
        f.fail(RemoteProtocolError, "op", "must be chain or log")
    f.pattern(RemoteProtocolError, "market", r["market"], HASH_RE, 64, "a market id")
    f.integer(RemoteProtocolError, "from", r["from"], 1)
    return r


def check_page(raw: Any, op: str) -> list[Descriptor] | list[LogEntry]:
    """An answer to ``check_request``: ``{items: [...]}``, each well formed."""
    r = f.exact_keys(RemoteProtocolError, "answer", raw, {"items"})
    items = r["items"]
    if not isinstance(items, list) or len(items) > PAGE:
        f.fail(RemoteProtocolError, "items", f"must be a list of at most {PAGE}")
    if op == "chain":
        return [Descriptor.from_value(v) for v in items]
    return [LogEntry.from_value(v) for v in items]


def check_letter_data(err: f.ErrorClass, data: Any) -> dict[str, Any]:
    """The data of a ``market`` letter:

    - ``{op: "proposal", item: {descriptor} | {entry}}``: a steward's proposed change of a
      market (a new descriptor or a log entry) with the signatures gathered so far;
    - ``{op: "apply", market, note}``: a vendor asking a market's stewards to admit it.
    """
    if not isinstance(data, dict):
        f.fail(err, "data", "must be a map")
    if data.get("op") == PROPOSAL:
        d = f.exact_keys(err, "data", data, {"op", "item"})
        item_from_value(err, d["item"])
        return d
    if data.get("op") == APPLY:
        d = f.exact_keys(err, "data", data, {"op", "market", "note"})
        f.pattern(err, "data.market", d["market"], HASH_RE, 64, "a market id")
        f.text(err, "data.note", d["note"], MAX_NOTE)
        return d
    f.fail(err, "data.op", f"must be {PROPOSAL} or {APPLY}")
    raise AssertionError  # unreachable: fail raises
