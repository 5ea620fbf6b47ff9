"""Stock that never oversells: what a vendor's node holds for orders it confirmed.

A listing's published ``quantity`` is what is left to sell. Confirming an order takes its
quantity off the listing and records a hold, in one transaction with the re-signed listing
(``reserve``); a hold ends either for good when the buyer pays (``settle``: the items are sold)
or by putting the quantity back when the order ends unpaid, declined or cancelled
(``release``). Every step is keyed by the order id and idempotent, so the trading room may
repeat it after a crash; ``holds`` lists what is held, for trading to reconcile at start.
"""

from __future__ import annotations

import json
import sqlite3

from node.core.services import NotFound, OutOfStock
from node.market import listings as ms
from node.market import manifests as mfs
from protocol import variants
from protocol.identity import Identity
from protocol.listing import Listing


def held(conn: sqlite3.Connection, order_id: str) -> tuple[str, int, list[str] | None] | None:
    """(listing id, quantity, variant values or None) held for ``order_id``, or None."""
    row = conn.execute("SELECT listing_id, quantity, sku FROM stock_holds WHERE order_id = ?",
                       (order_id,)).fetchone()
    if row is None:
        return None
    return str(row[0]), int(row[1]), json.loads(row[2]) if row[2] is not None else None


def hold(conn: sqlite3.Connection, order_id: str, listing_id: str, quantity: int,
         now: int, sku: list[str] | None = None) -> None:
    conn.execute("INSERT INTO stock_holds (order_id, listing_id, quantity, created, sku) "
                 "VALUES (?, ?, ?, ?, ?)", (order_id, listing_id, quantity, now,
                                            json.dumps(sku) if sku is not None else None))


def drop(conn: sqlite3.Connection, order_id: str) -> None:
    conn.execute("DELETE FROM stock_holds WHERE order_id = ?", (order_id,))


def holds(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """Every hold: (order id, listing id, quantity), oldest first."""
    return [(str(o), str(lid), int(q)) for o, lid, q in conn.execute(
        "SELECT order_id, listing_id, quantity FROM stock_holds ORDER BY created, order_id")]


def older_than(conn: sqlite3.Connection, before: int) -> list[str]:
    """The orders whose hold was taken before ``before`` (Unix seconds), oldest first."""
    return [str(o) for (o,) in conn.execute(
        "SELECT order_id FROM stock_holds WHERE created < ? ORDER BY created, order_id",
        (before,))]


def held_for_listing(conn: sqlite3.Connection, listing_id: str) -> int:
    row = conn.execute("SELECT COALESCE(SUM(quantity), 0) FROM stock_holds "
                       "WHERE listing_id = ?", (listing_id,)).fetchone()
    return int(row[0])


Outcome = tuple[mfs.OwnStore | None, Listing | None, int]


def _listing(conn: sqlite3.Connection, me: str, listing_id: str) -> Listing | None:
    wire = ms.get_listing_wire(conn, me, listing_id)
    return Listing.from_trusted(wire) if wire is not None else None


def _publish(conn: sqlite3.Connection, identity: Identity, now: int, listing: Listing,
             quantity: int, sku: list[str] | None = None) -> Outcome:
    """Re-sign the listing with ``quantity`` left (of the variant ``sku`` when given: then the
    listing's own quantity is the sum over its variants)."""
    if sku is not None:
        changes = variants.with_stock(listing.body, sku, quantity)
    else:
        changes = {"quantity": quantity}
    updated = listing.updated(identity, changes)
    return mfs.publish_own(conn, identity, now, updated), updated, quantity


def _variant(listing: Listing, sku: list[str] | None) -> tuple[list[str] | None, int]:
    """The variant a stock change is about and how many of it are left (NotFound when the
    listing has variants and ``sku`` names none of them, or has none and ``sku`` is given)."""
    if not listing.body.get("skus"):
        if sku is not None:
            raise NotFound(f"listing {listing.id} has no variants")
        return None, int(listing.body["quantity"])
    entry = variants.find(listing.body, sku)
    if entry is None:
        raise NotFound(f"listing {listing.id} has no variant "
                       f"{variants.label(sku or ['(none given)'])!r}")
    return list(entry["values"]), int(entry["quantity"])


def reserve(conn: sqlite3.Connection, identity: Identity, now: int, order_id: str,
            listing_id: str, quantity: int, sku: list[str] | None = None) -> Outcome:
    """Take ``quantity`` (of the variant ``sku``) off our listing for ``order_id`` (OutOfStock
    if fewer are left); nothing again for an order already holding stock."""
    listing = _listing(conn, identity.peer_id, listing_id)
    if listing is None:
        raise NotFound(f"no listing {listing_id} in your store")
    variant, left = _variant(listing, sku)
    if held(conn, order_id) is not None or listing.unlimited:  # unlimited: nothing is counted
        return None, None, left
    if quantity > left:
        raise OutOfStock(listing_id, left, quantity)
    hold(conn, order_id, listing_id, quantity, now, variant)
    return _publish(conn, identity, now, listing, left - quantity, variant)


def release(conn: sqlite3.Connection, identity: Identity, now: int, order_id: str) -> Outcome:
    """Put back what ``order_id`` held (the order ended unpaid); nothing if it held nothing."""
    h = held(conn, order_id)
    if h is None:
        return None, None, 0
    drop(conn, order_id)
    listing = _listing(conn, identity.peer_id, h[0])
    if listing is None:  # deleted since: nothing to put back on sale
        return None, None, 0
    if h[2] is not None:
        entry = variants.find(listing.body, h[2])
        if entry is None:  # the variant is gone from the listing: nothing to put back
            return None, None, 0
        return _publish(conn, identity, now, listing, int(entry["quantity"]) + h[1], h[2])
    if listing.body.get("skus"):  # variants added since the hold: nothing to put back to
        return None, None, 0
    return _publish(conn, identity, now, listing, int(listing.body["quantity"]) + h[1])


def settle(conn: sqlite3.Connection, order_id: str) -> bool:
    """The order was paid: its items are sold for good (the hold just ends)."""
    if held(conn, order_id) is None:
        return False
    drop(conn, order_id)
    return True


def set_left(conn: sqlite3.Connection, identity: Identity, now: int, listing_id: str,
             quantity: int, sku: list[str] | None = None) -> Outcome:
    """The vendor says how many are left to sell (of the variant ``sku``; held items are not
    counted in it)."""
    listing = _listing(conn, identity.peer_id, listing_id)
    if listing is None:
        raise NotFound(f"no listing {listing_id} in your store")
    variant, _ = _variant(listing, sku)
    return _publish(conn, identity, now, listing, quantity, variant)
