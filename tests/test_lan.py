"""Neighbours on a LAN (node/core/lan.py): announcements checked as hostile input (tables), and
three real nodes on one LAN with no bootstrap address and no internet (network namespaces the
test makes and removes) that find each other and each other's listings through mDNS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.app import config_file
from node.app.cli import build_parser, with_settings
from node.core.lan import _txt_entries, announced_addrs, lan_ips, on_a_lan
from protocol.errors import LocalProtocolError

from .cluster import sample_listing, wait_for
from .natlab import LanLab, NsNode, available, shutdown

PID = "12D3KooW" + "A" * 44
GOOD = f"/ip4/192.168.1.20/tcp/4717/p2p/{PID}"


@pytest.mark.parametrize(("entries", "want"), [
    ([f"dnsaddr={GOOD}".encode()], [(GOOD, PID)]),
    ([f"dnsaddr={GOOD}\n".encode()], []),  # matched whole: no trailing newline
    ([f"dnsaddr={GOOD}/extra".encode()], []),
    ([f"dnsaddr=/ip4/192.168.1.20/tcp/0/p2p/{PID}".encode()], []),  # port 0
    ([f"dnsaddr=/ip4/192.168.1.20/tcp/70000/p2p/{PID}".encode()], []),
    ([f"dnsaddr=/ip4/999.1.1.1/tcp/4717/p2p/{PID}".encode()], []),
    ([f"dnsaddr=/dns4/evil.example/tcp/4717/p2p/{PID}".encode()], []),
    ([f"other={GOOD}".encode()], []),
    ([b"dnsaddr=" + "é".encode() * 10], []),
    ([b"dnsaddr=" + b"/" * 400], []),
    ([f"dnsaddr={GOOD}".encode()] * 20, [(GOOD, PID)] * 8),  # at most 8
])
def test_announcements_are_checked_whole(entries: list[bytes], want: list[tuple[str, str]]
                                         ) -> None:
    assert announced_addrs(entries) == want


def test_only_lan_addresses_are_dialled_and_only_when_listening_beyond_loopback() -> None:
    assert on_a_lan(GOOD) and on_a_lan(f"/ip4/10.31.0.11/tcp/1/p2p/{PID}")
    assert not on_a_lan(f"/ip4/8.8.8.8/tcp/53/p2p/{PID}")  # never aimed at the internet
    assert not on_a_lan(f"/ip4/127.0.0.1/tcp/1/p2p/{PID}")
    assert lan_ips(["/ip4/127.0.0.1/tcp/0"]) == []  # tests on loopback: no mDNS
    assert lan_ips(["/ip4/0.0.0.0/tcp/4717"]) is None  # every interface
    assert lan_ips(["/ip4/10.31.0.11/tcp/4717", "/ip4/127.0.0.1/tcp/1"]) == ["10.31.0.11"]


def test_txt_wire_form() -> None:
    assert _txt_entries(b"\x03abc\x00\x02de") == [b"abc", b"", b"de"]
    assert _txt_entries(None) == []
    assert len(_txt_entries(b"\x00" * 100)) == 32  # bounded


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def lan(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NsNode]]:
    base = tmp_path_factory.mktemp("lan")
    lab = LanLab(3).up()
    nodes: list[NsNode] = []
    try:
        for i, name in enumerate(("vendor", "buyer", "moderator")):
            nodes.append(await NsNode(lab.hosts[i], base / name,
                                      f"/ip4/{lab.addr(i)}/tcp/4717").start())
        yield nodes
    finally:
        await shutdown(lab, nodes)


@pytest.mark.skipif(available() is not None, reason=str(available()))
@pytest.mark.asyncio(loop_scope="module")
async def test_three_nodes_on_a_lan_find_each_other_without_bootstrap(
        lan: list[NsNode]) -> None:
    vendor, buyer, moderator = lan

    async def meshed() -> bool:
        return all([(await n.call("node.info"))["peers"] >= 2 for n in lan])

    await wait_for(meshed, 60, what="the three neighbours to connect through mDNS")
    assert (await buyer.call("node.info"))["lan"]["found"] >= 1
    made = await vendor.call("listing.create", **sample_listing("Fair-day honey"))

    async def found(node: NsNode) -> bool:
        return [h["listing"]["id"] for h in await node.call("listing.search",
                                                             query="honey")] == [made["id"]]

    for node in (buyer, moderator):
        await wait_for(lambda node=node: found(node), 60, what="the vendor's listing")


def test_mdns_is_a_setting_and_a_flag(tmp_path: Path) -> None:
    assert config_file.Settings().mdns is True
    config_file.save(tmp_path, config_file.Settings(mdns=False))
    assert "mdns = false" in (tmp_path / "torv.toml").read_text()
    loaded = config_file.load(tmp_path)
    assert loaded is not None and loaded.mdns is False
    with pytest.raises(LocalProtocolError, match="mdns: must be bool"):
        config_file.Settings.from_dict({"mdns": "no"})
    with pytest.raises(LocalProtocolError, match="rpc_port: must be int"):
        config_file.Settings.from_dict({"rpc_port": True})  # a bool is no port
    args = build_parser().parse_args(["node", "--data-dir", str(tmp_path)])
    assert with_settings(args).no_mdns is True  # the file said no
    args = build_parser().parse_args(["node", "--data-dir", str(tmp_path / "fresh"),
                                      "--no-mdns"])
    assert with_settings(args).no_mdns is True
    args = build_parser().parse_args(["node", "--data-dir", str(tmp_path / "fresh")])
    assert with_settings(args).no_mdns is False
