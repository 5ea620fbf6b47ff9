"""The node core's extension points and its clients' failure modes, in-process: the API
registry refuses a duplicate method and validates parameters from the declared schema, timeouts
are errors with their own message (the TUI stays open), and no rejection floods the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import Static

from node.core.api import (
    LISTING_ID,
    PEER_ID,
    ApiRegistry,
    Args,
    ErrorCodes,
    Method,
    Param,
    array,
    integer,
    nullable,
    obj,
    string,
)
from node.core.database import DB_NAME, Database
from node.core.node import NodeConfig, NodeCore, Rejections
from node.core.services import NotFound, Service
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


async def _noop(params: Args) -> Any:
    return None


def _method(name: str, params: tuple[Param, ...] = ()) -> Method:
    return Method(name, "for the test", params, {}, _noop)


class Echo(Service):
    name = "echo"


def test_the_registry_refuses_a_duplicate_method() -> None:
    reg = ApiRegistry()
    reg.register(_method("a.b"))
    with pytest.raises(LocalProtocolError, match="a.b is already registered"):
        reg.register(_method("a.b"))
    assert reg.names() == ["a.b"]


SAY = _method("echo.say", (
    Param("to", PEER_ID, True), Param("listing", LISTING_ID),
    Param("times", integer(1, 5), default=1), Param("words", array(string(20), 3)),
    Param("nested", obj({"n": integer(0, 9)}, ("n",))),
    Param("maybe", nullable(obj({"n": integer(0, 9)}, ("n",))))))
PEER = Identity(b"\x02" * 32).peer_id


@pytest.mark.parametrize(("params", "field", "words"), [
    ({}, "to", "is required"),
    ({"to": "12D3KooW" + "1" * 44}, "to", "must be a peer id"),
    ({"to": PEER, "times": 6}, "times", "at most 5"),
    ({"to": PEER, "times": True}, "times", "must be an integer"),
    ({"to": PEER, "listing": "AB" * 16}, "listing", "listing id"),
    ({"to": PEER, "listing": "ab" * 16 + "\n"}, "listing", "listing id"),
    ({"to": PEER, "words": ["a", "b", "c", "d"]}, "words", "at most 3 items"),
    ({"to": PEER, "words": ["x" * 21]}, "words", "at most 20 characters"),
    ({"to": PEER, "nested": {"n": 10}}, "nested", "nested.n: must be at most 9"),
    ({"to": PEER, "nested": {}}, "nested", "nested.n: is required"),
    ({"to": PEER, "maybe": {"n": 10}}, "maybe", "maybe.n: must be at most 9"),
    ({"to": PEER, "maybe": 3}, "maybe", "maybe: must be an object"),
    ({"to": PEER, "loud": True}, "loud", "unknown parameter"),
])
def test_parameters_are_refused_by_the_declared_schema(params: dict[str, Any], field: str,
                                                       words: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        SAY.validate(params)
    assert err.value.field == field and words in str(err.value)


def test_parameters_that_pass_get_their_defaults() -> None:
    args = SAY.validate({"to": PEER, "words": ["hi"]})
    assert args == {"to": PEER, "listing": None, "times": 1, "words": ["hi"], "nested": None,
                    "maybe": None}
    assert args.given == {"to", "words"} and args.changes("to") == {"words": ["hi"]}


def test_an_error_answers_with_the_code_of_its_most_specific_class() -> None:
    class Gone(NotFound):
        pass

    codes = ErrorCodes({LocalProtocolError: -32602, NotFound: 1000})
    codes.add({Gone: 1099})
    assert codes.error(Gone("x")).code == 1099
    assert codes.error(NotFound("x")).code == 1000
    refused = codes.error(LocalProtocolError("bad", field="f"))
    assert (refused.code, refused.data) == (-32602, {"field": "f"})
    assert codes.error(ChainError("down")).code == -32603  # nobody named it
    with pytest.raises(LocalProtocolError, match="already answers"):
        codes.add({Gone: 1098})


async def test_two_services_cannot_claim_one_method(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / DB_NAME, [])
    try:
        core = NodeCore(NodeConfig(tmp_path, ["/ip4/127.0.0.1/tcp/0"]), Identity(b"\x01" * 32),
                        db, "random")
        core.add(Echo(core), [_method("echo.say")])
        with pytest.raises(LocalProtocolError, match="echo.say is already registered by echo"):
            core.add(Echo(core), [_method("echo.say")])
        with pytest.raises(LocalProtocolError, match="node.info is already registered by the"):
            core.registry.register(_method("node.info"))
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
