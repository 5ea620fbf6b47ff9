"""What trading needs from the rooms beside it, as interfaces: the market (listings, profiles,
moderators) and the wallet's escrow key ledger. The runner passes the real services in; trading
never reads their tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from protocol.store import StoreObject


class Market(Protocol):
    # set by trading: the moderator terms our profile publishes, and what a profile shows
    moderation: Callable[[], dict[str, str]] | None
    profile_extras: list[Callable[[str], Awaitable[dict[str, Any]]]]

    async def listing_wire(self, vendor: str, listing_id: str) -> bytes | None: ...

    async def vendors_of_listing(self, listing_id: str) -> list[str]: ...

    async def listing_vendors(self, limit: int) -> list[str]: ...

    async def store_object(self, vendor: str, kind: str) -> StoreObject | None: ...

    async def get_profile(self, vendor: str) -> StoreObject | None: ...

    async def moderators(self) -> list[StoreObject]: ...

    # a vendor's chain-checked ratings, for search by rating
    async def set_vendor_rating(self, vendor: str, count: int, average: float | None
                                ) -> None: ...

    # stock held for orders we confirmed as vendor (node/market/stock.py)
    async def reserve_stock(self, listing_id: str, order_id: str, quantity: int,
                            sku: list[str] | None = None) -> int: ...

    async def release_stock(self, order_id: str) -> None: ...

    async def holds_older_than(self, before: int) -> list[str]: ...

    async def settle_stock(self, order_id: str) -> None: ...

    async def stock_holds(self) -> list[tuple[str, str, int]]: ...


class EscrowKeys(Protocol):
    """The wallet's escrow keys, taken inside trading's own write transaction."""

    def take_escrow_key_in(self, conn: sqlite3.Connection, pubkey_for: Callable[[int], str],
                           purpose: str) -> tuple[str, int]: ...

    def label_escrow_key_in(self, conn: sqlite3.Connection, index: int,
                            purpose: str) -> None: ...

    def record_escrow_key_in(self, conn: sqlite3.Connection, pubkey: str, index: int,
                             purpose: str) -> None: ...
