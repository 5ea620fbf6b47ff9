"""A store as a spreadsheet, on the market service (``MarketService`` inherits it): export,
all-or-nothing import (photos resolved first) and the bulk stock update, each signed and
published as one change (rules and columns in ``listing_csv``)."""

from __future__ import annotations

import asyncio
from typing import Any

from node.core.database import Database
from node.core.node import NodeCore
from node.market import listing_csv
from node.market import manifests as mfs
from node.market.photos import Photos
from protocol.listing import Listing


class CsvOps:
    core: NodeCore
    db: Database
    photos: Photos
    _own_lock: asyncio.Lock

    async def own_listings(self) -> list[Listing]:
        raise NotImplementedError

    async def _announce(self, own: mfs.OwnStore, listing: Listing | None = None) -> None:
        raise NotImplementedError

    async def export_listings(self) -> str:
        return listing_csv.to_csv(await self.own_listings())

    async def import_listings(self, text: str, dry_run: bool) -> dict[str, Any]:
        """Every row checked first; written all together or not at all."""
        refs, photo_errors = await self.photos.resolve_csv(text)
        async with self._own_lock:
            own = {x.id: x for x in await self.own_listings()}
            now = self.core.now()
            parsed = await asyncio.to_thread(listing_csv.parse, text, own, now,
                                             self.core.identity, refs)
            said = {e.line for e in photo_errors}  # a photo refused: once, with its reason
            parsed.errors = sorted(photo_errors + [
                e for e in parsed.errors if not (e.field == "photos" and e.line in said)],
                key=lambda e: e.line)
            report = {"rows": parsed.rows, "created": len(parsed.created),
                      "updated": len(parsed.updated), "unchanged": parsed.unchanged,
                      "errors": [e.to_json() for e in parsed.errors],
                      "imported": False, "dry_run": dry_run}
            changed = parsed.created + parsed.updated
            if parsed.errors or dry_run or not changed:
                return report
            own_store = await self.db.write(
                lambda c: mfs.publish_many(c, self.core.identity, changed))
        await self._announce(own_store)
        return {**report, "imported": True}

    async def stock_bulk(self, text: str) -> dict[str, Any]:
        """Many listings' quantities left at once (``id,quantity`` CSV), all or nothing,
        re-signing only the pages those listings are on (and the manifest)."""
        async with self._own_lock:
            own = {x.id: x for x in await self.own_listings()}
            changed, unchanged, errors = await asyncio.to_thread(
                listing_csv.parse_stock, text, own, self.core.identity)
            report = {"updated": len(changed), "unchanged": unchanged,
                      "errors": [e.to_json() for e in errors], "imported": False}
            if errors or not changed:
                return report
            own_store = await self.db.write(
                lambda c: mfs.publish_many(c, self.core.identity, changed))
        await self._announce(own_store)
        return {**report, "imported": True}
