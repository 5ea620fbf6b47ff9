"""Building order contracts in tests: three parties, an outsider, and a message of every kind
with well-formed (not chain-real) data."""

from __future__ import annotations

from typing import Any

from protocol import contract as c
from protocol import contract_rules as r
from protocol.contract_messages import OrderMessage
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.store import StoreObject

BUYER = Identity(b"\xb1" * 32)
VENDOR = Identity(b"\xb2" * 32)
MODERATOR = Identity(b"\xb3" * 32)
OUTSIDER = Identity(b"\xb4" * 32)
BY_ROLE = {r.BUYER: BUYER, r.VENDOR: VENDOR, r.MODERATOR: MODERATOR}
T0 = 1_800_000_000
XPUB = ("tpubD6NzVbkrYhZ4Wgf68pWWfTRzdXMoepBvepfiAKtNoE7RvbAbWVfWzQxH1jbkfNk3iJ9zR65Yw6u3B2QZ"
        "zpkMSTN4y8Lfm1t44HbpZX7efhZ")
PRICE = 1_000_000
SHIP = 50_000


def listing(quantity: int = 3, shipping: bool = True) -> Listing:
    ship = [{"region": "EU", "price": {"amount": SHIP, "currency": "LTC"}}] if shipping else []
    return Listing.create(VENDOR, {"id": "ab" * 16, "seq": 1, "title": "Oak stool",
                                   "price": {"amount": PRICE, "currency": "LTC"},
                                   "quantity": quantity, "shipping": ship, "created": T0 - 10,
                                   "expires": T0 + 86400})


def moderator_profile(network: str = "litecoin-regtest", who: Identity = MODERATOR) -> bytes:
    return StoreObject.profile(who, 1, "Mo", "", moderator={
        "fee_bp": 100, "fee_fixed": 1000, "description": "fair", "xpub": XPUB,
        "network": network}).to_wire()


def order_data(**over: Any) -> dict[str, Any]:
    data = {"listing": listing().to_wire(), "quantity": 2, "shipping": "EU", "address": b"",
            "moderator": MODERATOR.peer_id, "moderator_profile": moderator_profile(),
            "moderator_index": 7, "buyer_key": b"\x02" + b"\x11" * 32,
            "refund_address": "rltc1qrefundrefundrefund", "network": "litecoin-regtest",
            "nonce": b"\x00" * 16}
    data.update(over)
    return data


def order(who: Identity = BUYER, **over: Any) -> OrderMessage:
    return OrderMessage.create(who, r.ORDER, "", b"", T0, order_data(**over))


DUE = PRICE * 2 + SHIP


def data_for(kind: str, n: int = 0) -> dict[str, Any]:
    """Well-formed data of ``kind``; ``n`` varies it so two messages differ."""
    return {
        r.ORDER_CONFIRMATION: {"vendor_key": b"\x03" + b"\x22" * 32,
                               "payout_address": "rltc1qpayoutpayoutpayout",
                               "escrow_address": "rltc1qescrowescrowescrow", "amount": DUE,
                               "timeout_blocks": 24},
        r.ORDER_DECLINE: {"reason": f"sold out {n}"},
        r.ORDER_CANCEL: {"reason": f"changed my mind {n}"},
        r.PAYMENT: {"txid": f"{n:064x}", "vout": 0, "amount": DUE},
        r.FULFILLMENT: {"note": f"shipped {n}", "psbt": b"psbt"},
        r.COMPLETION: {"rating": 5, "review": f"great {n}", "tx": b"tx"},
        r.REFUND: {"psbt": b"psbt" + bytes([n % 256])},
        r.DISPUTE_OPEN: {"reason": f"never arrived {n}"},
        r.DISPUTE_DECISION: {"buyer_bp": 5000, "note": f"half {n}", "psbt": b"psbt",
                             "moderator_address": "rltc1qmoderatormoderator",
                             "network_fee": 300},
        r.DISPUTE_ACCEPT: {"tx": b"tx" + bytes([n % 256])},
        r.TIMEOUT_CLAIM: {"tx": b"tx" + bytes([n % 256])},
    }[kind]


def message(contract: c.Contract, kind: str, who: Identity, n: int = 0,
            prev: bytes | None = None, **over: Any) -> OrderMessage:
    data = {**data_for(kind, n), **over}
    return OrderMessage.create(who, kind, contract.order_id,
                               contract.head.digest if prev is None else prev, T0 + n, data)


# a path from ORDER to every state: (kind, role) steps
PATHS: dict[str, list[tuple[str, str]]] = {
    r.PENDING: [],
    r.AWAITING_PAYMENT: [(r.ORDER_CONFIRMATION, r.VENDOR)],
    r.DECLINED: [(r.ORDER_DECLINE, r.VENDOR)],
    r.CANCELED: [(r.ORDER_CANCEL, r.BUYER)],
    r.AWAITING_FULFILLMENT: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER)],
    r.FULFILLED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                  (r.FULFILLMENT, r.VENDOR)],
    r.COMPLETED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                  (r.FULFILLMENT, r.VENDOR), (r.COMPLETION, r.BUYER)],
    r.REFUNDED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER), (r.REFUND, r.VENDOR)],
    r.PAYMENT_FINALIZED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                          (r.FULFILLMENT, r.VENDOR), (r.TIMEOUT_CLAIM, r.VENDOR)],
    r.DISPUTED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                 (r.DISPUTE_OPEN, r.BUYER)],
    r.DECIDED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                (r.DISPUTE_OPEN, r.BUYER), (r.DISPUTE_DECISION, r.MODERATOR)],
    r.RESOLVED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                 (r.DISPUTE_OPEN, r.BUYER), (r.DISPUTE_DECISION, r.MODERATOR),
                 (r.DISPUTE_ACCEPT, r.VENDOR)],
}


def contract_in(state: str) -> c.Contract:
    contract = c.start(order())
    for i, (kind, role) in enumerate(PATHS[state]):
        contract = c.apply(contract, message(contract, kind, BY_ROLE[role], i))
    assert contract.state == state
    return contract
