"""Orders as the JSON-RPC API shows them."""

from __future__ import annotations

import base64
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey as CurvePrivateKey
from nacl.public import SealedBox
from nacl.signing import SigningKey

from node.trade import store as trade_store
from node.trade.actions import methods, node_actions
from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.errors import RemoteProtocolError
from protocol.goods import open_goods
from protocol.identity import Identity

_SHOWN = {  # per kind, the data fields shown in the history (the rest are bytes or bulky)
    r.ORDER: ("quantity", "shipping", "moderator", "refund_address"),
    r.ORDER_CONFIRMATION: ("payout_address", "escrow_address", "amount", "timeout_blocks"),
    r.ORDER_DECLINE: ("reason",), r.ORDER_CANCEL: ("reason",),
    r.PAYMENT: ("txid", "vout", "amount"), r.FULFILLMENT: ("note",),
    r.COMPLETION: ("rating", "review"), r.REFUND: (), r.DISPUTE_OPEN: ("reason",),
    r.DISPUTE_DECISION: ("buyer_bp", "note", "moderator_address", "network_fee"),
    r.DISPUTE_ACCEPT: (), r.TIMEOUT_CLAIM: (),
}


def shipping_address(contract: c.Contract, identity: Identity) -> str | None:
    """The buyer's address, for the vendor's eyes only (sealed to the vendor's key)."""
    sealed = contract.terms.sealed_address
    if not sealed or contract.terms.vendor != identity.peer_id:
        return None
    key = SigningKey(identity.seed).to_curve25519_private_key()
    try:
        return str(SealedBox(CurvePrivateKey(bytes(key))).decrypt(sealed).decode())
    except (CryptoError, UnicodeDecodeError):
        return None


def delivered_goods(contract: c.Contract, identity: Identity) -> dict[str, Any] | None:
    """The digital goods of the FULFILLMENT, opened, for the buyer's eyes only: text as text,
    a file as base64; None when there are none (or they are not ours to open)."""
    msg = contract.last(r.FULFILLMENT)
    if msg is None or "goods" not in msg.data or contract.terms.buyer != identity.peer_id:
        return None
    try:
        g = open_goods(msg.data["goods"], identity)
    except RemoteProtocolError as exc:
        return {"error": str(exc)}
    out: dict[str, Any] = {"kind": g["kind"], "name": g["name"], "size": len(g["content"]),
                           "sha256": g["sha256"].hex()}
    if g["kind"] == "text":
        out["text"] = g["content"].decode("utf-8")
    else:
        out["data"] = base64.b64encode(g["content"]).decode()
    return out


SETTLED_BY_RELEASE = frozenset({r.COMPLETED, r.REFUNDED, r.RESOLVED, r.PAYMENT_FINALIZED})


def settlement(contract: c.Contract, row: trade_store.OrderRow) -> str | None:
    """Whether the release that ended the order has settled it on chain, by this node's own
    view: ``pending`` until it confirms, ``confirmed``, or ``conflicted`` (the escrow was spent
    by something else); None while the order is open or ended without a payment."""
    if contract.state not in SETTLED_BY_RELEASE:
        return None
    if row.release_confirmations > 0:
        return "confirmed"
    return "conflicted" if row.flags.get("settlement_conflict") else "pending"


def summary(contract: c.Contract, row: trade_store.OrderRow) -> dict[str, Any]:
    t = contract.terms
    return {"order_id": contract.order_id, "state": contract.state, "role": row.role,
            "buyer": t.buyer, "vendor": t.vendor, "moderator": t.moderator,
            "title": t.listing.body["title"], "quantity": t.quantity,
            "amount_due": t.amount_due, "currency": t.currency, "created": row.created,
            "updated": row.updated, "funding_txid": (row.funding or {}).get("txid"),
            "release_txid": row.release_txid}


def order_json(contract: c.Contract, row: trade_store.OrderRow, identity: Identity,
               delivery: dict[str, Any]) -> dict[str, Any]:
    t = contract.terms
    conf = contract.last(r.ORDER_CONFIRMATION)
    role = row.role
    out = summary(contract, row)
    mt = t.moderator_terms
    out.update({
        "listing": t.listing.to_json(),
        "price": t.listing.body["price"]["amount"],
        "shipping": {"region": t.shipping_region, "price": t.shipping_price},
        "coupon": t.coupon, "discount": t.discount,
        "sku": list(t.sku) if t.sku else None,
        "shipping_address": shipping_address(contract, identity),
        "moderator_terms": {"fee_bp": mt["fee_bp"], "fee_fixed": mt["fee_fixed"],
                            "description": mt["description"],
                            "fee_if_disputed": r.moderator_fee(t.amount_due, mt["fee_bp"],
                                                               mt["fee_fixed"])},
        "escrow_address": conf.data["escrow_address"] if conf else None,
        "timeout_blocks": conf.data["timeout_blocks"] if conf else None,
        "funding": row.funding,
        "release": ({"txid": row.release_txid, "confirmations": row.release_confirmations}
                    if row.release_txid else None),
        "settlement": settlement(contract, row),
        "messages": [{"kind": m.kind, "sender": m.sender,
                      "sender_role": contract.role_of(m.sender), "time": m.time,
                      "digest": m.digest.hex(),
                      "data": {k: m.data[k] for k in _SHOWN[m.kind]}}
                     for m in contract.messages],
        "next_actions": methods(node_actions(contract, row, role)),
        "delivery": delivery,
        "goods": delivered_goods(contract, identity),
    })
    if contract.last(r.DISPUTE_DECISION) is not None:
        d = contract.data(r.DISPUTE_DECISION)
        out["decision"] = {"buyer_bp": d["buyer_bp"], "note": d["note"],
                           "network_fee": d["network_fee"],
                           "payout": [{"address": a, "amount": v}
                                      for a, v in st.decision_outputs(contract, d)]}
    done = contract.last(r.COMPLETION)
    if done is not None:
        out["rating"] = {"rating": done.data["rating"], "review": done.data["review"]}
    return out


def dispute_json(contract: c.Contract, row: trade_store.OrderRow, identity: Identity,
                 delivery: dict[str, Any]) -> dict[str, Any]:
    """What a moderator needs: both parties' statements and the whole history."""
    out = order_json(contract, row, identity, delivery)
    out["statements"] = [{"by": contract.role_of(m.sender), "kind": m.kind,
                          "text": m.data.get("reason") or m.data.get("note") or "",
                          "time": m.time}
                         for m in contract.messages
                         if m.kind in (r.DISPUTE_OPEN, r.FULFILLMENT, r.ORDER_CANCEL,
                                       r.ORDER_DECLINE)]
    out["history"] = [m.wire.hex() for m in contract.messages]
    return out
