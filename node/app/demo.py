"""``torv demo``: a private local market on 127.0.0.1, then the TUI as "you".

Starts a regtest chain when one is available (``--no-chain`` skips it) that mines a block every
few seconds, a few vendor nodes with sample stores, a demo moderator, and your own node (funded),
each in its own process. The vendors and the moderator run an autopilot over the public
JSON-RPC API and event stream: vendors confirm and fulfil orders, the moderator decides every
dispute 50/50. Ctrl+C stops them all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from node.app.launcher import NodeProc, start_cluster
from node.app.regtest import Regtest
from tui.app import TorvApp
from tui.client import RpcCallError, RpcClient

log = logging.getLogger("torv.demo")
CRASH_LOG = Path(platformdirs.user_log_dir("torv", appauthor=False)) / "tui-crash.log"
DEMO_PASSPHRASE = "demo"  # regtest coins only
BLOCK_SECONDS = 5.0

SAMPLE_STORES: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("Ingrid's Loom", "Hand-woven textiles from Aarhus", [
        {"title": "Wool blanket, herringbone", "amount": 4_500_000, "tags": ["wool", "home"]},
        {"title": "Linen tea towels (set of 3)", "amount": 900_000, "tags": ["linen", "kitchen"]},
        {"title": "Merino scarf", "amount": 1_800_000, "tags": ["wool", "winter"],
         "photo": (34, 90, 50), "extra": {
             "type": "physical", "condition": "new", "categories": ["clothing"],
             "options": [{"name": "colour", "values": ["forest green", "rust", "navy"]}],
             "skus": [{"values": ["forest green"], "surcharge": 0, "quantity": 3},
                      {"values": ["rust"], "surcharge": 0, "quantity": 2},
                      {"values": ["navy"], "surcharge": 100_000, "quantity": 1}],
             "coupons": [{"code": "WELCOME10", "percent": 10}]}},
        {"title": "Herringbone weaving pattern (PDF)", "amount": 300_000,
         "tags": ["pattern", "weaving"], "goods": "https://example.org/patterns/herringbone.pdf "
         "(demo link; key HB-2026-DEMO)", "extra": {
             "type": "digital", "unlimited": True, "categories": ["patterns"]}},
        {"title": "Weaving workshop, Saturday morning", "amount": 15_000, "tags": ["classes"],
         "currency": "DKK", "extra": {"type": "service", "unlimited": True,
                                      "categories": ["classes"]}},
    ]),
    ("Bits & Bobs Electronics", "Refurbished gear, tested", [
        {"title": "Mechanical keyboard, brown switches", "amount": 3_200_000,
         "tags": ["keyboard", "computer"]},
        {"title": "Raspberry Pi 4 starter kit", "amount": 2_900_000, "tags": ["computer"]},
        {"title": "USB-C hub, 7 ports", "amount": 700_000, "tags": ["usb", "computer"]},
    ]),
    ("Kaffebrænderiet", "Small-batch coffee roaster", [
        {"title": "Ethiopian Yirgacheffe, 250 g", "amount": 350_000, "tags": ["coffee"],
         "photo": (120, 72, 40), "extra": {
             "type": "physical", "condition": "new", "categories": ["coffee"],
             "processing_days": 2, "shipping_profile": {
                 "regions": [{"countries": ["DK", "SE", "NO"], "services": [
                     {"name": "Post", "days": 3, "first": 40_000, "additional": 10_000}]},
                     {"countries": ["WORLDWIDE"], "services": [
                         {"name": "Post", "days": 10, "first": 120_000, "additional": 20_000}]}],
                 "pickup": True, "free_above": 2_000_000}}},
        {"title": "Hand grinder, ceramic burr", "amount": 1_200_000, "tags": ["coffee", "tools"]},
    ]),
    ("Bogormen Books", "Second-hand books", [
        {"title": "The Moomins, first Danish edition", "amount": 6_000_000, "tags": ["books"]},
        {"title": "Atlas of Remote Islands", "amount": 500_000, "tags": ["books", "travel"]},
    ]),
]

# the demo's community markets, stewarded by the demo moderator: which stores are in each
DEMO_MARKETS: list[dict[str, Any]] = [
    {"name": "Aarhus makers", "admission": "approved", "region": "Aarhus, DK",
     "rules": "Made or roasted by hand in Aarhus. Members are admitted by the stewards.",
     "stores": ["Ingrid's Loom", "Kaffebrænderiet"]},
    {"name": "Online books", "admission": "open", "region": "",
     "rules": "Books, new and second-hand, shipped anywhere.", "stores": ["Bogormen Books"]},
]


async def _markets(steward: NodeProc, you: NodeProc,
                   stores: list[tuple[NodeProc, str]]) -> dict[str, list[str]]:
    """Found the demo markets (the steward alone decides; the market's moderator too), admit
    their stores as members, have "you" join them. Store name -> market ids it is in."""
    out: dict[str, list[str]] = {}
    for spec in DEMO_MARKETS:
        members = [node.peer_id for node, name in stores if name in spec["stores"]]
        made = await steward.call(
            "market.create", name=spec["name"], admission=spec["admission"],
            region=spec["region"], rules=spec["rules"], moderators=[steward.peer_id],
            members=members if spec["admission"] == "approved" else [])
        await you.call("market.join", market=made["market"], peer_id=steward.peer_id)
        for name in spec["stores"]:
            out.setdefault(name, []).append(made["market"])
    return out


def _swatch(rgb: tuple[int, int, int]) -> str:
    """A demo photo: a swatch of colour with a lighter stripe, as base64 PNG."""
    from PIL import Image

    image = Image.new("RGB", (480, 320), rgb)
    image.paste(tuple(min(255, c + 70) for c in rgb), (0, 120, 480, 180))
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


async def _stock(node: NodeProc, name: str, about: str, items: list[dict[str, Any]],
                 markets: list[str] | None = None) -> None:
    await node.call("profile.set", name=name, about=about)
    for item in items:
        extra = dict(item.get("extra", {}))
        if markets:
            extra["markets"] = markets
        if "shipping_profile" not in extra and extra.get("type", "physical") == "physical":
            extra["shipping"] = [{"region": "EU", "price": {"amount": 50_000,
                                                            "currency": "LTC"}}]
        if "photo" in item:
            added = await node.call("listing.photo_add", data=_swatch(item["photo"]))
            extra["photos"] = [added["hash"]]
        made = await node.call("listing.create", title=item["title"],
                               description=f"{item['title']}. Sold by {name}.",
                               price={"amount": item["amount"],
                                      "currency": item.get("currency", "LTC")}, quantity=3,
                               tags=item["tags"], **extra)
        if "goods" in item:
            await node.call("listing.goods", id=made["id"], goods_text=item["goods"],
                            auto_fulfil=True)


async def _fund(chain: Regtest, nodes: list[NodeProc]) -> None:
    """Give every demo wallet 10 LTC (regtest coins), confirmed."""
    for node in nodes:
        address = (await node.call("wallet.address"))["address"]
        await asyncio.to_thread(chain.fund, address, 10 * 10**8)
    await asyncio.to_thread(chain.mine, 1)


async def _miner(chain: Regtest) -> None:
    while True:
        await asyncio.sleep(BLOCK_SECONDS)
        await asyncio.to_thread(chain.mine, 1)


def _write_rates(path: Path) -> None:
    """Demo exchange rates (regtest coins have no price): 1 LTC = 80 EUR = 597 DKK."""
    import json
    import time

    path.write_text(json.dumps({"time": int(time.time()),
                                "rates": {"LTC": {"EUR": "80.00", "DKK": "597.00"}}}))


async def _keep_rates(path: Path) -> None:
    while True:
        await asyncio.sleep(60)
        await asyncio.to_thread(_write_rates, path)


async def autopilot(node: NodeProc, role: str) -> None:
    """Drive one demo node through its public API: a vendor confirms and fulfils, a moderator
    decides disputes half and half. Runs until cancelled; survives the node's errors."""
    client = RpcClient.from_data_dir(node.data_dir)

    async def step(order_id: str) -> None:
        try:
            order = await client.call("order.get", order_id=order_id)
            actions = order["next_actions"]
            if role == "vendor" and "order.confirm" in actions:
                await client.call("order.confirm", order_id=order_id)
            elif role == "vendor" and "order.fulfill" in actions:
                await client.call("order.fulfill", order_id=order_id,
                                  note="Packed and posted by the demo autopilot")
            elif role == "moderator" and "dispute.decide" in actions:
                await client.call("dispute.decide", order_id=order_id, buyer_bp=5000,
                                  note="The demo moderator splits every dispute 50/50")
        except RpcCallError as exc:
            log.info("autopilot %s: %s", role, exc.message)

    try:
        while True:
            with contextlib.suppress(RpcCallError):
                for order in await client.call("order.list"):
                    await step(order["order_id"])
                async for event in client.events():
                    if event["type"] in ("order.created", "order.state", "order.funding",
                                         "dispute.opened"):
                        await step(event["order_id"])
            await asyncio.sleep(1)
    finally:
        await client.close()


async def _run(args: argparse.Namespace, base: Path) -> int:
    nodes: list[NodeProc] = []
    chain: Regtest | None = None
    extra: list[str] = []
    env = {}
    tasks: list[asyncio.Task[Any]] = []
    rates = base / "rates.json"  # the demo's exchange rates: a local file, kept fresh
    _write_rates(rates)
    if not args.no_chain:
        if shutil.which("litecoind") is None:
            print("litecoind not found: the demo runs without a chain (apt-get install "
                  "litecoind for wallets, escrow and trading)", flush=True)
        else:
            # started from the default executor's thread, which lives until the loop closes
            # (after the finally below stops the chain): litecoind ends if the demo is killed
            chain = await asyncio.to_thread(Regtest(die_with_parent=True).start)
            extra = ["--chain", "litecoin-regtest", "--chain-rpc", chain.url,
                     "--chain-poll", "1", "--payment-grace", "10", "--rates", str(rates)]
            env = {"TORV_WALLET_PASSPHRASE": DEMO_PASSPHRASE}
    try:
        you = NodeProc(base / "you", extra_args=extra, env=env, die_with_parent=True)
        await you.start()
        nodes.append(you)
        others = await start_cluster(base, args.vendors + 1, seed=you, extra_args=extra,
                                     env=env, die_with_parent=True)
        nodes = [you, *others]
        moderator, vendors = others[0], others[1:]
        stores = list(zip(vendors, SAMPLE_STORES * 5, strict=False))
        in_markets = await _markets(moderator, you, [(v, s[0]) for v, s in stores])
        for vendor, (name, about, items) in stores:
            await _stock(vendor, name, about, items, in_markets.get(name))
            if chain is not None:  # the demo vendors accept the demo moderator
                await vendor.call("profile.set", moderators=[moderator.peer_id])
        if chain is not None:
            await moderator.call("profile.set", name="Demo Moderator",
                                 about="Decides every dispute 50/50",
                                 moderator={"fee_bp": 100, "fee_fixed": 10_000,
                                            "description": "demo: splits disputes 50/50"})
            await _fund(chain, [you])
            tasks.append(asyncio.create_task(_miner(chain)))
            tasks.append(asyncio.create_task(_keep_rates(rates)))
            tasks += [asyncio.create_task(autopilot(v, "vendor")) for v in vendors]
            tasks.append(asyncio.create_task(autopilot(moderator, "moderator")))
        script = (f"torv rpc --data-dir {you.data_dir} listing.search "
                  "'{\"query\": \"coffee\"}'")
        print(f"demo market ready: you are {you.peer_id}; data in {base}", flush=True)
        print(f"script it: {script}", flush=True)
        loop = asyncio.get_running_loop()
        if args.no_tui:
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            return 0
        app = TorvApp(RpcClient.from_data_dir(you.data_dir), crash_log=CRASH_LOG,
                      welcome=f"Your demo node's data dir is {you.data_dir} (removed when the "
                              f"demo ends). Script it while it runs: {script}")
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal cleans up as Ctrl+Q
            loop.add_signal_handler(sig, app.exit)
        await app.run_async()
        if app.return_code:
            print(f"error: the terminal UI failed; its traceback is in {CRASH_LOG}",
                  file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
