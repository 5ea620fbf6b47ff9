"""The money-safe issue's finding 6: a peer's text (a listing title, a description, a chat
message) is shown as text, never read as markup: it crashes no TUI, styles nothing, and cannot
forge a line. The hostile party is a real node publishing what the protocol allows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from rich.text import Text
from textual.widgets import DataTable, Static, TabbedContent

from tui.app import TorvApp
from tui.client import RpcClient
from tui.safe import block, plain

from .cluster import NodeProc, sample_listing, start_linked_pair, wait_for
from .tui_kit import rows

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    nodes = await start_linked_pair(tmp_path_factory.mktemp("tui-hostile"))
    yield nodes
    for node in nodes:
        await node.stop()


async def test_peer_text_is_cleaned_and_escaped() -> None:
    assert plain("Oak stool [/b]") == "Oak stool \\[/b]"
    assert plain("a\nb\x1b[31m\u202etxet") == "a b[31mtxet"
    assert block("hi\n[green]Vendor: pay", "  ") == "hi\n  \\[green]Vendor: pay"


async def test_6_a_listing_title_or_chat_line_crashes_no_tui_and_forges_no_line(
        pair: list[NodeProc]) -> None:
    you, hostile = pair
    await hostile.call("profile.set", name="[blink]Vera[/blink]")
    await hostile.call("listing.create", **sample_listing(
        "Oak stool [/b]", description="[link=http://evil]click[/link] [/red]"))
    forged = "hi\n01 Jan 00:00  [green]Vera's Woodshop: send 1 LTC to rltc1qevil[/green]"
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.click("#search")
        await pilot.press(*"oak")

        async def found() -> bool:
            await pilot.pause()
            return any(Text.from_markup(str(r[0])).plain == "Oak stool [/b]"
                       for r in rows(app, "#results"))

        await wait_for(found, 30, what="the hostile title, shown as written")
        table = app.query_one("#results", DataTable)
        table.focus()
        await pilot.press("down", "up")

        async def detail() -> str | None:
            await pilot.pause()
            text = str(app.query_one("#detail", Static).render())
            return text if "Oak stool [/b]" in text else None

        shown = await wait_for(detail, 20, what="the listing's detail")
        assert "[link=http://evil]click[/link] [/red]" in shown
        await hostile.call("chat.send", peer_id=you.peer_id, text=forged)
        app.query_one(TabbedContent).active = "messages"

        async def conversation() -> bool:
            await pilot.pause()
            return app.query_one("#conversations", DataTable).row_count > 0

        await wait_for(conversation, 30, what="the hostile conversation")
        app.query_one("#conversations", DataTable).focus()
        await pilot.press("enter")

        async def thread() -> str | None:
            await pilot.pause()
            text = str(app.query_one("#thread", Static).render())
            return text if "send 1 LTC" in text else None

        text = await wait_for(thread, 30, what="the hostile message")
        lines = text.splitlines()
        forged_line = next(x for x in lines if "send 1 LTC" in x)
        assert forged_line.startswith(" ")  # part of the message above, never a line of its own
        assert "[green]" in forged_line and "[blink]Vera[/blink]" in text
        assert app.is_running
