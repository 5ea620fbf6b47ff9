"""Ratings and moderators as the network knows them.

A vendor's ratings come from this node's own completed orders, from the vendor's node and from
the buyers' nodes we meet; each is a proof (``protocol.ratings``) checked before it counts.
Moderators are the profiles carrying moderator terms."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from protocol import ratings as pr
from protocol.errors import RemoteProtocolError
from protocol.order_delivery import MAX_ACK, ORDER_PROTOCOL, parse_ratings
from protocol.ratings import MAX_PROOF

from . import market_store as ms
from . import trade_store as ts
from .p2p import P2PError

if TYPE_CHECKING:
    from .trade_service import TradingService

log = logging.getLogger("torv.trade")
FETCH_TIMEOUT = 5.0


class Ratings:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.db = svc.db

    async def fetch(self, vendor: str) -> int:
        """Ask the vendor's node for the ratings it holds; keep those whose proofs hold."""
        if vendor == self.svc.me:
            return 0
        try:
            addrs = await self.svc.addresses(vendor)
            resp = await asyncio.wait_for(self.svc.core.host.request(
                vendor, ORDER_PROTOCOL, {"op": "ratings", "vendor": vendor},
                100 * MAX_PROOF + MAX_ACK, addrs or None), FETCH_TIMEOUT)
            proofs = parse_ratings(resp)
        except (P2PError, RemoteProtocolError, TimeoutError) as exc:
            log.debug("ratings of %s: %s", vendor[:12], exc)
            return 0
        good = 0
        for proof in proofs:
            try:
                rating = await self.svc.core.cpu(pr.verify, proof)
            except RemoteProtocolError as exc:
                self.svc.core.reject("order", f"rating: {exc}")
                continue
            if rating.vendor != vendor:
                continue
            await self.db.write(partial(ts.put_rating, order_id=rating.order_id, vendor=vendor,
                                        rating=rating.rating, review=rating.review,
                                        time=rating.time, proof=proof))
            good += 1
        return good

    async def of_vendor(self, vendor: str) -> list[dict[str, Any]]:
        await self.fetch(vendor)
        out = []
        for row in await self.db.read(partial(ts.ratings, vendor=vendor)):
            rating = pr.verify(row["proof"])  # what is returned verifies against its order
            out.append({**rating.to_json(), "proof": row["proof"].hex()})
        return out

    async def summary(self, vendor: str) -> dict[str, Any]:
        rows = await self.db.read(partial(ts.ratings, vendor=vendor))
        count = len(rows)
        average = round(sum(x["rating"] for x in rows) / count, 2) if count else None
        return {"ratings": {"count": count, "average": average}}

    async def moderators(self) -> list[dict[str, Any]]:
        profiles = await self.db.read(ms.moderator_profiles)
        return [{"peer_id": p.vendor, "name": p.body["name"], "fee_bp": m["fee_bp"],
                 "fee_fixed": m["fee_fixed"], "description": m["description"],
                 "network": m["network"]}
                for p in profiles if (m := p.moderator) is not None]
