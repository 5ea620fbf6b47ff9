"""Hole punching between two homes behind NAT (network namespaces, ``tests/natlab.py``): routers
that masquerade keeping the port (endpoint-independent mappings) and drop unsolicited packets,
one public node as the relay; needs root, ip and nft.

    python bench/punch.py --tries 20 [--symmetric]

Each try starts the buyer's node afresh in its home (a new identity on a new port: a closed
connection's address pair stays in TIME_WAIT for a minute), waits until it knows it is behind NAT,
connects it to the vendor through the vendor's relay, and times until the connection is
direct (``node.peers`` ``relayed`` false; at most 30 s, then the try failed); then one chat
message each way is timed from ``chat.send`` to the other's list (over the direct connection,
or the relay where the punch failed)
and the buyer stops. Prints a JSON summary (seconds).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nat_kit import chat_seconds, lab_main, poll  # noqa: E402
from tests.natlab import WAN_ADDR, Lab, NsNode, shutdown  # noqa: E402

DIRECT_WITHIN = 30.0


async def relayed(buyer: NsNode, vendor: NsNode) -> bool | None:
    entry = next((p for p in await buyer.call("node.peers")
                  if p["peer_id"] == vendor.peer_id), None)
    return None if entry is None else bool(entry["relayed"])


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

        if await poll(partial(ready, vendor), 60) is None:
            raise SystemExit("the vendor did not get a relay slot")
        circuit = (await vendor.call("node.info"))["reachability"]["relays"][0]
        for k in range(tries):
            buyer = await lab.home_node(1, base / f"buyer{k}", [public.addr], 4720 + k).start()
            try:
                if await poll(partial(ready, buyer), 60) is None:
                    results.append({"try": k, "direct_s": None, "why": "buyer not ready"})
                    continue
                start = time.monotonic()
                await buyer.call("node.connect", addr=f"{circuit}/p2p/{vendor.peer_id}")

                async def direct(buyer: NsNode = buyer) -> bool:
                    return await relayed(buyer, vendor) is False

                took = await poll(direct, DIRECT_WITHIN)
                row: dict[str, Any] = {"try": k, "direct_s": None if took is None else
                                       round(time.monotonic() - start, 2)}
                there = await chat_seconds(buyer, vendor, f"try {k}: there")
                back = await chat_seconds(vendor, buyer, f"try {k}: back")
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
        await shutdown(lab, nodes)


def main() -> None:
    lab_main(run, "tries", 20)


if __name__ == "__main__":
    main()
