"""Homes behind NAT on one machine, for tests: Linux network namespaces the test makes and
removes itself (docs: ../shared/reference/nat-lab.md).

    wan      a bridge, 100.64.0.1/24: the public node (and anything "on the internet")
    r<i>     a home router: 100.64.0.1<i> on the wan, 10.2<i>.0.1 to its home; nftables
             masquerade (``masquerade random`` for a symmetric-like NAT), inbound dropped
             unless it belongs to a connection from inside
    h<i>     the home: 10.2<i>.0.2, default route via its router

Nodes run inside a namespace (``ip netns exec``); their JSON-RPC (loopback inside it) is
reached through a Unix socket forwarder (``tests.ns_forward``). Every name carries the test
process's pid, and ``down`` removes everything, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.app.launcher import wait_for
from node.app.regtest import PASSWORD, USER
from tests.trade_kit import FAST, PASSPHRASE
from tui.client import RpcCallError, RpcClient

ROOT = Path(__file__).resolve().parents[1]
WAN_ADDR = "100.64.0.1"
UPNP_WAN_NET = "20.0.0"


def available() -> str | None:
    """Why the lab cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deps installs iproute2 and nftables)"
    return None


def upnp_available() -> str | None:
    """Why a UPnP router cannot run here (None: it can)."""
    why = available()
    if why is None and shutil.which("miniupnpd") is None:
        return "miniupnpd is not installed (make deps installs miniupnpd-nftables)"
    return why


