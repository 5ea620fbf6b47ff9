"""Ratings: a buyer's COMPLETION, proven to belong to a real sale of the vendor it rates.

A rating travels as its proof, the canonical list ``[ORDER, ORDER_CONFIRMATION, COMPLETION]``
of one contract's signed messages: the order id is the ORDER's hash, the vendor signed the
confirmation of that id, and the buyer who signed the ORDER signed the completion with its
rating. Anyone can check it; nobody can make one without a confirmed sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import canonical
from .contract import Contract, start
from .contract_messages import MAX_ORDER_SIZE, OrderMessage
from .contract_rules import COMPLETION, ORDER_CONFIRMATION
from .errors import RemoteProtocolError
from .signed import MAX_SIGNED_SIZE

MAX_PROOF = MAX_ORDER_SIZE + 2 * MAX_SIGNED_SIZE + 64


@dataclass(frozen=True)
class Rating:
    order_id: str
    vendor: str
    buyer: str
    listing_id: str
    rating: int
    review: str
    time: int
    proof: bytes

    def to_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "vendor": self.vendor, "buyer": self.buyer,
                "listing_id": self.listing_id, "rating": self.rating, "review": self.review,
                "time": self.time}


def proof_of(contract: Contract) -> bytes:
    msgs = [contract.messages[0], contract.last(ORDER_CONFIRMATION), contract.last(COMPLETION)]
    if any(m is None for m in msgs):
        raise RemoteProtocolError("only a completed order can be rated")
    return canonical.encode([m.wire for m in msgs if m is not None])


def verify(proof: bytes) -> Rating:
    """Check a rating's proof (RemoteProtocolError if it proves nothing)."""
    raw = canonical.decode(proof, max_size=MAX_PROOF)
    if not isinstance(raw, list) or len(raw) != 3 or not all(isinstance(w, bytes) for w in raw):
        raise RemoteProtocolError("a rating proof is [ORDER, ORDER_CONFIRMATION, COMPLETION]")
    contract = start(OrderMessage.from_wire(raw[0]))
    conf, done = OrderMessage.from_wire(raw[1]), OrderMessage.from_wire(raw[2])
    t = contract.terms
    if conf.kind != ORDER_CONFIRMATION or conf.order_id != t.order_id or conf.sender != t.vendor:
        raise RemoteProtocolError("the rating's confirmation is not the vendor's for this order")
    if done.kind != COMPLETION or done.order_id != t.order_id or done.sender != t.buyer:
        raise RemoteProtocolError("the rating's completion is not the buyer's for this order")
    d = done.data
    return Rating(t.order_id, t.vendor, t.buyer, t.listing.id, d["rating"], d["review"],
                  done.time, proof)
