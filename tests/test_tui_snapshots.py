"""Every screen of the terminal UI as a picture (tests/snapshots/*.svg), against real nodes
with fixed identities: the market with results and empty, a listing, the checkout, messages,
the wallet without a chain, the empty order tabs, keys, settings, a confirmation, and the
first-run setup. A change to how a screen looks shows up as a failing test with both
pictures to compare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from textual.app import App
from textual.widgets import Button, DataTable, Input, TabbedContent

from node.core.config import DEFAULT_LISTEN
from tui.app import TorvApp
from tui.checkout import CheckoutScreen
from tui.client import RpcClient
from tui.confirm_screen import ConfirmScreen
from tui.keys_screen import KeysScreen
from tui.settings_screen import SettingsScreen
from tui.setup import SetupApp

from .cluster import NodeProc, sample_listing, wait_for
from .snapshots import check
from .tui_kit import rows

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]
SIZE = (120, 36)
WORDS = " ".join(["abandon"] * 23 + ["art"])  # a valid mnemonic, fixed for the picture


async def node_with_seed(path: Path, seed: int, bootstrap: list[str] | None = None
                         ) -> NodeProc:
    path.mkdir(parents=True)
    (path / "node.key").write_bytes(bytes([seed]) * 32)
    (path / "node.key").chmod(0o600)
    return await NodeProc(path, bootstrap=bootstrap).start()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    base = tmp_path_factory.mktemp("snap")
    vendor = await node_with_seed(base / "vendor", 0x51)
    you = await node_with_seed(base / "you", 0x52, [vendor.addr])
    await vendor.call("profile.set", name="Nora's Nook", about="Linen and clay")
    await you.call("profile.set", name="Yours Truly")
    await vendor.call("listing.create", **sample_listing(
        "Linen apron", amount=4_500_000, quantity=3, tags=["linen", "kitchen"],
        shipping=[{"region": "EU", "price": {"amount": 50_000, "currency": "LTC"}}]))

    async def arrived() -> bool:
        return len(await you.call("listing.search", query="apron")) == 1

    await wait_for(arrived, 30, what="the listing on our node")

    async def reachable() -> bool:  # the status bar says so: the same in every picture
        return (await you.call("node.info"))["reachability"]["status"] == "public"

    await wait_for(reachable, 60, what="our node to know it is reachable")
    await vendor.call("chat.send", peer_id=you.peer_id, text="Welcome to the Nook!")

    async def chatted() -> bool:
        return len(await you.call("chat.list")) == 1

    await wait_for(chatted, 30, what="the message")
    yield [you, vendor]
    for node in (you, vendor):
        await node.stop()


async def settle(pilot: Any, pred: Any, what: str) -> None:
    """Wait for ``pred``, and for every pressed button to look released again (a button
    shows its press for a moment: a picture taken then differs in colour); input cursors stop
    blinking."""
    async def probe() -> bool:
        for screen in pilot.app.screen_stack:  # a blinking cursor: in some pictures, not all
            for field in screen.query(Input):
                field.cursor_blink = False
        await pilot.pause()
        return bool(pred()) and not pilot.app.query("Button.-active")

    await wait_for(probe, 30, what=what)
    await pilot.pause()


async def opened(you: NodeProc) -> TorvApp:
    app = TorvApp(RpcClient.from_data_dir(you.data_dir))
    app.animation_level = "none"  # no picture caught half-way through an animation
    return app


def status_ready(app: TorvApp) -> bool:
    return "connected" in str(app.query_one("#status").render()) and app.peer_count == 1


async def test_market_with_a_listing_selected(market: list[NodeProc]) -> None:
    app = await opened(market[0])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: rows(app, "#results") and status_ready(app) and
                     "Nora's Nook" in str(rows(app, "#results")[0][3]), "the market")
        table = app.query_one("#results", DataTable)
        table.focus()
        table.move_cursor(row=0)
        await settle(pilot, lambda: not app.query_one("#buy", Button).disabled, "selected")
        check(app, "market-listing")
        await pilot.click("#buy")
        await settle(pilot, lambda: isinstance(app.screen, CheckoutScreen) and "moderator" in
                     str(app.screen.query_one("#checkout-msg").render()), "the checkout")
        app.screen.query_one("#quantity", Input).value = "5"
        await settle(pilot, lambda: "only 3" in str(
            app.screen.query_one("#quantity-msg").render()), "too many")
        check(app, "checkout-too-many")


async def test_market_empty(tmp_path: Path) -> None:
    alone = await node_with_seed(tmp_path / "alone", 0x53)
    try:
        app = await opened(alone)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: "searching the network" in str(
                app.query_one("#market-state").render()) and "connected" in str(
                app.query_one("#status").render()), "the empty market")
            check(app, "market-empty")
    finally:
        await alone.stop()


@pytest.mark.parametrize("tab", ["purchases", "disputes", "wallet", "messages",
                                 "notifications", "store"])
async def test_tabs(market: list[NodeProc], tab: str) -> None:
    app = await opened(market[0])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: status_ready(app), "connected")
        app.query_one(TabbedContent).active = tab
        if tab == "messages":
            await settle(pilot, lambda: rows(app, "#conversations"), "the conversation")
            app.query_one("ChatPane").open_conversation(market[1].peer_id)  # type: ignore
            await settle(pilot, lambda: "Welcome" in str(app.query_one("#thread").render())
                         and app.unread_messages == 0, "the thread, read")
        elif tab == "wallet":
            await settle(pilot, lambda: "without a wallet" in str(
                app.query_one("#balance").render()), "the wallet")
        elif tab == "notifications":
            await settle(pilot, lambda: rows(app, "#notes"), "the notification")
        else:
            await pilot.pause()
            await pilot.pause()
        check(app, f"tab-{tab}")


async def test_keys_settings_and_a_confirmation(market: list[NodeProc]) -> None:
    app = await opened(market[0])
    async with app.run_test(size=SIZE) as pilot:
        # the market table shows behind every picture here: wait until it has the vendor's
        # learned name (a name learned after a capture lays the column out again)
        await settle(pilot, lambda: status_ready(app) and rows(app, "#results") and
                     "Nora's Nook" in str(rows(app, "#results")[0][3]), "connected")
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, KeysScreen), "keys")
        check(app, "keys")
        await pilot.press("escape")
        await pilot.press("f2")
        await settle(pilot, lambda: isinstance(app.screen, SettingsScreen) and app.screen.query_one(
            "#set-name", Input).value == "Yours Truly", "settings")
        check(app, "settings")
        await pilot.press("escape")
        app.push_screen(ConfirmScreen("Pay [b]0.0905 LTC[/b] into escrow from your wallet "
                                      "(plus the network fee)?", "Pay into escrow"))
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        check(app, "confirm-pay")


def setup_app() -> SetupApp:
    async def works(kind: str, value: str, chain: str) -> str | None:
        return None

    return SetupApp(["bitcoin", "litecoin", "litecoin-regtest"], lambda: WORDS,
                    lambda words: None, works, DEFAULT_LISTEN)


async def test_setup_steps() -> None:
    app: App[Any] = setup_app()
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        check(app, "setup-wallet")
        app.query_one("#passphrase", Input).value = "correct horse"
        app.query_one("#passphrase-again", Input).value = "correct horse"
        app.query_one("#next", Button).press()
        await settle(pilot, lambda: app.step == "words", "the words")  # type: ignore
        check(app, "setup-words")
        app.query_one("#next", Button).press()
        await settle(pilot, lambda: app.step == "confirm", "confirm")  # type: ignore
        for n in range(3):
            app.query_one(f"#check-{n}", Input).value = "abandon"
        app.query_one("#next", Button).press()
        await pilot.pause()
        if app.step == "confirm":  # type: ignore[attr-defined]  # "art" was asked
            for n, i in enumerate(app.asked):  # type: ignore[attr-defined]
                app.query_one(f"#check-{n}", Input).value = WORDS.split()[i]
            app.query_one("#next", Button).press()
        await settle(pilot, lambda: app.step == "chain", "the chain")  # type: ignore
        check(app, "setup-chain")
