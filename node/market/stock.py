"""Stock that never oversells: what a vendor's node holds for orders it confirmed.

A listing's published ``quantity`` is what is left to sell. Confirming an order takes its
quantity off the listing and records a hold, in one transaction with the re-signed listing
(``reserve``); a hold ends either for good when the buyer pays (``settle``: the items are sold)
or by putting the quantity back when the order ends unpaid, declined or cancelled
(``release``). Every step is keyed by the order id and idempotent, so the trading room may
repeat it after a crash; ``holds`` lists what is held, for trading to reconcile at start.
"""

from __future__ import annotations

import sqlite3

from node.core.services import NotFound, OutOfStock
from node.market import listings as ms
from node.market import manifests as mfs
from protocol.identity import Identity
from protocol.listing import Listing


def held(conn: sqlite3.Connection, order_id: str) -> tuple[str, int] | None:
    """(listing id, quantity) held for ``order_id``, or None."""
    row = conn.execute("SELECT listing_id, quantity FROM stock_holds WHERE order_id = ?",
                       (order_id,)).fetchone()
    return (str(row[0]), int(row[1])) if row else None


def hold(conn: sqlite3.Connection, order_id: str, listing_id: str, quantity: int,
         now: int) -> None:
    conn.execute("INSERT INTO stock_holds (order_id, listing_id, quantity, created) "
                 "VALUES (?, ?, ?, ?)", (order_id, listing_id, quantity, now))


def drop(conn: sqlite3.Connection, order_id: str) -> None:
    conn.execute("DELETE FROM stock_holds WHERE order_id = ?", (order_id,))


def holds(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """Every hold: (order id, listing id, quantity), oldest first."""
    return [(str(o), str(lid), int(q)) for o, lid, q in conn.execute(
        "SELECT order_id, listing_id, quantity FROM stock_holds ORDER BY created, order_id")]


def held_for_listing(conn: sqlite3.Connection, listing_id: str) -> int:
    row = conn.execute("SELECT COALESCE(SUM(quantity), 0) FROM stock_holds "
                       "WHERE listing_id = ?", (listing_id,)).fetchone()
    return int(row[0])


Outcome = tuple[mfs.OwnStore | None, Listing | None, int]


def _listing(conn: sqlite3.Connection, me: str, listing_id: str) -> Listing | None:
    wire = ms.get_listing_wire(conn, me, listing_id)
    return Listing.from_trusted(wire) if wire is not None else None


def _publish(conn: sqlite3.Connection, identity: Identity, now: int, listing: Listing,
             quantity: int) -> Outcome:
    updated = listing.updated(identity, {"quantity": quantity})
    return mfs.publish_own(conn, identity, now, updated), updated, quantity


def reserve(conn: sqlite3.Connection, identity: Identity, now: int, order_id: str,
            listing_id: str, quantity: int) -> Outcome:
    """Take ``quantity`` off our listing for ``order_id`` (OutOfStock if fewer are left);
    nothing again for an order already holding stock."""
    listing = _listing(conn, identity.peer_id, listing_id)
    if listing is None:
        raise NotFound(f"no listing {listing_id} in your store")
    left = int(listing.body["quantity"])
    if held(conn, order_id) is not None or listing.unlimited:  # unlimited: nothing is counted
        return None, None, left
    if quantity > left:
        raise OutOfStock(listing_id, left, quantity)
    hold(conn, order_id, listing_id, quantity, now)
    return _publish(conn, identity, now, listing, left - quantity)


def release(conn: sqlite3.Connection, identity: Identity, now: int, order_id: str) -> Outcome:
    """Put back what ``order_id`` held (the order ended unpaid); nothing if it held nothing."""
    h = held(conn, order_id)
    if h is None:
        return None, None, 0
    drop(conn, order_id)
    listing = _listing(conn, identity.peer_id, h[0])
    if listing is None:  # deleted since: nothing to put back on sale
        return None, None, 0
    return _publish(conn, identity, now, listing, int(listing.body["quantity"]) + h[1])


def settle(conn: sqlite3.Connection, order_id: str) -> bool:
    """The order was paid: its items are sold for good (the hold just ends)."""
    if held(conn, order_id) is None:
        return False
    drop(conn, order_id)
    return True


def set_left(conn: sqlite3.Connection, identity: Identity, now: int, listing_id: str,
             quantity: int) -> Outcome:
    """The vendor says how many are left to sell (held items are not counted in it)."""
    listing = _listing(conn, identity.peer_id, listing_id)
    if listing is None:
        raise NotFound(f"no listing {listing_id} in your store")
    return _publish(conn, identity, now, listing, quantity)
