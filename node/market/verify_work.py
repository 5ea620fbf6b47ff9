"""Signature checks of whole batches, run in a worker process (so they use another core than
the event loop, free of its GIL). Pure functions over bytes: they import only protocol/.

Each returns what verified and matched (indices of the wires, or rows ready to store), and the
reasons the others did not."""

from __future__ import annotations

from node.market.listings import ListingRow
from protocol.errors import RemoteProtocolError
from protocol.listing import Listing
from protocol.store import PAGE_TYPE, StoreObject


def check_listings(wires: list[bytes], vendor: str,
                   wanted: dict[str, bytes]) -> tuple[list[ListingRow], list[str]]:
    """The listings that verify and match, as rows ready to store."""
    good, bad = [], []
    for wire in wires:
        try:
            listing = Listing.from_wire(wire)
            if listing.vendor != vendor or wanted.get(listing.id) != listing.digest:
                raise RemoteProtocolError("listing does not match the vendor's store")
        except RemoteProtocolError as exc:
            bad.append(str(exc))
            continue
        good.append(ListingRow.of(listing))
    return good, bad


def check_pages(wires: list[bytes], vendor: str,
                wanted: dict[str, bytes]) -> tuple[list[int], list[str]]:
    good, bad = [], []
    for i, wire in enumerate(wires):
        try:
            page = StoreObject.from_wire(wire, PAGE_TYPE)
            if page.vendor != vendor or wanted.get(page.page_name) != page.digest:
                raise RemoteProtocolError("page does not match the vendor's manifest")
        except RemoteProtocolError as exc:
            bad.append(str(exc))
            continue
        good.append(i)
    return good, bad


def check_store_objects(wires: list[bytes]) -> tuple[list[int], list[str]]:
    good, bad = [], []
    for i, wire in enumerate(wires):
        try:
            StoreObject.from_wire(wire)
        except RemoteProtocolError as exc:
            bad.append(str(exc))
            continue
        good.append(i)
    return good, bad
