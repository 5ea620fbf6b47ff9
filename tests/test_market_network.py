"""Community markets on real nodes (issue 19): stewards who are never online together admit a
vendor through the mail, a market shows its members' listings and not a non-member's, a
removal hides a listing from the market (not from the vendor's store), leave and fork."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import NodeProc, sample_listing, start_cluster, wait_for
from tui.client import RpcCallError

ROOT = Path(__file__).resolve().parent.parent


async def _queue_has(node: NodeProc, market: str, what: str) -> list[dict[str, Any]]:
    return list((await node.call("market.queue", market=market))[what])


async def _found(node: NodeProc, query: str, market: str | None = None) -> set[str]:
    params: dict[str, Any] = {"query": query}
    if market is not None:
        params["market"] = market
    return {r["listing"]["title"] for r in await node.call("listing.search", **params)}


async def test_stewards_never_online_together_admit_a_vendor(tmp_path: Path) -> None:
    hub, a, b, c, vendor, outsider = await start_cluster(tmp_path, 6)
    try:
        ids = [n.peer_id for n in (a, b, c)]
        # founding a 2-of-3 market: A signs, B signs from its queue
        made = await a.call("market.create", name="Aarhus makers", stewards=ids, threshold=2,
                            admission="approved", rules="Made by hand in Aarhus.")
        assert made["status"] == "proposed" and made["signed_by"] == [a.peer_id]
        market = made["proposal"]
        queued = await wait_for(lambda: _queue_has(b, market, "proposals"), 30,
                                what="the founding to reach B's queue")
        assert queued[0]["change"] == {"found": "Aarhus makers"}
        done = await b.call("market.sign", proposal=market)
        assert done["status"] == "done" and done["market"] == market

        async def known_at(node: NodeProc, seq: int) -> bool:
            try:
                return (await node.call("market.get", market=market))["seq"] >= seq
            except Exception:  # noqa: BLE001 - not there yet
                return False

        for node in (a, c):  # the finished founding reaches the other stewards by mail
            await wait_for(lambda n=node: known_at(n, 1), 30, what="the founding everywhere")
        assert (await c.call("market.get", market=market))["joined"] is True

        # the vendor follows the market and applies
        joined = await vendor.call("market.join", market=market, peer_id=a.peer_id)
        assert joined["joined"] and joined["members"] == []
        sent = await vendor.call("market.apply", market=market, note="I make oak bowls")
        assert set(sent["sent_to"]) == set(ids)
        apps = await wait_for(lambda: _queue_has(a, market, "applications"), 30,
                              what="the application at A")
        assert apps[0]["vendor"] == vendor.peer_id and apps[0]["note"] == "I make oak bowls"

        # A proposes to admit it while B is away, then goes away itself; B comes back and signs
        await b.stop()
        before = await _held(hub, c)
        proposed = await a.call("market.propose", market=market, admit=[vendor.peer_id])
        assert proposed["status"] == "proposed" and proposed["needed"] == 2

        async def held_for_b() -> bool:
            return await _held(hub, c) > before

        await wait_for(held_for_b, 30, what="the proposal to B to be held")
        await a.stop()
        b.bootstrap = [hub.addr]
        await b.start()
        waiting = await wait_for(lambda: _queue_has(b, market, "proposals"), 60,
                                 what="the proposal to reach B from the holders")
        assert waiting[0]["change"] == {"admit": [vendor.peer_id]}
        assert waiting[0]["signed_by"] == [a.peer_id] and not waiting[0]["signed_by_you"]
        admitted = await b.call("market.sign", proposal=waiting[0]["proposal"])
        assert admitted["status"] == "done" and len(admitted["signed_by"]) == 2

        async def member_at(node: NodeProc) -> bool:
            got = await node.call("market.get", market=market)
            return vendor.peer_id in got["members"]

        await wait_for(lambda: member_at(vendor), 30, what="the vendor's node to see itself in")
        # what is not yours to do is refused with a reason, and changes nothing
        for node, params, why in (
                (vendor, {"rules": "mine now"}, "only a steward"),
                (c, {"action": "remove_listing", "reason": "x"}, "names its vendor"),
                (c, {"admit": [outsider.peer_id], "rules": "x", "action": "remove_member",
                     "vendor": outsider.peer_id, "reason": "x"}, "not both"),
                (c, {}, "at least one change")):
            with pytest.raises(RpcCallError, match=why):
                await node.call("market.propose", market=market, **params)
        with pytest.raises(RpcCallError, match="member of this market already"):
            await vendor.call("market.apply", market=market)
        with pytest.raises(RpcCallError, match="no such proposal"):
            await c.call("market.sign", proposal="00" * 32)
        assert (await c.call("market.get", market=market))["seq"] == 2

        # a member's listing shows in the market, a non-member's tagged with it does not
        bowl = await vendor.call("listing.create", **sample_listing("Oak bowl"),
                                 markets=[market])
        await outsider.call("listing.create", **sample_listing("Oak spoon"), markets=[market])
        await outsider.call("listing.create", **sample_listing("Oak board"))
        await wait_for(lambda: _has(vendor, "oak", 3), 30, what="all three listings")
        assert await _found(vendor, "oak", market) == {"Oak bowl"}
        assert await _found(vendor, "oak") == {"Oak bowl", "Oak spoon", "Oak board"}

        # B and C remove the bowl from the market: gone from it, still in the vendor's store
        removal = await b.call("market.propose", market=market, action="remove_listing",
                               vendor=vendor.peer_id, listing=bowl["id"],
                               reason="not made in Aarhus")
        assert removal["kind"] == "entry" and removal["status"] == "proposed"
        pending = await wait_for(lambda: _queue_has(c, market, "proposals"), 30,
                                 what="the removal at C")
        await c.call("market.sign", proposal=pending[0]["proposal"])
        await wait_for(lambda: _found_none(vendor, market), 30,
                       what="the removal to hide the bowl")
        assert "Oak bowl" in await _found(vendor, "oak")
        entries = await vendor.call("market.log", market=market)
        assert [(e["action"], e["listing"]) for e in entries] == [("remove_listing", bowl["id"])]
        assert set(entries[0]["signed_by"]) == {b.peer_id, c.peer_id}

        # leave and fork
        left = await vendor.call("market.leave", market=market)
        assert left["joined"] is False
        fork = await c.call("market.fork", market=market, name="Aarhus makers (co-op)")
        assert fork["status"] == "done"
        forked = await c.call("market.get", market=fork["market"])
        assert forked["origin"]["market"] == market
        assert forked["stewards"] == [c.peer_id] and vendor.peer_id in forked["members"]
    finally:
        for node in (hub, a, b, c, vendor, outsider):
            await node.stop()


async def _held(hub: NodeProc, c: NodeProc) -> int:
    """Letters the hub and C took to hold for absent recipients."""
    held = 0
    for node in (hub, c):
        held += (await node.call("node.info"))["mail"]["held_for_others"]
    return held


async def _has(node: NodeProc, query: str, n: int) -> bool:
    return len(await _found(node, query)) >= n


async def _found_none(node: NodeProc, market: str) -> bool:
    return not await _found(node, "oak", market)


class Forger:
    """The hostile market peer's process (tests/market_forger.py), read line by line."""

    def __init__(self, target: NodeProc, market: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.market_forger", target.addr, market],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        self.peer_id = self.addr = ""
        self.steps: dict[str, Any] = {}

    async def until_done(self) -> None:
        assert self.proc.stdout is not None
        for _ in range(30):  # bounded: a dozen lines
            line = (await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline),
                                           60)).decode().strip()
            if line.startswith("id "):
                self.peer_id = line[3:]
            elif line.startswith("addr "):
                self.addr = line[5:]
            elif line.startswith("{"):
                step = json.loads(line)
                self.steps[step["step"]] = step["answer"]
            elif line == "done":
                return
        raise AssertionError("the forger never finished")

    async def stop(self) -> None:
        self.proc.terminate()
        await asyncio.to_thread(self.proc.wait, 20)