def sh(*cmd: str, ns: str | None = None, check: bool = True,
       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    done = subprocess.run(full, capture_output=True, text=True, input=stdin, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def sweep_stale() -> None:
    """Remove the namespaces of labs whose process is gone (killed before its ``down``)."""
    listed = sh("ip", "netns", "list", check=False).stdout.split()
    for name in listed:
        m = re.fullmatch(r"t[wrhl](\d+)(x\d+)?", name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            sh("ip", "netns", "del", name, check=False)
        except PermissionError:
            pass


class Lab:
    def __init__(self, homes: int, symmetric: bool = False, upnp: bool = False,
                 stealth: bool = False) -> None:
        tag = os.getpid()  # names stay within 15 characters (veth names)
        # a router with UPnP (miniupnpd) refuses to map ports behind a reserved WAN address
        # (100.64/10 is one), so its "internet" takes an ordinary one; it exists only inside
        # these namespaces
        self.wan_net = UPNP_WAN_NET if upnp else "100.64.0"
        self.wan_addr = f"{self.wan_net}.1"
        self.upnp = upnp
        self.upnpd: list[subprocess.Popen[bytes]] = []
        self.wan = f"tw{tag}"
        self.routers = [f"tr{tag}x{i}" for i in range(homes)]
        self.homes = [f"th{tag}x{i}" for i in range(homes)]
        self.symmetric = symmetric
        self.stealth = stealth  # routers drop unsolicited packets to themselves, as most do
        self.tag = tag

    def home_addr(self, i: int) -> str:
        return f"10.2{i}.0.2"

    def home_node(self, i: int, data_dir: Path, bootstrap: list[str], port: int = 4717,
                  **kw: Any) -> NsNode:
        """A node (not started) in home ``i``, listening on its home address."""
        return NsNode(self.homes[i], data_dir, f"/ip4/{self.home_addr(i)}/tcp/{port}",
                      bootstrap=bootstrap, **kw)

    def router_addr(self, i: int) -> str:
        return f"{self.wan_net}.1{i}"

    # ------------------------------------------------------------------ building
    def up(self) -> Lab:
        sweep_stale()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        for ns in [self.wan, *self.routers, *self.homes]:
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.wan)
        sh("ip", "addr", "add", f"{self.wan_addr}/24", "dev", "br0", ns=self.wan)
        sh("ip", "link", "set", "br0", "up", ns=self.wan)
        for i, (router, home) in enumerate(zip(self.routers, self.homes, strict=True)):
            up, down = f"tu{self.tag}x{i}", f"td{self.tag}x{i}"
            # router <-> wan
            sh("ip", "link", "add", up, "type", "veth", "peer", "name", "wan0")
            sh("ip", "link", "set", up, "netns", self.wan)
            sh("ip", "link", "set", "wan0", "netns", router)
            sh("ip", "link", "set", up, "master", "br0", ns=self.wan)
            sh("ip", "link", "set", up, "up", ns=self.wan)
            sh("ip", "addr", "add", f"{self.router_addr(i)}/24", "dev", "wan0", ns=router)
            sh("ip", "link", "set", "wan0", "up", ns=router)
            # router <-> home
            sh("ip", "link", "add", down, "type", "veth", "peer", "name", "lan0")
            sh("ip", "link", "set", down, "netns", router)
            sh("ip", "link", "set", "lan0", "netns", home)
            sh("ip", "addr", "add", f"10.2{i}.0.1/24", "dev", down, ns=router)
            sh("ip", "link", "set", down, "up", ns=router)
            sh("ip", "addr", "add", f"{self.home_addr(i)}/24", "dev", "lan0", ns=home)
            sh("ip", "link", "set", "lan0", "up", ns=home)
            sh("ip", "route", "add", "default", "via", f"10.2{i}.0.1", ns=home)
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=router)
            if self.upnp:
                self._upnp_router(i, router, down)
                continue
            masquerade = "masquerade random" if self.symmetric else "masquerade"
            rules = (
                "table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n"
                f"  oifname \"wan0\" {masquerade}\n }}\n}}\n"
                "table ip filter {\n chain forward_home {\n"
                "  type filter hook forward priority 0; policy drop;\n"
                "  ct state established,related accept\n"
                f"  iifname \"{down}\" accept\n }}\n}}\n")
            if self.stealth:  # no RST for a SYN nobody inside asked for: hole punching needs
                # the first SYN to arrive to go unanswered, not to kill the other side's dial
                rules += ("table ip stealth {\n chain input {\n"
                          "  type filter hook input priority 0; policy accept;\n"
                          "  iifname \"wan0\" ct state new drop\n }\n}\n")
            sh("nft", "-f", "-", ns=router, stdin=rules)

    def _upnp_router(self, i: int, router: str, lan_if: str) -> None:
        """A home router as miniupnpd (nftables backend) wants it: its forward and NAT chains
        jump to chains the daemon fills with the mappings homes ask for."""
        rules = (
            "table inet torvupnp {\n"
            " chain forward {\n  type filter hook forward priority 0; policy drop;\n"
            "  ct state established,related accept\n"
            f"  iifname \"{lan_if}\" accept\n  jump upnp_forward\n }}\n"
            " chain upnp_forward {\n }\n"
            " chain prerouting {\n  type nat hook prerouting priority -100; policy accept;\n"
            "  jump upnp_prerouting\n }\n"
            " chain postrouting {\n  type nat hook postrouting priority 100; policy accept;\n"
            "  jump upnp_postrouting\n  oifname \"wan0\" masquerade\n }\n"
            " chain upnp_prerouting {\n }\n chain upnp_postrouting {\n }\n}\n")
        sh("nft", "-f", "-", ns=router, stdin=rules)
        conf = Path(f"/tmp/{router}.miniupnpd.conf")
        conf.write_text(
            f"ext_ifname=wan0\nlistening_ip={lan_if}\nport=0\nenable_natpmp=no\n"
            "enable_upnp=yes\nsecure_mode=yes\nsystem_uptime=yes\n"
            "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\n"
            "upnp_table_name=torvupnp\nupnp_nat_table_name=torvupnp\n"
            "upnp_forward_chain=upnp_forward\nupnp_nat_chain=upnp_prerouting\n"
            "upnp_nat_postrouting_chain=upnp_postrouting\n"
            f"allow 1024-65535 10.2{i}.0.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n")
        self.upnpd.append(subprocess.Popen(
            ["ip", "netns", "exec", router, "miniupnpd", "-f", str(conf), "-d",
             "-P", f"/tmp/{router}.miniupnpd.pid"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def mappings(self, i: int) -> str:
        """The port mappings router ``i`` holds now (its nftables DNAT rules)."""
        return sh("nft", "list", "chain", "inet", "torvupnp", "upnp_prerouting",
                  ns=self.routers[i]).stdout

    def down(self) -> None:
        for proc in self.upnpd:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for router in self.routers:
            for suffix in ("conf", "pid"):
                Path(f"/tmp/{router}.miniupnpd.{suffix}").unlink(missing_ok=True)
        for ns in [*self.homes, *self.routers, self.wan]:
            sh("ip", "netns", "del", ns, check=False)


class LanLab:
    """One LAN: a switch (a bridge in its own namespace) and ``hosts`` machines on it, each a
    namespace at 10.31.0.1<i>/24, no router, no internet: what mDNS is for."""

    def __init__(self, hosts: int) -> None:
        tag = os.getpid()
        self.switch = f"tl{tag}"
        self.hosts = [f"tl{tag}x{i}" for i in range(hosts)]
        self.tag = tag

    def addr(self, i: int) -> str:
        return f"10.31.0.1{i}"

    def up(self) -> LanLab:
        sweep_stale()
        try:
            sh("ip", "netns", "add", self.switch)
            sh("ip", "link", "add", "br0", "type", "bridge", ns=self.switch)
            sh("ip", "link", "set", "br0", "up", ns=self.switch)
            for i, host in enumerate(self.hosts):
                port = f"tp{self.tag}x{i}"
                sh("ip", "netns", "add", host)
                sh("ip", "link", "set", "lo", "up", ns=host)
                nic = f"tq{self.tag}x{i}"  # named eth0 once inside (the machine has one)
                sh("ip", "link", "add", port, "type", "veth", "peer", "name", nic)
                sh("ip", "link", "set", port, "netns", self.switch)
                sh("ip", "link", "set", nic, "netns", host)
                sh("ip", "link", "set", nic, "name", "eth0", ns=host)
                sh("ip", "link", "set", port, "master", "br0", ns=self.switch)
                sh("ip", "link", "set", port, "up", ns=self.switch)
                sh("ip", "addr", "add", f"{self.addr(i)}/24", "dev", "eth0", ns=host)
                sh("ip", "link", "set", "eth0", "up", ns=host)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for ns in [*self.hosts, self.switch]:
            sh("ip", "netns", "del", ns, check=False)


class NsNode:
    """A Torv node inside a namespace, driven over its JSON-RPC through a Unix socket."""

    def __init__(self, ns: str, data_dir: Path, listen: str, bootstrap: list[str] | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.ns = ns
        self.data_dir = data_dir
        self.listen = listen
        self.bootstrap = bootstrap or []
        self.extra_args = extra_args or []
        self.env = env or {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.client: RpcClient | None = None
        self.info: dict[str, Any] = {}

    @property
    def socket(self) -> str:
        return str(self.data_dir.parent / f"{self.data_dir.name}.rpc.sock")

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in ("rpc.port", "rpc.cookie"):
            (self.data_dir / name).unlink(missing_ok=True)
        Path(self.socket).unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "node.app.cli", "node", "--data-dir", str(self.data_dir),
               "--listen", self.listen, "--rpc-port", "0", *self.extra_args]
        if self.bootstrap:
            cmd += ["--bootstrap", *self.bootstrap]
        env = {**os.environ, **self.env}
        with open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab") as log:
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, *cmd],
                                               stdout=log, stderr=subprocess.STDOUT,
                                               env=env, cwd=ROOT))
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "tests.ns_forward",
             self.socket, str(self.data_dir)], cwd=ROOT, env=env))

    async def ready(self, timeout: float = 60.0) -> NsNode:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded
            if self.procs[0].poll() is not None:
                log = self.data_dir.parent / f"{self.data_dir.name}.log"
                raise RuntimeError(f"node exited early:\n{log.read_text()[-3000:]}")
            cookie = self.data_dir / "rpc.cookie"
            if cookie.exists() and Path(self.socket).exists():
                client = RpcClient("http://localhost/rpc", cookie.read_text().strip(),
                                   timeout=60, unix_socket=self.socket)
                try:
                    self.info = await client.call("node.info")
                    self.client = client
                    return self
                except RpcCallError:
                    await client.close()
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the node in {self.ns} did not start within {timeout} s")

    async def start(self) -> NsNode:
        self.spawn()
        return await self.ready()

    async def call(self, method: str, **params: Any) -> Any:
        assert self.client is not None
        return await self.client.call(method, **params)

    @property
    def peer_id(self) -> str:
        return str(self.info["peer_id"])

    @property
    def addr(self) -> str:
        return f"{self.listen}/p2p/{self.peer_id}"

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self.procs = []


