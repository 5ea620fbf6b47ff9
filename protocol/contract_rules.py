"""The order contract's rules as data: roles, states, who may send what in which state, which
of two concurrent messages wins, and the money (amount due, the moderator's fee, a dispute's
payout). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import fiat, shipping, variants
from .coupons import discount

# ---------------------------------------------------------------------- roles
BUYER, VENDOR, MODERATOR = "buyer", "vendor", "moderator"
ROLES = (BUYER, VENDOR, MODERATOR)

# ---------------------------------------------------------------------- message kinds
ORDER = "ORDER"
ORDER_CONFIRMATION = "ORDER_CONFIRMATION"
ORDER_DECLINE = "ORDER_DECLINE"
ORDER_CANCEL = "ORDER_CANCEL"
PAYMENT = "PAYMENT"
FULFILLMENT = "FULFILLMENT"
COMPLETION = "COMPLETION"
REFUND = "REFUND"
DISPUTE_OPEN = "DISPUTE_OPEN"
DISPUTE_DECISION = "DISPUTE_DECISION"
DISPUTE_ACCEPT = "DISPUTE_ACCEPT"
TIMEOUT_CLAIM = "TIMEOUT_CLAIM"
KINDS = (ORDER, ORDER_CONFIRMATION, ORDER_DECLINE, ORDER_CANCEL, PAYMENT, FULFILLMENT,
         COMPLETION, REFUND, DISPUTE_OPEN, DISPUTE_DECISION, DISPUTE_ACCEPT, TIMEOUT_CLAIM)

# ---------------------------------------------------------------------- states
PENDING = "PENDING"
AWAITING_PAYMENT = "AWAITING_PAYMENT"
AWAITING_FULFILLMENT = "AWAITING_FULFILLMENT"
FULFILLED = "FULFILLED"
COMPLETED = "COMPLETED"
DECLINED = "DECLINED"
CANCELED = "CANCELED"
REFUNDED = "REFUNDED"
PAYMENT_FINALIZED = "PAYMENT_FINALIZED"
DISPUTED = "DISPUTED"
DECIDED = "DECIDED"
RESOLVED = "RESOLVED"
STATES = (PENDING, AWAITING_PAYMENT, AWAITING_FULFILLMENT, FULFILLED, COMPLETED, DECLINED,
          CANCELED, REFUNDED, PAYMENT_FINALIZED, DISPUTED, DECIDED, RESOLVED)
FINAL_STATES = frozenset({COMPLETED, DECLINED, CANCELED, REFUNDED, PAYMENT_FINALIZED, RESOLVED})
# States in which the escrow holds the buyer's payment
FUNDED_STATES = frozenset({AWAITING_FULFILLMENT, FULFILLED, DISPUTED, DECIDED})


@dataclass(frozen=True)
class Transition:
    state: str | None  # None: the contract does not exist yet
    kind: str
    senders: frozenset[str]
    to: str


def _t(state: str | None, kind: str, senders: set[str], to: str) -> Transition:
    return Transition(state, kind, frozenset(senders), to)


# The whole state machine. Nothing else decides what may follow what.
TRANSITIONS: tuple[Transition, ...] = (
    _t(None, ORDER, {BUYER}, PENDING),
    _t(PENDING, ORDER_CONFIRMATION, {VENDOR}, AWAITING_PAYMENT),
    _t(PENDING, ORDER_DECLINE, {VENDOR}, DECLINED),
    _t(PENDING, ORDER_CANCEL, {BUYER}, CANCELED),
    _t(AWAITING_PAYMENT, ORDER_CANCEL, {BUYER}, CANCELED),
    # the buyer tells of its funding; a vendor whose chain watcher saw it may say so instead
    _t(AWAITING_PAYMENT, PAYMENT, {BUYER, VENDOR}, AWAITING_FULFILLMENT),
    _t(AWAITING_FULFILLMENT, FULFILLMENT, {VENDOR}, FULFILLED),
    _t(AWAITING_FULFILLMENT, REFUND, {VENDOR}, REFUNDED),
    _t(AWAITING_FULFILLMENT, DISPUTE_OPEN, {BUYER, VENDOR}, DISPUTED),
    _t(FULFILLED, COMPLETION, {BUYER}, COMPLETED),
    _t(FULFILLED, REFUND, {VENDOR}, REFUNDED),
    _t(FULFILLED, DISPUTE_OPEN, {BUYER, VENDOR}, DISPUTED),
    _t(FULFILLED, TIMEOUT_CLAIM, {VENDOR}, PAYMENT_FINALIZED),
    _t(DISPUTED, DISPUTE_DECISION, {MODERATOR}, DECIDED),
    _t(DISPUTED, REFUND, {VENDOR}, REFUNDED),
    _t(DISPUTED, TIMEOUT_CLAIM, {VENDOR}, PAYMENT_FINALIZED),
    _t(DECIDED, DISPUTE_ACCEPT, {BUYER, VENDOR}, RESOLVED),
    _t(DECIDED, TIMEOUT_CLAIM, {VENDOR}, PAYMENT_FINALIZED),
)
TABLE: dict[tuple[str | None, str], Transition] = {(t.state, t.kind): t for t in TRANSITIONS}


def transition(state: str | None, kind: str) -> Transition | None:
    return TABLE.get((state, kind))


def allowed(state: str | None, role: str) -> list[str]:
    """The kinds ``role`` may send in ``state``, in table order."""
    return [t.kind for t in TRANSITIONS if t.state == state and role in t.senders]


# When two parties append to the same message at once (a fork), every node keeps the branch
# whose first differing message ranks highest: by kind, then by sender, then by digest. Only
# kinds allowed in the same state ever compete, and the order is chosen so that what protects
# the buyer's money wins and nothing one party signed is hidden for good: a refund beats
# everything (the buyer gets its money back); a completion beats a dispute; a dispute beats a
# timeout claim (the vendor claims again on the dispute, which stays in the history); a
# fulfilment beats a dispute (the buyer disputes again on the fulfilment); a payment beats a
# cancellation; a cancellation before payment beats a confirmation.
FORK_RANK: dict[str, int] = {
    REFUND: 100, COMPLETION: 90, DISPUTE_ACCEPT: 85, DISPUTE_DECISION: 70, PAYMENT: 60,
    FULFILLMENT: 55, DISPUTE_OPEN: 50, TIMEOUT_CLAIM: 45, ORDER_CANCEL: 30,
    ORDER_CONFIRMATION: 20, ORDER_DECLINE: 10, ORDER: 0,
}
SENDER_RANK = {BUYER: 3, VENDOR: 2, MODERATOR: 1}

# The JSON-RPC method a party calls to send each kind (``next_actions`` speaks these names).
ACTION_METHOD: dict[str, str] = {
    ORDER_CONFIRMATION: "order.confirm", ORDER_DECLINE: "order.decline",
    ORDER_CANCEL: "order.cancel", PAYMENT: "order.pay", FULFILLMENT: "order.fulfill",
    COMPLETION: "order.complete", REFUND: "order.refund", DISPUTE_OPEN: "order.dispute",
    DISPUTE_DECISION: "dispute.decide", DISPUTE_ACCEPT: "order.accept_decision",
    TIMEOUT_CLAIM: "order.claim",
}

# ---------------------------------------------------------------------- money
BASIS = 10_000
DUST = 546
DISPUTE_CUTOFF_SHARE = 0.10  # no dispute once less than 10% of the timeout is left


def amount_due(price: int, quantity: int, shipping: int) -> int:
    return price * quantity + shipping


@dataclass(frozen=True)
class OrderPrice:
    items: int  # after the discount
    shipping: int
    amount_due: int
    currency: str
    discount: int = 0  # what a coupon took off the items


UNLIMITED_MAX = 10_000  # the most one order takes of an unlimited listing


def price_order(listing_body: dict[str, Any], quantity: int, region: str,
                coupon: str | None = None, sku: list[str] | None = None,
                rate: dict[str, Any] | None = None, at: int | None = None) -> OrderPrice:
    """What an order of ``quantity`` (of the variant ``sku``) shipped to ``region`` costs,
    less a ``coupon``'s discount on the items; ValueError saying why it cannot be made
    (quantity not available, no such variant, a region the listing does not ship to, shipping
    priced in another currency, a coupon the listing does not have or that had expired ``at``
    the order's time, nothing left to pay)."""
    price = listing_body["price"]
    unit, stock = int(price["amount"]), int(listing_body["quantity"])
    if listing_body.get("skus"):  # listing v2 variants: the order names one
        if sku is None:
            raise ValueError("choose a variant (sku): one value per option")
        entry = variants.find(listing_body, sku)
        if entry is None:
            raise ValueError(f"the listing has no variant {variants.label(sku)!r} (sku)")
        unit, stock = unit + int(entry["surcharge"]), int(entry["quantity"])
    elif sku is not None:
        raise ValueError("this listing has no variants (sku)")
    if listing_body.get("unlimited"):  # listing v2: digital goods or a service, not counted
        if not 1 <= quantity <= UNLIMITED_MAX:
            raise ValueError(f"quantity must be 1..{UNLIMITED_MAX}")
    elif not 1 <= quantity <= stock:
        raise ValueError(f"quantity {quantity} exceeds the {stock} available"
                         if quantity > 0 else "quantity must be at least 1")
    items = unit * quantity
    profile = listing_body.get("shipping_profile")
    if profile is not None:  # listing v2: shipping by country and service
        ship = {"amount": shipping.cost(profile, region, quantity, items),
                "currency": price["currency"]}
    else:
        options = {o["region"]: o["price"] for o in listing_body["shipping"]}
        if options and region not in options:
            raise ValueError(f"shipping must be one of {sorted(options)}")
        if not options and region:
            raise ValueError("this listing does not ship")
        ship = options.get(region, {"amount": 0, "currency": price["currency"]})
    if ship["currency"] != price["currency"]:
        raise ValueError("the shipping price is in another currency than the item")
    off = discount(listing_body, coupon, items, at) if coupon is not None else 0
    due = amount_due(unit, quantity, ship["amount"]) - off
    if due < 1:
        raise ValueError("the order would cost nothing: a coupon cannot pay for all of it")
    if fiat.is_fiat(price["currency"]):  # listing v2: priced in local money
        if rate is None:
            raise ValueError(f"the listing is priced in {price['currency']}: the order needs "
                             "an exchange rate (rate)")
        if rate["currency"] != price["currency"]:
            raise ValueError(f"the rate is for {rate['currency']}, the listing is priced in "
                             f"{price['currency']} (rate)")
        return OrderPrice(fiat.to_coin(items - off, rate), fiat.to_coin(ship["amount"], rate),
                          fiat.to_coin(due, rate), rate["coin"], fiat.to_coin(off, rate))
    if rate is not None:
        raise ValueError("the listing is priced in coin: an order of it names no rate (rate)")
    return OrderPrice(items - off, ship["amount"], due, price["currency"], off)


def moderator_fee(amount: int, fee_bp: int, fee_fixed: int) -> int:
    """What the moderator takes when it decides a dispute, capped at the escrow."""
    return min(amount, fee_fixed + amount * fee_bp // BASIS)


@dataclass(frozen=True)
class Payout:
    moderator: int
    buyer: int
    vendor: int
    network_fee: int  # what the outputs leave to miners (dust outputs included)


def dispute_payout(amount: int, fee_bp: int, fee_fixed: int, buyer_bp: int,
                   network_fee: int) -> Payout:
    """The moderator's fee and the network fee come off the top; the buyer gets ``buyer_bp``
    basis points of the rest and the vendor the remainder. An output under the dust limit is
    left out and its value goes to the network fee."""
    if not 0 <= buyer_bp <= BASIS:
        raise ValueError("buyer_bp must be 0..10000")
    if not 0 <= network_fee <= amount:
        raise ValueError("the network fee must be within the escrow")
    mod = min(moderator_fee(amount, fee_bp, fee_fixed), amount - network_fee)
    rest = amount - network_fee - mod
    buyer = rest * buyer_bp // BASIS
    vendor = rest - buyer
    parts = [mod if mod >= DUST else 0, buyer if buyer >= DUST else 0,
             vendor if vendor >= DUST else 0]
    return Payout(parts[0], parts[1], parts[2], amount - sum(parts))


def dispute_open_allowed(confirmations: int, timeout_blocks: int) -> bool:
    """A dispute may not open once less than 10% of the timeout is left (the vendor could
    sweep the escrow alone while it runs)."""
    left = timeout_blocks - confirmations
    return left >= timeout_blocks * DISPUTE_CUTOFF_SHARE
