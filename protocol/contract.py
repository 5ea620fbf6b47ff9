"""An order contract: an append-only chain of signed messages, each carrying the hash of the
one before it, so every party holds the same verifiable history.

``start`` checks an ORDER, ``apply`` adds one message or raises a precise ``ContractError``,
``from_history`` verifies a whole chain, ``merge`` reconciles two copies (the fork rule of
``contract_rules``), ``next_actions`` lists what a party may send now. Pure functions over
immutable values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from embit import bip32

from . import contract_rules as r
from . import ratings, settlement
from .contract_messages import OrderMessage
from .contract_rules import (
    BUYER,
    COMPLETION,
    FORK_RANK,
    MODERATOR,
    ORDER,
    ORDER_CONFIRMATION,
    PAYMENT,
    SENDER_RANK,
    VENDOR,
    allowed,
    price_order,
    transition,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .escrow import EscrowTerms, moderator_pubkey
from .listing import Listing
from .networks import get_network
from .releases import txid_of
from .store import PROFILE_TYPE, StoreObject

MAX_MESSAGES = 32


class ContractError(RemoteProtocolError):
    """A message cannot join the contract: the reason says exactly why."""


@dataclass(frozen=True)
class Terms:
    """What the ORDER fixed, checked when the contract started."""

    order_id: str
    buyer: str
    vendor: str
    moderator: str
    listing: Listing
    quantity: int
    shipping_region: str
    shipping_price: int
    currency: str
    amount_due: int
    network: str
    moderator_terms: dict[str, Any]
    moderator_index: int
    buyer_key: bytes
    refund_address: str
    sealed_address: bytes
    coupon: str | None = None  # the code the buyer entered (listing v2 coupons)
    discount: int = 0
    sku: tuple[str, ...] | None = None  # the variant ordered (listing v2 options)
    rate: dict[str, Any] | None = None  # the exchange rate of a listing priced in local money


@dataclass(frozen=True)
class Contract:
    terms: Terms
    messages: tuple[OrderMessage, ...]
    state: str

    @property
    def order_id(self) -> str:
        return self.terms.order_id

    @property
    def head(self) -> OrderMessage:
        return self.messages[-1]

    def role_of(self, peer_id: str) -> str | None:
        t = self.terms
        return {t.buyer: BUYER, t.vendor: VENDOR, t.moderator: MODERATOR}.get(peer_id)

    def party(self, role: str) -> str:
        return {BUYER: self.terms.buyer, VENDOR: self.terms.vendor,
                MODERATOR: self.terms.moderator}[role]

    def last(self, kind: str) -> OrderMessage | None:
        for msg in reversed(self.messages):
            if msg.kind == kind:
                return msg
        return None

    def data(self, kind: str) -> dict[str, Any]:
        msg = self.last(kind)
        if msg is None:
            raise ContractError(f"the contract has no {kind} yet")
        return msg.data

    @property
    def paid(self) -> bool:
        return self.last(PAYMENT) is not None

    @property
    def digests(self) -> list[bytes]:
        return [m.digest for m in self.messages]

    def wires(self) -> list[bytes]:
        return [m.wire for m in self.messages]


def start(msg: OrderMessage) -> Contract:
    """A new contract from its ORDER; ContractError unless the order is sound."""
    if msg.kind != ORDER:
        raise ContractError(f"a contract starts with an ORDER, not {msg.kind}")
    d = msg.data
    try:
        listing = Listing.from_wire(d["listing"])
        mod_profile = StoreObject.from_wire(d["moderator_profile"], PROFILE_TYPE)
    except RemoteProtocolError as exc:
        raise ContractError(f"ORDER: {exc}") from None
    buyer, vendor, moderator = msg.sender, listing.vendor, d["moderator"]
    if len({buyer, vendor, moderator}) != 3:
        raise ContractError("ORDER: buyer, vendor and moderator must be three different peers")
    terms = mod_profile.moderator
    if mod_profile.vendor != moderator or terms is None:
        raise ContractError("ORDER: moderator_profile is not the chosen moderator's "
                            "moderator profile")
    if terms["network"] != d["network"]:
        raise ContractError("ORDER: the moderator does not moderate on this network")
    accepted = listing.moderators
    if accepted is not None and moderator not in accepted:
        raise ContractError("ORDER: the listing accepts only the moderators it names")
    try:
        network = get_network(d["network"])
        network.script_for(d["refund_address"])
        xpub = bip32.HDKey.from_base58(terms["xpub"])
        if bytes(xpub.version) != network.xpub_version:
            raise LocalProtocolError("the moderator's xpub is for another network")
        moderator_pubkey(terms["xpub"], d["moderator_index"])
    except LocalProtocolError as exc:
        raise ContractError(f"ORDER: {exc}") from None
    except Exception:  # noqa: BLE001 - embit raises assorted errors on a bad xpub
        raise ContractError("ORDER: the moderator's xpub is not valid") from None
    if listing.expires <= msg.time:
        raise ContractError("ORDER: the listing had expired when it was ordered")
    if "rate" in d and d["rate"]["coin"] != network.unit:
        raise ContractError(f"ORDER: the exchange rate is for {d['rate']['coin']}, the order "
                            f"is paid in {network.unit}")
    try:
        cost = price_order(listing.body, d["quantity"], d["shipping"], d.get("coupon"),
                           d.get("sku"), d.get("rate"), msg.time)
    except ValueError as exc:
        raise ContractError(f"ORDER: {exc}") from None
    return Contract(
        Terms(order_id=msg.order_id, buyer=buyer, vendor=vendor, moderator=moderator,
              listing=listing, quantity=d["quantity"], shipping_region=d["shipping"],
              shipping_price=cost.shipping, currency=cost.currency, amount_due=cost.amount_due,
              network=d["network"], moderator_terms=terms,
              moderator_index=d["moderator_index"], buyer_key=d["buyer_key"],
              refund_address=d["refund_address"], sealed_address=d["address"],
              coupon=d.get("coupon"), discount=cost.discount,
              sku=tuple(d["sku"]) if "sku" in d else None, rate=d.get("rate")),
        (msg,), "PENDING")


def _check_confirmation(contract: Contract, d: dict[str, Any]) -> None:
    """The vendor's confirmation keeps the terms: the amount due, the listing's timeout in this
    chain's blocks, a payout address of the network, and the escrow address the three keys and
    the timeout make."""
    t = contract.terms
    if d["amount"] != t.amount_due:
        raise ContractError(f"ORDER_CONFIRMATION: amount {d['amount']} is not the "
                            f"{t.amount_due} due")
    try:
        network = get_network(t.network)
        hours = t.listing.body["escrow_timeout_hours"]
        if d["timeout_blocks"] != network.timeout_blocks(hours):
            raise LocalProtocolError(f"the timeout is not the listing's {hours} hours")
        network.script_for(d["payout_address"])
        escrow = EscrowTerms(t.buyer_key, d["vendor_key"],
                             moderator_pubkey(t.moderator_terms["xpub"], t.moderator_index),
                             d["timeout_blocks"])
        address = network.address(escrow.script_pubkey())
    except LocalProtocolError as exc:
        raise ContractError(f"ORDER_CONFIRMATION: {exc}") from None
    if address != d["escrow_address"]:
        raise ContractError("ORDER_CONFIRMATION: the escrow address is not the one the three "
                            "keys and the timeout make")
    ratings.check_sale_of(contract, d, bytes(escrow.script_pubkey().data))


def _check_data(contract: Contract, msg: OrderMessage) -> None:
    d, due = msg.data, contract.terms.amount_due
    if msg.kind == ORDER_CONFIRMATION:
        _check_confirmation(contract, d)
    if msg.kind == PAYMENT and d["amount"] < due:
        raise ContractError(f"PAYMENT: {d['amount']} is less than the {due} due")
    try:
        settlement.check_release(contract, msg)
        if msg.kind == COMPLETION:
            ratings.check_rating_of(contract, d, txid_of(d["tx"]))
    except ContractError:
        raise
    except RemoteProtocolError as exc:
        raise ContractError(str(exc)) from None


def apply(contract: Contract, msg: OrderMessage, trusted: bool = False) -> Contract:
    """``contract`` with ``msg`` appended; ContractError (the contract unchanged) if it may not
    be: another order, a wrong previous hash, a sender who is not a party or not the one the
    table allows, a kind the state does not allow, or data that breaks the terms (amounts, the
    escrow, a release that is not exactly the one allowed). ``trusted``: a message this node
    verified when it stored it; its release is not checked again."""
    if msg.kind == ORDER:
        raise ContractError("an ORDER can only start a contract")
    if msg.order_id != contract.order_id:
        raise ContractError(f"{msg.kind} belongs to order {msg.order_id[:16]}…, "
                            f"not {contract.order_id[:16]}…")
    if msg.prev != contract.head.digest:
        raise ContractError(f"{msg.kind}: wrong previous hash (not the hash of message "
                            f"{len(contract.messages)}, {contract.head.kind})")
    if len(contract.messages) >= MAX_MESSAGES:
        raise ContractError(f"a contract holds at most {MAX_MESSAGES} messages")
    role = contract.role_of(msg.sender)
    if role is None:
        raise ContractError(f"{msg.kind} is signed by {msg.sender[:16]}…, not a party")
    step = transition(contract.state, msg.kind)
    if step is None:
        raise ContractError(f"{msg.kind} is not allowed in state {contract.state}")
    if role not in step.senders:
        raise ContractError(f"{msg.kind} in state {contract.state} is for the "
                            f"{' or '.join(sorted(step.senders))}, not the {role}")
    if not trusted:
        _check_data(contract, msg)
    return replace(contract, messages=contract.messages + (msg,), state=step.to)


def from_history(wires: list[bytes]) -> Contract:
    """Verify a whole chain (ORDER first); ContractError/RemoteProtocolError if any link fails."""
    if not wires:
        raise ContractError("an empty history")
    if len(wires) > MAX_MESSAGES:
        raise ContractError(f"a contract holds at most {MAX_MESSAGES} messages")
    contract = start(OrderMessage.from_wire(wires[0]))
    for wire in wires[1:]:
        contract = apply(contract, OrderMessage.from_wire(wire))
    return contract


def rebuild(wires: list[bytes]) -> Contract:
    """A contract from messages this node verified when it stored them (rules re-applied,
    signatures not checked again)."""
    contract = start(OrderMessage.from_trusted(wires[0]))
    for wire in wires[1:]:
        contract = apply(contract, OrderMessage.from_trusted(wire), trusted=True)
    return contract


def _fork_key(contract: Contract, msg: OrderMessage) -> tuple[int, int, bytes]:
    return (FORK_RANK[msg.kind], SENDER_RANK.get(contract.role_of(msg.sender) or "", 0),
            msg.digest)


def merge(a: Contract, b: Contract) -> Contract:
    """Reconcile two valid copies of one contract: where they part, the branch whose first
    differing message ranks higher wins whole (``contract_rules.FORK_RANK``, then the sender,
    then the digest); a copy that extends the other wins. Commutative and associative, so all
    parties converge on one history whatever order copies reach them in."""
    if a.order_id != b.order_id:
        raise ContractError("cannot merge two different orders")
    for x, y in zip(a.messages, b.messages, strict=False):
        if x.digest != y.digest:
            return a if _fork_key(a, x) > _fork_key(b, y) else b
    return a if len(a.messages) >= len(b.messages) else b


def next_actions(contract: Contract, role: str) -> list[str]:
    """The kinds ``role`` may send now (the table's answer; a node adds chain conditions)."""
    return allowed(contract.state, role)


def actions_now(contract: Contract, role: str, confirmations: int) -> list[str]:
    """The kinds ``role`` may send now, by the node's own chain view of the escrow
    (``confirmations`` of its funding): the table's answer (``next_actions``) less a
    shipment before the escrow confirmed, a timeout claim before the timeout, a dispute once
    less than 10% of the timeout is left, and a vendor's PAYMENT (a node reports a funding it
    saw on the chain by itself, never on request)."""
    confirmation = contract.last(r.ORDER_CONFIRMATION)
    timeout = confirmation.data["timeout_blocks"] if confirmation else 0
    out = []
    for kind in next_actions(contract, role):
        if kind == r.PAYMENT and role != r.BUYER:
            continue
        if kind == r.FULFILLMENT and confirmations < settlement.SHIP_AFTER_CONFIRMATIONS:
            continue
        if kind == r.TIMEOUT_CLAIM and confirmations < timeout:
            continue
        if kind == r.DISPUTE_OPEN and not r.dispute_open_allowed(confirmations, timeout):
            continue
        out.append(kind)
    return out
