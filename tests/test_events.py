"""The live event stream: GET /ws with the bearer token, JSON-RPC notifications for listings
(any vendor's) and peers, slow consumers dropped with a close code, `torv events`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from node.core.events import event_types
from tui.client import RpcCallError, RpcClient

from .cluster import NodeProc, sample_listing, start_cluster, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[NodeProc]]:
    nodes = await start_cluster(tmp_path_factory.mktemp("events"), 2)
    yield nodes
    for node in nodes:
        await node.stop()


class Recorder:
    """Collects a node's events in the background."""

    def __init__(self, node: NodeProc) -> None:
        self.client = RpcClient.from_data_dir(node.data_dir)
        self.events: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        async def run() -> None:
            async for event in self.client.events():
                self.events.append(event)

        self.task = asyncio.create_task(run())
        await self.wait(lambda e: e["type"] == "stream.open", "the stream to open")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()

    async def wait(self, pred: Any, what: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            return next((e for e in self.events if pred(e)), None)
        return await wait_for(found, 30, what=what)


async def test_the_stream_needs_the_token(pair: list[NodeProc]) -> None:
    node = pair[0]
    assert node.client is not None
    for header in ({}, {"Authorization": "Bearer nope"}):
        async with aiohttp.ClientSession() as s, s.get(node.client.ws_url, headers=header) as r:
            assert r.status == 401
    bad = RpcClient(node.client.url, "wrong")
    with pytest.raises(RpcCallError) as err:
        async for _ in bad.events():
            pass
    assert err.value.code == 401
    await bad.close()


async def test_listing_and_peer_events_arrive(pair: list[NodeProc], tmp_path: Path) -> None:
    you, vendor = pair
    async with Recorder(you) as rec:
        made = await vendor.call("listing.create", **sample_listing("Ash bowl"))
        added = await rec.wait(lambda e: e["type"] == "listing.added" and e["id"] == made["id"],
                               "listing.added")
        assert added == {"type": "listing.added", "vendor": vendor.peer_id, "id": made["id"],
                         "seq": 1, "title": "Ash bowl", "price": made["price"]}
        await vendor.call("listing.update", id=made["id"], title="Ash salad bowl")
        updated = await rec.wait(lambda e: e["type"] == "listing.updated", "listing.updated")
        assert updated["seq"] == 2 and updated["title"] == "Ash salad bowl"
        await vendor.call("listing.delete", id=made["id"])
        removed = await rec.wait(lambda e: e["type"] == "listing.removed", "listing.removed")
        assert removed == {"type": "listing.removed", "vendor": vendor.peer_id, "id": made["id"]}
        own = await you.call("listing.create", **sample_listing("Own spoon"))
        await rec.wait(lambda e: e["type"] == "listing.added" and e["id"] == own["id"],
                       "listing.added for our own listing")
        guest = await NodeProc(tmp_path / "guest", bootstrap=[you.addr]).start()
        joined = await rec.wait(lambda e: e["type"] == "peer.connected"
                                and e["peer_id"] == guest.peer_id, "peer.connected")
        assert joined["peers"] >= 2
        await guest.stop()
        left = await rec.wait(lambda e: e["type"] == "peer.disconnected", "peer.disconnected")
        assert left["peer_id"] == guest.peer_id
        for event in rec.events:
            assert event["type"] in event_types()


async def test_cli_prints_the_stream(pair: list[NodeProc]) -> None:
    you, vendor = pair
    proc = subprocess.Popen([sys.executable, "-m", "node.app.cli", "events", "--data-dir",
                             str(you.data_dir)], stdout=subprocess.PIPE, cwd=ROOT)
    watch = subprocess.Popen([sys.executable, "-m", "node.app.cli", "rpc", "--watch",
                              "--data-dir", str(you.data_dir)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None and watch.stdout is not None

        async def printed(stream: Any, kind: str) -> dict[str, Any]:
            while True:  # bounded by the wait_for around it
                line = await asyncio.to_thread(stream.readline)
                assert line, "the event printer exited"
                event = json.loads(line)
                if event["type"] == kind:
                    return dict(event)

        for stream in (proc.stdout, watch.stdout):  # both are listening from here on
            opened = await asyncio.wait_for(printed(stream, "stream.open"), 30)
            assert opened["peer_id"] == you.peer_id
        await vendor.call("listing.create", **sample_listing("Elm ladle"))
        first = await asyncio.wait_for(printed(proc.stdout, "listing.added"), 30)
        assert first["title"] == "Elm ladle"
        second = await asyncio.wait_for(printed(watch.stdout, "listing.added"), 30)
        assert second == first
    finally:
        for p in (proc, watch):
            p.terminate()
            p.wait(10)


async def test_a_slow_consumer_is_dropped_with_a_close_code(tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "slow", extra_args=["--event-queue", "8"]).start()
    try:
        assert node.client is not None
        port = int((node.data_dir / "rpc.port").read_text())
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a reader that never reads
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n"
                      f"Authorization: Bearer {node.client.token}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")

        made = await node.call("listing.create", **sample_listing("Flood item"))

        async def dropped() -> bool:  # every update is an event the reader never takes
            batch = [{"jsonrpc": "2.0", "id": i, "method": "listing.update",
                      "params": {"id": made["id"], "title": f"Flood item {i} " + "x" * 100}}
                     for i in range(100)]
            async with aiohttp.ClientSession() as s, s.post(
                    node.client.url, json=batch,
                    headers={"Authorization": f"Bearer {node.client.token}"}) as r:
                assert r.status == 200
            return _peer_closed(sock, port)

        await wait_for(dropped, 60, interval=0.01, what="the slow reader to be dropped")
        assert len(_read_all(sock)) < 1 << 20  # what the kernel let through: bounded
        sock.close()
        assert "dropped an event-stream client: too slow" in node.log_path.read_text()
        info = await node.call("node.info")  # the node carries on
        assert info["peer_id"] == node.peer_id
    finally:
        await node.stop()


def _peer_closed(sock: socket.socket, server_port: int) -> bool:
    """Whether the node no longer holds an established connection to this socket."""
    client_port = sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnH", "state", "established", "(", "sport", "=",
                          f":{server_port}", "and", "dport", "=", f":{client_port}", ")"],
                         capture_output=True, text=True, check=True).stdout
    return not out.strip()


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out
