"""Which contracts a node takes at all: the cheap look before any signature is checked, and
what a vendor's node demands of an order it has not seen before.

Anyone can deliver an ORDER naming any vendor; the vendor's node keeps one only when it names a
moderator the vendor accepts, embeds the listing as it is now (not an older, cheaper version),
is recent by the vendor's own clock, and its buyer is within its quota of orders the vendor has
not answered. Such unanswered orders (nothing in them signed by this node) are dropped after
``UNANSWERED_TTL``. A moderator takes a contract only from its PAYMENT on (that costs the sender
a real escrow). Pure: the caller passes its clock, its listing and its counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import canonical
from .contract import Contract, ContractError
from .contract_messages import MAX_ORDER_SIZE
from .contract_rules import BUYER, MODERATOR, ORDER, PAYMENT, VENDOR
from .errors import RemoteProtocolError
from .identity import peer_id_from_public_key
from .listing import LISTING_TYPE
from .signed import SignedObject

UNANSWERED_TTL = 7 * 86400  # an order nobody here answered is dropped after a week
ORDER_CLOCK_SKEW = 3600  # an ORDER's time may differ this much from the vendor's clock
MAX_UNANSWERED_PER_BUYER = 10
MAX_UNANSWERED = 1000


@dataclass(frozen=True)
class Parties:
    buyer: str
    vendor: str
    moderator: str

    def role_of(self, peer_id: str) -> str | None:
        return {self.buyer: BUYER, self.vendor: VENDOR, self.moderator: MODERATOR}.get(peer_id)


def peek_parties(order_wire: bytes) -> Parties:
    """Who an ORDER names, read without verifying any signature: the cheap first look a
    receiver takes (is this for us at all?) before it spends real work on a delivery."""
    if not isinstance(order_wire, bytes) or len(order_wire) > MAX_ORDER_SIZE:
        raise RemoteProtocolError("the first message is not an ORDER")
    outer = SignedObject.from_value(canonical.decode(order_wire, max_size=MAX_ORDER_SIZE),
                                    "order", verify_signature=False)
    body = outer.body
    data = body.get("data")
    if body.get("kind") != ORDER or not isinstance(data, dict):
        raise RemoteProtocolError("a contract starts with an ORDER")
    listing_wire, moderator = data.get("listing"), data.get("moderator")
    if not isinstance(listing_wire, bytes) or not isinstance(moderator, str):
        raise RemoteProtocolError("an ORDER names a listing and a moderator")
    listing = SignedObject.from_value(canonical.decode(listing_wire), LISTING_TYPE,
                                      verify_signature=False)
    return Parties(peer_id_from_public_key(outer.signer),
                   peer_id_from_public_key(listing.signer), moderator)


@dataclass(frozen=True)
class VendorView:
    """What the vendor's node knows when a new order arrives."""

    now: int
    listing_seq: int | None  # its current version of the ordered listing (None: not listed)
    accepted_moderators: list[str]
    unanswered_from_buyer: int
    unanswered_total: int


def check_new_contract(contract: Contract, me: str, vendor: VendorView | None) -> None:
    """ContractError unless this node takes a contract it has not seen before. ``vendor`` is
    given when ``me`` is its vendor."""
    role = contract.role_of(me)
    signed_by_me = any(m.sender == me for m in contract.messages)
    if role == MODERATOR and contract.last(PAYMENT) is None:
        raise ContractError("a moderator takes a contract from its PAYMENT on")
    if role != VENDOR or signed_by_me:
        return
    assert vendor is not None
    t = contract.terms
    order = contract.messages[0]
    if t.moderator not in vendor.accepted_moderators:
        raise ContractError(f"this vendor does not accept {t.moderator} as moderator (it "
                            f"accepts {vendor.accepted_moderators or 'none yet'})")
    if vendor.listing_seq is None:
        raise ContractError("the vendor no longer lists this item")
    if t.listing.seq != vendor.listing_seq:
        raise ContractError(f"the ORDER embeds version {t.listing.seq} of the listing; the "
                            f"current one is version {vendor.listing_seq}: order again")
    if abs(order.time - vendor.now) > ORDER_CLOCK_SKEW:
        raise ContractError("the ORDER's time is more than an hour from the vendor's clock")
    if vendor.unanswered_from_buyer >= MAX_UNANSWERED_PER_BUYER:
        raise ContractError(f"this buyer already has {MAX_UNANSWERED_PER_BUYER} orders the "
                            "vendor has not answered")
    if vendor.unanswered_total >= MAX_UNANSWERED:
        raise ContractError("the vendor has too many unanswered orders; try again later")


def unanswered_expired(created: int, now: int) -> bool:
    return now - created > UNANSWERED_TTL
