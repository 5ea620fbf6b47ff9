"""Relays for homes behind NAT (circuit relay v2), in network namespaces the test makes and
removes: two homes behind symmetric NATs (``masquerade random``: no direct path, a hole
punch is tried and fails) and three public nodes. Each home reserves slots on two relays and
publishes its relay addresses in its signed profile; the other home fetches its store from
the vendor itself through a relay (not from copies), trades messages over it, and when a
relay goes away the homes move to the third one within a minute."""

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

RELAY_PORTS = (4717, 4718, 4719)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("relay")
    lab = Lab(2, symmetric=True).up()
    nodes: list[NsNode] = []
    try:
        publics = []
        for port in RELAY_PORTS:
            node = await NsNode(lab.wan, base / f"public{port}", f"/ip4/{WAN_ADDR}/tcp/{port}",
                                bootstrap=[p.addr for p in publics]).start()
            publics.append(node)
            nodes.append(node)
        homes = []
        for i, name in enumerate(("vendor", "buyer")):
            node = await lab.home_node(i, base / name, [p.addr for p in publics]).start()
            homes.append(node)
            nodes.append(node)
        yield {"lab": lab, "publics": publics, "vendor": homes[0], "buyer": homes[1]}
    finally:
        await shutdown(lab, nodes)


async def relays_of(node: NsNode, at_least: int) -> list[str] | None:
    info = await node.call("node.info")
    relays = list(info["reachability"]["relays"])
    ok = info["reachability"]["status"] == "private" and len(relays) >= at_least
    return relays if ok else None


async def profile_addrs(viewer: NsNode, peer: NsNode) -> list[str]:
    profile = await viewer.call("profile.get", peer_id=peer.peer_id)
    return list(profile.get("addrs", []))


async def circuits_made(publics: list[NsNode]) -> int:
    return sum([(await p.call("node.info"))["relays"]["circuits_made"] for p in publics])


async def test_homes_reserve_two_relays_and_publish_them(net: dict[str, Any]) -> None:
    publics = {p.peer_id for p in net["publics"]}
    for home in (net["vendor"], net["buyer"]):
        relays = await wait_for(lambda home=home: relays_of(home, 2), 60,
                                what="a home behind NAT to hold two relay slots")
        assert all(a.endswith("/p2p-circuit") for a in relays)
        assert {a.split("/p2p/")[1].split("/")[0] for a in relays} <= publics
        info = await home.call("node.info")
        assert len(info["relays"]["reserved_on"]) == 2
    offered = [(await p.call("node.info"))["relays"] for p in net["publics"]]
    assert all(o["offered"] for o in offered)  # auto: public nodes offer relaying
    assert sum(o["reservations"] for o in offered) == 4


async def test_the_store_of_a_natted_vendor_comes_from_the_vendor_through_a_relay(
        net: dict[str, Any]) -> None:
    vendor, buyer = net["vendor"], net["buyer"]
    relays = await wait_for(lambda: relays_of(vendor, 2), 60, what="the vendor's relays")

    async def published() -> bool:  # the vendor's profile names its relays, as others see it
        seen = [a for p in net["publics"] for a in await profile_addrs(p, vendor)]
        return any(a in seen for a in relays)

    await wait_for(published, 60, what="the vendor's relay addresses in its profile")
    before = await circuits_made(net["publics"])
    made = await vendor.call("listing.create", **sample_listing("Birch ladle"))
    start = time.monotonic()
    store = await buyer.call("store.fetch", peer_id=vendor.peer_id)
    took = time.monotonic() - start
    assert made["id"] in [x["id"] for x in store["listings"]]
    peers = {p["peer_id"] for p in await buyer.call("node.peers")}
    assert vendor.peer_id in peers  # connected to the vendor itself...
    after = await circuits_made(net["publics"])
    assert after > before  # ...through a relay (both homes are behind symmetric NATs)
    assert took < 10


async def test_chat_both_ways_over_the_relay(net: dict[str, Any]) -> None:
    vendor, buyer = net["vendor"], net["buyer"]
    await chat_arrives(buyer, vendor, "Is the ladle birch?", "over the relay")
    await chat_arrives(vendor, buyer, "Yes, oiled.", "over the relay")


async def test_symmetric_nats_defeat_the_hole_punch_and_the_relay_stays(
        net: dict[str, Any]) -> None:
    vendor, buyer = net["vendor"], net["buyer"]

    async def tried() -> dict[str, Any] | None:  # the circuit was brought to the vendor
        reach = (await vendor.call("node.info"))["reachability"]
        return dict(reach) if reach["hole_punch"]["tried"] >= 1 else None

    reach = await wait_for(tried, 60, what="the vendor to try a hole punch")
    assert reach["hole_punch"]["succeeded"] == 0 and reach["direct_upgrades"] == 0
    peers = {p["peer_id"]: p for p in await buyer.call("node.peers")}
    assert peers[vendor.peer_id]["relayed"] is True
    await chat_arrives(buyer, vendor, "Still there?", "over the relay after the punch")


async def test_a_relay_that_goes_away_is_replaced_within_a_minute(
        net: dict[str, Any]) -> None:
    vendor, buyer = net["vendor"], net["buyer"]
    relays = await wait_for(lambda: relays_of(vendor, 2), 60, what="the vendor's relays")
    gone_id = relays[0].split("/p2p/")[1].split("/")[0]
    gone = next(p for p in net["publics"] if p.peer_id == gone_id)
    await gone.stop()
    start = time.monotonic()

    async def moved() -> list[str] | None:
        now = await relays_of(vendor, 2)
        return now if now and all(gone_id not in a for a in now) else None

    now = await wait_for(moved, 90, what="the vendor on another relay")
    assert time.monotonic() - start < 60
    assert len({a.split("/p2p/")[1].split("/")[0] for a in now}) == 2

    async def republished() -> bool:
        live = [p for p in net["publics"] if p is not gone]
        seen = [a for a in await profile_addrs(live[0], vendor)]
        return all(a in seen for a in now) and all(gone_id not in a for a in seen)

    await wait_for(republished, 60, what="the vendor's profile naming its new relays")
    await buyer.call("chat.send", peer_id=vendor.peer_id, text="Still there?")

    async def arrived() -> bool:
        return any(m["text"] == "Still there?" for m in await vendor.call("chat.list"))

    await wait_for(arrived, 30, interval=0.05, what="a message after the relay went away")
