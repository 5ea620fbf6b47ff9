"""What got in a newcomer's way in the terminal UI, each reproduced with Textual's Pilot
against real nodes: an empty market at start, Ctrl+Q that did not quit a dialog, wrong input
taken silently, a status bar nobody saw, chat that needed a pasted peer id, a crash that ended
with status 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from tui.app import TorvApp
from tui.checkout import CheckoutScreen
from tui.client import RpcClient
from tui.keys_screen import KeysScreen

from .cluster import NodeProc, sample_listing, start_cluster, wait_for
from .tui_kit import rows

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    nodes = await start_cluster(tmp_path_factory.mktemp("newcomer"), 2)
    you, vendor = nodes
    await vendor.call("profile.set", name="Nora's Nook")
    for title in ("Linen apron", "Clay mug", "Wool socks"):
        await vendor.call("listing.create", **sample_listing(title, quantity=3))
    await you.call("profile.set", name="Yours Truly")
    await you.call("listing.create", **sample_listing("My own lamp"))

    async def arrived() -> bool:
        return len(await you.call("listing.search", query="")) == 4

    await wait_for(arrived, 30, what="the vendor's listings on our node")
    yield nodes
    for node in nodes:
        await node.stop()


def app_for(node: NodeProc, **kwargs: Any) -> TorvApp:
    return TorvApp(RpcClient.from_data_dir(node.data_dir), **kwargs)


def text(app: TorvApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def until(pilot: Any, pred: Any, what: str, timeout: float = 30) -> None:
    async def probe() -> bool:
        await pilot.pause()
        return bool(pred())

    await wait_for(probe, timeout, what=what)


async def pick(app: TorvApp, pilot: Any, title: str) -> None:
    """Move the market's cursor to the listing called ``title`` (once it is shown)."""
    await until(pilot, lambda: any(r[0] == title for r in rows(app, "#results")), title)
    table = app.query_one("#results", DataTable)
    table.focus()
    table.move_cursor(row=next(i for i, r in enumerate(rows(app, "#results"))
                               if r[0] == title))


async def test_the_market_shows_listings_before_anything_is_typed(pair: list[NodeProc]) -> None:
    you, _ = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: len(rows(app, "#results")) == 4, "the newest listings")
        assert "4 listing(s), newest first" in text(app, "#market-state")
        await until(pilot, lambda: app.focused is app.query_one("#search", Input),
                    "typing going to the search")
        await pilot.press(*"mug")
        await until(pilot, lambda: [r[0] for r in rows(app, "#results")] == ["Clay mug"],
                    "the typed search")
        await pilot.press(*"zzz")
        await until(pilot, lambda: "nothing found" in text(app, "#market-state"),
                    "nothing found, said so")
        assert app.query_one("#buy", Button).disabled  # no Buy for a listing no longer shown
        assert "Select a listing" in text(app, "#detail")


async def test_an_empty_market_says_it_is_searching(tmp_path: Path) -> None:
    alone = NodeProc(tmp_path / "alone")
    await alone.start()
    try:
        app = app_for(alone)
        async with app.run_test(size=(140, 45)) as pilot:
            await until(pilot, lambda: "searching the network" in text(app, "#market-state"),
                        "the empty market's state")
    finally:
        await alone.stop()


async def test_own_listing_is_shown_as_yours_and_cannot_be_bought(pair: list[NodeProc]) -> None:
    you, _ = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.focused is app.query_one("#search", Input), "focus")
        await pilot.press(*"lamp")

        def vendor_cell() -> str:
            found = rows(app, "#results")
            return str(found[0][3]) if len(found) == 1 else ""

        await until(pilot, lambda: vendor_cell() == "you (Yours Truly)", "our own name")
        table = app.query_one("#results", DataTable)
        table.focus()
        table.move_cursor(row=0)
        await until(pilot, lambda: "My own lamp" in text(app, "#detail"), "the detail")
        assert app.query_one("#buy", Button).disabled
        assert app.query_one("#message-vendor", Button).disabled
        assert "this is your own listing" in text(app, "#buy-hint")


async def test_ctrl_q_quits_from_inside_a_dialog(pair: list[NodeProc]) -> None:
    you, _ = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        await pick(app, pilot, "Clay mug")
        await until(pilot, lambda: not app.query_one("#buy", Button).disabled, "Buy")
        await pilot.click("#buy")
        await until(pilot, lambda: isinstance(app.screen, CheckoutScreen), "the checkout")
        app.screen.query_one("#quantity", Input).focus()  # even with a text field focused
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0  # it quit, and cleanly


async def test_every_key_is_listed(pair: list[NodeProc]) -> None:
    you, _ = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, KeysScreen), "the keys")
        shown = str(app.screen.query_one(Static).render())
        for key in ("Ctrl+Q", "Ctrl+R", "Escape", "Tab"):
            assert key in shown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KeysScreen), "back")


