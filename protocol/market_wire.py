"""Community markets on the wire: the gossip topic of each market, what its messages carry,
the request protocol that serves a market's history, and the ``market`` letters stewards and
applicants send each other through the mail. Every value from a peer is checked here, size
first, before anything of it is used (the rules of the objects themselves: protocol/markets.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from . import canonical
from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity, public_key_from_peer_id, verify
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
INVITE_DOMAIN = b"torv/market-invite/v1\x00"
INVITE_PREFIX = "torv-invite:"
MAX_INVITE_CODE = 400  # a code is about 334 characters
NONCE_RE = re.compile(r"[0-9a-f]{32}")


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
    - ``{op: "apply", market, note, invite?}``: a vendor asking a market's stewards to admit
      it, with the invitation a steward gave it (``check_invite``).
    """
    if not isinstance(data, dict):
        f.fail(err, "data", "must be a map")
    if data.get("op") == PROPOSAL:
        d = f.exact_keys(err, "data", data, {"op", "item"})
        item_from_value(err, d["item"])
        return d
    if data.get("op") == APPLY:
        d = f.exact_keys(err, "data", data, {"op", "market", "note"}, frozenset({"invite"}))
        f.pattern(err, "data.market", d["market"], HASH_RE, 64, "a market id")
        f.text(err, "data.note", d["note"], MAX_NOTE)
        if "invite" in d:
            check_invite(err, d["invite"], d["market"])
        return d
    f.fail(err, "data.op", f"must be {PROPOSAL} or {APPLY}")
    raise AssertionError  # unreachable: fail raises


# ---------------------------------------------------------------------- invitations
def _invite_input(market: str, by: str, nonce: str) -> bytes:
    return INVITE_DOMAIN + canonical.encode({"market": market, "by": by, "nonce": nonce})


def make_invite(steward: Identity, market: str, nonce: str) -> str:
    """An invitation code: ``market``, the steward, a one-time ``nonce``, signed by the
    steward; text a steward hands out (its node admits the first vendor applying with it)."""
    value = {"market": market, "by": steward.peer_id, "nonce": nonce,
             "sig": steward.sign(_invite_input(market, steward.peer_id, nonce))}
    raw = base64.urlsafe_b64encode(canonical.encode(value)).decode().rstrip("=")
    return INVITE_PREFIX + raw


def read_invite(code: str, market: str) -> dict[str, Any]:
    """An invitation code's value, checked (LocalProtocolError naming what is wrong)."""
    err = LocalProtocolError
    if not isinstance(code, str) or len(code) > MAX_INVITE_CODE or \
            not code.startswith(INVITE_PREFIX):
        f.fail(err, "invite", f"an invitation code starts {INVITE_PREFIX}")
    raw = code[len(INVITE_PREFIX):]
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        value = canonical.decode(data, MAX_INVITE_CODE)
    except (binascii.Error, ValueError, RemoteProtocolError):
        f.fail(err, "invite", "not an invitation code (copy it whole)")
    return check_invite(err, value, market)


def check_invite(err: f.ErrorClass, value: Any, market: str) -> dict[str, Any]:
    """An invitation's value: to ``market``, by a peer whose signature verifies (whether it
    is a steward is the receiver's question)."""
    v = f.exact_keys(err, "invite", value, {"market", "by", "nonce", "sig"})
    if v["market"] != market:
        f.fail(err, "invite", "the invitation is to another market")
    f.peer_id(err, "invite.by", v["by"])
    f.pattern(err, "invite.nonce", v["nonce"], NONCE_RE, 32, "32 hex digits")
    sig = f.raw(err, "invite.sig", v["sig"], 64, 64)
    if not verify(public_key_from_peer_id(v["by"]), _invite_input(market, v["by"], v["nonce"]),
                  sig):
        f.fail(err, "invite", "the invitation's signature does not verify")
    return v
