"""Flood benchmark: a victim `torv node` with an honest neighbour (another `torv node`), and
hostile peers (bench/flooder.py) flooding the victim's store topic, one kind at a time:
garbage, forged signatures, valid spam (correctly signed manifests of the flooder's own).

    python bench/flood.py --seconds 30 --flooders 3

For each kind, during the flood: the victim's `node.info` latency (polled every 25 ms,
p50/p99/max), the time for a listing the honest neighbour creates (every 2 s) to reach the
victim, both nodes' CPU (the probes cost some: kind ``none`` measures them alone); after it:
how long until the victim's ingest queue is empty and its CPU idle (under 10% over a 250 ms
window). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.app.launcher import NodeProc, wait_for  # noqa: E402
from tui.client import RpcCallError, RpcClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(node: NodeProc) -> float:
    assert node.proc is not None
    fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


NICE: list[str] = []  # `--nice`: the flooders run at the lowest CPU priority


async def one_flood(kind: str, victim: NodeProc, honest: NodeProc, seconds: float,
                    flooders: int) -> dict[str, Any]:
    procs = []
    for _ in range(flooders if kind != "none" else 0):
        what = kind.split("-")[0]
        rotate = ["--rotate", "20"] if kind.endswith("-sybil") else []
        proc = await asyncio.create_subprocess_exec(
            *NICE, sys.executable, str(ROOT / "bench" / "flooder.py"), victim.addr, what,
            str(seconds), *rotate,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.startswith(b"ready"), line
    before = await victim.call("node.info")
    t_start = time.perf_counter()
    cpu_v0, cpu_h0 = cpu_s(victim), cpu_s(honest)
    latencies: list[float] = []
    arrivals: list[float] = []
    probe = RpcClient.from_data_dir(victim.data_dir, timeout=30)
    flooding = True

    async def poll_info() -> None:
        while flooding:
            t0 = time.perf_counter()
            await probe.call("node.info")
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.025)

    async def honest_listings() -> None:
        i = 0
        while flooding:
            i += 1
            made = await honest.call("listing.create", title=f"Honest item {kind} {i}",
                                     quantity=1, price={"amount": 5000, "currency": "LTC"})
            t0 = time.perf_counter()
            for _ in range(3000):  # bounded: 30 s
                try:
                    await victim.call("listing.get", id=made["id"])
                except RpcCallError:
                    await asyncio.sleep(0.01)
                    continue
                arrivals.append(time.perf_counter() - t0)
                break
            else:
                arrivals.append(float("inf"))
            await asyncio.sleep(max(0.0, 2.0 - (time.perf_counter() - t0)))

    tasks = [asyncio.create_task(poll_info()), asyncio.create_task(honest_listings())]
    sent = 0
    if not procs:  # the baseline: the same measurements without a flood
        await asyncio.sleep(seconds)
    for proc in procs:
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode().split()
        sent += int(line[1]) if line and line[0] == "sent" else 0
        await proc.wait()
    flood_s = time.perf_counter() - t_start
    cpu_v1, cpu_h1 = cpu_s(victim), cpu_s(honest)
    flooding = False
    await asyncio.gather(*tasks)
    # the backlog: until nothing is queued and the victim is idle
    t_end = time.perf_counter()
    backlog_s = None
    for _ in range(240):  # bounded: 60 s
        c0 = cpu_s(victim)
        await asyncio.sleep(0.25)
        busy = (cpu_s(victim) - c0) / 0.25
        info = await probe.call("node.info")
        if info["market"]["pending_stores"] == 0 and busy < 0.10:
            backlog_s = round(time.perf_counter() - t_end - 0.25, 2)
            break
    after = await victim.call("node.info")
    await probe.close()
    return {
        "kind": kind,
        "flooders": flooders,
        "sent": sent,
        "sent_per_s": round(sent / flood_s),
        "victim_node_info_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                                "p99": round(pct(latencies, 0.99) * 1000, 1),
                                "max": round(max(latencies) * 1000, 1),
                                "samples": len(latencies)},
        "honest_listing_s": {"median": round(statistics.median(arrivals), 3),
                             "max": round(max(arrivals), 3), "count": len(arrivals),
                             "all": [round(a, 3) for a in arrivals]},
        "victim_cpu": round((cpu_v1 - cpu_v0) / flood_s, 3),
        "honest_cpu": round((cpu_h1 - cpu_h0) / flood_s, 3),
        "backlog_gone_s": max(0.0, backlog_s) if backlog_s is not None else None,
        "rejected": {k: after["rejected"][k] - before["rejected"].get(k, 0)
                     for k in after["rejected"]},
        "banned_peers": after["banned_peers"],
    }


async def run(seconds: float, flooders: int, kinds: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": seconds, "results": []}
    with tempfile.TemporaryDirectory(prefix="torv-flood-") as tmp:
        victim = await NodeProc(Path(tmp) / "victim").start()
        honest = await NodeProc(Path(tmp) / "honest", bootstrap=[victim.addr]).start()
        try:
            async def linked() -> bool:
                return honest.peer_id in {p["peer_id"] for p in await victim.call("node.peers")}

            await wait_for(linked, 30, what="the honest neighbour")
            for kind in kinds:
                result = await one_flood(kind, victim, honest, seconds, flooders)
                print(json.dumps(result), file=sys.stderr, flush=True)
                out["results"].append(result)
        finally:
            await honest.stop()
            await victim.stop()
            if os.environ.get("BENCH_KEEP_LOGS"):  # for development: keep the nodes' logs
                for node in (victim, honest):
                    shutil.copy(node.log_path, Path(os.environ["BENCH_KEEP_LOGS"]) /
                                f"{node.data_dir.name}.log")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--flooders", type=int, default=3)
    ap.add_argument("--kinds", default="none,garbage,forged,valid,valid-sybil",
                    help="none is the baseline: the same probes without a flood; -sybil: each "
                         "flooder takes a fresh identity every 20 messages")
    ap.add_argument("--nice", action="store_true",
                    help="run the flooders at the lowest CPU priority (nice 19): on one "
                         "machine their busy loops otherwise take the cores the victim and its "
                         "honest neighbour need, which a remote attacker's could not")
    args = ap.parse_args()
    if args.nice:
        NICE.extend(["nice", "-n", "19"])
    print(json.dumps(asyncio.run(run(args.seconds, args.flooders, args.kinds.split(","))),
                     indent=2))


if __name__ == "__main__":
    main()
