"""A home router with UPnP (a real miniupnpd in the router's namespace, nftables backend): the
node behind it maps its listen port, learns from peers' dial-backs that it is reachable there,
publishes that address, and a node that never met it connects to it directly through the
router; the mapping goes when the node stops. A node told --no-upnp maps nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .cluster import sample_listing, wait_for
from .natlab import Lab, NsNode, shutdown, upnp_available

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(upnp_available() is not None, reason=str(upnp_available()))]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Lab, list[NsNode]]]:
    base = tmp_path_factory.mktemp("upnp")
    lab = Lab(2, upnp=True).up()
    nodes: list[NsNode] = []
    try:
        public = await NsNode(lab.wan, base / "public", f"/ip4/{lab.wan_addr}/tcp/4717").start()
        nodes.append(public)
        for i, (name, extra) in enumerate((("home", []), ("optout", ["--no-upnp"]))):
            nodes.append(await lab.home_node(i, base / name, [public.addr],
                                             extra_args=extra).start())
        yield lab, nodes
    finally:
        await shutdown(lab, nodes)


async def test_a_node_behind_a_upnp_router_is_reachable_there(
        lab: tuple[Lab, list[NsNode]], tmp_path_factory: pytest.TempPathFactory) -> None:
    net, (public, home, optout) = lab
    mapped = f"/ip4/{net.router_addr(0)}/tcp/4717"

    async def upnp_mapped() -> bool:
        return (await home.call("node.info"))["upnp"]["mapped"] == [mapped]

    await wait_for(upnp_mapped, 60, what="the home's port mapped on its router")
    assert f"dnat ip to {net.home_addr(0)}:4717" in net.mappings(0)

    async def reachable() -> dict[str, object] | None:
        reach = (await home.call("node.info"))["reachability"]
        return reach if reach["status"] == "public" else None

    reach = await wait_for(reachable, 60, what="peers to reach the home through its router")
    assert mapped in reach["public_addrs"]  # type: ignore[operator]

    async def published() -> bool:
        profile = await public.call("profile.get", peer_id=home.peer_id)
        return mapped in (profile.get("addrs") or [])

    await wait_for(published, 60, what="the mapped address in the home's signed profile")
    # a node that never met the home dials it directly, through the router
    made = await home.call("listing.create", **sample_listing("Birch spoon"))
    visitor = await NsNode(net.wan, tmp_path_factory.mktemp("visitor") / "v",
                           f"/ip4/{net.wan_addr}/tcp/4718").start()
    try:
        got = await visitor.call("node.connect", addr=f"{mapped}/p2p/{home.peer_id}")
        assert got["peer_id"] == home.peer_id
        store = await visitor.call("store.fetch", peer_id=home.peer_id)
        assert [x["id"] for x in store["listings"]] == [made["id"]]
    finally:
        await visitor.stop()


async def test_no_upnp_maps_nothing_and_stays_private(lab: tuple[Lab, list[NsNode]]) -> None:
    net, (_, _, optout) = lab

    async def private() -> bool:
        return (await optout.call("node.info"))["reachability"]["status"] == "private"

    await wait_for(private, 60, what="the opted-out home to know it is behind NAT")
    info = (await optout.call("node.info"))["upnp"]
    assert info["enabled"] is False and info["mapped"] == []
    assert "dnat" not in net.mappings(1)


async def test_the_mapping_goes_when_the_node_stops(lab: tuple[Lab, list[NsNode]]) -> None:
    net, (_, home, _) = lab
    assert "dnat" in net.mappings(0)
    await home.stop()

    async def unmapped() -> bool:
        return "dnat" not in net.mappings(0)

    await wait_for(unmapped, 30, what="the router to drop the mapping")
