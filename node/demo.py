"""``torv demo``: a private local market on 127.0.0.1, then the TUI as "you".

Starts a regtest chain when one is available (``--no-chain`` skips it), a few vendor nodes with
sample listings and your own node, each in its own process; Ctrl+C stops them all.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from .launcher import NodeProc, start_cluster
from .regtest import Regtest

log = logging.getLogger("torv.demo")
DEMO_PASSPHRASE = "demo"  # regtest coins only

SAMPLE_STORES: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("Ingrid's Loom", "Hand-woven textiles from Aarhus", [
        {"title": "Wool blanket, herringbone", "amount": 4_500_000, "tags": ["wool", "home"]},
        {"title": "Linen tea towels (set of 3)", "amount": 900_000, "tags": ["linen", "kitchen"]},
        {"title": "Merino scarf, forest green", "amount": 1_800_000, "tags": ["wool", "winter"]},
    ]),
    ("Bits & Bobs Electronics", "Refurbished gear, tested", [
        {"title": "Mechanical keyboard, brown switches", "amount": 3_200_000,
         "tags": ["keyboard", "computer"]},
        {"title": "Raspberry Pi 4 starter kit", "amount": 2_900_000, "tags": ["computer"]},
        {"title": "USB-C hub, 7 ports", "amount": 700_000, "tags": ["usb", "computer"]},
    ]),
    ("Kaffebrænderiet", "Small-batch coffee roaster", [
        {"title": "Ethiopian Yirgacheffe, 250 g", "amount": 350_000, "tags": ["coffee"]},
        {"title": "Hand grinder, ceramic burr", "amount": 1_200_000, "tags": ["coffee", "tools"]},
    ]),
    ("Bogormen Books", "Second-hand books", [
        {"title": "The Moomins, first Danish edition", "amount": 6_000_000, "tags": ["books"]},
        {"title": "Atlas of Remote Islands", "amount": 500_000, "tags": ["books", "travel"]},
    ]),
]


async def _stock(node: NodeProc, name: str, about: str, items: list[dict[str, Any]]) -> None:
    await node.call("profile.set", name=name, about=about)
    for item in items:
        await node.call("listing.create", title=item["title"],
                        description=f"{item['title']}. Sold by {name}.",
                        price={"amount": item["amount"], "currency": "LTC"}, quantity=3,
                        tags=item["tags"],
                        shipping=[{"region": "EU", "price": {"amount": 50_000,
                                                             "currency": "LTC"}}])


async def _fund(chain: Regtest, nodes: list[NodeProc]) -> None:
    """Give every demo wallet 10 LTC (regtest coins), confirmed."""
    for node in nodes:
        address = (await node.call("wallet.address"))["address"]
        await asyncio.to_thread(chain.fund, address, 10 * 10**8)
    await asyncio.to_thread(chain.mine, 1)


async def _run(args: argparse.Namespace, base: Path) -> int:
    from tui.app import TorvApp
    from tui.client import RpcClient

    nodes: list[NodeProc] = []
    chain: Regtest | None = None
    extra: list[str] = []
    env = {}
    if not args.no_chain:
        if shutil.which("litecoind") is None:
            print("litecoind not found: the demo runs without a chain (apt-get install "
                  "litecoind for wallets and escrow)", flush=True)
        else:
            chain = await asyncio.to_thread(Regtest().start)
            extra = ["--chain", "litecoin-regtest", "--chain-rpc", chain.url]
            env = {"TORV_WALLET_PASSPHRASE": DEMO_PASSPHRASE}
    try:
        you = NodeProc(base / "you", extra_args=extra, env=env)
        await you.start()
        nodes.append(you)
        vendors = await start_cluster(base, args.vendors, seed=you, extra_args=extra, env=env)
        nodes = [you, *vendors]
        for vendor, (name, about, items) in zip(vendors, SAMPLE_STORES * 5, strict=False):
            await _stock(vendor, name, about, items)
        if chain is not None:
            await _fund(chain, nodes)
        print(f"demo market ready: you are {you.peer_id}; data in {base}", flush=True)
        print(f"script it: torv rpc --data-dir {you.data_dir} listing.search "
              "'{\"query\": \"coffee\"}'", flush=True)
        if args.no_tui:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        else:
            await TorvApp(RpcClient.from_data_dir(you.data_dir)).run_async()
        return 0
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
        if chain is not None:
            await asyncio.to_thread(chain.stop)


def run_demo(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    base = Path(tempfile.mkdtemp(prefix="torv-demo-"))
    try:
        return asyncio.run(_run(args, base))
    except KeyboardInterrupt:
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)
