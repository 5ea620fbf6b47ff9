"""Run a node with its JSON-RPC server until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .node import Node, NodeConfig
from .p2p import configure_libp2p_logging
from .rpc_methods import map_market_error, market_methods
from .rpc_server import COOKIE_NAME, PORT_FILE, RpcServer, write_cookie

log = logging.getLogger("torv.runner")

# Extra method groups (e.g. the wallet) plug in here: (node, server) -> methods.
Extension = Callable[[Node, RpcServer], Any]


@dataclass
class RunOptions:
    data_dir: Path
    listen: list[str]
    rpc_port: int
    bootstrap: list[str] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)


async def run_node(opts: RunOptions, stop: asyncio.Event | None = None) -> None:
    configure_libp2p_logging()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    node = Node(NodeConfig(opts.data_dir, opts.listen, opts.bootstrap))
    server = RpcServer({}, map_market_error)
    runner: web.AppRunner | None = None
    cleanups: list[Any] = []
    try:
        await node.start()
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", opts.rpc_port)
        await site.start()
        port = runner.addresses[0][1]
        server.methods.update(market_methods(node, port))
        for ext in opts.extensions:
            cleanup = await ext(node, server)
            if cleanup is not None:
                cleanups.append(cleanup)
        server.token = write_cookie(opts.data_dir, port)
        log.info("JSON-RPC on http://127.0.0.1:%d/rpc (token in %s)", port,
                 opts.data_dir / COOKIE_NAME)
        print(f"torv node {node.me} ready; rpc port {port}", flush=True)
        await stop.wait()
    finally:
        log.info("shutting down")
        for cleanup in reversed(cleanups):
            await cleanup()
        if runner is not None:
            await runner.cleanup()
        for name in (COOKIE_NAME, PORT_FILE):
            (opts.data_dir / name).unlink(missing_ok=True)
        await node.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
