"""Neighbours on the LAN (mDNS): Torv nodes on the same network find each other without a
bootstrap address (a market at a fair, a co-op's office with no internet).

The node announces itself as the libp2p mDNS spec says (service ``_p2p._udp.local.``, an
instance name of random letters, one TXT ``dnsaddr=<multiaddr>/p2p/<peer id>`` per address),
browses for others and connects to each one it hears of. Every announcement is hostile until
checked: at most ``MAX_ADDRS`` addresses each, each a whole ``/ip4/<private address>/tcp/<port>
/p2p/<peer id>`` (a public or loopback address is never dialled); a peer is dialled at most once
per ``REDIAL_SECONDS``, announcements are looked at a few a second, and at most
``MAX_PENDING`` wait (the rest are dropped), so a noisy LAN cannot make the node dial without
end.

It runs only when the node listens on an address other than loopback (0.0.0.0 or a LAN
address): a node listening on 127.0.0.1 has nobody on a LAN to meet. ``--no-mdns`` turns it off.

py-libp2p 0.8.1's ``libp2p/discovery/mdns`` is not used: it makes blocking zeroconf calls
(registration, ``get_service_info`` with retries that ``time.sleep``) and writes the peerstore
from zeroconf's thread, both of which would stall or race the node's one event loop. This
module speaks the same records through zeroconf's asyncio API.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import secrets
import string
import time
from typing import TYPE_CHECKING, Any

from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from node.core.services import Service
from node.net.host import P2PError
from protocol.errors import RemoteProtocolError

if TYPE_CHECKING:
    from zeroconf import Zeroconf

    from node.core.node import NodeCore

log = logging.getLogger("torv.lan")

SERVICE_TYPE = "_p2p._udp.local."
MAX_ADDRS = 8
MAX_PENDING = 64
REDIAL_SECONDS = 60.0
LOOKUP_MS = 3000
PACE_SECONDS = 0.2
DNSADDR = re.compile(
    r"/ip4/(\d{1,3}(?:\.\d{1,3}){3})/tcp/(\d{1,5})/p2p/(12D3KooW[1-9A-HJ-NP-Za-km-z]{44})")


def announced_addrs(txt: dict[bytes, bytes | None] | list[bytes]) -> list[tuple[str, str]]:
    """(multiaddr, peer id) of each well-formed ``dnsaddr=`` TXT entry, at most MAX_ADDRS."""
    entries = txt if isinstance(txt, list) else [
        k + (b"=" + v if v is not None else b"") for k, v in txt.items()]
    out: list[tuple[str, str]] = []
    for raw in entries[:32]:
        if len(raw) > 300 or not raw.startswith(b"dnsaddr="):
            continue
        try:
            text = raw[len(b"dnsaddr="):].decode("ascii")
        except UnicodeDecodeError:
            continue
        m = DNSADDR.fullmatch(text)
        if m is None or not 0 < int(m.group(2)) < 65536:
            continue
        try:
            ipaddress.IPv4Address(m.group(1))
        except ValueError:
            continue
        out.append((text, m.group(3)))
        if len(out) >= MAX_ADDRS:
            break
    return out


def on_a_lan(addr: str) -> bool:
    """Whether an announced address is one a LAN neighbour may have: a private IPv4 address
    (10/8, 172.16/12, 192.168/16, link-local), never loopback or a public one (an announcement
    cannot aim our dials at the internet)."""
    ip = ipaddress.IPv4Address(addr.split("/")[2])
    return ip.is_private and not ip.is_loopback and not ip.is_unspecified


def lan_ips(listen: list[str]) -> list[str] | None:
    """The IPv4 addresses the node listens on that a LAN can reach: [] when only loopback
    (no mDNS), None when it listens on every interface (0.0.0.0)."""
    ips: list[str] = []
    for addr in listen:
        m = re.match(r"/ip4/([0-9.]+)/", addr)
        if m is None:
            continue
        ip = ipaddress.IPv4Address(m.group(1))
        if ip.is_unspecified:
            return None
        if not ip.is_loopback:
            ips.append(str(ip))
    return ips


def _name() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(32))


class LanService(Service):
    name = "lan"

    def __init__(self, core: NodeCore, listen: list[str], enabled: bool = True) -> None:
        super().__init__(core)
        self.ips = lan_ips(listen)
        self.enabled = enabled and self.ips != []
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._pending: asyncio.Queue[str] = asyncio.Queue(MAX_PENDING)
        self._dialled: dict[str, float] = {}  # peer -> when we last dialled it (monotonic)
        self.found = 0
        self.dropped = 0

    def info(self) -> dict[str, Any]:
        return {"mdns": self.enabled, "found": self.found, "dropped": self.dropped}

    async def start(self) -> None:
        if not self.enabled:
            return
        interfaces: Any = self.ips if self.ips else None
        self._zc = (AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
                    if interfaces else AsyncZeroconf(ip_version=IPVersion.V4Only))
        me = self.core.me
        addrs = [a for a in self.core.host.addrs() if a.startswith("/ip4/")
                 and not a.startswith(("/ip4/127.", "/ip4/0.0.0.0/"))]
        txt = {f"dnsaddr={a}".encode(): None for a in addrs[:MAX_ADDRS]}
        port = int(addrs[0].split("/tcp/")[1].split("/")[0]) if addrs else 0
        self._info = AsyncServiceInfo(
            SERVICE_TYPE, f"{_name()}.{SERVICE_TYPE}", port=port,
            properties={k.decode(): None for k in txt}, server=f"{_name()}.local.",
            parsed_addresses=[a.split("/")[2] for a in addrs[:MAX_ADDRS]])
        self.core.spawn(self._register(), "mdns announce")
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE,
                                            handlers=[self._on_change])
        self.core.spawn(self._connect_loop(), "mdns neighbours")
        log.info("looking for neighbours on the LAN (mDNS) as %s", me[-8:])

    async def _register(self) -> None:
        assert self._zc is not None and self._info is not None
        try:
            await self._zc.async_register_service(self._info)
        except Exception as exc:  # noqa: BLE001 - zeroconf raises its own kinds; mDNS is a bonus
            log.warning("could not announce this node on the LAN: %s", exc)

    async def stop(self) -> None:
        if self._zc is None:
            return
        try:
            if self._browser is not None:
                await self._browser.async_cancel()
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
        except Exception as exc:  # noqa: BLE001
            log.debug("mDNS stop: %s", exc)
        await self._zc.async_close()
        self._zc = None

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            return
        if self._info is not None and name == self._info.name:
            return
        try:
            self._pending.put_nowait(name)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _connect_loop(self) -> None:
        while True:
            name = await self._pending.get()
            if len(name) > 255 or self._zc is None:
                self.dropped += 1
                continue
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(self._zc.zeroconf, LOOKUP_MS):
                continue
            await self._meet(announced_addrs(_txt_entries(info.text)))
            await asyncio.sleep(PACE_SECONDS)  # a noisy LAN gets a few dials a second at most

    async def _meet(self, addrs: list[tuple[str, str]]) -> None:
        now = time.monotonic()
        for addr, peer in addrs:
            if peer == self.core.me or peer in self.core.peers():
                return
            if now - self._dialled.get(peer, -REDIAL_SECONDS) < REDIAL_SECONDS:
                return
            if not on_a_lan(addr):
                continue
            self._dialled[peer] = now
            if len(self._dialled) > 1000:  # bounded
                for old in sorted(self._dialled, key=self._dialled.__getitem__)[:100]:
                    del self._dialled[old]
            try:
                await self.core.connect(addr)
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("LAN neighbour %s at %s: %s", peer[:12], addr, exc)
                continue
            self.found += 1
            log.info("met LAN neighbour %s", peer[:12])
            return


def _txt_entries(text: bytes | None) -> list[bytes]:
    """The entries of a DNS TXT record's wire form (length-prefixed strings)."""
    out: list[bytes] = []
    i = 0
    data = text or b""
    while i < len(data) and len(out) < 32:
        n = data[i]
        out.append(data[i + 1:i + 1 + n])
        i += 1 + n
    return out
