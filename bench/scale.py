"""Scale benchmark: a market of 200 vendors x 500 signed listings served by one peer, and a
fresh `torv node` that joins it.

The market is built first (every object signed per docs/protocol.md by the vendors' own keys,
in worker processes) straight into the data dir of a `torv node` that serves it; then a fresh
node bootstraps from that peer. Reported, in the same run:
- seconds until all listings are searchable on the fresh node, and its listings/s;
- the raw single-core Ed25519 verify rate of the same signed listings, and the ratio;
- node.info latency (p50/p99/max) on the fresh node while it ingests (sampled every 20 ms);
- listing.search latency (p50/p95) over 20 varied queries once it holds everything;
- the fresh node's resident memory at the end and at its peak;
- then, once the fresh node has announced itself in the DHT as a provider of every store
  (paced: one every 0.5 s), idle for `--idle` seconds with all 200 stores known on both sides:
  CPU % of each node (anti-entropy runs every 30 s) and the worst node.info latency.

    python bench/scale.py --vendors 200 --listings 500

Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl.signing import VerifyKey  # noqa: E402

from node.app.launcher import NodeProc, wait_for  # noqa: E402
from node.app.schema import open_database_sync
from node.core.database import DB_NAME  # noqa: E402
from node.market.listings import insert_listing, put_store_row  # noqa: E402
from node.market.manifests import _put_page  # noqa: E402
from protocol.identity import Identity  # noqa: E402
from protocol.listing import Listing  # noqa: E402
from protocol.signed import SignedObject, signing_input  # noqa: E402
from protocol.store import StoreObject, build_store  # noqa: E402

ADJECTIVES = ["vintage", "handmade", "oak", "walnut", "brass", "linen", "wool", "ceramic",
              "leather", "copper", "glass", "silver", "painted", "carved", "woven", "antique",
              "rustic", "modern", "tiny", "large", "blue", "green", "red", "black", "white",
              "danish", "swedish", "restored", "signed", "rare"]
NOUNS = ["chair", "table", "lamp", "bowl", "vase", "scarf", "blanket", "clock", "mirror",
         "teapot", "mug", "stool", "desk", "shelf", "box", "print", "book", "camera", "radio",
         "bicycle", "guitar", "watch", "ring", "necklace", "jacket", "boots", "bag", "tray",
         "candlestick", "kettle", "knife", "spoon", "basket", "rug", "cushion", "map", "globe",
         "telescope", "compass", "sculpture"]
QUERIES = ["oak", "vintage", "lamp", "walnut desk", "brass candlestick", "danish", "tea",
           "handmade ceramic bowl", "rare signed", "blue", "green vase", "antique clock",
           "swe", "leather boots", "copper kettle", "item 4", "woven basket", "globe",
           "restored radio", "silver ring"]


def make_vendor(args: tuple[int, int, int] | tuple[int, int, int, str]) -> dict[str, Any]:
    """One vendor's whole store, signed (run in a worker process); with a fourth item, every
    listing names that community market (bench/carry.py)."""
    index, count, now = args[:3]
    markets = list(args[3:])
    rng = random.Random(index)
    me = Identity(rng.randbytes(32))
    listings = []
    for i in range(count):
        title = (f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(ADJECTIVES)} "
                 f"{rng.choice(NOUNS)} item {index * count + i}")
        listings.append(Listing.create(me, {
            "id": rng.randbytes(16).hex(), "seq": 1, "title": title,
            "description": f"{title}. " + " ".join(rng.choices(ADJECTIVES + NOUNS, k=12)),
            "price": {"amount": rng.randint(10_000, 50_000_000), "currency": "LTC"},
            "quantity": rng.randint(1, 5), "tags": rng.sample(NOUNS, 2),
            "created": now, "expires": now + 365 * 86400,
            **({"markets": markets} if markets else {})}))
    manifest, pages = build_store(me, 1, {x.id: (x.seq, x.digest) for x in listings},
                                  markets)
    profile = StoreObject.profile(me, 1, f"Vendor {index}", "synthetic")
    return {"listings": [x.to_wire() for x in listings], "pages": [p.to_wire() for p in pages],
            "manifest": manifest.to_wire(), "profile": profile.to_wire()}


def write_stores(conn: Any, stores: list[dict[str, Any]]) -> None:
    """Stores made by ``make_vendor``, as a node that took them holds them."""
    for store in stores:
        put_store_row(conn, StoreObject.from_trusted(store["profile"], "profile"))
        put_store_row(conn, StoreObject.from_trusted(store["manifest"], "manifest"))
        for page in store["pages"]:
            _put_page(conn, StoreObject.from_trusted(page, "page"))
        for wire in store["listings"]:
            insert_listing(conn, Listing.from_trusted(wire))


def build_market(data_dir: Path, vendors: int, per_vendor: int) -> list[bytes]:
    """Sign the market in worker processes and write it into ``data_dir``'s database."""
    now = int(time.time())
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        stores = pool.map(make_vendor, [(i, per_vendor, now) for i in range(vendors)])
    data_dir.mkdir(parents=True)
    db = open_database_sync(data_dir / DB_NAME)

    db.write_sync(lambda conn: write_stores(conn, stores))
    db.close_sync()
    return [w for store in stores for w in store["listings"]]


