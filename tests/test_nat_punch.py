"""Hole punching (DCUtR) between two homes behind NATs that keep a mapping whatever the
destination (plain ``masquerade``: endpoint-independent) and drop unsolicited packets, in
network namespaces the test makes and removes, with one public node as their relay: the two
first meet through the relay, then punch a direct connection, and the store and messages go
over it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .cluster import sample_listing, wait_for
from .natlab import WAN_ADDR, Lab, NsNode, available, chat_arrives, shutdown

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(available() is not None, reason=str(available()))]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("punch")
    lab = Lab(2, stealth=True).up()
    nodes: list[NsNode] = []
    try:
        public = await NsNode(lab.wan, base / "public", f"/ip4/{WAN_ADDR}/tcp/4717").start()
        nodes.append(public)
        homes = []
        for i, name in enumerate(("vendor", "buyer")):
            node = await lab.home_node(i, base / name, [public.addr]).start()
            homes.append(node)
            nodes.append(node)
        yield {"lab": lab, "public": public, "vendor": homes[0], "buyer": homes[1]}
    finally:
        await shutdown(lab, nodes)


async def reach(node: NsNode) -> dict[str, Any]:
    return dict((await node.call("node.info"))["reachability"])


async def peer_entry(node: NsNode, other: NsNode) -> dict[str, Any] | None:
    return next((p for p in await node.call("node.peers") if p["peer_id"] == other.peer_id),
                None)


async def test_the_profile_of_a_natted_vendor_we_hold_answers_at_once(
        net: dict[str, Any]) -> None:
    """profile.get waited for a DHT lookup each time, and with routers that drop unsolicited
    packets a lookup spent 20 s dialling the homes among the key's closest peers (the second
    call, each run): a profile we hold gets the DHT 2 s to better it."""
    vendor, buyer = net["vendor"], net["buyer"]
    await vendor.call("profile.set", name="Ash & Co", about="Turned ladles")
    await vendor.call("listing.create", **sample_listing("Ash ladle"))

    async def arrived() -> bool:  # the store's gossip brings the profile with it
        return bool(await buyer.call("listing.search", query="ash"))

    await wait_for(arrived, 30, what="the NATed vendor's store at the NATed buyer")
    for _ in range(3):
        start = time.monotonic()
        profile = await buyer.call("profile.get", peer_id=vendor.peer_id)
        assert profile["name"] == "Ash & Co"
        assert time.monotonic() - start < 5


async def test_two_homes_punch_a_direct_connection(net: dict[str, Any]) -> None:
    vendor, buyer = net["vendor"], net["buyer"]

    async def ready(node: NsNode) -> bool:
        r = await reach(node)
        return r["status"] == "private" and bool(r["relays"])

    for home in (vendor, buyer):
        await wait_for(lambda home=home: ready(home), 60, what="a home private, with a relay")
    first = await vendor.call("listing.create", **sample_listing("Rowan bowl"))

    async def arrived() -> bool:  # the buyer holds the vendor's store, and so does the DHT
        return bool(await buyer.call("listing.search", query="rowan"))

    await wait_for(arrived, 30, what="the NATed vendor's first listing at the NATed buyer")
    # the buyer reaches the vendor through the vendor's relay (as its profile says, where
    # store.fetch and messages find it: tests/test_relay_nat.py)
    circuit = (await reach(vendor))["relays"][0]
    await buyer.call("node.connect", addr=f"{circuit}/p2p/{vendor.peer_id}")

    async def direct() -> dict[str, Any] | None:
        entry = await peer_entry(buyer, vendor)
        return entry if entry is not None and not entry["relayed"] else None

    await wait_for(direct, 60, what="a direct connection between the two homes")

    async def counted() -> list[dict[str, Any]] | None:  # each side counts its punch when done
        rs = [await reach(n) for n in (vendor, buyer)]
        return rs if all(r["hole_punch"]["succeeded"] >= 1 for r in rs) else None

    punched = await wait_for(counted, 30, what="both homes to count the punch")
    assert all(r["direct_upgrades"] >= 1 for r in punched)
    assert all(r["hole_punch"]["tried"] >= r["hole_punch"]["succeeded"] for r in punched)

    # the vendor's own answer is the newest: store.fetch returned the DHT's older copy when
    # that came first (the DHT copy follows a change by seconds)
    made = await vendor.call("listing.create", **sample_listing("Oak spoon"))
    store = await buyer.call("store.fetch", peer_id=vendor.peer_id)
    assert {first["id"], made["id"]} <= {x["id"] for x in store["listings"]}
    await chat_arrives(buyer, vendor, "Is the spoon oiled?", "over the direct connection")
    await chat_arrives(vendor, buyer, "Yes, with walnut oil.", "over the direct connection")