async def test_checkout_refuses_a_quantity_it_cannot_sell(pair: list[NodeProc]) -> None:
    you, _ = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        await pick(app, pilot, "Wool socks")
        await until(pilot, lambda: not app.query_one("#buy", Button).disabled, "Buy")
        await pilot.click("#buy")
        await until(pilot, lambda: isinstance(app.screen, CheckoutScreen), "the checkout")
        quantity = app.screen.query_one("#quantity", Input)
        place = app.screen.query_one("#place", Button)
        for typed, said in (("0", "at least 1"), ("", "give a quantity"),
                            ("9", "only 3 available")):
            quantity.value = typed
            await until(pilot, lambda said=said: said in str(
                app.screen.query_one("#quantity-msg", Label).render()), f"{said!r}")
            assert place.disabled  # never a silent order of 1
        quantity.value = "2"
        await until(pilot, lambda: "3 available" == str(
            app.screen.query_one("#quantity-msg", Label).render()), "a quantity it can sell")
        # no moderator is known on this chainless market: still no Place, and why
        assert place.disabled and "moderator" in str(
            app.screen.query_one("#checkout-msg", Label).render())


async def test_a_price_is_read_as_typed_or_refused(pair: list[NodeProc]) -> None:
    you, _ = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        app.query_one("TabbedContent").active = "store"
        await pilot.pause()
        create = app.query_one("#create", Button)
        assert create.disabled  # nothing to create yet
        app.query_one("#f-title", Input).value = "Oak spoon"
        for typed, said in (("1,500.50", "one decimal mark"), ("0", "more than 0"),
                            ("abc", "not an amount"), ("", "give an amount")):
            app.query_one("#f-amount", Input).value = typed
            await until(pilot, lambda said=said: said in text(app, "#message"), f"{said!r}")
            assert create.disabled
        app.query_one("#f-amount", Input).value = "1,5"
        app.query_one("#f-quantity", Input).value = "0"
        await until(pilot, lambda: "quantity: at least 1" in text(app, "#message"), "qty 0")
        assert create.disabled
        app.query_one("#f-quantity", Input).value = "2"
        await until(pilot, lambda: "1.5 LTC" in text(app, "#message"), "1,5 read as 1.5")
        assert not create.disabled
        create.press()
        await until(pilot, lambda: "created" in text(app, "#message"), "created, said so")

        async def created() -> Any:
            return [x for x in await you.call("listing.list") if x["title"] == "Oak spoon"]

        found = await wait_for(created, 20, what="the listing on the node")
        assert found[0]["price"] == {"amount": 150_000_000, "currency": "LTC"}  # 1.5, not 15


async def test_the_status_bar_is_seen_and_says_when_the_node_is_gone(tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "status")
    await node.start()
    app = app_for(node)
    async with app.run_test(size=(140, 45)) as pilot:
        status = app.query_one("#status", Static)
        await until(pilot, lambda: "connected" in str(status.render()), "connected")
        assert node.peer_id[-8:] in str(status.render()) and "0 peer(s)" in str(status.render())
        footer = app.query_one(Footer)
        assert status.region.height == 1 and status.region.bottom <= footer.region.y  # above
        assert status.region.y < app.size.height
        await node.stop()
        await until(pilot, lambda: "node unreachable" in str(status.render()), "unreachable")


async def test_message_the_vendor_of_a_listing(pair: list[NodeProc]) -> None:
    you, vendor = pair
    app = app_for(you)
    async with app.run_test(size=(140, 45)) as pilot:
        await pick(app, pilot, "Linen apron")
        await until(pilot, lambda: not app.query_one("#message-vendor", Button).disabled,
                    "Message vendor")
        await pilot.click("#message-vendor")
        await until(pilot, lambda: app.query_one("TabbedContent").active == "messages",
                    "the Messages tab")
        assert app.query_one("#chat-peer", Input).value == vendor.peer_id
        assert app.focused is app.query_one("#chat-input", Input)
        app.query_one("#chat-peer", Input).value = you.peer_id  # to ourselves: refused
        app.query_one("#chat-input", Input).value = "hello me"
        app.query_one("#chat-send", Button).press()
        await until(pilot, lambda: "not sent" in text(app, "#chat-hint"), "the refusal")
        app.query_one("#chat-peer", Input).value = vendor.peer_id
        app.query_one("#chat-input", Input).value = "Is the apron washable?"
        app.query_one("#chat-send", Button).press()
        await until(pilot, lambda: "not sent" not in text(app, "#chat-hint"),
                    "the old error gone after a success")
        assert "Nora's Nook" in text(app, "#chat-hint")

        async def got() -> bool:
            return any(m["text"] == "Is the apron washable?"
                       for m in await vendor.call("chat.list"))

        await wait_for(got, 20, what="the message at the vendor")


async def test_a_crash_is_written_down_and_ends_with_an_error(pair: list[NodeProc],
                                                             tmp_path: Path) -> None:
    you, _ = pair
    log = tmp_path / "tui-crash.log"
    app = app_for(you, crash_log=log)

    def boom() -> None:
        raise RuntimeError("a bug in the terminal UI")

    with pytest.raises(RuntimeError, match="a bug in the terminal UI"):
        async with app.run_test(size=(140, 45)) as pilot:
            app.call_later(boom)
            await pilot.pause()
    assert app.return_code == 1
    assert "RuntimeError: a bug in the terminal UI" in log.read_text()