class ChainBridge:
    """The test session's regtest chain (127.0.0.1 of the machine) at ``<wan>:18332`` inside
    the lab, as a chain node on the internet would be: a Unix socket carries the connections
    across (``tests.ns_bridge``)."""

    PORT = 18332

    def __init__(self, lab: Lab, rpc_port: int, base: Path) -> None:
        self.lab = lab
        self.rpc_port = rpc_port
        self.socket = str(base / "chain.sock")
        self.procs: list[subprocess.Popen[bytes]] = []

    def url(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@{self.lab.wan_addr}:{self.PORT}"

    async def start(self) -> ChainBridge:
        Path(self.socket).unlink(missing_ok=True)
        mod = [sys.executable, "-m", "tests.ns_bridge"]
        self.procs.append(subprocess.Popen(
            [*mod, "unix-to-tcp", self.socket, "127.0.0.1", str(self.rpc_port)], cwd=ROOT))
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.lab.wan, *mod, "tcp-to-unix", self.lab.wan_addr,
             str(self.PORT), self.socket], cwd=ROOT))
        async def listening() -> bool:
            ss = sh("ss", "-ltn", f"sport = :{self.PORT}", ns=self.lab.wan, check=False)
            return Path(self.socket).exists() and f":{self.PORT}" in ss.stdout

        await wait_for(listening, 30, what="the chain bridge to listen")
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.procs = []
        Path(self.socket).unlink(missing_ok=True)


