"""Trading's JSON-RPC methods: order.*, dispute.*, rating.list, moderator.list."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.params import Params
from node.core.services import Handler, NotFound, invalid_params
from node.market.rpc import listing_id_param, peer_id_param
from node.trade import store as ts
from node.trade.view import dispute_json, order_json, summary
from protocol import contract_rules as r
from protocol.contract_messages import MAX_TEXT, ORDER_ID_RE

if TYPE_CHECKING:
    from node.trade.service import TradingService

MAX_SHIPPING_ADDRESS = 1000


def order_id_param(p: Params) -> str:
    value = p.text("order_id", True, 64)
    if not ORDER_ID_RE.fullmatch(value):
        raise invalid_params("order_id", "must be an order id (64 hex characters)")
    return str(value)


def trade_methods(svc: TradingService) -> dict[str, Handler]:
    actions = svc.actions
    me = svc.me

    async def delivery(contract: Any, row: ts.OrderRow) -> dict[str, Any]:
        if svc.mailer is not None:
            return await svc.mailer.delivery(contract, row)
        return await svc.db.read(partial(ts.delivery_status, order_id=contract.order_id))

    async def view(order_id: str, opened: bool = False) -> dict[str, Any]:
        contract, row = await svc.load(order_id)
        if opened and svc.mailer is not None:
            await svc.mailer.send_read(contract, row)
        return order_json(contract, row, svc.core.identity, await delivery(contract, row))

    async def order_create(params: dict[str, Any]) -> Any:
        p = Params(params, {"listing_id", "vendor", "quantity", "moderator", "shipping_option",
                            "shipping_address"})
        contract = await actions.create(
            listing_id_param(p, "listing_id"), peer_id_param(p, "vendor", False),
            p.integer("quantity", True, 1, 10**6), peer_id_param(p, "moderator"),
            p.text("shipping_option", False, 64) or "",
            p.text("shipping_address", False, MAX_SHIPPING_ADDRESS) or "")
        return await view(contract.order_id)

    async def order_quote(params: dict[str, Any]) -> Any:
        p = Params(params, {"listing_id", "vendor", "quantity", "moderator", "shipping_option"})
        return await actions.quote(
            listing_id_param(p, "listing_id"), peer_id_param(p, "vendor", False),
            p.integer("quantity", False, 1, 10**6) or 1, peer_id_param(p, "moderator", False),
            p.text("shipping_option", False, 64) or "")

    def simple(action: str, extra: dict[str, tuple[str, int, bool]] | None = None) -> Handler:
        extra = extra or {}

        async def handler(params: dict[str, Any]) -> Any:
            p = Params(params, {"order_id", *extra})
            oid = order_id_param(p)
            kwargs = {}
            for name, (kind, limit, required) in extra.items():
                kwargs[name] = (p.text(name, required, limit) or "" if kind == "text"
                                else p.integer(name, required, 0, limit))
            result = await getattr(actions, action)(oid, **kwargs)
            out = await view(oid)
            if isinstance(result, str):
                out["txid"] = result
            return out

        return handler

    async def order_complete(params: dict[str, Any]) -> Any:
        p = Params(params, {"order_id", "rating", "review"})
        oid = order_id_param(p)
        txid = await actions.complete(oid, p.integer("rating", True, 1, 5),
                                      p.text("review", False, MAX_TEXT) or "")
        return {**await view(oid), "txid": txid}

    async def order_pay(params: dict[str, Any]) -> Any:
        p = Params(params, {"order_id", "allow_high_fee"})
        oid = order_id_param(p)
        txid = await actions.pay(oid, p.boolean("allow_high_fee", False))
        return {**await view(oid), "txid": txid}

    async def order_dispute(params: dict[str, Any]) -> Any:
        p = Params(params, {"order_id", "reason"})
        oid = order_id_param(p)
        reason = p.text("reason", True, MAX_TEXT)
        if not reason.strip():
            raise invalid_params("reason", "say what went wrong")
        await actions.dispute(oid, reason)
        return await view(oid)

    async def order_get(params: dict[str, Any]) -> Any:
        return await view(order_id_param(Params(params, {"order_id"})), opened=True)

    async def order_recover(params: dict[str, Any]) -> Any:
        p = Params(params, {"peer_id"})
        peer = peer_id_param(p, "peer_id", False)
        if svc.mailer is None:
            raise NotFound("this node does not trade")
        peers = [peer] if peer else svc.core.peers()
        recovered = 0
        for pid in peers:
            recovered += await svc.mailer.recover_from(pid)
        return {"asked": len(peers), "recovered": recovered}

    async def order_list(params: dict[str, Any]) -> Any:
        p = Params(params, {"role", "state"})
        role = p.text("role", False, 20)
        if role is not None and role not in r.ROLES:
            raise invalid_params("role", f"must be one of {list(r.ROLES)}")
        state = p.text("state", False, 30)
        if state is not None and state not in r.STATES:
            raise invalid_params("state", f"must be one of {list(r.STATES)}")
        rows = await svc.db.read(partial(ts.list_rows, role=role, state=state))
        out = []
        for row in rows:
            contract = await svc.db.read(partial(ts.load, order_id=row.order_id))
            if contract is not None:
                out.append(summary(contract, row))
        return out

    async def dispute_list(params: dict[str, Any]) -> Any:
        Params(params, set())
        rows = await svc.db.read(partial(ts.list_rows, role=r.MODERATOR))
        out = []
        for row in rows:
            contract = await svc.db.read(partial(ts.load, order_id=row.order_id))
            opened = contract.last(r.DISPUTE_OPEN) if contract is not None else None
            if contract is not None and opened is not None:
                out.append({**summary(contract, row), "reason": opened.data["reason"],
                            "opened_by": contract.role_of(opened.sender)})
        return out

    async def dispute_get(params: dict[str, Any]) -> Any:
        oid = order_id_param(Params(params, {"order_id"}))
        contract, row = await svc.load(oid)
        if contract.last(r.DISPUTE_OPEN) is None:
            raise NotFound(f"order {oid} has no dispute")
        return dispute_json(contract, row, svc.core.identity, await delivery(contract, row))

    async def dispute_decide(params: dict[str, Any]) -> Any:
        p = Params(params, {"order_id", "buyer_bp", "note"})
        oid = order_id_param(p)
        await actions.decide(oid, p.integer("buyer_bp", True, 0, r.BASIS),
                             p.text("note", False, MAX_TEXT) or "")
        return await view(oid)

    async def rating_list(params: dict[str, Any]) -> Any:
        p = Params(params, {"vendor"})
        vendor = peer_id_param(p, "vendor", False) or me
        return await svc.ratings.of_vendor(vendor)

    async def moderator_list(params: dict[str, Any]) -> Any:
        Params(params, set())
        return await svc.ratings.moderators()

    return {
        "order.create": order_create,
        "order.quote": order_quote,
        "order.confirm": simple("confirm"),
        "order.decline": simple("decline", {"reason": ("text", MAX_TEXT, False)}),
        "order.cancel": simple("cancel", {"reason": ("text", MAX_TEXT, False)}),
        "order.pay": order_pay,
        "order.fulfill": simple("fulfill", {"note": ("text", MAX_TEXT, False)}),
        "order.complete": order_complete,
        "order.refund": simple("refund"),
        "order.claim": simple("claim"),
        "order.dispute": order_dispute,
        "order.accept_decision": simple("accept"),
        "order.get": order_get,
        "order.recover": order_recover,
        "order.list": order_list,
        "dispute.list": dispute_list,
        "dispute.get": dispute_get,
        "dispute.decide": dispute_decide,
        "rating.list": rating_list,
        "moderator.list": moderator_list,
    }

