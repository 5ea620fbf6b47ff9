"""A real node set up through ``torv`` alone: the first-run questions (Pilot), answered for a
new wallet with Electrum servers and for a restored one with a full node, each backend tested
against the real one (and a wrong one refused); the answers written and a node started from
them; the settings screen changing them later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from embit import bip39
from textual.widgets import Button, Input, Label, RadioButton, Select, Static

from node.app import config_file
from node.app.electrumx import ElectrumX
from node.app.regtest import Regtest
from node.app.start import ChildNode, apply_setup, check_words, new_words, try_backend
from node.core.config import DEFAULT_LISTEN
from protocol.identity import Identity
from protocol.networks import NETWORKS_BY_NAME
from tui.app import TorvApp
from tui.settings_screen import SettingsScreen
from tui.setup import SetupAnswers, SetupApp
from wallet.identity import identity_seed_from_mnemonic

from .cluster import wait_for

pytestmark = pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")
PASSPHRASE = "correct horse battery"


def bad_checksum(words: str) -> str:
    """The same words with a last word whose checksum fails (one in 256 last words passes:
    a fixed replacement would make the test fail now and then)."""
    head = words.split()[:23]
    for last in ("zoo", "abandon", "ability", "able"):
        candidate = " ".join([*head, last])
        if not bip39.mnemonic_is_valid(candidate):
            return candidate
    raise AssertionError("four last words with a valid checksum")


def setup_app() -> SetupApp:
    return SetupApp(sorted(NETWORKS_BY_NAME), new_words, check_words, try_backend,
                    DEFAULT_LISTEN)


async def press(app: Any, pilot: Any, selector: str) -> None:
    """Press a button (a click right after another on the same button would be ignored
    during its press effect)."""
    app.screen.query_one(selector, Button).press()
    await pilot.pause()


def said(app: SetupApp, selector: str) -> str:
    return str(app.query_one(selector, Label).render())


async def until(pilot: Any, pred: Any, what: str, timeout: float = 30) -> None:
    async def probe() -> bool:
        await pilot.pause()
        return bool(pred())

    await wait_for(probe, timeout, what=what)


async def answer_chain_network_profile(app: SetupApp, pilot: Any, good: str, bad: str,
                                       name: str) -> None:
    app.query_one("#chain-network", Select).value = "litecoin-regtest"
    field = "#electrum" if app.query_one("#use-electrum", RadioButton).value else "#chain-rpc"
    app.query_one(field, Input).value = bad
    await press(app, pilot, "#next")  # Next tests the backend first
    await until(pilot, lambda: "does not work" in said(app, "#test-result"), "refused")
    assert app.step == "chain"
    app.query_one(field, Input).value = good
    await press(app, pilot, "#next")
    await until(pilot, lambda: app.step == "network", "past a backend that works")
    assert "works" in said(app, "#test-result")
    app.query_one("#listen", Input).value = "/ip4/127.0.0.1/tcp/0"
    app.query_one("#bootstrap", Input).value = "/ip4/127.0.0.1/tcp/1"
    await press(app, pilot, "#next")
    await until(pilot, lambda: "/p2p/" in said(app, "#network-problem"), "a bad bootstrap")
    app.query_one("#bootstrap", Input).value = ""
    await press(app, pilot, "#next")
    await until(pilot, lambda: app.step == "profile", "the profile")
    app.query_one("#name", Input).value = name
    await press(app, pilot, "#next")


async def start_from(data_dir: Path, passphrase: str) -> ChildNode:
    settings = config_file.load(data_dir)
    assert settings is not None
    settings.rpc_port = 0  # a test takes any free port
    config_file.save(data_dir, settings)
    node = ChildNode(data_dir, passphrase)
    node.start()
    return node


async def test_first_run_new_wallet_with_electrum(tmp_path: Path, electrum: ElectrumX) -> None:
    app = setup_app()
    async with app.run_test(size=(120, 45)) as pilot:
        app.query_one("#passphrase", Input).value = "short"
        app.query_one("#passphrase-again", Input).value = "short"
        await press(app, pilot, "#next")
        await until(pilot, lambda: "at least 8" in said(app, "#wallet-problem"), "too short")
        app.query_one("#passphrase", Input).value = PASSPHRASE
        app.query_one("#passphrase-again", Input).value = PASSPHRASE + "!"
        await press(app, pilot, "#next")
        await until(pilot, lambda: "differ" in said(app, "#wallet-problem"), "mismatch")
        app.query_one("#passphrase-again", Input).value = PASSPHRASE
        await press(app, pilot, "#next")
        await until(pilot, lambda: app.step == "words", "the words, once")
        shown = str(app.query_one("#words-shown", Static).render())
        words = [part for part in shown.split() if not part.rstrip(".").isdigit()]
        assert len(words) == 24 and check_words(" ".join(words)) is None
        await press(app, pilot, "#next")
        await until(pilot, lambda: app.step == "confirm", "three words asked back")
        for n in range(len(app.asked)):
            app.query_one(f"#check-{n}", Input).value = "wrong"
        await press(app, pilot, "#next")
        await until(pilot, lambda: "does not match" in said(app, "#confirm-problem"), "wrong")
        for n, i in enumerate(app.asked):
            app.query_one(f"#check-{n}", Input).value = words[i].upper()  # any case
        await press(app, pilot, "#next")
        await until(pilot, lambda: app.step == "chain", "the chain")
        await answer_chain_network_profile(app, pilot, electrum.url, "tcp://127.0.0.1:1",
                                           "Ada's Attic")
    answers = app.return_value
    assert isinstance(answers, SetupAnswers)
    assert (answers.restoring, answers.words, answers.electrum, answers.name) == (
        False, " ".join(words), [electrum.url], "Ada's Attic")

    data_dir = tmp_path / "ada"
    await apply_setup(data_dir, answers)
    written = config_file.path_of(data_dir).read_text()
    assert electrum.url in written and PASSPHRASE not in written and words[0] not in written
    node = await start_from(data_dir, answers.passphrase)
    try:
        client = await node.ready()
        info = await client.call("node.info")
        wallet = await client.call("wallet.info")
        assert info["identity"] == "wallet" and wallet["backend_kind"] == "electrum"
        assert wallet["network"] == "litecoin-regtest" and wallet["locked"] is False
        assert info["peer_id"] == Identity(identity_seed_from_mnemonic(answers.words)).peer_id
        await client.close()
    finally:
        node.stop()


async def test_first_run_restored_wallet_with_a_full_node(tmp_path: Path,
                                                          regtest: Regtest) -> None:
    words = new_words()
    app = setup_app()
    async with app.run_test(size=(120, 45)) as pilot:
        app.query_one("#restore", RadioButton).value = True
        app.query_one("#restore-words", Input).value = bad_checksum(words)
        app.query_one("#passphrase", Input).value = PASSPHRASE
        app.query_one("#passphrase-again", Input).value = PASSPHRASE
        await press(app, pilot, "#next")
        await until(pilot, lambda: "the words" in said(app, "#wallet-problem"), "bad words")
        app.query_one("#restore-words", Input).value = words
        await press(app, pilot, "#next")
        await until(pilot, lambda: app.step == "chain", "straight to the chain")
        app.query_one("#use-rpc", RadioButton).value = True
        await pilot.pause()
        await answer_chain_network_profile(
            app, pilot, regtest.url, regtest.url.replace("@", "x@"), "Bo's Books")
    answers = app.return_value
    assert isinstance(answers, SetupAnswers) and answers.restoring
    assert answers.chain_rpc == regtest.url and answers.electrum == []
    data_dir = tmp_path / "bo"
    await apply_setup(data_dir, answers)
    node = await start_from(data_dir, answers.passphrase)
    try:
        client = await node.ready()
        info = await client.call("node.info")
        assert info["peer_id"] == Identity(identity_seed_from_mnemonic(words)).peer_id
        assert (await client.call("wallet.info"))["backend_kind"] == "core-rpc"
        await client.close()
    finally:
        node.stop()


async def test_settings_change_later(tmp_path: Path, electrum: ElectrumX) -> None:
    data_dir = tmp_path / "cy"
    await apply_setup(data_dir, SetupAnswers(
        restoring=False, words=new_words(), passphrase=PASSPHRASE, chain="litecoin-regtest",
        electrum=[electrum.url], listen=["/ip4/127.0.0.1/tcp/0"]))
    node = await start_from(data_dir, PASSPHRASE)
    try:
        client = await node.ready()
        app = TorvApp(client)
        async with app.run_test(size=(120, 45)) as pilot:
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, SettingsScreen), "settings")
            await until(pilot, lambda: app.screen.query_one("#set-electrum", Input).value ==
                        electrum.url, "the settings loaded")
            app.screen.query_one("#set-listen", Input).value = "not-an-address"
            await press(app, pilot, "#settings-save")
            await until(pilot, lambda: "not saved" in str(
                app.screen.query_one("#settings-msg", Label).render()), "a bad address")
            app.screen.query_one("#set-listen", Input).value = "/ip4/127.0.0.1/tcp/0"
            peer = "/ip4/127.0.0.1/tcp/4717/p2p/" + Identity(b"\x09" * 32).peer_id
            app.screen.query_one("#set-bootstrap", Input).value = peer
            app.screen.query_one("#set-name", Input).value = "Cy's Corner"
            assert app.screen.query_one("#set-carry", Select).value == "all"
            app.screen.query_one("#set-carry", Select).value = "markets"
            await press(app, pilot, "#settings-save")
            await until(pilot, lambda: "saved" in str(
                app.screen.query_one("#settings-msg", Label).render()) and "not" not in str(
                app.screen.query_one("#settings-msg", Label).render()), "saved")
        settings = config_file.load(data_dir)
        assert settings is not None and settings.bootstrap == [peer]
        assert settings.carry == "markets"
        assert (await client.call("settings.get"))["carry"] == "markets"
        assert (await client.call("profile.get"))["name"] == "Cy's Corner"
    finally:
        node.stop()
