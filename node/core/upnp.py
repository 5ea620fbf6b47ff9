"""Port mapping on a home router (UPnP IGD): when the router offers it, the node maps its
listen port, so peers can dial it through the router; ``--no-upnp`` opts out.

The node finds the router by SSDP (``miniupnpc``, in a thread: its calls block), asks for the
same external port as its listen port (then a few others when that one is taken), renews the
mapping at half its lease, and removes it when it stops. What the router says is not taken on
trust: the mapped address is published (in the signed profile, by the market) only once
peers have dialled the node back there (``node.core.reach``), so a rogue "router" on the LAN
cannot make the node advertise an address that is not its own.

It runs only when the node listens beyond loopback (a node on 127.0.0.1 has no router).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import miniupnpc

from node.core.lan import lan_ips
from node.core.services import Service
from node.net.host_support import tcp_ports

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.upnp")

LEASE = 3600  # seconds asked for each mapping; renewed at half
DISCOVER_MS = 2000
RETRY = 300.0  # look for a router again this often while none answered
OTHER_PORTS = 4  # external ports tried after the listen port itself


class UpnpError(Exception):
    """The router refused or did not answer (a local condition: reported, never raised on)."""


@dataclass
class Mapping:
    internal: int
    external: int


@dataclass
class Gateway:
    """What one conversation with the router found (all of it from blocking calls)."""

    lan_addr: str = ""
    external_ip: str = ""
    mappings: list[Mapping] = field(default_factory=list)


def _client() -> Any:
    u = miniupnpc.UPnP()
    u.discoverdelay = DISCOVER_MS
    try:
        found = u.discover()
    except Exception as exc:  # noqa: BLE001 - miniupnpc raises bare Exception ("Success")
        raise UpnpError(f"no UPnP device answered on the LAN ({exc})") from None
    if found < 1:
        raise UpnpError("no UPnP device answered on the LAN")
    try:
        u.selectigd()
    except Exception as exc:  # noqa: BLE001 - miniupnpc raises bare Exception
        raise UpnpError(f"no Internet gateway device: {exc}") from None
    return u


def map_ports(ports: list[int], description: str, lease: int = LEASE) -> Gateway:
    """Find the router and map each TCP ``port`` (blocking: run it in a thread)."""
    u = _client()
    try:
        gw = Gateway(lan_addr=str(u.lanaddr), external_ip=str(u.externalipaddress() or ""))
    except Exception as exc:  # noqa: BLE001 - miniupnpc raises bare Exception
        raise UpnpError(f"the router did not say its external address: {exc}") from None
    for port in ports:
        candidates = [port] + [random.randint(20000, 60000) for _ in range(OTHER_PORTS)]
        for external in candidates:
            try:
                if u.addportmapping(external, "TCP", gw.lan_addr, port, description, "",
                                    lease):
                    gw.mappings.append(Mapping(port, external))
                    break
            except Exception as exc:  # noqa: BLE001 - a taken port, a refusal
                log.debug("UPnP mapping %d -> %d refused: %s", external, port, exc)
    if not gw.mappings:
        raise UpnpError("the router refused every port mapping")
    return gw


def unmap_ports(externals: list[int]) -> None:
    """Remove our mappings (blocking)."""
    u = _client()
    for external in externals:
        try:
            u.deleteportmapping(external, "TCP")
        except Exception as exc:  # noqa: BLE001
            log.debug("UPnP unmapping %d: %s", external, exc)


class UpnpService(Service):
    name = "upnp"

    def __init__(self, core: NodeCore, listen: list[str], enabled: bool = True) -> None:
        super().__init__(core)
        self.enabled = enabled and lan_ips(listen) != []
        self.gateway: Gateway | None = None
        self.error = ""
        self.on_mapped: list[Callable[[], None]] = []  # the runner: check reachability again

    def info(self) -> dict[str, Any]:
        gw = self.gateway
        return {"enabled": self.enabled, "gateway": gw is not None,
                "external_ip": gw.external_ip if gw else "",
                "mapped": [f"/ip4/{gw.external_ip}/tcp/{m.external}" for m in gw.mappings]
                if gw else [],
                "error": self.error}

    def external_ports(self) -> list[int]:
        """The router's ports mapped to us (for the reachability check to try)."""
        return [m.external for m in self.gateway.mappings] if self.gateway else []

    async def start(self) -> None:
        if self.enabled:
            self.core.spawn(self._keep_mapped(), "upnp")

    async def _keep_mapped(self) -> None:
        desc = f"torv {self.core.me[-8:]}"
        while True:
            try:
                gw = await asyncio.to_thread(map_ports,
                                           tcp_ports(self.core.host.addrs(), lan_only=True), desc)
            except UpnpError as exc:
                if self.gateway is not None or not self.error:
                    log.info("UPnP: %s", exc)
                self.error, self.gateway = str(exc), None
                await asyncio.sleep(RETRY)
                continue
            if self.gateway is None:
                log.info("UPnP: mapped %s on the router (%s)",
                         ", ".join(f"{m.external}->{m.internal}" for m in gw.mappings),
                         gw.external_ip)
                for hook in self.on_mapped:
                    hook()
            self.gateway, self.error = gw, ""
            await asyncio.sleep(LEASE / 2)

    async def stop(self) -> None:
        gw = self.gateway
        if gw is None:
            return
        try:
            async with asyncio.timeout(5):
                await asyncio.to_thread(unmap_ports, [m.external for m in gw.mappings])
        except (TimeoutError, UpnpError) as exc:
            log.debug("UPnP: could not remove the mappings: %s", exc)