async def test_a_non_steward_cannot_change_a_market_by_any_path(tmp_path: Path) -> None:
    victim, other, newcomer = await start_cluster(tmp_path, 3)
    forger: Forger | None = None
    try:
        made = await victim.call("market.create", name="Online books", threshold=2,
                                 stewards=[victim.peer_id, other.peer_id],
                                 rules="Second-hand books only.")
        market = made["proposal"]
        queued = await wait_for(lambda: _queue_has(other, market, "proposals"), 30,
                                what="the founding at the second steward")
        await other.call("market.sign", proposal=queued[0]["proposal"])
        await wait_for(lambda: _known(victim, market), 30, what="the market at the victim")
        before = (await victim.call("node.info"))["rejected"]

        forger = Forger(victim, market)
        await forger.until_done()
        # letters: a change it signed alone, one posing as a steward, an application for a
        # market the victim does not steward: each refused
        for step in ("alone", "posing", "apply-elsewhere"):
            assert "error" in forger.steps[step], (step, forger.steps[step])
        assert "not a steward" in forger.steps["alone"]["error"]
        for step in ("bad-op", "bad-market", "bad-from", "extra-key", "not-a-map"):
            assert "error" in forger.steps[step], (step, forger.steps[step])

        async def gossip_refused() -> bool:
            rejected = (await victim.call("node.info"))["rejected"]
            return bool(rejected["market"] >= before["market"] + 2)

        await wait_for(gossip_refused, 30, what="both forged gossip steps to be refused")
        after = await victim.call("node.info")
        assert after["rejected"]["mail"] >= before["mail"] + 3
        held = await victim.call("market.get", market=market)
        assert held["seq"] == 1 and held["rules"] == "Second-hand books only."
        assert held["stewards"] == sorted([victim.peer_id, other.peer_id])
        assert await victim.call("market.log", market=market) == []
        assert (await victim.call("market.queue"))["proposals"] == []

        # a node that asks the forger for the market gets a founding of another market:
        # refused, and the market is not taken for found
        await newcomer.call("node.connect", addr=forger.addr)
        with pytest.raises(RpcCallError, match="no market"):
            await newcomer.call("market.join", market=market, peer_id=forger.peer_id)
        assert (await newcomer.call("node.info"))["rejected"]["market"] >= 1
        assert await newcomer.call("market.list") == []
    finally:
        if forger is not None:
            await forger.stop()
        for node in (victim, other, newcomer):
            await node.stop()


