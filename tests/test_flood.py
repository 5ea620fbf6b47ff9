"""A good peer under abuse: flooders (bench/flooder.py, real libp2p hosts in their own
processes) against a real node with an honest neighbour; an honest burst of changes is paced,
never refused."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from .cluster import NodeProc, sample_listing, start_linked_pair, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    nodes = await start_linked_pair(tmp_path_factory.mktemp("flood"))
    yield nodes
    for node in nodes:
        await node.stop()


async def flood(target: NodeProc, kind: str, seconds: float) -> tuple[str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "flooder.py"), target.addr, kind, str(seconds),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
    assert ready[0] == "ready", ready
    done = (await asyncio.wait_for(proc.stdout.readline(), seconds + 60)).decode().split()
    await proc.wait()
    assert done[0] == "sent", done
    return ready[1], int(done[1])


@pytest.mark.parametrize(("kind", "counter"), [("garbage", "gossip"), ("forged", "gossip"),
                                               ("valid", "gossip_rate")])
async def test_a_flooder_is_shut_out_after_a_few_refusals(
    pair: list[NodeProc], kind: str, counter: str
) -> None:
    victim, honest = pair
    before = await victim.call("node.info")
    flooder, sent = await flood(victim, kind, 3.0)
    after = await victim.call("node.info")
    refused = after["rejected"][counter] - before["rejected"][counter]
    # a handful of refusals cost the flooder its score, then it is shut out: the rest of
    # its messages are never validated
    assert 1 <= refused <= 20, refused
    assert sent > 10 * refused, (sent, refused)
    assert after["banned_peers"] > before["banned_peers"]
    assert flooder not in {p["peer_id"] for p in await victim.call("node.peers")}
    if kind == "valid":  # nothing over the rate was stored or passed on
        assert after["market"]["gossip_ignored"] == before["market"]["gossip_ignored"]
    # the victim still takes honest gossip at once
    await honest.call("listing.create", **sample_listing(f"After the {kind} flood"))

    async def arrived() -> Any:
        return await victim.call("listing.search", query=f"after {kind} flood")

    await wait_for(arrived, 10, what="the honest listing on the victim")


async def test_a_burst_of_own_changes_is_paced_not_refused(pair: list[NodeProc]) -> None:
    vendor, peer = pair
    before = await peer.call("node.info")
    made = await asyncio.gather(*(vendor.call("listing.create",
                                              **sample_listing(f"Burst lamp {i}"))
                                  for i in range(40)))
    ids = {m["id"] for m in made}

    async def all_there() -> bool:
        hits = await peer.call("listing.search", query="burst lamp", limit=100)
        return {h["listing"]["id"] for h in hits} >= ids

    await wait_for(all_there, 30, what="all 40 listings on the peer")
    after = await peer.call("node.info")
    assert after["rejected"]["gossip_rate"] == before["rejected"]["gossip_rate"]
    assert after["rejected"]["gossip"] == before["rejected"]["gossip"]
    own = (await vendor.call("node.info"))["market"]["own_gossip"]
    assert own["coalesced"] > 0  # faster than the rate: coalesced, not sent one by one
