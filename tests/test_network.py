"""Five or more real nodes, each in its own process, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from .cluster import NodeProc, sample_listing, start_cluster, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    base = tmp_path_factory.mktemp("cluster")
    nodes = await start_cluster(base, 5)
    # every node connected to someone before tests begin
    for node in nodes:
        await wait_for(lambda n=node: _has_peers(n), 30, what="peers")
    yield nodes
    for node in nodes:
        await node.stop()


async def _has_peers(node: NodeProc) -> bool:
    return (await node.call("node.info"))["peers"] > 0


async def _hits(node: NodeProc, query: str) -> list[dict[str, Any]]:
    return [h["listing"] for h in await node.call("listing.search", query=query)]


async def _everyone_sees(nodes: list[NodeProc], query: str, pred: Any, what: str) -> None:
    for node in nodes:
        async def probe(n: NodeProc = node) -> bool:
            return bool(pred(await _hits(n, query)))
        await wait_for(probe, 30, what=f"{what} on {node.data_dir.name}")


async def test_peer_exchange_meshes_beyond_the_bootstrap_node(cluster: list[NodeProc]) -> None:
    # every node dialled only n0; peer exchange must connect the others to each other
    for node in cluster[1:]:
        async def meshed(n: NodeProc = node) -> bool:
            peers = await n.call("node.peers")
            others = {p["peer_id"] for p in peers} - {cluster[0].peer_id}
            return len(others) >= 2 and all(p["addrs"] for p in peers)
        await wait_for(meshed, 30, what=f"{node.data_dir.name} to meet peers beyond n0")


async def test_listing_created_on_one_node_is_found_on_every_other(
    cluster: list[NodeProc],
) -> None:
    vendor, others = cluster[1], [n for i, n in enumerate(cluster) if i != 1]
    created = await vendor.call("listing.create", **sample_listing("Walnut chess board"))
    assert created["vendor"] == vendor.peer_id and created["seq"] == 1
    await _everyone_sees(others, "chess", lambda hits: any(h["id"] == created["id"]
                                                          for h in hits), "the new listing")
    for node in others:
        got = await node.call("listing.get", id=created["id"])
        assert got == created


async def test_update_replaces_and_delete_removes_everywhere(cluster: list[NodeProc]) -> None:
    vendor, others = cluster[2], [n for i, n in enumerate(cluster) if i != 2]
    created = await vendor.call("listing.create", **sample_listing("Brass telescope"))
    await _everyone_sees(others, "telescope", lambda h: len(h) == 1, "listing")

    updated = await vendor.call("listing.update", id=created["id"], title="Brass spyglass",
                                description="Pocket sized",
                                price={"amount": 90_000, "currency": "LTC"})
    assert updated["seq"] == 2 and updated["id"] == created["id"]
    await _everyone_sees(others, "spyglass", lambda h: len(h) == 1 and h[0]["seq"] == 2,
                         "the update")
    for node in others:
        assert await _hits(node, "telescope") == []
        assert (await node.call("listing.get", id=created["id"]))["price"]["amount"] == 90_000

    await vendor.call("listing.delete", id=created["id"])
    await _everyone_sees(others + [vendor], "", lambda h: all(x["id"] != created["id"]
                                                              for x in h), "the delete")
    for node in others:
        assert await _hits(node, "spyglass") == []


async def test_dht_serves_a_profile_set_after_peers_synced(cluster: list[NodeProc]) -> None:
    vendor = cluster[3]
    await vendor.call("profile.set", name="Ole's Workshop", about="Furniture")

    async def profile_everywhere() -> bool:
        for node in cluster:
            prof = await node.call("profile.get", peer_id=vendor.peer_id)
            if prof["name"] != "Ole's Workshop":
                return False
        return True

    await wait_for(profile_everywhere, 30, what="profile via the DHT")


async def test_late_joiner_gets_existing_listings(
    cluster: list[NodeProc], tmp_path: Path
) -> None:
    vendor = cluster[4]
    created = await vendor.call("listing.create", **sample_listing("Linen tablecloth"))
    late = NodeProc(tmp_path / "late", bootstrap=[cluster[2].addr])
    await late.start()
    try:
        await _everyone_sees([late], "tablecloth",
                             lambda h: [x["id"] for x in h] == [created["id"]], "old listing")
        await _everyone_sees([late], "chess", lambda h: len(h) == 1, "older listing")
    finally:
        await late.stop()


async def test_store_fetch_works_with_vendor_stopped(
    cluster: list[NodeProc], tmp_path: Path
) -> None:
    vendor = NodeProc(tmp_path / "vendor", bootstrap=[cluster[0].addr])
    await vendor.start()
    made = [await vendor.call("listing.create", **sample_listing(f"Oak stool {i}"))
            for i in range(3)]
    await _everyone_sees(cluster, "stool", lambda h: len(h) == 3, "vendor's listings")
    vendor_id = vendor.peer_id
    assert await vendor.stop() == 0

    fresh = NodeProc(tmp_path / "fresh", bootstrap=[cluster[3].addr])
    await fresh.start()
    try:
        async def fetched() -> Any:
            got = await fresh.call("store.fetch", peer_id=vendor_id)
            return got if got["complete"] and len(got["listings"]) == 3 else None

        result = await wait_for(fetched, 30, what="store.fetch of the offline vendor")
        assert sorted(x["id"] for x in result["listings"]) == sorted(x["id"] for x in made)
        assert all(x["vendor"] == vendor_id for x in result["listings"])
        # an existing node also answers from the network
        again = await cluster[1].call("store.fetch", peer_id=vendor_id)
        assert len(again["listings"]) == 3
    finally:
        await fresh.stop()


async def test_restart_keeps_identity_listings_and_peers(cluster: list[NodeProc]) -> None:
    node = cluster[4]
    before = await node.call("listing.list")
    peer_id = node.peer_id
    assert await node.stop() == 0
    node.bootstrap = []  # no bootstrap: it must find its way back from remembered peers
    await node.start()
    assert node.peer_id == peer_id
    assert await node.call("listing.list") == before
    await wait_for(lambda: _has_peers(node), 30, what="reconnect to remembered peers")
    made = await node.call("listing.create", **sample_listing("Pewter candlestick"))
    await _everyone_sees(cluster[:4], "candlestick",
                         lambda h: [x["id"] for x in h] == [made["id"]], "post-restart listing")


async def test_a_peer_that_restarts_is_met_again_at_once(tmp_path: Path) -> None:
    """A peer restarts (here before it had time to remember its peers): the node it left
    dials it again within seconds (it waited for the DHT's next refresh, about 30 s, half the
    time), and what it makes next travels by gossip, not the next anti-entropy round."""
    vendor, buyer = await start_cluster(tmp_path, 2)
    try:
        await vendor.call("listing.create", **sample_listing("Tin cup"))

        async def sees(words: str) -> bool:
            return len(await buyer.call("listing.search", query=words)) == 1

        await wait_for(lambda: sees("tin cup"), 30, what="the first listing")
        await vendor.stop()
        await vendor.start()

        async def met() -> bool:  # the buyer is back in the vendor's peers (and synced)
            return buyer.peer_id in {p["peer_id"] for p in await vendor.call("node.peers")}

        await wait_for(met, 10, what="the vendor and the buyer to meet again")
        await vendor.call("listing.create", **sample_listing("Tin plate"))
        await wait_for(lambda: sees("tin plate"), 10, what="the new listing, by gossip")
    finally:
        for node in (vendor, buyer):
            await node.stop()
