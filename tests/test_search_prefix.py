"""Search as you type (node/market/listings.py over the FTS5 index with prefix indexes, schema
step 9): every letter typed finds what starts so, stop words and one-letter words included,
on a real database."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from node.app.schema import open_database
from node.market import listings as ms
from protocol.identity import Identity
from protocol.listing import Listing

NOW = 1_800_000_000
ME = Identity(bytes([9]) * 32)


def listing(i: int, title: str) -> Listing:
    return Listing.create(ME, {
        "id": f"{i:032x}", "seq": 1, "title": title, "description": "A thing, and a good one",
        "price": {"amount": 1_000, "currency": "LTC"}, "quantity": 1, "tags": [],
        "created": NOW, "expires": NOW + 86400})


@pytest.mark.parametrize(("typed", "found"), [
    ("o", ["Birch tray", "Oak stool", "Old clock"]),  # "one" in every description
    ("ol", ["Old clock"]),
    ("oa", ["Oak stool"]),
    ("oak", ["Oak stool"]),
    ("oak s", ["Oak stool"]),
    ("a", ["Birch tray", "Oak stool", "Old clock"]),  # "a" and "and" in every description
    ("and a", ["Birch tray", "Oak stool", "Old clock"]),
    ("b", ["Birch tray"]),
    ("x", []),
    ("", ["Birch tray", "Oak stool", "Old clock"]),
])
async def test_each_letter_typed_finds_what_starts_so(tmp_path: Path, typed: str,
                                                       found: list[str]) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        for i, title in enumerate(("Oak stool", "Old clock", "Birch tray")):
            await db.write(partial(ms.insert_listing, listing=listing(i, title)))
        hits = await db.read(partial(ms.search, text=typed, limit=50, now=NOW))
        assert sorted(h["title"] for h, _ in hits) == found
        sql = await db.read(lambda c: c.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'listing_fts'").fetchone()[0])
        assert "prefix = '1 2 3'" in sql
    finally:
        await db.close()
