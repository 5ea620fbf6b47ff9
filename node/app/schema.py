"""The database's whole history in order: each step from the rooms whose tables it shapes.
The one place that knows every room's schema; ``open_database`` opens (and upgrades) the node's
database with it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node.community import schema as community
from node.core import meta, peers
from node.core.database import Database
from node.core.migrations import Step, together
from node.mail import schema as mail
from node.market import schema as market
from node.trade import schema as trade
from node.wallet import schema as wallet

MIGRATIONS: list[Step] = [
    together(peers.create_v1, market.v1),  # 1: Torv 0.1.0
    together(market.v2, wallet.v2),  # 2: stores as pages; the wallet's counters move in
    trade.v3,  # 3: trading
    together(mail.v4, meta.create_v4),  # 4: messages, node flags
    market.v5,  # 5: parked listings, incomplete stores
    mail.v6,  # 6: letters as (sender, id)
    trade.v7,  # 7: ratings proven by the chain
    market.v8,  # 8: stock held for confirmed orders
    market.v9,  # 9: prefix indexes for search as you type
    market.v10,  # 10: search sorted by price
    market.v11,  # 11: listing photos
    trade.v12,  # 12: digital goods kept for automatic delivery
    market.v13,  # 13: stock held per variant
    market.v14,  # 14: vendor ratings for search
    together(market.v15, community.v15),  # 15: community markets
    market.v16,  # 16: which markets each store names; stores browsed
]
SCHEMA_VERSION = len(MIGRATIONS)


async def open_database(path: Path) -> Database:
    db = await Database.open(path, MIGRATIONS)
    await asyncio.to_thread(wallet.retire_legacy_state, path.parent)
    return db


def open_database_sync(path: Path) -> Database:
    db = Database.open_sync(path, MIGRATIONS)
    wallet.retire_legacy_state(path.parent)
    return db
