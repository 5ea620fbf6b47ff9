"""The TUI's messages and notifications, driven by Textual's Pilot against real nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from textual.widgets import DataTable, Input, Static, TabbedContent

from tui.app import TorvApp
from tui.client import RpcClient

from .cluster import NodeProc, start_linked_pair, wait_for
from .tui_kit import rows

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    nodes = await start_linked_pair(tmp_path_factory.mktemp("tui-chat"))
    yield nodes
    for node in nodes:
        await node.stop()


async def test_a_message_shows_unread_opens_read_and_gets_a_reply(
    pair: list[NodeProc],
) -> None:
    you, friend = pair
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    async with app.run_test(size=(140, 44)) as pilot:
        async def streaming() -> bool:
            await pilot.pause()
            return you.peer_id[-8:] in str(app.query_one("#status", Static).render())

        await wait_for(streaming, 20, what="the TUI to connect")
        sent = await friend.call("chat.send", peer_id=you.peer_id, text="Hej! Is it oak?")

        async def badge() -> bool:
            await pilot.pause()
            tab = app.query_one(TabbedContent).get_tab("messages")
            return "Messages (1)" in str(tab.label) and \
                "1 unread message" in str(app.query_one("#status", Static).render())

        await wait_for(badge, 20, what="the unread badge")
        app.query_one(TabbedContent).active = "notifications"

        async def noted() -> bool:
            await pilot.pause()
            return any("Hej! Is it oak?" in str(r[2]) for r in rows(app, "#notes"))

        await wait_for(noted, 20, what="the notification")
        app.query_one(TabbedContent).active = "messages"
        await pilot.pause()
        table = app.query_one("#conversations", DataTable)
        table.focus()
        await pilot.press("enter")

        async def opened() -> bool:
            await pilot.pause()
            return "Hej! Is it oak?" in str(app.query_one("#thread", Static).render())

        await wait_for(opened, 20, what="the conversation")

        async def read_at_friend() -> bool:
            mine = [m for m in await friend.call("chat.list")
                    if m["message_id"] == sent["message_id"]]
            return bool(mine and mine[0]["status"] == "read")

        await wait_for(read_at_friend, 20, what="the friend to see it read")

        async def badge_gone() -> bool:
            await pilot.pause()
            return str(app.query_one(TabbedContent).get_tab("messages").label) == "Messages"

        await wait_for(badge_gone, 20, what="the badge to clear")
        app.query_one("#chat-input", Input).value = "Yes, solid oak."
        await pilot.click("#chat-send")

        async def reply_arrived() -> bool:
            return any(m["text"] == "Yes, solid oak." and not m["outgoing"]
                       for m in await friend.call("chat.list"))

        await wait_for(reply_arrived, 20, what="the reply at the friend")

        async def ticked() -> bool:
            await pilot.pause()
            text = str(app.query_one("#thread", Static).render())
            return "you: Yes, solid oak.  ✓" in text

        await wait_for(ticked, 20, what="the reply marked delivered")
