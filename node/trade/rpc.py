"""Trading's API methods: order.*, dispute.*, rating.list, moderator.list. Each handler calls
one action or reading method of the trading service and answers the order as it is now."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from node.core.api import (
    CHAIN_ERROR,
    LISTING_ID,
    NETWORK_ERROR,
    NO_CHAIN,
    NOT_ALLOWED,
    NOT_FOUND,
    OBJECT,
    ORDER_ID,
    PEER_ID,
    REFUSED,
    TXID,
    WALLET_ERROR,
    WALLET_LOCKED,
    Args,
    Method,
    Param,
    Schema,
    array,
    boolean,
    enum,
    integer,
    nullable,
    obj,
    string,
)
from node.trade.auto_goods import goods_from
from protocol import contract_rules as r
from protocol.contract_messages import MAX_TEXT
from protocol.coupons import MAX_CODE
from protocol.goods import MAX_GOODS

if TYPE_CHECKING:
    from node.trade.service import TradingService

MAX_SHIPPING_ADDRESS = 1000
ACTING = (NOT_FOUND, NOT_ALLOWED, WALLET_LOCKED, WALLET_ERROR, NO_CHAIN, CHAIN_ERROR)
TEXT = string(MAX_TEXT)
ROLE = enum(r.ROLES)
STATE = enum(r.STATES)
SUMMARY_FIELDS: dict[str, Schema] = {
    "order_id": ORDER_ID, "state": STATE, "role": ROLE, "buyer": PEER_ID, "vendor": PEER_ID,
    "moderator": PEER_ID, "title": string(), "quantity": integer(1), "amount_due": integer(),
    "currency": string(), "created": integer(), "updated": integer(),
    "funding_txid": nullable(TXID), "release_txid": nullable(TXID),
}
SUMMARY = obj(SUMMARY_FIELDS, tuple(SUMMARY_FIELDS))
ORDER = obj({
    **SUMMARY_FIELDS,
    "listing": OBJECT, "price": integer(), "shipping": OBJECT,
    "shipping_address": nullable(string()), "moderator_terms": OBJECT,
    "escrow_address": nullable(string()), "timeout_blocks": nullable(integer()),
    "funding": nullable(obj({"txid": TXID, "vout": integer(), "amount": integer(),
                             "confirmations": integer()},
                            ("txid", "vout", "amount", "confirmations"), additional=True)),
    "release": nullable(obj({"txid": TXID, "confirmations": integer()},
                            ("txid", "confirmations"))),
    "settlement": nullable(enum(("pending", "confirmed", "conflicted"))),
    "messages": array(obj({"kind": enum(r.KINDS), "sender": PEER_ID,
                           "sender_role": nullable(ROLE), "time": integer(), "digest": string(),
                           "data": OBJECT},
                          ("kind", "sender", "sender_role", "time", "digest", "data")), 1000),
    "next_actions": array(string(), 20), "delivery": OBJECT,
    "coupon": nullable(string()), "discount": integer(), "sku": nullable(array(string(), 5)),
    "goods": nullable(obj({"kind": enum(("text", "file")), "name": string(),
                           "size": integer(), "sha256": string(), "text": string(),
                           "data": string(), "error": string()}, ())),
    "decision": OBJECT, "rating": OBJECT, "txid": TXID,
    "statements": array(OBJECT, 1000), "history": array(string(), 1000),
}, (*SUMMARY_FIELDS, "listing", "funding", "release", "settlement", "messages", "next_actions",
    "delivery"))
RATING = obj({"order_id": ORDER_ID, "vendor": PEER_ID, "buyer": PEER_ID,
              "listing_id": LISTING_ID, "rating": integer(1, 5), "review": string(),
              "time": integer(), "release_txid": nullable(string()), "verified": boolean(),
              "proof": string()},
             ("order_id", "vendor", "rating", "review", "time", "verified", "proof"),
             additional=True)
MODERATOR = obj({"peer_id": PEER_ID, "name": string(), "fee_bp": integer(),
                 "fee_fixed": integer(), "description": string(), "network": string(),
                 "accepted": boolean(), "markets": array(string(), 10**4)},
                ("peer_id", "fee_bp", "fee_fixed", "network"), additional=True)
QUOTE = obj({"items": integer(), "shipping": integer(), "amount_due": integer(),
             "discount": integer(),
             "network_fee_estimate": integer(), "release_fee_estimate": integer(),
             "total_from_wallet": integer(), "currency": string(), "tradeable": boolean(),
             "available": integer(), "moderators": array(PEER_ID, 100),
             "shipping_options": array(OBJECT, 100), "moderator_fee_if_disputed": integer()},
            ("items", "shipping", "amount_due", "network_fee_estimate", "release_fee_estimate",
             "total_from_wallet", "currency", "tradeable", "moderators"), additional=True)


COUPON = Param("coupon", string(MAX_CODE, 1), description="a discount code the listing "
               "has (any case)")


SKU = Param("sku", array(string(40, 1), 5, 1), description="the variant: one value per "
            "option of the listing, in order")


def methods(svc: TradingService) -> list[Method]:
    actions = svc.actions
    order_id = (Param("order_id", ORDER_ID, True),)

    async def quote(p: Args) -> Any:
        return await actions.quote(p["listing_id"], p["vendor"], p["quantity"], p["moderator"],
                                   p["shipping_option"], p["coupon"], p["sku"])

    async def create(p: Args) -> Any:
        contract = await actions.create(p["listing_id"], p["vendor"], p["quantity"],
                                        p["moderator"], p["shipping_option"],
                                        p["shipping_address"], p["coupon"], p["sku"])
        return await svc.order_view(contract.order_id)

    async def confirm(p: Args) -> Any:
        await actions.confirm(p["order_id"])
        return await svc.order_view(p["order_id"])

    async def decline(p: Args) -> Any:
        await actions.decline(p["order_id"], p["reason"])
        return await svc.order_view(p["order_id"])

    async def cancel(p: Args) -> Any:
        await actions.cancel(p["order_id"], p["reason"])
        return await svc.order_view(p["order_id"])

    async def pay(p: Args) -> Any:
        txid = await actions.pay(p["order_id"], p["allow_high_fee"])
        return {**await svc.order_view(p["order_id"]), "txid": txid}

    async def fulfill(p: Args) -> Any:
        goods: tuple[str, str, bytes] | None = None
        if p["goods_text"] is not None or p["goods_file"] is not None:
            goods = await asyncio.to_thread(goods_from, p["goods_text"], p["goods_file"])
        else:  # the listing's goods kept here, if any
            contract, _ = await svc.load(p["order_id"])
            kept = await svc.auto_goods.of_listing(contract.terms.listing.id)
            goods = kept.as_tuple() if kept is not None else None
        await actions.fulfill(p["order_id"], p["note"], goods)
        return await svc.order_view(p["order_id"])

    async def listing_goods(p: Args) -> Any:
        return await svc.auto_goods.set(p["id"], p["goods_text"], p["goods_file"],
                                        p["auto_fulfil"])

    async def complete(p: Args) -> Any:
        txid = await actions.complete(p["order_id"], p["rating"], p["review"])
        return {**await svc.order_view(p["order_id"]), "txid": txid}

    async def refund(p: Args) -> Any:
        txid = await actions.refund(p["order_id"])
        return {**await svc.order_view(p["order_id"]), "txid": txid}

    async def claim(p: Args) -> Any:
        txid = await actions.claim(p["order_id"])
        return {**await svc.order_view(p["order_id"]), "txid": txid}

    async def dispute(p: Args) -> Any:
        await actions.dispute(p["order_id"], p["reason"])
        return await svc.order_view(p["order_id"])

    async def accept(p: Args) -> Any:
        txid = await actions.accept(p["order_id"])
        return {**await svc.order_view(p["order_id"]), "txid": txid}

    async def get(p: Args) -> Any:
        return await svc.order_view(p["order_id"], opened=True)

    async def recover(p: Args) -> Any:
        return await svc.recover(p["peer_id"])

    async def orders(p: Args) -> Any:
        return await svc.orders(p["role"], p["state"])

    async def disputes(p: Args) -> Any:
        return await svc.disputes()

    async def dispute_get(p: Args) -> Any:
        return await svc.dispute_view(p["order_id"])

    async def decide(p: Args) -> Any:
        await actions.decide(p["order_id"], p["buyer_bp"], p["note"])
        return await svc.order_view(p["order_id"])

    async def ratings(p: Args) -> Any:
        return await svc.ratings.of_vendor(p["vendor"] or svc.me)

    async def moderators(p: Args) -> Any:
        mods = await svc.ratings.moderators()
        if p["listing_id"] is None:
            return mods
        return await actions.moderators_for(p["listing_id"], p["vendor"], mods)

    return [
        Method("order.quote", "Every cost of an order before it is made, in base units.",
               (Param("listing_id", LISTING_ID, True), Param("vendor", PEER_ID),
                Param("quantity", integer(1, 10**6), default=1), Param("moderator", PEER_ID),
                Param("shipping_option", string(64), default=""), COUPON, SKU),
               QUOTE, quote, (NOT_FOUND, NO_CHAIN, CHAIN_ERROR)),
        Method("order.create", "Order from a listing (PENDING): the buyer's escrow key is "
               "taken and the order sent to the vendor.",
               (Param("listing_id", LISTING_ID, True), Param("vendor", PEER_ID),
                Param("quantity", integer(1, 10**6), True), Param("moderator", PEER_ID, True),
                Param("shipping_option", string(64), default=""),
                Param("shipping_address", string(MAX_SHIPPING_ADDRESS), default=""), COUPON,
                SKU),
               ORDER, create, ACTING),
        Method("order.confirm", "The vendor accepts the order (AWAITING_PAYMENT, with the "
               "escrow address).", order_id, ORDER, confirm, ACTING),
        Method("order.decline", "The vendor declines the order.",
               (*order_id, Param("reason", TEXT, default="")), ORDER, decline, ACTING),
        Method("order.cancel", "The buyer cancels before paying.",
               (*order_id, Param("reason", TEXT, default="")), ORDER, cancel, ACTING),
        Method("order.pay", "The buyer funds the escrow from the wallet; answers the order and "
               "the txid. A fee over the bound is refused unless allow_high_fee.",
               (*order_id, Param("allow_high_fee", boolean(), default=False)), ORDER, pay,
               ACTING),
        Method("order.fulfill", "The vendor ships: signs the release to its payout address "
               "(once its own chain view shows the escrow confirmed).",
               (*order_id, Param("note", TEXT, default=""),
                Param("goods_text", string(MAX_GOODS, 1), description="digital goods: a text "
                      "(licence key, download link) sealed to the buyer"),
                Param("goods_file", string(4096, 1), description="digital goods: a file on "
                      "this machine (at most 32 KiB) sealed to the buyer")),
               ORDER, fulfill, ACTING),
        Method("listing.goods", "Keep the digital goods of one of your listings on this node "
               "(never in the listing): they go sealed to the buyer with every fulfilment of "
               "its orders, and with auto_fulfil the node fulfils by itself once its own chain "
               "view shows an order's escrow funded and confirmed.",
               (Param("id", LISTING_ID, True), Param("goods_text", string(MAX_GOODS, 1)),
                Param("goods_file", string(4096, 1)),
                Param("auto_fulfil", boolean(), default=False)),
               obj({"id": LISTING_ID, "kind": enum(("text", "file")), "name": string(),
                    "size": integer(), "auto_fulfil": boolean()},
                   ("id", "kind", "name", "size", "auto_fulfil")), listing_goods,
               (NOT_FOUND,)),
        Method("order.complete", "The buyer rates the order, co-signs the release and "
               "broadcasts it; answers the order and the txid.",
               (*order_id, Param("rating", integer(1, 5), True),
                Param("review", TEXT, default="")), ORDER, complete, (*ACTING, REFUSED)),
        Method("order.refund", "The vendor refunds the buyer (the buyer's node co-signs and "
               "broadcasts by itself).", order_id, ORDER, refund, ACTING),
        Method("order.claim", "The vendor claims the escrow alone after the timeout.",
               order_id, ORDER, claim, ACTING),
        Method("order.dispute", "The buyer or vendor opens a dispute (after payment, before "
               "completion, while 10% of the timeout is left).",
               (*order_id, Param("reason", string(MAX_TEXT, 1, r"[\s\S]*\S[\s\S]*",
                                                  "say what went wrong"), True)),
               ORDER, dispute, ACTING),
        Method("order.accept_decision", "A party accepts the moderator's decision: co-signs "
               "and broadcasts its payout (RESOLVED).", order_id, ORDER, accept,
               (*ACTING, REFUSED)),
        Method("order.get", "An order (opening it sends the author of its newest message a "
               "read receipt).", order_id, ORDER, get, (NOT_FOUND,)),
        Method("order.recover", "Ask a peer (or every connected peer) for its copies of the "
               "contracts naming you, and merge them.", (Param("peer_id", PEER_ID),),
               obj({"asked": integer(), "recovered": integer()}, ("asked", "recovered")),
               recover, (NOT_FOUND, NETWORK_ERROR)),
        Method("order.list", "Your orders, newest first (of a role, in a state).",
               (Param("role", ROLE), Param("state", STATE)), array(SUMMARY, 10**6), orders),
        Method("dispute.list", "The disputes you moderate.", (),
               array(obj({**SUMMARY_FIELDS, "reason": string(), "opened_by": nullable(ROLE)},
                         (*SUMMARY_FIELDS, "reason", "opened_by")), 10**6), disputes),
        Method("dispute.get", "A disputed order with both parties' statements and its whole "
               "signed history.", order_id, ORDER, dispute_get, (NOT_FOUND,)),
        Method("dispute.decide", "The moderator decides: the buyer gets buyer_bp basis points "
               "of what is left after the fees (DECIDED).",
               (*order_id, Param("buyer_bp", integer(0, r.BASIS), True),
                Param("note", TEXT, default="")), ORDER, decide, ACTING),
        Method("rating.list", "A vendor's ratings (yours without vendor), each a signed proof; "
               "verified once this node's chain view showed the escrow released.",
               (Param("vendor", PEER_ID),), array(RATING, 10**6), ratings, (NETWORK_ERROR,)),
        Method("moderator.list", "The moderators known here, with their terms; for a listing "
               "(listing_id, vendor), each says whether its vendor accepts it and which "
               "community markets showing it it moderates, those first.",
               (Param("listing_id", LISTING_ID), Param("vendor", PEER_ID)),
               array(MODERATOR, 10**6), moderators, (NOT_FOUND,)),
    ]