async def start_trading_parties(lab: Lab, bridge: ChainBridge, base: Path,
                                nodes: list[NsNode]) -> tuple[NsNode, NsNode, NsNode]:
    """A public moderator (in the wan) and a vendor and a buyer in the first two homes, each
    with a wallet on the bridged regtest chain; the moderator offers moderation and the vendor
    accepts it. Each node is added to ``nodes`` as it starts (the caller stops them)."""
    chain = ["--chain", "litecoin-regtest", "--chain-rpc", bridge.url(USER, PASSWORD), *FAST]
    env = {"TORV_WALLET_PASSPHRASE": PASSPHRASE}
    moderator = await NsNode(lab.wan, base / "moderator", f"/ip4/{lab.wan_addr}/tcp/4717",
                             extra_args=chain, env=env).start()
    nodes.append(moderator)
    homes = []
    for i, name in enumerate(("vendor", "buyer")):
        homes.append(await lab.home_node(i, base / name, [moderator.addr], extra_args=chain,
                                         env=env).start())
        nodes.append(homes[-1])
    vendor, buyer = homes
    await moderator.call("profile.set", name="Public moderator",
                         moderator={"fee_bp": 200, "fee_fixed": 10_000,
                                    "description": "On the internet"})
    await vendor.call("profile.set", name="Home workshop", moderators=[moderator.peer_id])
    return moderator, vendor, buyer


async def shutdown(lab: Lab | LanLab, nodes: list[NsNode], *also: Callable[[], None]) -> None:
    """The end of every lab run: stop ``nodes``, then ``also`` (a chain bridge), then take
    the lab's namespaces down, each even if a step before it failed."""
    try:
        for node in nodes:
            await node.stop()
    finally:
        try:
            for stop in also:
                stop()
        finally:
            lab.down()


async def chat_arrives(sender: NsNode, recipient: NsNode, text: str, what: str) -> None:
    """Send ``text`` by chat and wait (30 s at most) until the recipient lists it."""
    await sender.call("chat.send", peer_id=recipient.peer_id, text=text)

    async def arrived() -> bool:
        return any(m["text"] == text for m in await recipient.call("chat.list"))

    await wait_for(arrived, 30, interval=0.05, what=f"{text!r} {what}")
