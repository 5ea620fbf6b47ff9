"""The ``/torv/order/1.0.0`` request/response protocol: delivering order contracts.

Framing as the catalog protocol (one LEB128-framed canonical msgpack request and response per
stream; the requester closes its write side, the responder answers once and closes). Request:

- ``{"op": "deliver", "messages": [wire]}``: the sender's whole copy of one contract, ORDER
  first (at most ``MAX_MESSAGES``). The receiver verifies every message and every link, merges
  the copy with its own (``contract.merge``), stores the result, and only then answers
  ``{"ok": true, "head": bin(32), "state": str}``: the hash of its history's last message and
  its state. Delivering the same copy again changes nothing.

- ``{"op": "ratings", "vendor": peer_id}`` -> ``{"ratings": [proof]}``: the rating proofs
  (``protocol.ratings``) this node holds for that vendor, at most ``MAX_RATINGS``, newest first.

- ``{"op": "recover", "after": order_id | null}`` -> ``{"contracts": [[wire]], "next": order_id
  | null}``: the responder's copies of the contracts that name the requester (the connection
  authenticates it) as buyer, vendor or moderator, in order-id order after ``after``, at most
  ``MAX_RECOVER`` a page and about ``MAX_RECOVER_BYTES``; ``next`` continues. A node restored
  from its words asks the peers it meets, and verifies and merges every copy as a delivery.

A response may instead be ``{"error": str}`` (the copy was refused; nothing was stored).
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import fields as f
from .contract import MAX_MESSAGES
from .contract_messages import MAX_ORDER_SIZE, ORDER_ID_RE
from .contract_rules import STATES
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import is_peer_id

ORDER_PROTOCOL = "/torv/order/1.0.0"
MAX_DELIVERY = MAX_ORDER_SIZE + MAX_MESSAGES * 64 * 1024 + 1024
MAX_ACK = 1024
MAX_RATINGS = 100
MAX_RECOVER = 20
MAX_RECOVER_BYTES = 8 * 1024 * 1024
MAX_RECOVER_RESPONSE = MAX_RECOVER_BYTES + MAX_DELIVERY + 4096


def make_delivery(wires: list[bytes]) -> dict[str, Any]:
    if not wires or len(wires) > MAX_MESSAGES:
        raise LocalProtocolError(f"a delivery holds 1 to {MAX_MESSAGES} messages")
    return {"op": "deliver", "messages": list(wires)}


def parse_request(req: Any) -> tuple[str, Any]:
    """("deliver", [wire]), ("ratings", vendor) or ("recover", after)."""
    if isinstance(req, dict) and req.get("op") == "ratings":
        if set(req) != {"op", "vendor"} or not is_peer_id(req["vendor"]):
            raise RemoteProtocolError("bad order request: ratings takes a vendor peer id")
        return "ratings", str(req["vendor"])
    if isinstance(req, dict) and req.get("op") == "recover":
        if set(req) != {"op", "after"}:
            raise RemoteProtocolError("bad order request: recover takes after")
        after = req["after"]
        if after is not None:
            f.pattern(RemoteProtocolError, "after", after, ORDER_ID_RE, 64, "an order id")
        return "recover", after
    return "deliver", parse_delivery(req)


def make_recover(after: str | None) -> dict[str, Any]:
    return {"op": "recover", "after": after}


def parse_recovered(resp: Any) -> tuple[list[list[bytes]], str | None]:
    if not isinstance(resp, dict) or set(resp) != {"contracts", "next"}:
        raise RemoteProtocolError("a recover response is {contracts, next}")
    items = resp["contracts"]
    if not isinstance(items, list) or len(items) > MAX_RECOVER:
        raise RemoteProtocolError(f"a recover response holds at most {MAX_RECOVER} contracts")
    out = []
    for wires in items:
        if not isinstance(wires, list) or not 1 <= len(wires) <= MAX_MESSAGES or not all(
                isinstance(w, bytes) for w in wires):
            raise RemoteProtocolError(f"a contract is 1 to {MAX_MESSAGES} messages")
        out.append(list(wires))
    nxt = resp["next"]
    if nxt is not None:
        f.pattern(RemoteProtocolError, "next", nxt, ORDER_ID_RE, 64, "an order id")
    return out, nxt


def parse_ratings(resp: Any) -> list[bytes]:
    if not isinstance(resp, dict) or set(resp) != {"ratings"}:
        raise RemoteProtocolError("ratings response must be {ratings}")
    items = resp["ratings"]
    if not isinstance(items, list) or len(items) > MAX_RATINGS or not all(
            isinstance(x, bytes) for x in items):
        raise RemoteProtocolError(f"ratings must be a list of at most {MAX_RATINGS} proofs")
    return list(items)


def parse_delivery(req: Any) -> list[bytes]:
    if not isinstance(req, dict) or set(req) != {"op", "messages"} or req["op"] != "deliver":
        raise RemoteProtocolError("bad order request: need {op: deliver, messages}")
    msgs = req["messages"]
    if not isinstance(msgs, list) or not 1 <= len(msgs) <= MAX_MESSAGES:
        raise RemoteProtocolError(f"bad order request: 1 to {MAX_MESSAGES} messages")
    if not all(isinstance(m, bytes) for m in msgs):
        raise RemoteProtocolError("bad order request: messages must be byte strings")
    return list(msgs)


def parse_ack(resp: Any) -> tuple[bytes, str]:
    """(head, state) of an acknowledgement; RemoteProtocolError if refused or malformed."""
    if not isinstance(resp, dict):
        raise RemoteProtocolError("order response must be a map")
    if "error" in resp:
        raise RemoteProtocolError(f"peer refused the contract: {str(resp['error'])[:200]}")
    if set(resp) != {"ok", "head", "state"} or resp["ok"] is not True:
        raise RemoteProtocolError("order response needs ok, head and state")
    head = f.raw(RemoteProtocolError, "head", resp["head"], 32, 32)
    if resp["state"] not in STATES:
        raise RemoteProtocolError("order response state is not a contract state")
    return head, str(resp["state"])


def order_letter_id(order_id: str, head: bytes, recipient: str) -> str:
    """The id of the letter carrying a contract up to ``head`` to ``recipient`` (so the same
    copy is queued once, and the recipient can name it in a read receipt)."""
    return hashlib.sha256(b"torv-order-letter\0" + order_id.encode() + head +
                          recipient.encode()).hexdigest()[:32]
