"""The node core's extension points and its clients' failure modes, in-process: the RPC
registry refuses a duplicate method, timeouts are errors with their own message (the TUI stays
open), and no rejection floods the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import Static

from node.core.database import DB_NAME, Database
from node.core.node import NodeConfig, NodeCore, Rejections
from node.core.services import Handler, RpcRegistry, Service
from protocol.errors import LocalProtocolError
from protocol.identity import Identity
from tui.app import TorvApp
from tui.client import TIMED_OUT, RpcCallError, RpcClient
from wallet.chain import CoreRpcBackend
from wallet.errors import ChainError

from .cluster import wait_for


@pytest_asyncio.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: a hung node or chain node."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def _noop(params: dict[str, Any]) -> Any:
    return None


class Echo(Service):
    name = "echo"

    def rpc_methods(self) -> dict[str, Handler]:
        return {"echo.say": _noop}


def test_the_registry_refuses_a_duplicate_method() -> None:
    reg = RpcRegistry()
    reg.register("a.b", _noop)
    with pytest.raises(LocalProtocolError, match="a.b is already registered"):
        reg.register("a.b", _noop)
    assert reg.names() == ["a.b"]


async def test_two_services_cannot_claim_one_method(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / DB_NAME, [])
    try:
        core = NodeCore(NodeConfig(tmp_path, ["/ip4/127.0.0.1/tcp/0"]), Identity(b"\x01" * 32),
                        db, "random")
        core.add(Echo(core))
        with pytest.raises(LocalProtocolError, match="echo.say is already registered by echo"):
            core.add(Echo(core))
        with pytest.raises(LocalProtocolError, match="node.info is already registered by the"):
            core.registry.register("node.info", _noop)
        assert "echo.say" in core.registry.names()
    finally:
        await db.close()


async def test_rpc_client_timeout_is_its_own_error(silent_server: int) -> None:
    client = RpcClient(f"http://127.0.0.1:{silent_server}/rpc", "t", timeout=0.3)
    with pytest.raises(RpcCallError) as err:
        await client.call("node.info")
    assert err.value.code == TIMED_OUT and "did not answer node.info within 0.3 s" in str(err.value)
    await client.close()


async def test_chain_backend_timeout_is_a_chain_error(silent_server: int) -> None:
    backend = CoreRpcBackend(f"http://127.0.0.1:{silent_server}", "u", "p", "w", timeout=0.3)
    with pytest.raises(ChainError, match="did not answer getblockcount within 0.3 s"):
        await backend.tip_height()
    await backend.close()


@pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")
async def test_the_tui_survives_a_node_that_does_not_answer(silent_server: int) -> None:
    app = TorvApp(RpcClient(f"http://127.0.0.1:{silent_server}/rpc", "t", timeout=0.3))
    async with app.run_test(size=(120, 40)) as pilot:
        async def says_so() -> bool:
            await pilot.pause()
            return "did not answer" in str(app.query_one("#status", Static).render())

        await wait_for(says_so, 20, what="the status bar to report the timeout")
        assert app.is_running


def test_rejections_are_counted_but_logged_at_most_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rej = Rejections()
    with caplog.at_level(logging.INFO, logger="torv.node"):
        for i in range(1000):
            rej.count("gossip", f"bad thing {i}")
    assert rej["gossip"] == 1000 and rej.as_dict()["dht"] == 0
    assert len([r for r in caplog.records if "rejected gossip" in r.getMessage()]) == 1
