"""Hole punching between two homes behind NAT (network namespaces, ``tests/natlab.py``): routers
that masquerade keeping the port (endpoint-independent mappings) and drop unsolicited packets,
one public node as the relay; needs root, ip and nft.

    python bench/punch.py --tries 20 [--symmetric]

Each try starts the buyer's node afresh in its home (a new identity on a new port: a closed
connection's address pair stays in TIME_WAIT for a minute), waits until it knows it is behind NAT,
connects it to the vendor through the vendor's relay, and times until the connection is
direct (``node.peers`` ``relayed`` false; at most 30 s, then the try failed); then one chat
message each way is timed (over the direct connection, or the relay where the punch failed)
and the buyer stops. Prints a JSON summary (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.natlab import WAN_ADDR, Lab, NsNode, available  # noqa: E402

DIRECT_WITHIN = 30.0


async def poll(pred: Any, limit: float, every: float = 0.05) -> float | None:
    """Seconds until ``pred()`` held, or None after ``limit`` (bounded loop)."""
    start = time.monotonic()
    for _ in range(int(limit / every) + 1):
        if await pred():
            return time.monotonic() - start
        await asyncio.sleep(every)
    return None


async def relayed(buyer: NsNode, vendor: NsNode) -> bool | None:
    entry = next((p for p in await buyer.call("node.peers")
                  if p["peer_id"] == vendor.peer_id), None)
    return None if entry is None else bool(entry["relayed"])


async def message(sender: NsNode, recipient: NsNode, text: str) -> float | None:
    await sender.call("chat.send", peer_id=recipient.peer_id, text=text)

    async def there() -> bool:
        return any(m["text"] == text for m in await recipient.call("chat.list", limit=500))

    return await poll(there, 30, 0.02)


async def run(tries: int, symmetric: bool) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="torv-punch-"))
    lab = Lab(2, symmetric=symmetric, stealth=True).up()
    nodes: list[NsNode] = []
    results: list[dict[str, Any]] = []
    try:
        public = await NsNode(lab.wan, base / "public", f"/ip4/{WAN_ADDR}/tcp/4717").start()
        vendor = await lab.home_node(0, base / "vendor", [public.addr]).start()
        nodes += [public, vendor]

        async def ready(node: NsNode) -> bool:
            reach = (await node.call("node.info"))["reachability"]
            return reach["status"] == "private" and bool(reach["relays"])

        if await poll(lambda: ready(vendor), 60) is None:
            raise SystemExit("the vendor did not get a relay slot")
        circuit = (await vendor.call("node.info"))["reachability"]["relays"][0]
        for k in range(tries):
            buyer = await lab.home_node(1, base / f"buyer{k}", [public.addr], 4720 + k).start()
            try:
                if await poll(lambda buyer=buyer: ready(buyer), 60) is None:
                    results.append({"try": k, "direct_s": None, "why": "buyer not ready"})
                    continue
                start = time.monotonic()
                await buyer.call("node.connect", addr=f"{circuit}/p2p/{vendor.peer_id}")

                async def direct(buyer: NsNode = buyer) -> bool:
                    return await relayed(buyer, vendor) is False

                took = await poll(direct, DIRECT_WITHIN)
                row: dict[str, Any] = {"try": k, "direct_s": None if took is None else
                                       round(time.monotonic() - start, 2)}
                there = await message(buyer, vendor, f"try {k}: there")
                back = await message(vendor, buyer, f"try {k}: back")
                row["relayed"] = await relayed(buyer, vendor)
                row["message_s"] = [None if t is None else round(t, 3) for t in (there, back)]
                results.append(row)
            finally:
                await buyer.stop()
        punched = [r["direct_s"] for r in results if r["direct_s"] is not None]
        def times(over_relay: bool) -> list[float]:
            return sorted(t for r in results if r.get("relayed") is over_relay
                          for t in r.get("message_s", []) if t is not None)

        def summary(msgs: list[float]) -> dict[str, float] | None:
            return {"median": round(statistics.median(msgs), 3),
                    "p95": msgs[max(0, int(len(msgs) * 0.95) - 1)]} if msgs else None

        info = (await vendor.call("node.info"))["reachability"]
        return {
            "tries": tries, "symmetric_nat": symmetric, "direct": len(punched),
            "success_rate": round(len(punched) / tries, 3) if tries else None,
            "to_direct_s": {"median": round(statistics.median(punched), 2),
                            "max": max(punched)} if punched else None,
            "message_over_direct_s": summary(times(False)),
            "message_over_relay_s": summary(times(True)),
            "vendor_counts": {"hole_punch": info["hole_punch"],
                              "direct_upgrades": info["direct_upgrades"]},
            "each": results}
    finally:
        for node in nodes:
            await node.stop()
        lab.down()


def main() -> None:
    why = available()
    if why is not None:
        sys.exit(why)
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--symmetric", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.tries, args.symmetric)), indent=2))


if __name__ == "__main__":
    main()
