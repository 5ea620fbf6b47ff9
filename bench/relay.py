"""Circuit relay v2: what a relayed store costs to fetch, and what a circuit costs a relay.

    python bench/relay.py fetch [--rounds 20]     (needs root, ip and nft: namespaces)
    python bench/relay.py cost [--circuits 20]    (127.0.0.1)

``fetch``: two homes behind symmetric NATs (``masquerade random``: relays only) and two public
nodes, as ``tests/test_relay_nat.py`` builds them. Times the buyer's first ``store.fetch`` of
the vendor (a new circuit through a relay), then ``rounds`` more (over that circuit: the
vendor answers with its store, the DHT is not waited for), and chat messages both ways.

``cost``: a Torv node offering relaying (``--relay-service on``), one peer holding a slot on
it, and ``circuits`` peers (each its own process, 6 at a time: the relay takes 8 circuits per
IP address and all come from 127.0.0.1) that each connect to the relay, open a circuit to the
peer and send 20 echo requests of 16 KiB; the relay's CPU time and memory before and after,
per circuit.

Prints a JSON summary (seconds, KiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nat_kit import chat_seconds, poll  # noqa: E402
from node.app.launcher import NodeProc  # noqa: E402
from tests.cluster import sample_listing  # noqa: E402
from tests.natlab import WAN_ADDR, Lab, NsNode, available, shutdown  # noqa: E402


def summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"median_s": round(statistics.median(times), 3),
            "p95_s": round(times[max(0, int(len(times) * 0.95) - 1)], 3),
            "max_s": round(times[-1], 3)}


async def fetch(rounds: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="torv-relay-"))
    lab = Lab(2, symmetric=True).up()
    nodes: list[NsNode] = []
    try:
        publics: list[NsNode] = []
        for port in (4717, 4718):
            node = await NsNode(lab.wan, base / f"public{port}", f"/ip4/{WAN_ADDR}/tcp/{port}",
                                bootstrap=[p.addr for p in publics]).start()
            publics.append(node)
        nodes += publics
        homes = []
        for i, name in enumerate(("vendor", "buyer")):
            homes.append(await lab.home_node(i, base / name, [p.addr for p in publics]).start())
        nodes += homes
        vendor, buyer = homes

        async def two_relays() -> bool:
            reach = (await vendor.call("node.info"))["reachability"]
            return len(reach["relays"]) >= 2

        if await poll(two_relays, 60, 0.1) is None:
            raise TimeoutError("the vendor did not get two relay slots")

        async def published() -> bool:
            relays = (await vendor.call("node.info"))["reachability"]["relays"]
            addrs = (await publics[0].call("profile.get", peer_id=vendor.peer_id))["addrs"]
            return any(a in addrs for a in relays)

        if await poll(published, 60, 0.1) is None:
            raise TimeoutError("the vendor's relay addresses were not published")
        made = await vendor.call("listing.create", **sample_listing("Birch ladle"))
        start = time.monotonic()
        await buyer.call("store.fetch", peer_id=vendor.peer_id)
        first = time.monotonic() - start
        times = []
        for _ in range(rounds):
            start = time.monotonic()
            store = await buyer.call("store.fetch", peer_id=vendor.peer_id)
            times.append(time.monotonic() - start)
            assert made["id"] in [x["id"] for x in store["listings"]]
        chat = []
        for k in range(rounds):
            sender, recipient = (buyer, vendor) if k % 2 == 0 else (vendor, buyer)
            took = await chat_seconds(sender, recipient, f"over the relay {k}", 60)
            if took is None:
                raise TimeoutError("a chat message did not arrive over the relay")
            chat.append(took)
        circuits = sum([(await p.call("node.info"))["relays"]["circuits_made"]
                        for p in publics])
        return {"symmetric_nat": True, "first_fetch_new_circuit_s": round(first, 3),
                "fetch_again": summary(times), "chat_over_relay": summary(chat),
                "circuits_made": circuits, "each_fetch_s": [round(t, 3) for t in times]}
    finally:
        await shutdown(lab, nodes)


def cpu_and_rss(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(int(line.split()[1]) for line in
               Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


async def cost(circuits: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="torv-relay-cost-"))
    relay = await NodeProc(base / "relay", extra_args=["--relay-service", "on"]).start()
    honest = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.relay_peer", "reserve", relay.addr,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert honest.stdout is not None and relay.proc is not None
        reserved = json.loads(await asyncio.wait_for(honest.stdout.readline(), 60))
        to_honest = f"{reserved['circuit']}/p2p/{reserved['peer_id']}"
        await asyncio.sleep(2)  # the relay settles after start (not measured)
        cpu0, rss0 = cpu_and_rss(relay.proc.pid)
        bytes0 = (await relay.call("node.info"))["relays"]["bytes_relayed"]
        started = time.monotonic()

        gate = asyncio.Semaphore(6)  # under the relay's 8 circuits per IP address (all here
        # come from 127.0.0.1)

        async def dialler() -> dict[str, Any]:
            async with gate:
                return await dial_once()

        async def dial_once() -> dict[str, Any]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.relay_peer", "dial", relay.addr, to_honest, "20",
                "16384", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
            out, _ = await proc.communicate()
            return dict(json.loads(out.decode().strip().splitlines()[-1]))

        results = await asyncio.gather(*(dialler() for _ in range(circuits)))
        took = time.monotonic() - started
        cpu1, rss1 = cpu_and_rss(relay.proc.pid)
        info = (await relay.call("node.info"))["relays"]
        carried = info["bytes_relayed"] - bytes0
        return {"circuits": circuits, "requests_ok": sum(r["ok"] for r in results),
                "wall_s": round(took, 2), "relay_cpu_s": round(cpu1 - cpu0, 3),
                "relay_cpu_ms_per_circuit": round((cpu1 - cpu0) * 1000 / circuits, 1),
                "relay_cpu_ms_per_mib": round((cpu1 - cpu0) * 1000 / max(1, carried / 2**20),
                                              1),
                "mib_relayed": round(carried / 2**20, 2),
                "relay_rss_kib_before": rss0, "relay_rss_kib_after": rss1,
                "relay_rss_kib_per_circuit": round((rss1 - rss0) / circuits, 1),
                "circuits_made": info["circuits_made"]}
    finally:
        if honest.stdin is not None:
            honest.stdin.close()
        await honest.wait()
        await relay.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=("fetch", "cost"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--circuits", type=int, default=20)
    args = parser.parse_args()
    if args.part == "fetch":
        why = available()
        if why is not None:
            sys.exit(why)
        out = asyncio.run(fetch(args.rounds))
    else:
        out = asyncio.run(cost(args.circuits))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
