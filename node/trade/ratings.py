"""Ratings and moderators as the network knows them.

A vendor's ratings are gathered from the network, not only from the vendor (who could hide bad
ones): from the vendor's node and from every node that announces (a DHT provider record under
``ratings_provider_key``) that it holds ratings of that vendor, which its buyers' nodes do.
Each is a proof (``protocol.ratings``) checked by its signatures, then against this node's own
chain view (its escrow was funded and released); only those count in a vendor's average.
Moderators are the profiles carrying moderator terms."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from embit.transaction import Transaction

from node.net.host import P2PError
from node.trade import store as trade_store
from protocol import ratings as pr
from protocol.errors import RemoteProtocolError
from protocol.order_delivery import MAX_ACK, MAX_RATINGS, ORDER_PROTOCOL, parse_ratings
from protocol.ratings import MAX_PROOF
from protocol.records import REPUBLISH_SECONDS, ratings_provider_key
from wallet.errors import ChainError

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")
FETCH_TIMEOUT = 5.0
MAX_SOURCES = 8  # nodes asked for one vendor's ratings
MAX_CHECKS = 50  # ratings checked against the chain per call
GATHER_VENDORS = 20  # vendors whose ratings one background round gathers at most
GATHER_AGAIN = 6 * 3600.0  # seconds before a vendor's ratings are gathered again
GATHER_PAUSE = 1.0  # seconds between two vendors of one round


class Ratings:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.db = svc.db
        self._provide: asyncio.Queue[str] = asyncio.Queue()
        self._gathered: dict[str, float] = {}  # vendor -> when its ratings were gathered
        self.gather_rounds = 0
        self.gathered_vendors = 0

    # ------------------------------------------------------------------ announcing
    def holding(self, vendor: str) -> None:
        """We hold a rating of ``vendor``: say so in the DHT (soon, off this call)."""
        self._provide.put_nowait(vendor)

    async def provide_loop(self) -> None:
        """Announce the vendors we hold ratings of: at start, on each new one, and before the
        records expire."""
        for vendor in await self.db.read(trade_store.rated_vendors):
            self._provide.put_nowait(vendor)
            await self.rank(vendor)
        while True:
            try:
                vendor = await asyncio.wait_for(self._provide.get(), REPUBLISH_SECONDS)
            except TimeoutError:
                for vendor in await self.db.read(trade_store.rated_vendors):
                    self._provide.put_nowait(vendor)
                continue
            try:
                await self.svc.core.host.provide(ratings_provider_key(vendor))
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("provide ratings of %s: %s", vendor[:12], exc)

    # ------------------------------------------------------------------ gathering
    async def _ask(self, peer: str, vendor: str, addrs: list[str] | None) -> list[bytes]:
        try:
            resp = await asyncio.wait_for(self.svc.core.host.request(
                peer, ORDER_PROTOCOL, {"op": "ratings", "vendor": vendor},
                MAX_RATINGS * MAX_PROOF + MAX_ACK, addrs or None), FETCH_TIMEOUT)
            return parse_ratings(resp)
        except (P2PError, RemoteProtocolError, TimeoutError) as exc:
            log.debug("ratings of %s from %s: %s", vendor[:12], peer[:12], exc)
            return []

    async def fetch(self, vendor: str) -> int:
        """Gather ``vendor``'s ratings from its node and from the nodes holding some; keep
        those whose proofs hold. Returns how many were new."""
        sources: dict[str, list[str]] = {}
        if vendor != self.svc.me:
            sources[vendor] = await self.svc.delivery.addresses(vendor)
        try:
            found = await self.svc.core.host.find_providers(ratings_provider_key(vendor))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("providers of ratings of %s: %s", vendor[:12], exc)
            found = {}
        for peer, addrs in found.items():
            if peer != self.svc.me and len(sources) < MAX_SOURCES:
                sources.setdefault(peer, list(addrs))
        answers = await asyncio.gather(*(self._ask(p, vendor, a) for p, a in sources.items()))
        held = await self.db.read(partial(trade_store.ratings, vendor=vendor))
        known = {x["order_id"] for x in held}
        new = 0
        for proof in {p for answer in answers for p in answer}:
            try:
                rating = await self.svc.core.cpu(pr.verify, proof)
            except RemoteProtocolError as exc:
                self.svc.core.reject("order", f"rating: {exc}")
                continue
            if rating.vendor != vendor or rating.order_id in known:
                continue
            known.add(rating.order_id)
            await self.db.write(partial(trade_store.put_rating, order_id=rating.order_id,
                                        vendor=vendor,
                                        rating=rating.rating, review=rating.review,
                                        time=rating.time, proof=proof))
            new += 1
        return new

    async def gather_loop(self, every: float) -> None:
        """In the background, gather and check the ratings of the vendors whose listings
        this node holds, so search by rating knows them before anyone asks (``rating.list``
        does the same for one vendor): each round takes the vendors with the newest listings
        not gathered in ``GATHER_AGAIN``, at most ``GATHER_VENDORS``, one a second (a node
        without a chain backend has nothing to check them against, and waits for one)."""
        await asyncio.sleep(min(every, 10.0))  # let the node find its peers first
        while True:
            if self.svc.holder.backend is None:  # nothing to check ratings against
                await asyncio.sleep(every)
                continue
            now = time.monotonic()
            due = [v for v in await self.svc.market.listing_vendors(GATHER_VENDORS * 5)
                   if now - self._gathered.get(v, -GATHER_AGAIN) >= GATHER_AGAIN]
            for vendor in due[:GATHER_VENDORS]:
                try:
                    await self.of_vendor(vendor)
                except (P2PError, RemoteProtocolError, ChainError) as exc:
                    log.debug("gathering the ratings of %s: %s", vendor[:12], exc)
                self._gathered[vendor] = time.monotonic()
                self.gathered_vendors += 1
                await asyncio.sleep(GATHER_PAUSE)
            self.gather_rounds += 1
            await asyncio.sleep(every)

    async def _chain_facts(self, rating: pr.Rating) -> pr.ChainFacts | None:
        backend = self.svc.holder.backend
        if backend is None:
            return None
        try:
            conf = await backend.tx_confirmations(rating.release_txid)
            raw = await backend.raw_transaction(rating.release_txid) if conf else None
            spends = None
            if raw is not None:
                vin = Transaction.parse(raw).vin[0]
                spends = (vin.txid.hex(), vin.vout)
            out = await backend.output(rating.funding_txid, rating.funding_vout)
        except (ChainError, ValueError, IndexError) as exc:
            log.debug("rating %s: %s", rating.order_id[:12], exc)
            return None
        return pr.ChainFacts(conf, spends, out.script if out is not None else None)

    async def of_vendor(self, vendor: str) -> list[dict[str, Any]]:
        """``rating.list``: the vendor's ratings gathered from the network, each marked
        ``verified`` once this node's chain view bore it out."""
        await self.fetch(vendor)
        out = []
        checks = 0
        for row in await self.db.read(partial(trade_store.ratings, vendor=vendor)):
            rating = pr.verify(row["proof"])  # stored proofs verified when they came
            verified = row["verified"]
            if not verified and checks < MAX_CHECKS:
                checks += 1
                facts = await self._chain_facts(rating)
                if facts is not None and pr.chain_checked(rating, facts):
                    verified = True
                    await self.db.write(partial(trade_store.set_verified, order_id=rating.order_id))
            out.append({**rating.to_json(), "verified": verified, "proof": row["proof"].hex()})
        await self.rank(vendor)
        return out

    async def rank(self, vendor: str) -> None:
        """Give search (``listing.search`` min_rating, sort rating) the vendor's chain-checked
        ratings as this node counts them."""
        got = (await self.summary(vendor))["ratings"]
        await self.svc.market.set_vendor_rating(vendor, got["count"], got["average"])

    async def summary(self, vendor: str) -> dict[str, Any]:
        """A vendor's ratings in its profile: the ones the chain bore out."""
        rows = [x for x in await self.db.read(partial(trade_store.ratings, vendor=vendor))
                if x["verified"]]
        count = len(rows)
        average = round(sum(x["rating"] for x in rows) / count, 2) if count else None
        return {"ratings": {"count": count, "average": average}}

    async def moderators(self) -> list[dict[str, Any]]:
        profiles = await self.svc.market.moderators()
        return [{"peer_id": p.vendor, "name": p.body["name"], "fee_bp": m["fee_bp"],
                 "fee_fixed": m["fee_fixed"], "description": m["description"],
                 "network": m["network"]}
                for p in profiles if (m := p.moderator) is not None]
