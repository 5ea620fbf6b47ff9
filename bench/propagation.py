"""Propagation benchmark: time from listing.create returning on one node to the listing.added
event on *all* other nodes (each a `torv node` process on 127.0.0.1, events read from their
/ws streams), beside a plain py-libp2p gossipsub network of the same size and shape measured
in the same run (same host settings, no Torv on top). The ratio of the two is the figure.

    python bench/propagation.py --nodes 20 --listings 20

Prints a JSON summary (median, p95, max for each, and per-node RSS of the Torv nodes in MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.app.launcher import NodeProc, start_cluster, wait_for  # noqa: E402
from node.app.regtest import free_port  # noqa: E402
from tui.client import RpcClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(node: NodeProc) -> float:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(node: NodeProc) -> float:
    assert node.proc is not None
    return proc_cpu_s(node.proc.pid)


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {"median_s": round(statistics.median(times), 3), "p95_s": round(p95, 3),
            "max_s": round(times[-1], 3)}


class Arrivals:
    """listing.added events from one node's stream: listing id -> arrival time."""

    def __init__(self, node: NodeProc) -> None:
        self.client = RpcClient.from_data_dir(node.data_dir)
        self.seen: dict[str, float] = {}
        self.open = asyncio.Event()
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        async for event in self.client.events():
            if event["type"] == "stream.open":
                self.open.set()
            elif event["type"] == "listing.added":
                self.seen.setdefault(event["id"], time.perf_counter())

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()


async def torv_run(n: int, listings: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="torv-bench-") as tmp:
        nodes = await start_cluster(Path(tmp), n)
        streams: list[Arrivals] = []
        try:
            for node in nodes:
                async def connected(x: NodeProc = node) -> bool:
                    return bool((await x.call("node.info"))["peers"] >= min(3, n - 1))
                await wait_for(connected, 60, what="peers")
            # let start-up work (greeting every peer: anti-entropy, mail, peer exchange, DHT)
            # finish, so the figure is propagation, not a network still booting
            settle_t0 = time.perf_counter()
            for _ in range(240):  # bounded: 120 s
                c0 = sum(cpu_s(x) for x in nodes)
                await asyncio.sleep(0.5)
                if (sum(cpu_s(x) for x in nodes) - c0) / 0.5 / n < 0.05:
                    break
            settle_s = time.perf_counter() - settle_t0
            vendor, others = nodes[1], [x for i, x in enumerate(nodes) if i != 1]
            streams = [Arrivals(x) for x in others]
            for s in streams:
                await asyncio.wait_for(s.open.wait(), 30)
            times = []
            cpu0 = sum(cpu_s(x) for x in nodes)
            for i in range(listings + 1):  # the first one warms up meshes and streams
                if i:
                    await asyncio.sleep(0.2)  # as in the plain run: a vendor's pace
                t0 = time.perf_counter()
                made = await vendor.call("listing.create", title=f"Bench item {i}",
                                         description="benchmark", quantity=1,
                                         price={"amount": 1000 + i, "currency": "LTC"})
                for _ in range(60_000):  # bounded: 60 s
                    if all(made["id"] in s.seen for s in streams):
                        break
                    await asyncio.sleep(0.001)
                if i:
                    times.append(max(s.seen[made["id"]] for s in streams) - t0)
            cpu_ms = (sum(cpu_s(x) for x in nodes) - cpu0) * 1000 / (listings + 1) / n
            rss = [round(rss_mb(x), 1) for x in nodes]
            infos = [await x.call("node.info") for x in nodes]
            health = {"rejected": sum(sum(i["rejected"].values()) for i in infos),
                      "banned_peers": sum(i["banned_peers"] for i in infos),
                      "gossip_ignored": sum(i["market"]["gossip_ignored"] for i in infos),
                      "peers_median": statistics.median(i["peers"] for i in infos),
                      "cpu_ms_per_listing_per_node": round(cpu_ms, 1),
                      "settled_after_s": round(settle_s, 1)}
        finally:
            for s in streams:
                await s.close()
            await asyncio.gather(*(x.stop() for x in nodes))
    return {**summary(times), "rss_mb_max": max(rss), "rss_mb_median": statistics.median(rss),
            **health}


async def plain_run(n: int, messages: int) -> dict[str, Any]:
    """The same network shape with plain py-libp2p gossip: everyone dials the first peer and
    a few others (as Torv's peer exchange does), one peer publishes."""
    procs: list[asyncio.subprocess.Process] = []
    addrs: list[str] = []
    got: dict[str, list[float]] = {}
    readers = []
    try:
        for _i in range(n):
            dial = ([addrs[0]] + random.sample(addrs[1:], min(len(addrs) - 1, 7))) if addrs else []
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "bench" / "plain_gossip.py"), str(free_port()),
                *dial, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().split()
            addrs.append(line[1])
            procs.append(proc)

        async def read(proc: asyncio.subprocess.Process) -> None:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                parts = line.decode().split()
                if parts[0] == "got":
                    got.setdefault(parts[1], []).append(time.time())

        readers = [asyncio.create_task(read(p)) for p in procs[:1] + procs[2:]]
        await asyncio.sleep(3)  # plain gossipsub needs its heartbeats to form the mesh
        publisher = procs[1]
        assert publisher.stdin is not None
        times = []
        cpu0 = sum(proc_cpu_s(p.pid) for p in procs)
        for i in range(messages + 1):
            payload = f"m{i}"
            t0 = time.time()
            publisher.stdin.write(f"publish {payload}\n".encode())
            await publisher.stdin.drain()
            for _ in range(60_000):
                if len(got.get(payload, [])) >= n - 1:
                    break
                await asyncio.sleep(0.001)
            if i and len(got.get(payload, [])) >= n - 1:
                times.append(max(got[payload]) - t0)
            await asyncio.sleep(0.2)  # a publication rate like a vendor's, not a flood
        cpu_ms = (sum(proc_cpu_s(p.pid) for p in procs) - cpu0) * 1000 / (messages + 1) / n
        out: dict[str, Any] = summary(times) if times else {"delivered": 0}
        return {**out, "cpu_ms_per_message_per_node": round(cpu_ms, 1)}
    finally:
        for task in readers:
            task.cancel()
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()


async def run(n: int, listings: int) -> dict[str, Any]:
    torv = await torv_run(n, listings)
    plain = await plain_run(n, listings)
    ratio = round(torv["p95_s"] / plain["p95_s"], 1) if plain.get("p95_s") else None
    return {"nodes": n, "listings": listings, "torv": torv, "plain_gossip": plain,
            "p95_ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--listings", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.nodes, args.listings))))


if __name__ == "__main__":
    main()
