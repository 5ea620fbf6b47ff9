"""The market's JSON-RPC methods: node.*, profile.*, listing.*, store.*."""

from __future__ import annotations

from typing import Any

from protocol.errors import TorvError
from protocol.identity import is_peer_id
from protocol.listing import EDITABLE, LISTING_ID_RE, Listing

from .node import Node, NotFound
from .p2p import P2PError
from .rpc_params import Params
from .rpc_server import NETWORK_ERROR, NOT_FOUND, Handler, RpcError, invalid_params

LISTING_FIELDS = set(EDITABLE)


def map_market_error(exc: TorvError) -> RpcError | None:
    if isinstance(exc, NotFound):
        return RpcError(NOT_FOUND, str(exc))
    if isinstance(exc, P2PError):
        return RpcError(NETWORK_ERROR, str(exc))
    return None


def listing_json(listing: Listing) -> dict[str, Any]:
    return listing.to_json()


def _peer_id(p: Params, name: str, required: bool = True) -> Any:
    value = p.text(name, required, 100)
    if value is not None and not is_peer_id(value):
        raise invalid_params(name, "is not a valid peer id")
    return value


def _listing_id(p: Params) -> str:
    value = p.text("id", True, 64)
    if not LISTING_ID_RE.match(value):
        raise invalid_params("id", "must be a listing id (32 hex characters)")
    return str(value)


def market_methods(node: Node, rpc_port: int) -> dict[str, Handler]:
    async def node_info(params: dict[str, Any]) -> Any:
        Params(params, set())
        return {**node.info(), "rpc_port": rpc_port}

    async def node_peers(params: dict[str, Any]) -> Any:
        Params(params, set())
        return [{"peer_id": pid, "addrs": node.p2p.peer_addrs(pid)}
                for pid in node.p2p.connected_peers()]

    async def node_connect(params: dict[str, Any]) -> Any:
        p = Params(params, {"addr"})
        addr = p.text("addr", True, 500)
        if "/p2p/" not in addr:
            raise invalid_params("addr", "must be a multiaddr ending in /p2p/<peer id>")
        return {"peer_id": await node.connect(addr)}

    async def profile_get(params: dict[str, Any]) -> Any:
        p = Params(params, {"peer_id"})
        vendor = _peer_id(p, "peer_id", False) or node.me
        profile = await node.get_profile(vendor)
        if profile is None:
            if vendor == node.me:
                return {"vendor": node.me, "name": "", "about": "", "seq": 0}
            raise NotFound(f"no profile found for {vendor}")
        return dict(profile.body)

    async def profile_set(params: dict[str, Any]) -> Any:
        p = Params(params, {"name", "about"})
        profile = await node.set_profile(p.text("name", False), p.text("about", False))
        return dict(profile.body)

    async def listing_create(params: dict[str, Any]) -> Any:
        p = Params(params, LISTING_FIELDS)
        for name in ("title", "price", "quantity"):
            p.any(name)  # required
        fields = {n: p.any(n) for n in LISTING_FIELDS if p.has(n)}
        return listing_json(await node.create_listing(fields))

    async def listing_update(params: dict[str, Any]) -> Any:
        p = Params(params, LISTING_FIELDS | {"id"})
        lid = _listing_id(p)
        changes = {n: p.any(n) for n in LISTING_FIELDS if p.has(n)}
        if not changes:
            raise invalid_params("params", f"nothing to change (fields: {sorted(LISTING_FIELDS)})")
        return listing_json(await node.update_listing(lid, changes))

    async def listing_delete(params: dict[str, Any]) -> Any:
        lid = _listing_id(Params(params, {"id"}))
        await node.delete_listing(lid)
        return {"id": lid, "deleted": True}

    async def listing_get(params: dict[str, Any]) -> Any:
        lid = _listing_id(Params(params, {"id"}))
        listing = node.storage.get_listing(lid)
        if listing is None:
            raise NotFound(f"no listing {lid} known")
        return listing_json(listing)

    async def listing_list(params: dict[str, Any]) -> Any:
        p = Params(params, {"vendor"})
        vendor = _peer_id(p, "vendor", False) or node.me
        return [listing_json(x) for x in node.storage.listings_by_vendor(vendor)]

    async def listing_search(params: dict[str, Any]) -> Any:
        p = Params(params, {"query", "limit"})
        query = p.text("query", True, 500)
        limit = p.integer("limit", False, 1, 500) or 50
        hits = node.storage.search(query, limit, node.now())
        return [{"listing": listing_json(x), "score": score} for x, score in hits]

    async def store_fetch(params: dict[str, Any]) -> Any:
        p = Params(params, {"peer_id"})
        vendor = _peer_id(p, "peer_id")
        manifest, listings = await node.fetch_store(vendor)
        profile = node.storage.get_store(vendor, "profile")
        return {
            "vendor": vendor,
            "manifest_seq": manifest.seq,
            "complete": len(listings) == len(manifest.manifest_entries()),
            "profile": dict(profile.body) if profile else None,
            "listings": [listing_json(x) for x in listings],
        }

    return {
        "node.info": node_info,
        "node.peers": node_peers,
        "node.connect": node_connect,
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
