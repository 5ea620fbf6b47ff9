"""How fast a node sees the chain, on each backend: a full node's JSON-RPC (`--chain-rpc`)
and an Electrum server (`--electrum`, ElectrumX's e-x over the same regtest chain).

Three real nodes (buyer, vendor, moderator; separate processes, 127.0.0.1) per backend. Each
round someone pays the buyer, the buyer pays an order's escrow, then a block is mined.
Measured in this process from the nodes' event streams (`/ws`):
- payment broadcast -> the buyer's `wallet.balance` shows it unconfirmed (mempool);
- block mined -> vendor's `order.funding` with confirmations 1 (its chain watcher sees the
  escrow confirmed: the order moving on chain);
- block mined -> buyer's `wallet.balance` with nothing unconfirmed (the payment to it and its
  change confirmed).

The full node runs at the default `--chain-poll 5` (Bitcoin Core tells nothing; the node
polls), the light node with the same flag, but it wakes on the server's notifications.
e-x here polls its daemon every 20 ms; a production server learns of blocks within about 1 s.

    python bench/chain_latency.py --rounds 5

Prints JSON: per backend, medians and maxima in seconds.
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
from node.app.electrumx import ElectrumX  # noqa: E402
from node.app.regtest import Regtest  # noqa: E402
from tests.trade_kit import reach, start_market  # noqa: E402


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


async def measure(name: str, chain: Regtest, chain_args: list[str], rounds: int
                  ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"torv-bench-chain-{name}-") as tmp:
        market = await start_market(Path(tmp), chain, chain_args, ["--chain-poll", "5"])
        buyer, vendor = market.buyer, market.vendor
        logs = {n: EventLog(n.data_dir) for n in (buyer, vendor)}
        seen_mempool, seen_block, balance_block = [], [], []
        try:
            for log in logs.values():
                await asyncio.wait_for(log.ready.wait(), 30)
            listing = await market.listing(f"Chain bench {name}", amount=1_000_000,
                                           quantity=10**6)
            for _ in range(rounds):
                address = (await buyer.call("wallet.address"))["address"]
                sent = time.perf_counter()
                await asyncio.to_thread(chain.fund, address, 100_000)
                at = await logs[buyer].first(sent, "wallet.balance",
                                             lambda e: e["unconfirmed"] > 0)
                seen_mempool.append(at - sent)
                oid = (await market.order(listing))["order_id"]
                await reach([vendor], oid, "PENDING")
                await vendor.call("order.confirm", order_id=oid)
                await reach([buyer], oid, "AWAITING_PAYMENT")
                await buyer.call("order.pay", order_id=oid)
                await reach([vendor], oid, "AWAITING_FULFILLMENT")
                await asyncio.to_thread(chain.mine, 1)
                mined = time.perf_counter()
                at = await logs[vendor].first(mined, "order.funding", order_id=oid,
                                              confirmations=1)
                seen_block.append(at - mined)
                at = await logs[buyer].first(mined, "wallet.balance", unconfirmed=0)
                balance_block.append(at - mined)
        finally:
            for log in logs.values():
                await log.close()
            for node in market.nodes:
                await node.stop()
    return {"broadcast_to_balance_s": summary(seen_mempool),
            "block_to_order_confirmed_s": summary(seen_block),
            "block_to_balance_s": summary(balance_block)}


async def run(rounds: int) -> dict[str, Any]:
    chain = await asyncio.to_thread(Regtest().start)
    server = await asyncio.to_thread(ElectrumX(chain).start)
    try:
        return {"rounds": rounds,
                "core-rpc": await measure("core", chain, ["--chain-rpc", chain.url], rounds),
                "electrum": await measure("electrum", chain, ["--electrum", server.url],
                                          rounds)}
    finally:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(chain.stop)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rounds)), indent=2))


if __name__ == "__main__":
    main()
