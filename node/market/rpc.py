"""The market's JSON-RPC methods: profile.*, listing.*, store.*. They call the market
service's API only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.core.params import Params
from node.core.services import Handler, NotFound, RpcError, invalid_params
from protocol.identity import is_peer_id
from protocol.listing import EDITABLE, LISTING_ID_RE
from protocol.store import (
    MAX_ACCEPTED_MODERATORS,
    MAX_MODERATOR_DESCRIPTION,
    MAX_MODERATOR_FEE_BP,
)

if TYPE_CHECKING:
    from node.market.service import MarketService

LISTING_FIELDS = set(EDITABLE)


def peer_id_param(p: Params, name: str, required: bool = True) -> Any:
    value = p.text(name, required, 100)
    if value is not None and not is_peer_id(value):
        raise invalid_params(name, "is not a valid peer id")
    return value


def peer_ids_param(p: Params, name: str, limit: int) -> list[str]:
    """A list of distinct peer ids (at most ``limit``)."""
    value = p.any(name)
    if not isinstance(value, list) or len(value) > limit or not all(
            isinstance(x, str) and is_peer_id(x) for x in value):
        raise invalid_params(name, f"must be a list of at most {limit} peer ids")
    if len(set(value)) != len(value):
        raise invalid_params(name, "names a peer twice")
    return list(value)


def listing_id_param(p: Params, name: str = "id") -> str:
    value = p.text(name, True, 64)
    if not LISTING_ID_RE.fullmatch(value):
        raise invalid_params(name, "must be a listing id (32 hex characters)")
    return str(value)


def moderator_param(p: Params) -> dict[str, Any] | None:
    """``moderator``: null (stop moderating) or {fee_bp, fee_fixed, description?}."""
    value = p.any("moderator")
    if value is None:
        return None
    if not isinstance(value, dict) or not {"fee_bp", "fee_fixed"} <= set(value) or not set(
            value) <= {"fee_bp", "fee_fixed", "description"}:
        raise invalid_params("moderator", "must be null or {fee_bp, fee_fixed, description?}")
    inner = Params(value, {"fee_bp", "fee_fixed", "description"})
    try:
        return {"fee_bp": inner.integer("fee_bp", True, 0, MAX_MODERATOR_FEE_BP),
                "fee_fixed": inner.integer("fee_fixed", True, 0),
                "description": inner.text("description", False, MAX_MODERATOR_DESCRIPTION)
                or ""}
    except RpcError as exc:
        raise invalid_params(f"moderator.{exc.data['field']}", exc.message.split(": ", 1)[1]
                             ) from None


def market_methods(market: MarketService) -> dict[str, Handler]:
    me = market.me

    async def profile_get(params: dict[str, Any]) -> Any:
        p = Params(params, {"peer_id"})
        vendor = peer_id_param(p, "peer_id", False) or me
        profile = await market.get_profile(vendor)
        if profile is None:
            if vendor == me:
                return {"vendor": me, "name": "", "about": "", "seq": 0}
            raise NotFound(f"no profile found for {vendor}")
        return await market.profile_json(profile)

    async def profile_set(params: dict[str, Any]) -> Any:
        p = Params(params, {"name", "about", "moderator", "moderators"})
        changes: dict[str, Any] = {k: p.text(k, False) for k in ("name", "about") if p.has(k)}
        if p.has("moderator"):
            changes["moderator"] = moderator_param(p)
        if p.has("moderators"):
            changes["moderators"] = peer_ids_param(p, "moderators", MAX_ACCEPTED_MODERATORS)
        return await market.profile_json(await market.set_profile(changes))

    async def listing_create(params: dict[str, Any]) -> Any:
        p = Params(params, LISTING_FIELDS)
        for name in ("title", "price", "quantity"):
            p.any(name)  # required
        fields = {n: p.any(n) for n in LISTING_FIELDS if p.has(n)}
        return (await market.create_listing(fields)).to_json()

    async def listing_update(params: dict[str, Any]) -> Any:
        p = Params(params, LISTING_FIELDS | {"id"})
        lid = listing_id_param(p)
        changes = {n: p.any(n) for n in LISTING_FIELDS if p.has(n)}
        if not changes:
            raise invalid_params("params", f"nothing to change (fields: {sorted(LISTING_FIELDS)})")
        return (await market.update_listing(lid, changes)).to_json()

    async def listing_delete(params: dict[str, Any]) -> Any:
        lid = listing_id_param(Params(params, {"id"}))
        await market.delete_listing(lid)
        return {"id": lid, "deleted": True}

    async def listing_get(params: dict[str, Any]) -> Any:
        p = Params(params, {"id", "vendor"})
        lid = listing_id_param(p)
        return await market.get_listing(lid, peer_id_param(p, "vendor", False))

    async def listing_list(params: dict[str, Any]) -> Any:
        p = Params(params, {"vendor"})
        return await market.vendor_listings(peer_id_param(p, "vendor", False) or me)

    async def listing_search(params: dict[str, Any]) -> Any:
        p = Params(params, {"query", "limit"})
        query = p.text("query", True, 500)
        limit = p.integer("limit", False, 1, 500) or 50
        return [{"listing": body, "score": score}
                for body, score in await market.search(query, limit)]

    async def store_fetch(params: dict[str, Any]) -> Any:
        p = Params(params, {"peer_id"})
        return await market.fetch_store(peer_id_param(p, "peer_id"))

    return {
        "profile.get": profile_get,
        "profile.set": profile_set,
        "listing.create": listing_create,
        "listing.update": listing_update,
        "listing.delete": listing_delete,
        "listing.get": listing_get,
        "listing.list": listing_list,
        "listing.search": listing_search,
        "store.fetch": store_fetch,
    }
