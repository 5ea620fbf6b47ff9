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

from .contract_messages import OrderMessage
from .contract_rules import (
    BUYER,
    DISPUTE_DECISION,
    FORK_RANK,
    FUNDED_STATES,
    MODERATOR,
    ORDER,
    ORDER_CONFIRMATION,
    PAYMENT,
    SENDER_RANK,
    VENDOR,
    allowed,
    amount_due,
    transition,
)
from .errors import RemoteProtocolError
from .listing import Listing
from .store import PROFILE_TYPE, StoreObject

MAX_MESSAGES = 32
MAX_NETWORK_FEE_SHARE = 4  # a network fee may take at most a quarter of the escrow


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
    if d["quantity"] > listing.body["quantity"]:
        raise ContractError(f"ORDER: quantity {d['quantity']} exceeds the "
                            f"{listing.body['quantity']} available")
    if listing.expires <= msg.time:
        raise ContractError("ORDER: the listing had expired when it was ordered")
    price = listing.body["price"]
    options = {o["region"]: o["price"] for o in listing.body["shipping"]}
    region = d["shipping"]
    if options and region not in options:
        raise ContractError(f"ORDER: shipping must be one of {sorted(options)}")
    if not options and region:
        raise ContractError("ORDER: this listing does not ship")
    ship = options.get(region, {"amount": 0, "currency": price["currency"]})
    if ship["currency"] != price["currency"]:
        raise ContractError("ORDER: the shipping price is in another currency than the item")
    return Contract(
        Terms(order_id=msg.order_id, buyer=buyer, vendor=vendor, moderator=moderator,
              listing=listing, quantity=d["quantity"], shipping_region=region,
              shipping_price=ship["amount"], currency=price["currency"],
              amount_due=amount_due(price["amount"], d["quantity"], ship["amount"]),
              network=d["network"], moderator_terms=terms,
              moderator_index=d["moderator_index"], buyer_key=d["buyer_key"],
              refund_address=d["refund_address"], sealed_address=d["address"]),
        (msg,), "PENDING")


def _check_data(contract: Contract, msg: OrderMessage) -> None:
    d, due = msg.data, contract.terms.amount_due
    if msg.kind == ORDER_CONFIRMATION and d["amount"] != due:
        raise ContractError(f"ORDER_CONFIRMATION: amount {d['amount']} is not the {due} due")
    if msg.kind == PAYMENT and d["amount"] < due:
        raise ContractError(f"PAYMENT: {d['amount']} is less than the {due} due")
    if msg.kind == DISPUTE_DECISION and d["network_fee"] > due // MAX_NETWORK_FEE_SHARE:
        raise ContractError("DISPUTE_DECISION: the network fee exceeds a quarter of the escrow")


def apply(contract: Contract, msg: OrderMessage) -> Contract:
    """``contract`` with ``msg`` appended; ContractError (the contract unchanged) if it may not
    be: another order, a wrong previous hash, a sender who is not a party or not the one the
    table allows, a kind the state does not allow, or data that breaks the terms."""
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
        contract = apply(contract, OrderMessage.from_trusted(wire))
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


def escrow_funded(contract: Contract) -> bool:
    return contract.state in FUNDED_STATES
