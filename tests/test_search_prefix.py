"""Search as you type (node/market/listings.py over the FTS5 index with prefix indexes, schema
step 9): every letter typed finds what starts so, stop words and one-letter words included,
on a real database."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from node.app.schema import open_database
from node.market import listings as ms
from node.market import scopes
from node.market.search import SearchFilters, browse_sql, price_factors, search
from protocol import fiat
from protocol.errors import LocalProtocolError
from protocol.identity import Identity
from protocol.listing import Listing
from tui.client import RpcCallError

from .cluster import NodeProc, sample_listing

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
        hits = await db.read(partial(search, text=typed, limit=50, now=NOW))
        assert sorted(h["title"] for h, _ in hits) == found
        sql = await db.read(lambda c: c.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'listing_fts'").fetchone()[0])
        assert "prefix = '1 2 3'" in sql
    finally:
        await db.close()


OTHER = Identity(bytes([10]) * 32)


def shop_listing(who: Identity, i: int, title: str, amount: int, regions: list[str],
                 currency: str = "LTC") -> Listing:
    return Listing.create(who, {
        "id": f"{i:032x}", "seq": 1, "title": title, "description": "for sale",
        "price": {"amount": amount, "currency": currency}, "quantity": 1, "tags": [],
        "shipping": [{"region": r, "price": {"amount": 1, "currency": currency}}
                     for r in regions],
        "created": NOW, "expires": NOW + 86400, **V2_FIELDS.get(i, {})})


V2_FIELDS: dict[int, dict[str, Any]] = {  # listing v2 fields of some of the shop's listings
    2: {"type": "physical", "condition": "used", "categories": ["Furniture", "Tables"]},
    4: {"type": "digital", "categories": ["plans"]},
}


SHOP = [(ME, 1, "Oak stool", 3_000, ["EU"]), (ME, 2, "Oak table", 9_000, ["DK", "SE"]),
        (OTHER, 3, "Oak shelf", 5_000, ["Worldwide"]), (OTHER, 4, "Oak bowl", 1_000, []),
        (ME, 5, "Oak spoon", 2_000, ["EU"])]


@pytest.mark.parametrize(("text", "filters", "titles"), [
    ("oak", SearchFilters(min_price=2_500, max_price=6_000, sort="price_asc"),
     ["Oak stool", "Oak shelf"]),
    ("", SearchFilters(sort="price_desc"),
     ["Oak table", "Oak shelf", "Oak stool", "Oak spoon", "Oak bowl"]),
    ("", SearchFilters(sort="price_asc", max_price=3_000),
     ["Oak bowl", "Oak spoon", "Oak stool"]),
    ("oak", SearchFilters(ships_to="dk", sort="price_asc"), ["Oak shelf", "Oak table"]),
    ("oak", SearchFilters(ships_to="EU", sort="newest"),
     ["Oak spoon", "Oak shelf", "Oak stool"]),  # newest first: inserted last
    ("", SearchFilters(vendor=OTHER.peer_id, sort="price_asc"), ["Oak bowl", "Oak shelf"]),
    ("oak", SearchFilters(currency="BTC"), []),
    ("oak s", SearchFilters(sort="price_asc", min_price=1_500),  # "sale" matches "s" too
     ["Oak spoon", "Oak stool", "Oak shelf", "Oak table"]),
    # listing v2: a v1 listing is physical; categories compared without case
    ("oak", SearchFilters(kind="physical", sort="price_asc"),
     ["Oak spoon", "Oak stool", "Oak shelf", "Oak table"]),
    ("", SearchFilters(kind="digital"), ["Oak bowl"]),
    ("", SearchFilters(kind="service"), []),
    ("oak", SearchFilters(category="furniture"), ["Oak table"]),
    ("", SearchFilters(condition="used", sort="price_asc"), ["Oak table"]),
    ("oak", SearchFilters(category="plans", kind="physical"), []),
])
async def test_filters_and_sorts(tmp_path: Path, text: str, filters: SearchFilters,
                                 titles: list[str]) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        for who, i, title, amount, regions in SHOP:
            await db.write(partial(ms.insert_listing,
                                   listing=shop_listing(who, i, title, amount, regions)))
        hits = await db.read(partial(search, text=text, limit=50, now=NOW, filters=filters))
        assert [h["title"] for h, _ in hits] == titles
        if not text and filters.sort.startswith("price") and filters.vendor is None:
            # the whole market by price walks the price index (ties alone are sorted); one
            # vendor's listings are found by vendor and sorted, a store's worth at most
            sql, args = browse_sql(filters)
            plan = await db.read(lambda c: " ".join(str(r[-1]) for r in c.execute(
                "EXPLAIN QUERY PLAN " + sql, (NOW, *args, 50))))
            assert "USING INDEX listings_price" in plan, plan
            if filters.where(indexed=False)[0] == "":  # row checks: the window is sorted again
                assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    finally:
        await db.close()


async def test_filters_through_the_api(tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "n").start()
    try:
        for title, amount, region in (("Oak stool", 3_000_000, "EU"),
                                      ("Oak table", 9_000_000, "US")):
            await node.call("listing.create", **sample_listing(title, amount=amount, shipping=[
                {"region": region, "price": {"amount": 1, "currency": "LTC"}}]))
        hits = await node.call("listing.search", query="oak", sort="price_desc")
        assert [h["listing"]["title"] for h in hits] == ["Oak table", "Oak stool"]
        hits = await node.call("listing.search", query="", ships_to="eu",
                               max_price=5_000_000, currency="LTC")
        assert [h["listing"]["title"] for h in hits] == ["Oak stool"]
        with pytest.raises(RpcCallError, match="sort"):
            await node.call("listing.search", query="oak", sort="cheapest")
        with pytest.raises(RpcCallError, match="currency"):
            await node.call("listing.search", query="oak", currency="ltc\n")
        # in the coin any node compares; in euros only a node with a rate (none here)
        hits = await node.call("listing.search", query="oak", price_in="LTC",
                               max_price=5_000_000, sort="price_asc")
        assert [(h["listing"]["title"], h["price_in"]) for h in hits] == [
            ("Oak stool", {"currency": "LTC", "amount": 3_000_000})]
        with pytest.raises(RpcCallError, match="no fresh LTC/EUR exchange rate"):
            await node.call("listing.search", query="oak", price_in="EUR", max_price=5)
    finally:
        await node.stop()


MARKET = "7a" * 32


@pytest.mark.parametrize("text", ["", "stool", "s"])
@pytest.mark.parametrize("sort", ["relevance", "newest", "price_asc", "price_desc", "rating"])
async def test_search_in_one_market(tmp_path: Path, text: str, sort: str) -> None:
    """What a market shows (node/market/scopes.py): listings naming it, by a vendor it admits,
    less what its log removed; with and without words, in every sort order."""
    db = await open_database(tmp_path / "torv.db")

    def made(who: Identity, i: int, title: str, markets: list[str]) -> Listing:
        body: dict[str, Any] = {
            "id": f"{i:032x}", "seq": 1, "title": title, "description": "a stool",
            "price": {"amount": 1_000 + i, "currency": "LTC"}, "quantity": 1,
            "created": NOW, "expires": NOW + 86400}
        if markets:
            body["markets"] = markets
        return Listing.create(who, body)

    try:
        for who, i, title, markets in ((ME, 1, "Oak stool", [MARKET]),
                                       (ME, 2, "Elm stool", [MARKET, "7b" * 32]),
                                       (ME, 3, "Ash stool", []),  # not in the market
                                       (OTHER, 4, "Pine stool", [MARKET])):  # not a member
            await db.write(partial(ms.insert_listing, listing=made(who, i, title, markets)))

        async def titles() -> list[str]:
            f = SearchFilters(sort=sort, market=MARKET)
            return sorted(h["title"] for h, _ in await db.read(
                partial(search, text=text, limit=50, now=NOW, filters=f)))

        assert await titles() == []  # a market this node does not know shows nothing
        await db.write(partial(scopes.set_scope, market=MARKET, is_open=False,
                               members=[ME.peer_id], hidden=[]))
        assert await titles() == ["Elm stool", "Oak stool"]
        await db.write(partial(scopes.set_scope, market=MARKET, is_open=True, members=[],
                               hidden=[(ME.peer_id, f"{1:032x}")]))
        assert await titles() == ["Elm stool", "Pine stool"]
        await db.write(partial(scopes.set_scope, market=MARKET, is_open=True, members=[],
                               hidden=[(ME.peer_id, "")]))  # a removed member: all of it
        assert await titles() == ["Pine stool"]
    finally:
        await db.close()


# prices in different money compared in one (listing.search {price_in}): a coin costs 80.00 EUR
# and 597.00 DKK; nobody knows a USD rate here
PRICES = {"EUR": 8_000, "DKK": 59_700}
MONEY = [(1, "Oak stool", 3_000_000, "LTC"),  # 0.03 LTC = 2.40 EUR
         (2, "Oak chair", 1_250, "EUR"),  # 12.50 EUR
         (3, "Oak lamp", 10_000, "DKK"),  # 100 DKK = 0.1675 LTC = 13.40 EUR
         (4, "Oak mug", 500, "USD")]  # no rate: never in a range, last by price


def in_money(price_in: str, **kw: Any) -> SearchFilters:
    return SearchFilters(price_in=price_in, factors=price_factors("LTC", price_in, PRICES), **kw)


def test_factors_between_currencies() -> None:
    eur = fiat.factors("LTC", "EUR", PRICES)
    assert eur is not None and eur["EUR"] == 1.0 and eur["LTC"] == 8_000 / 10**8
    assert round(10_000 * eur["DKK"]) == 1_340  # 100 DKK in euro cents
    ltc = fiat.factors("LTC", "LTC", PRICES)
    assert ltc is not None and ltc["LTC"] == 1.0 and ltc["EUR"] == 10**8 / 8_000
    assert fiat.factors("LTC", "USD", PRICES) is None  # no USD rate: nothing to compare in
    assert "USD" not in eur
    with pytest.raises(LocalProtocolError, match="no fresh LTC/USD exchange rate"):
        price_factors("LTC", "USD", PRICES)
    with pytest.raises(LocalProtocolError, match="price_in must be LTC or one of"):
        price_factors("LTC", "BTC", PRICES)
    assert in_money("EUR").converted({"price": {"amount": 3_000_000, "currency": "LTC"}}) == 240
    assert in_money("EUR").converted({"price": {"amount": 500, "currency": "USD"}}) is None


@pytest.mark.parametrize(("text", "filters", "titles"), [
    ("", in_money("EUR", max_price=1_300, sort="price_asc"), ["Oak stool", "Oak chair"]),
    ("", in_money("EUR", sort="price_asc"), ["Oak stool", "Oak chair", "Oak lamp", "Oak mug"]),
    ("", in_money("EUR", sort="price_desc"), ["Oak lamp", "Oak chair", "Oak stool", "Oak mug"]),
    ("oak", in_money("EUR", min_price=1_000, sort="price_asc"), ["Oak chair", "Oak lamp"]),
    ("oak", in_money("LTC", min_price=10_000_000, sort="price_desc"), ["Oak lamp", "Oak chair"]),
    ("", in_money("DKK", min_price=1_000, max_price=10_500, sort="price_asc"),
     ["Oak stool", "Oak chair", "Oak lamp"]),  # 17.91, 93.28 and 100 DKK
    ("", in_money("DKK", min_price=2_000, max_price=9_999), ["Oak chair"]),
    ("", in_money("EUR", max_price=1_300, currency="EUR"), ["Oak chair"]),
    # without price_in a range compares amounts as they are (like with like: give currency)
    ("", SearchFilters(max_price=2_000, currency="EUR"), ["Oak chair"]),
])
async def test_prices_compared_in_one_currency(tmp_path: Path, text: str,
                                              filters: SearchFilters, titles: list[str]) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        for i, title, amount, currency in MONEY:
            await db.write(partial(ms.insert_listing, listing=Listing.create(ME, {
                "id": f"{i:032x}", "seq": 1, "title": title, "description": "for sale",
                "price": {"amount": amount, "currency": currency}, "quantity": 1, "tags": [],
                "created": NOW, "expires": NOW + 86400})))
        hits = await db.read(partial(search, text=text, limit=50, now=NOW, filters=filters))
        assert [h["title"] for h, _ in hits] == titles
    finally:
        await db.close()
