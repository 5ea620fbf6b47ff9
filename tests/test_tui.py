"""The TUI, driven by Textual's Pilot against real nodes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import Button, Input, Static

from tui.app import TorvApp
from tui.client import RpcClient
from tui.safe import plain

from .cluster import NodeProc, sample_listing, start_cluster, wait_for
from .tui_kit import rows

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    nodes = await start_cluster(tmp_path_factory.mktemp("tui"), 2)
    yield nodes
    for node in nodes:
        await node.stop()


async def test_search_shows_a_listing_published_by_another_node(pair: list[NodeProc]) -> None:
    you, vendor = pair
    made = await vendor.call("listing.create", **sample_listing("Birch canoe paddle"))
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        async def status_ok() -> bool:
            await pilot.pause()
            return you.peer_id[-8:] in str(app.query_one("#status", Static).render())

        await wait_for(status_ok, 20, what="status bar")
        await pilot.click("#search")
        await pilot.press(*"paddle")

        async def found() -> bool:
            await pilot.pause()
            return any(r[0] == "Birch canoe paddle" for r in rows(app, "#results"))

        await wait_for(found, 30, what="search result in the TUI")
        price = next(r[1] for r in rows(app, "#results") if r[0] == "Birch canoe paddle")
        assert price == "0.001 LTC"  # coins, not 100,000 base units
        await pilot.click("#results")
        await pilot.press("down", "up")
        await pilot.pause()
        detail = str(app.query_one("#detail", Static).render())
        assert "Birch canoe paddle" in detail and made["vendor"] in detail


async def test_creating_in_my_store_makes_it_searchable_elsewhere(pair: list[NodeProc]) -> None:
    you, other = pair
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("TabbedContent").active = "store"
        await pilot.pause()
        for field, text in (("#f-title", "Rowan wood spoon"), ("#f-description", "Carved"),
                            ("#f-amount", "0.25"), ("#f-tags", "kitchen, wood")):
            app.query_one(field, Input).value = text

        async def ready() -> bool:  # the form is checked as it is typed
            await pilot.pause()
            return not app.query_one("#create", Button).disabled

        await wait_for(ready, 10, what="the Create button, once the form is right")
        await pilot.click("#create")

        async def listed() -> bool:
            await pilot.pause()
            return any(r[0] == "Rowan wood spoon" for r in rows(app, "#mine"))

        await wait_for(listed, 20, what="listing in My store")

        async def elsewhere() -> Any:
            hits = await other.call("listing.search", query="rowan spoon")
            return hits and hits[0]["listing"]["tags"] == ["kitchen", "wood"] and \
                hits[0]["listing"]["price"] == {"amount": 25_000_000, "currency": "LTC"}

        await wait_for(elsewhere, 30, what="TUI listing on the other node")

        # a bad price gives a message as it is typed, not a crash, and creates nothing
        app.query_one("#f-amount", Input).value = "lots"

        async def complained() -> bool:
            await pilot.pause()
            return "is not an amount" in str(app.query_one("#message").render()) and \
                app.query_one("#create", Button).disabled

        await wait_for(complained, 10, what="form error message, Create off")
        await pilot.click("#create")
        await pilot.pause()
        assert len(await you.call("listing.list")) == 1


async def test_the_tui_follows_the_event_stream(pair: list[NodeProc], tmp_path: Any) -> None:
    """No polling: a listing published elsewhere appears by itself, and the peer count moves
    when a peer comes and goes."""
    you, vendor = pair
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        async def shown(text: str) -> bool:
            await pilot.pause()
            return text in str(app.query_one("#status", Static).render())

        peers = (await you.call("node.info"))["peers"]
        await wait_for(lambda: shown(f"{peers} peer(s)"), 20, what="status bar")
        # the peer dialled this node back (node.info.reachability): the bar says reachable
        await wait_for(lambda: shown("reachable  ·"), 60, what="'reachable' in the status bar")
        made = await vendor.call("listing.create", **sample_listing("Juniper walking stick"))

        async def appeared() -> bool:
            await pilot.pause()
            return any(r[0] == "Juniper walking stick" for r in rows(app, "#results"))

        await wait_for(appeared, 30, what="the new listing to appear without a search")
        guest = await NodeProc(tmp_path / "guest", bootstrap=[you.addr]).start()
        try:
            await wait_for(lambda: shown(f"{peers + 1} peer(s)"), 30, what="a peer to arrive")
        finally:
            await guest.stop()
        await wait_for(lambda: shown(f"{peers} peer(s)"), 30, what="the peer to leave")
        await vendor.call("listing.delete", id=made["id"])

        async def gone() -> bool:
            await pilot.pause()
            return not any(r[0] == "Juniper walking stick" for r in rows(app, "#results"))

        await wait_for(gone, 30, what="the deleted listing to disappear")


async def test_a_listing_photo_is_drawn_in_the_terminal(pair: list[NodeProc],
                                                        tmp_path: Any) -> None:
    import io

    from PIL import Image

    you, vendor = pair
    picture = Image.new("RGB", (200, 100), (250, 0, 0))
    picture.paste((0, 0, 250), (0, 50, 200, 100))  # red over blue
    out = io.BytesIO()
    picture.save(out, "PNG")
    path = tmp_path / "mug.png"
    path.write_bytes(out.getvalue())
    added = await vendor.call("listing.photo_add", path=str(path))
    await vendor.call("listing.create", **sample_listing("Stoneware mug"), type="physical",
                      condition="new", categories=["kitchen"], photos=[added["hash"]])
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.click("#search")
        await pilot.press(*"stoneware")

        async def found() -> bool:
            await pilot.pause()
            return any(r[0] == "Stoneware mug" for r in rows(app, "#results"))

        await wait_for(found, 30, what="the listing with a photo in the TUI")
        await pilot.click("#results")
        await pilot.press("down", "up")

        async def drawn() -> Any:
            await pilot.pause()
            shown = app.query_one("#photo", Static).render()
            return shown if "▀" in str(shown) else None

        shown = await wait_for(drawn, 30, what="the photo drawn in half blocks")
        assert "photo 1 of 1" in str(shown)
        detail = str(app.query_one("#detail", Static).render())
        assert "physical" in detail and "new" in detail and "kitchen" in detail


async def test_the_store_form_takes_the_listing_v2_fields_and_a_photo(
        pair: list[NodeProc], tmp_path: Any) -> None:
    import io

    from PIL import Image
    from textual.widgets import Select

    you, _ = pair
    path = tmp_path / "plans.png"
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 120, 0)).save(out, "PNG")
    path.write_bytes(out.getvalue())
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        app.query_one("TabbedContent").active = "store"
        await pilot.pause()
        for field, text in (("#f-title", "Bench plans"), ("#f-amount", "0.01"),
                            ("#f-categories", "plans, woodwork"), ("#f-days", "0"),
                            ("#f-photo", str(path))):
            app.query_one(field, Input).value = text
        app.query_one("#f-type", Select).value = "digital"
        app.query_one("#f-condition", Select).value = "new"

        async def said(text: str) -> bool:
            await pilot.pause()
            return text in str(app.query_one("#message").render())

        await wait_for(lambda: said("only a physical item"), 10,
                       what="a condition refused for digital goods, as typed")
        app.query_one("#f-condition", Select).clear()
        await pilot.click("#add-photo")
        await wait_for(lambda: said("photo added (64x64)"), 30, what="the photo added")
        assert "1 photo" in str(app.query_one("#photo-count").render())

        async def ready() -> bool:
            await pilot.pause()
            return not app.query_one("#create", Button).disabled

        await wait_for(ready, 10, what="the Create button")
        await pilot.click("#create")

        async def created() -> Any:
            items = [x for x in await you.call("listing.list") if x["title"] == "Bench plans"]
            return items[0] if items else None

        item = await wait_for(created, 20, what="the listing created from the form")
        assert item["type"] == "digital" and "condition" not in item
        assert item["categories"] == ["plans", "woodwork"] and item["processing_days"] == 0
        assert len(item["photos"]) == 1


async def test_the_store_form_makes_variants_and_coupons(pair: list[NodeProc]) -> None:
    from textual.widgets import DataTable

    you, _ = pair
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        app.query_one("TabbedContent").active = "store"
        await pilot.pause()

        async def said(text: str) -> bool:
            await pilot.pause()
            return text in str(app.query_one("#message").render())

        for field, text in (("#f-title", "Stool in sizes"), ("#f-amount", "0.02"),
                            ("#f-quantity", "2"), ("#f-variants", "size=S|L+0.005"),
                            ("#f-coupons", "spring=ten%")):
            app.query_one(field, Input).value = text
        await wait_for(lambda: said("a percentage is a whole number"), 10,
                       what="a bad coupon refused as typed")
        assert app.query_one("#create", Button).disabled
        app.query_one("#f-coupons", Input).value = "spring=10%"
        await wait_for(lambda: said("ready"), 10, what="the form to be right")
        await pilot.click("#create")

        async def listed() -> Any:
            items = [x for x in await you.call("listing.list") if x["title"] == "Stool in sizes"]
            return items[0] if items and items[0]["seq"] == want_seq else None

        want_seq = 1
        item = await wait_for(listed, 20, what="the listing with variants")
        assert item["options"] == [{"name": "size", "values": ["S", "L"]}]
        assert [(s["values"], s["surcharge"], s["quantity"]) for s in item["skus"]] == [
            (["S"], 0, 2), (["L"], 500_000, 2)]
        assert item["quantity"] == 4
        [coupon] = item["coupons"]
        assert coupon["percent"] == 10 and "spring" not in json.dumps(item).lower()

        # picked again for editing: the variants as typed, the coupons only counted
        table = app.query_one("#mine", DataTable)
        await wait_for(lambda: _has_row(pilot, table, item["id"]), 10, what="the store table")
        table.move_cursor(row=table.get_row_index(item["id"]))
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#f-variants", Input).value == "size=S|L"
        assert "1 coupon kept" in app.query_one("#f-coupons", Input).placeholder
        app.query_one("#f-variants", Input).value = "size=S|M|L"
        app.query_one("#f-coupons", Input).value = "autumn=0.001"
        await wait_for(lambda: said("ready"), 10, what="the edited form to be right")
        await pilot.click("#update")
        want_seq = 2
        item = await wait_for(listed, 20, what="the listing with a new variant")
        assert [(s["values"], s["quantity"]) for s in item["skus"]] == [
            (["S"], 2), (["M"], 4), (["L"], 2)]  # the new one starts with the form's quantity
        assert item["coupons"][0] == coupon and item["coupons"][1]["amount"] == 100_000
        assert item["quantity"] == 8


async def test_the_store_form_sets_variant_stock_and_shipping(pair: list[NodeProc]) -> None:
    from textual.widgets import DataTable

    you, _ = pair
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        app.query_one("TabbedContent").active = "store"
        await pilot.pause()

        async def said(text: str) -> bool:
            await pilot.pause()
            return text in str(app.query_one("#message").render())

        for field, text in (("#f-title", "Birch box"), ("#f-amount", "0.03"),
                            ("#f-quantity", "1"), ("#f-variants", "size=S|L"),
                            ("#f-stock", "S=5, XL=1"),
                            ("#f-shipping", "DK SE: Post 3d 0.0004+0.0001; pickup")):
            app.query_one(field, Input).value = text
        await wait_for(lambda: said("'XL=1' names no variant"), 10,
                       what="a variant that is not there refused as typed")
        app.query_one("#f-stock", Input).value = "S=5, L=2"
        await wait_for(lambda: said("ready"), 10, what="the form to be right")
        await pilot.click("#create")

        async def listed() -> Any:
            items = [x for x in await you.call("listing.list") if x["title"] == "Birch box"]
            return items[0] if items and items[0]["seq"] == want_seq else None

        want_seq = 1
        item = await wait_for(listed, 20, what="the listing with stock and shipping")
        assert [(s["values"], s["quantity"]) for s in item["skus"]] == [(["S"], 5), (["L"], 2)]
        assert item["quantity"] == 7 and item["shipping"] == []
        assert item["shipping_profile"] == {"regions": [{"countries": ["DK", "SE"], "services": [
            {"name": "Post", "days": 3, "first": 40_000, "additional": 10_000}]}],
            "pickup": True}

        # picked again: the stock and the shipping as typed; emptied, they go
        table = app.query_one("#mine", DataTable)
        await wait_for(lambda: _has_row(pilot, table, item["id"]), 10, what="the store table")
        table.move_cursor(row=table.get_row_index(item["id"]))
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#f-stock", Input).value == "S=5, L=2"
        assert app.query_one("#f-shipping", Input).value == "DK SE: Post 3d 0.0004+0.0001; pickup"
        for field in ("#f-variants", "#f-stock", "#f-shipping"):
            app.query_one(field, Input).value = ""
        app.query_one("#f-quantity", Input).value = "3"
        await wait_for(lambda: said("ready"), 10, what="the emptied form to be right")
        await pilot.click("#update")
        want_seq = 2
        item = await wait_for(listed, 20, what="the listing without variants or profile")
        assert "options" not in item and "skus" not in item and "shipping_profile" not in item
        assert item["quantity"] == 3


async def _has_row(pilot: Any, table: Any, key: str) -> bool:
    await pilot.pause()
    return key in {k.value for k in table.rows}


async def test_the_market_filters_narrow_and_sort_the_search(pair: list[NodeProc]) -> None:
    from textual.widgets import Select

    you, vendor = pair
    for title, amount, kind in (("Clay mug small", 100_000, "physical"),
                                ("Clay mug large", 300_000, "physical"),
                                ("Clay mug glaze recipe", 50_000, "digital")):
        await vendor.call("listing.create", **sample_listing(title, amount), type=kind)
    await vendor.call("listing.create", title="Clay mug in euros", description="",
                      price={"amount": 150_000, "currency": "EUR"}, quantity=1)
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        async def titles(want: list[str]) -> bool:
            await pilot.pause()
            return [r[0] for r in rows(app, "#results")] == want

        await pilot.click("#search")
        await pilot.press(*"clay mug")

        async def all_four() -> bool:
            await pilot.pause()
            return len(rows(app, "#results")) == 4

        await wait_for(all_four, 30, what="the four mugs")
        app.query_one("#f-kind", Select).value = "digital"
        await wait_for(lambda: titles(["Clay mug glaze recipe"]), 10, what="digital only")
        app.query_one("#f-kind", Select).clear()
        app.query_one("#f-rating", Select).value = 4  # no rating of this vendor checked here
        await wait_for(lambda: titles([]), 10, what="unrated vendors left out")
        app.query_one("#f-rating", Select).clear()
        app.query_one("#f-sort", Select).value = "price_desc"
        # prices compared in the coin: the mug priced in euros has no rate on this node, so
        # it comes last (its 150,000 cents are not read as 150,000 litoshis)
        await wait_for(lambda: titles(["Clay mug large", "Clay mug small",
                                       "Clay mug glaze recipe", "Clay mug in euros"]), 10,
                       what="dearest first")
        app.query_one("#f-max", Input).value = "0,002"  # either decimal mark
        await wait_for(lambda: titles(["Clay mug small", "Clay mug glaze recipe"]), 10,
                       what="at most 0.002 LTC")
        app.query_one("#f-max", Input).value = "lots"

        async def said() -> bool:
            await pilot.pause()
            return "max price" in str(app.query_one("#market-state", Static).render())

        await wait_for(said, 10, what="a bad maximum named")


async def test_the_market_switcher_searches_in_one_market(pair: list[NodeProc]) -> None:
    from textual.widgets import Select

    you, vendor = pair
    made = await vendor.call("market.create", name="Pottery [bold]guild[/]")
    market = made["market"]
    await vendor.call("listing.create", **sample_listing("Kiln shelf in guild"), markets=[market])
    await vendor.call("listing.create", **sample_listing("Kiln shelf elsewhere"))
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        async def titles(want: set[str]) -> bool:
            await pilot.pause()
            return {r[0] for r in rows(app, "#results")} == want

        await pilot.click("#search")
        await pilot.press(*"kiln shelf")
        both = {"Kiln shelf in guild", "Kiln shelf elsewhere"}
        await wait_for(lambda: titles(both), 30, what="both shelves")
        switcher = app.query_one("#f-market", Select)

        async def offered() -> bool:
            await pilot.pause()
            return any(value == market for _, value in switcher._options)

        await you.call("market.join", market=market, peer_id=vendor.peer_id)
        await wait_for(offered, 20, what="the joined market in the switcher (by its event)")
        # the name is shown as typed, never read as markup
        assert (plain("Pottery [bold]guild[/]"), market) in switcher._options
        switcher.value = market
        await wait_for(lambda: titles({"Kiln shelf in guild"}), 10, what="the guild's only")
        switcher.clear()
        await wait_for(lambda: titles(both), 10, what="all markets again")
