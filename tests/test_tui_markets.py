"""The TUI's Communities tab against real nodes (Textual's Pilot): a vendor joins a market by
its id and applies with a steward's invitation code; the other steward sees the admission in
its queue and signs it, and the vendor is a member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static, TabbedContent

from tui.app import TorvApp
from tui.client import RpcClient

from .cluster import NodeProc, start_cluster, wait_for
from .tui_kit import rows

pytestmark = [pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]


def _text(app: TorvApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_join_apply_and_sign_in_the_communities_tab(tmp_path: Path) -> None:
    a, b, vendor = await start_cluster(tmp_path, 3)
    try:
        made = await a.call("market.create", name="Fjord [red]crafts[/]", threshold=2,
                            stewards=[a.peer_id, b.peer_id], admission="approved",
                            rules="Made by hand.")
        market = made["proposal"]

        async def queued_at_b() -> list[dict[str, Any]]:
            return list((await b.call("market.queue"))["proposals"])

        await wait_for(queued_at_b, 30, what="the founding at B")
        await b.call("market.sign", proposal=market)
        await wait_for(lambda: _known(a, market), 30, what="the founding back at A")
        code = (await a.call("market.invite", market=market))["code"]

        app = TorvApp(RpcClient.from_data_dir(vendor.data_dir))
        async with app.run_test(size=(140, 50)) as pilot:
            app.query_one(TabbedContent).active = "communities"
            await pilot.pause()
            app.query_one("#cm-id", Input).value = market
            await pilot.click("#cm-join")

            async def listed() -> bool:
                await pilot.pause()
                shown = rows(app, "#cm-list")
                return bool(shown) and shown[0][0].startswith("✓")

            await wait_for(listed, 30, what="the joined market in the list")

            async def page() -> bool:
                await pilot.pause()
                return "Fjord [red]crafts[/]" in _text(app, "#cm-page")  # as typed

            await wait_for(page, 10, what="the market's page")
            assert "Rules: Made by hand." in _text(app, "#cm-page")
            assert "keeps every store's listings" in _text(app, "#cm-carry")  # --carry all
            app.query_one("#cm-note", Input).value = code
            await pilot.click("#cm-apply")

            async def sent() -> bool:
                await pilot.pause()
                return "application sent" in _text(app, "#cm-say")

            await wait_for(sent, 30, what="the application sent")

        # A's node proposed the admission by itself (its invitation); B signs it in its TUI
        app = TorvApp(RpcClient.from_data_dir(b.data_dir))
        async with app.run_test(size=(140, 50)) as pilot:
            app.query_one(TabbedContent).active = "communities"

            async def waiting() -> bool:
                await pilot.pause()
                return any("admit" in str(r[1]) for r in rows(app, "#cm-queue"))

            await wait_for(waiting, 30, what="the admission in B's queue")
            row = next(r for r in rows(app, "#cm-queue") if "admit" in str(r[1]))
            assert row[2] == "1 of 2"
            app.query_one("#cm-queue").focus()
            await pilot.click("#cm-sign")

            async def member() -> bool:
                got = await vendor.call("market.get", market=market)
                return vendor.peer_id in got["members"]

            await wait_for(member, 30, what="the vendor admitted")
            assert "change is made" in _text(app, "#cm-say")
    finally:
        for node in (a, b, vendor):
            await node.stop()


async def _known(node: NodeProc, market: str) -> bool:
    return any(m["market"] == market for m in await node.call("market.list"))
