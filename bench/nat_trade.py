"""Order messages between two homes behind NAT (network namespaces, nftables masquerade, as
``tests/test_nat_trade.py`` builds them) with a public moderator, on a regtest chain reachable
from the public side; needs root, ip, nft and litecoind.

    python bench/nat_trade.py --trades 10 [--symmetric]

For each trade times every contract message from the action that made it to its arrival in
the other home's ``order.get`` (polled every 20 ms): ORDER (buyer -> vendor), ORDER_CONFIRMATION
(vendor -> buyer), PAYMENT (buyer -> vendor), FULFILLMENT (vendor -> buyer), COMPLETION (buyer ->
vendor). Prints a JSON summary (seconds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nat_kit import lab_main  # noqa: E402
from node.app.regtest import Regtest  # noqa: E402
from tests.natlab import (  # noqa: E402
    ChainBridge,
    Lab,
    NsNode,
    shutdown,
    start_trading_parties,
)


async def state(node: NsNode, oid: str) -> str | None:
    try:
        return str((await node.call("order.get", order_id=oid))["state"])
    except Exception:  # noqa: BLE001 - not there yet
        return None


async def arrival(node: NsNode, oid: str, want: str, start: float) -> float:
    for _ in range(6000):  # bounded: 120 s
        if await state(node, oid) == want:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{want} did not arrive")


async def allowed(node: NsNode, oid: str, action: str) -> None:
    for _ in range(6000):  # bounded: 120 s
        if action in (await node.call("order.get", order_id=oid))["next_actions"]:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{action} never allowed")


async def run(trades: int, symmetric: bool) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="torv-nattrade-"))
    regtest = await asyncio.to_thread(Regtest().start)
    lab = Lab(2, symmetric=symmetric).up()
    bridge = ChainBridge(lab, regtest.rpc_port, base)
    nodes: list[NsNode] = []
    times: dict[str, list[float]] = {k: [] for k in (
        "ORDER", "ORDER_CONFIRMATION", "PAYMENT", "FULFILLMENT", "COMPLETION")}
    try:
        await bridge.start()
        moderator, vendor, buyer = await start_trading_parties(lab, bridge, base, nodes)
        made = await vendor.call("listing.create", title="Bench board", description="x",
                                 price={"amount": 1_000_000, "currency": "LTC"},
                                 quantity=trades + 1)
        await regtest.afund((await buyer.call("wallet.address"))["address"], 10**9)
        await regtest.amine(1)
        for _ in range(1200):  # bounded: 60 s for the listing, the moderator and the funds
            mods = await buyer.call("moderator.list")
            hits = await buyer.call("listing.search", query="bench board")
            info = await buyer.call("wallet.info")
            if hits and any(m["peer_id"] == moderator.peer_id for m in mods) and \
                    info["balance"]["confirmed"] >= 10**9:
                break
            await asyncio.sleep(0.05)
        for _ in range(trades):
            start = time.monotonic()
            oid = (await buyer.call("order.create", listing_id=made["id"], quantity=1,
                                    moderator=moderator.peer_id))["order_id"]
            times["ORDER"].append(await arrival(vendor, oid, "PENDING", start))
            start = time.monotonic()
            await vendor.call("order.confirm", order_id=oid)
            times["ORDER_CONFIRMATION"].append(
                await arrival(buyer, oid, "AWAITING_PAYMENT", start))
            start = time.monotonic()
            await buyer.call("order.pay", order_id=oid)
            times["PAYMENT"].append(await arrival(vendor, oid, "AWAITING_FULFILLMENT", start))
            await regtest.amine(1)
            await allowed(vendor, oid, "order.fulfill")
            start = time.monotonic()
            await vendor.call("order.fulfill", order_id=oid, note="sent")
            times["FULFILLMENT"].append(await arrival(buyer, oid, "FULFILLED", start))
            start = time.monotonic()
            await buyer.call("order.complete", order_id=oid, rating=5)
            times["COMPLETION"].append(await arrival(vendor, oid, "COMPLETED", start))
        every = sorted(t for ts in times.values() for t in ts)
        return {
            "trades": trades, "symmetric_nat": symmetric,
            "per_message_median_s": {k: round(statistics.median(v), 3)
                                     for k, v in times.items()},
            "per_message_max_s": {k: round(max(v), 3) for k, v in times.items()},
            "all_messages": {"count": len(every),
                             "median_s": round(statistics.median(every), 3),
                             "p95_s": round(every[max(0, int(len(every) * 0.95) - 1)], 3),
                             "max_s": round(every[-1], 3)}}
    finally:
        await shutdown(lab, nodes, bridge.stop)
        await asyncio.to_thread(regtest.stop)


def main() -> None:
    lab_main(run, "trades", 10)


if __name__ == "__main__":
    main()
