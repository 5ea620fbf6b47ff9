"""`torv demo --no-tui`: a private market comes up, is searchable, and Ctrl+C stops it all."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tui.client import RpcClient

from .cluster import wait_for

pytestmark = pytest.mark.asyncio


async def test_demo_market_comes_up_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.app.cli", "demo", "--no-tui", "--vendors", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
        match = re.search(rb"data in (\S+)", line)
        assert match, line
        you = Path(match.group(1).decode()) / "you"
        async with RpcClient.from_data_dir(you) as client:
            async def stocked() -> bool:
                hits = await client.call("listing.search", query="")
                return len(hits) >= 6

            await wait_for(stocked, 60, what="demo listings")
            # the demo's two community markets, joined; Ingrid's Loom is in Aarhus makers
            markets = {m["name"]: m for m in await client.call("market.list")}
            assert set(markets) == {"Aarhus makers", "Online books"}
            assert all(m["joined"] for m in markets.values())
            aarhus = markets["Aarhus makers"]
            assert aarhus["admission"] == "approved" and len(aarhus["members"]) == 1

            async def in_aarhus() -> list[Any]:
                hits = await client.call("listing.search", query="", market=aarhus["market"])
                return hits if len(hits) == 5 else []

            hits = await wait_for(in_aarhus, 60, what="Ingrid's five listings in Aarhus makers")
            assert all("Ingrid's Loom" in h["listing"]["description"] for h in hits)
            keyboards = await client.call("listing.search", query="keyboard")
            assert [h["listing"]["title"] for h in keyboards] == [
                "Mechanical keyboard, brown switches"]
            # the demo's chain funded "you": the market can trade
            wallet = await client.call("wallet.info")
            assert wallet["network"] == "litecoin-regtest"
            assert wallet["balance"]["confirmed"] == 10 * 10**8
            # a whole purchase: the vendors' autopilot confirms and fulfils, the chain mines
            mods = await client.call("moderator.list")
            assert [m["name"] for m in mods] == ["Demo Moderator"]
            desk = keyboards[0]["listing"]
            order = await client.call("order.create", listing_id=desk["id"], quantity=1,
                                      moderator=mods[0]["peer_id"], shipping_option="EU",
                                      shipping_address="Demo street 1")
            oid = order["order_id"]

            async def state(want: str) -> bool:
                return bool((await client.call("order.get", order_id=oid))["state"] == want)

            await wait_for(lambda: state("AWAITING_PAYMENT"), 60, what="the autopilot confirm")
            await client.call("order.pay", order_id=oid)
            await wait_for(lambda: state("FULFILLED"), 90, what="the autopilot fulfilment")
            await client.call("order.complete", order_id=oid, rating=5, review="demo")
            assert await state("COMPLETED")
            # the demo stores show what a store can be: variants, a photo, a coupon, digital
            # goods the vendor's node delivers by itself
            scarf = (await client.call("listing.search", query="merino"))[0]["listing"]
            assert len(scarf["skus"]) == 3 and len(scarf["photos"]) == 1 and scarf["coupons"]
            pattern = (await client.call("listing.search", query="pattern"))[0]["listing"]
            assert pattern["type"] == "digital" and pattern["unlimited"] is True
            bought = await client.call("order.create", listing_id=pattern["id"], quantity=1,
                                       moderator=mods[0]["peer_id"])
            poid = bought["order_id"]

            async def pattern_state(want: str) -> bool:
                got = await client.call("order.get", order_id=poid)
                return bool(got["state"] == want)

            await wait_for(lambda: pattern_state("AWAITING_PAYMENT"), 60,
                           what="the autopilot confirm of the pattern")
            await client.call("order.pay", order_id=poid)
            await wait_for(lambda: pattern_state("FULFILLED"), 90,
                           what="the pattern delivered")
            goods = (await client.call("order.get", order_id=poid))["goods"]
            assert "HB-2026-DEMO" in goods["text"]
            # a listing priced in local money: the demo's rate file prices it in coin
            async def tasting_listed() -> Any:
                hits = await client.call("listing.search", query="workshop")
                return hits[0]["listing"] if hits else None

            tasting = await wait_for(tasting_listed, 60, what="the weaving workshop")
            assert tasting["price"] == {"amount": 15_000, "currency": "DKK"}
            quote = await client.call("order.quote", listing_id=tasting["id"])
            assert quote["rate"]["price"] == 59_700  # 597.00 DKK a coin
            assert quote["amount_due"] == 25_125_629  # 150.00 DKK, rounded up
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        assert not you.parent.exists()
    finally:
        _stop(proc)


async def test_a_closed_terminal_stops_the_demo_and_cleans_up() -> None:
    """SIGHUP (the terminal closed under it) ends the demo as Ctrl+C does: every node stopped,
    its temporary data gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.app.cli", "demo", "--no-tui", "--no-chain",
         "--vendors", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
        match = re.search(rb"data in (\S+)", line)
        assert match, line
        base = Path(match.group(1).decode())
        children = _children(proc.pid)
        assert len(children) >= 2  # the nodes
        proc.send_signal(signal.SIGHUP)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        assert not base.exists()
        assert not [pid for pid in children if _alive(pid)]
    finally:
        _stop(proc)


async def test_a_killed_demo_takes_its_nodes_and_chain_with_it() -> None:
    """SIGKILL (or the OOM killer) runs no cleanup in the demo: its nodes and its regtest chain
    end by themselves, told by the kernel that their parent died, instead of running on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.app.cli", "demo", "--no-tui", "--vendors", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    family: list[int] = []
    dirs: list[Path] = []
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
        match = re.search(rb"data in (\S+)", line)
        assert match, line
        dirs.append(Path(match.group(1).decode()))
        family = _children(proc.pid)
        commands = {pid: _cmdline(pid) for pid in family}
        chains = [c for c in commands.values() if c and Path(c[0]).name == "litecoind"]
        assert len(chains) == 1, commands
        dirs += [Path(a.split("=", 1)[1]) for a in chains[0] if a.startswith("-datadir=")]
        assert sum("node.app.cli" in c for c in commands.values()) == 3, commands
        family += [g for pid in family for g in _children(pid)]  # the nodes' workers
        proc.kill()
        proc.wait(10)

        async def all_gone() -> bool:
            return not [pid for pid in family if _alive(pid)]
        await wait_for(all_gone, 60, interval=0.2, what="the demo's children to end")
    finally:
        _stop(proc)
        for pid in family:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for path in dirs:
            shutil.rmtree(path, ignore_errors=True)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """A failed test still stops the demo as Ctrl+C does (its nodes and chain with it); a
    SIGKILL would leave them running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] \
            != "Z"
    except OSError:
        return False