async def _known(node: NodeProc, market: str) -> bool:
    return any(m["market"] == market for m in await node.call("market.list"))


async def test_an_invitation_admits_one_vendor(tmp_path: Path) -> None:
    """A steward's invitation code admits the first vendor applying with it (the steward's
    node signs at once: a 1-of-2 market needs no more); the same code admits no one else; only
    a steward makes codes, and a damaged code is refused before anything is sent."""
    steward, other, first, second, poser = await start_cluster(tmp_path, 5)
    try:
        made = await steward.call("market.create", name="Invited makers", threshold=1,
                                  stewards=[steward.peer_id, other.peer_id],
                                  admission="approved")
        market = made["market"]
        for node in (first, second, poser):
            await node.call("market.join", market=market, peer_id=steward.peer_id)
        code = (await steward.call("market.invite", market=market))["code"]
        assert code.startswith("torv-invite:")
        with pytest.raises(RpcCallError, match="only a steward"):
            await poser.call("market.invite", market=market)
        with pytest.raises(RpcCallError, match="invitation"):
            await first.call("market.apply", market=market, invite=code[:-4] + "AAAA")

        await first.call("market.apply", market=market, note="invited", invite=code)

        async def members() -> list[str]:
            return list((await first.call("market.get", market=market))["members"])

        assert await wait_for(members, 30, what="the invited vendor admitted") == [
            first.peer_id]
        await second.call("market.apply", market=market, note="me too", invite=code)

        async def queued() -> list[dict[str, Any]]:
            apps = await _queue_has(steward, market, "applications")
            return [a for a in apps if a["vendor"] == second.peer_id]

        app = (await wait_for(queued, 30, what="the second application"))[0]
        assert app["invited_by"] == steward.peer_id  # noted, but the code was used
        assert (await steward.call("market.get", market=market))["members"] == [first.peer_id]
        assert (await steward.call("market.queue"))["proposals"] == []
    finally:
        for node in (steward, other, first, second, poser):
            await node.stop()
