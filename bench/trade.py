"""Trade benchmark: order -> confirm -> pay -> fulfil -> complete between three real nodes on
127.0.0.1 (separate processes) and a Litecoin regtest chain, blocks mined at once.

Times the whole trade as the parties see it: each step from the RPC call that takes it to the
moment the counterparty's event stream reports the new state, summed over the five steps. No
step waits for a block (the escrow is spent unconfirmed), so the figure is time spent in Torv:
signing, storing, delivering, the wallet's own chain calls (funding, fee rate, broadcast).

    python bench/trade.py --trades 10

Prints a JSON summary (median, p95, per-step medians, in seconds).
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

from bench.event_log import EventLog  # noqa: E402
from node.app.regtest import Regtest  # noqa: E402
from tests.trade_kit import fulfil, start_market  # noqa: E402


async def reached(log: EventLog, order_id: str, state: str) -> float:
    """When the node's stream first reported the order in ``state``."""
    return await log.first(0.0, "order.state", order_id=order_id, state=state)


async def run(trades: int) -> dict[str, Any]:
    chain = await asyncio.to_thread(Regtest().start)
    with tempfile.TemporaryDirectory(prefix="torv-bench-trade-") as tmp:
        market = await start_market(Path(tmp), chain)
        buyer, vendor = market.buyer, market.vendor
        watch = {n: EventLog(n.data_dir) for n in (buyer, vendor)}
        try:
            for w in watch.values():
                await asyncio.wait_for(w.ready.wait(), 30)
            steps: dict[str, list[float]] = {k: [] for k in
                                             ("order", "confirm", "pay", "fulfil", "complete")}
            totals = []
            listing = await market.listing("Bench item", amount=1_000_000, quantity=10**6)
            for i in range(trades + 1):  # the first trade warms up, unmeasured
                t0 = time.perf_counter()
                oid = (await market.order(listing))["order_id"]
                t1 = await reached(watch[vendor], oid, "PENDING")
                a = time.perf_counter()
                await vendor.call("order.confirm", order_id=oid)
                t2 = await reached(watch[buyer], oid, "AWAITING_PAYMENT")
                b = time.perf_counter()
                await buyer.call("order.pay", order_id=oid)
                t3 = await reached(watch[vendor], oid, "AWAITING_FULFILLMENT")
                await asyncio.to_thread(chain.mine, 1)  # a vendor ships on a confirmed escrow
                c = time.perf_counter()
                await fulfil(vendor, oid, "bench")
                t4 = await reached(watch[buyer], oid, "FULFILLED")
                d = time.perf_counter()
                await buyer.call("order.complete", order_id=oid, rating=5, review="")
                t5 = await reached(watch[vendor], oid, "COMPLETED")
                parts = [t1 - t0, t2 - a, t3 - b, t4 - c, t5 - d]
                if i == 0:
                    continue
                for name, value in zip(steps, parts, strict=True):
                    steps[name].append(value)
                totals.append(sum(parts))
        finally:
            for w in watch.values():
                await w.close()
            for node in market.nodes:
                await node.stop()
            await asyncio.to_thread(chain.stop)
    totals.sort()
    p95 = totals[min(len(totals) - 1, max(0, round(0.95 * len(totals)) - 1))]
    return {"trades": trades, "median_s": round(statistics.median(totals), 3),
            "p95_s": round(p95, 3), "max_s": round(totals[-1], 3),
            "step_median_s": {k: round(statistics.median(v), 3) for k, v in steps.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.trades))))


if __name__ == "__main__":
    main()