def raw_verify_rate(wires: list[bytes], sample: int = 20_000) -> float:
    """Ed25519 verifications per second on one core, of the same signed listings."""
    items = []
    for wire in wires[:sample]:
        so = SignedObject.from_trusted(wire, "listing")
        items.append((VerifyKey(so.signer), signing_input(so.type, so.version, so.body), so.sig))
    t0 = time.perf_counter()
    for key, msg, sig in items:
        key.verify(msg, sig)
    return len(items) / (time.perf_counter() - t0)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sample_node_info(node: NodeProc, done: asyncio.Event, out: list[float]) -> None:
    """``node.info`` latency, every 20 ms until ``done``."""
    while not done.is_set():
        a = time.perf_counter()
        await node.call("node.info")
        out.append(time.perf_counter() - a)
        await asyncio.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


async def _idle(fresh: NodeProc, server: NodeProc, idle: float) -> dict[str, Any]:
    """Idle, both holding every store: first the fresh node announces itself as a provider of
    each store (paced, one every 0.5 s), then nothing but anti-entropy rounds (every 30 s)
    should run; node.info probed every 250 ms throughout."""
    assert fresh.proc is not None and server.proc is not None
    t_provide = time.perf_counter()

    async def provided() -> bool:
        return (await fresh.call("node.info"))["market"]["provide_backlog"] == 0
    await wait_for(provided, 600, interval=0.5, what="the provider records")
    provide_s = time.perf_counter() - t_provide
    idle_lat: list[float] = []
    c0, s0, t_idle = cpu_s(fresh.proc.pid), cpu_s(server.proc.pid), time.perf_counter()
    while time.perf_counter() - t_idle < idle:
        a = time.perf_counter()
        await fresh.call("node.info")
        idle_lat.append(time.perf_counter() - a)
        await asyncio.sleep(0.25)
    span = time.perf_counter() - t_idle
    return {"fresh_pct": round(100 * (cpu_s(fresh.proc.pid) - c0) / span, 2),
            "server_pct": round(100 * (cpu_s(server.proc.pid) - s0) / span, 2),
            "seconds": round(span), "provide_catchup_s": round(provide_s, 1),
            "node_info_max_ms": round(max(idle_lat) * 1000, 1) if idle_lat else None}


async def run(vendors: int, per_vendor: int, timeout: float, idle: float
              ) -> dict[str, Any]:
    total = vendors * per_vendor
    with tempfile.TemporaryDirectory(prefix="torv-bench-scale-") as tmp:
        t0 = time.perf_counter()
        wires = build_market(Path(tmp) / "server", vendors, per_vendor)
        built = time.perf_counter() - t0
        verify_rate = raw_verify_rate(wires)
        server = await NodeProc(Path(tmp) / "server").start()
        fresh = NodeProc(Path(tmp) / "fresh", bootstrap=[server.addr],
                         env={"TORV_LOOP_WATCH": os.environ.get("TORV_LOOP_WATCH", "")})
        latencies: list[float] = []
        try:
            t_start = time.perf_counter()
            assert server.proc is not None
            server_cpu0 = cpu_s(server.proc.pid)
            await fresh.start()
            assert fresh.proc is not None
            started_s, started_cpu = time.perf_counter() - t_start, cpu_s(fresh.proc.pid)
            done = asyncio.Event()

            prober = asyncio.create_task(sample_node_info(fresh, done, latencies))
            spy = None
            if os.environ.get("BENCH_PROFILE"):  # py-spy on the fresh node, for development
                import subprocess

                spy = subprocess.Popen(["py-spy", "record", "--pid", str(fresh.proc.pid),
                                        "--format", "raw", "-o", os.environ["BENCH_PROFILE"],
                                        "--threads", "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            async def all_there() -> bool:
                return bool((await fresh.call("node.info"))["market"]["listings"] >= total)

            await wait_for(all_there, timeout, interval=0.2, what="every listing")
            elapsed = time.perf_counter() - t_start
            fresh_cpu, server_cpu = cpu_s(fresh.proc.pid), cpu_s(server.proc.pid) - server_cpu0
            done.set()
            await prober
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
            search = []
            for _ in range(3):
                for q in QUERIES:
                    a = time.perf_counter()
                    await fresh.call("listing.search", query=q, limit=50)
                    search.append(time.perf_counter() - a)
            rss, peak = rss_mb(fresh.proc.pid), rss_mb(fresh.proc.pid, "VmHWM")
            idle_cpu = await _idle(fresh, server, idle) if idle > 0 else None
        finally:
            await fresh.stop()
            await server.stop()
            if os.environ.get("BENCH_KEEP_LOG"):
                import shutil
                shutil.copy(fresh.log_path, os.environ["BENCH_KEEP_LOG"])
    ingest_rate = total / elapsed
    return {"vendors": vendors, "listings": total, "market_built_s": round(built, 1),
            "all_searchable_s": round(elapsed, 1), "ingest_per_s": round(ingest_rate),
            "raw_verify_per_s": round(verify_rate), "ingest_vs_verify":
            round(ingest_rate / verify_rate, 3),
            "node_info_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                             "p99": round(pct(latencies, 0.99) * 1000, 1),
                             "max": round(max(latencies) * 1000, 1), "samples": len(latencies)},
            "search_ms": {"p50": round(statistics.median(search) * 1000, 1),
                          "p95": round(pct(search, 0.95) * 1000, 1)},
            "rss_mb": round(rss, 1), "rss_peak_mb": round(peak, 1),
            "cpu_s": {"fresh": round(fresh_cpu, 1), "server": round(server_cpu, 1),
                      "fresh_at_start": round(started_cpu, 1)},
            "start_s": round(started_s, 1), "idle": idle_cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendors", type=int, default=200)
    parser.add_argument("--listings", type=int, default=500, help="per vendor")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--idle", type=float, default=65,
                        help="seconds of idle measured afterwards (anti-entropy every 30 s; "
                             "0: skip the idle part)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.vendors, args.listings, args.timeout, args.idle))))


if __name__ == "__main__":
    main()
