"""A small async JSON-RPC client for a running Torv node (used by the TUI and `torv rpc`),
with the node's live event stream (``events()``, a WebSocket on ``/ws``)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

COOKIE_NAME = "rpc.cookie"
PORT_FILE = "rpc.port"
UNREACHABLE = -1
TIMED_OUT = -2
BIG_REPLY = 256 * 1024  # bytes: bigger answers are decoded in a thread


class RpcCallError(Exception):
    """The node answered with a JSON-RPC error, or could not be reached, or did not answer."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


def read_endpoint(data_dir: Path) -> tuple[str, str]:
    """(url, token) of the node running on ``data_dir``."""
    try:
        token = (data_dir / COOKIE_NAME).read_text().strip()
        port = int((data_dir / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        raise RpcCallError(UNREACHABLE, f"no running node found in {data_dir}") from None
    return f"http://127.0.0.1:{port}/rpc", token


class RpcClient:
    def __init__(self, url: str, token: str, timeout: float = 60.0,
                 unix_socket: str | None = None) -> None:
        self.url = url
        self.token = token
        self.unix_socket = unix_socket  # reach the node through this socket instead of TCP
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.last_close_code: int | None = None  # of the last event stream, once it ended

    @classmethod
    def from_data_dir(cls, data_dir: Path, timeout: float = 60.0) -> RpcClient:
        url, token = read_endpoint(data_dir)
        return cls(url, token, timeout)

    @property
    def ws_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/ws"

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = (aiohttp.UnixConnector(path=self.unix_socket)
                         if self.unix_socket is not None else None)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout,
                headers={"Authorization": f"Bearer {self.token}"})
        return self._session

    async def call(self, method: str, **params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._http().post(self.url, json=body) as resp:
                if resp.status == 401:
                    raise RpcCallError(401, "unauthorized: wrong or missing RPC token")
                raw = await resp.read()
            # a big answer (a whole store) is decoded off the loop, so the UI stays live
            reply = (json.loads(raw) if len(raw) < BIG_REPLY
                     else await asyncio.to_thread(json.loads, raw))
        except TimeoutError:
            raise RpcCallError(TIMED_OUT, f"the node did not answer {method} within "
                                          f"{self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise RpcCallError(UNREACHABLE, f"cannot reach the node: {exc}") from None
        except ValueError:
            raise RpcCallError(UNREACHABLE, "the node's answer is not JSON") from None
        if "error" in reply:
            err = reply["error"]
            raise RpcCallError(err.get("code", 0), err.get("message", "error"), err.get("data"))
        return reply["result"]

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The node's events as they happen (``params`` of each notification).

        Ends when the node closes the stream; RpcCallError if it cannot be opened.
        """
        try:
            ws = await self._http().ws_connect(self.ws_url, timeout=aiohttp.ClientWSTimeout(
                ws_close=5.0), heartbeat=30.0, receive_timeout=None)
        except aiohttp.WSServerHandshakeError as exc:
            code = 401 if exc.status == 401 else UNREACHABLE
            raise RpcCallError(code, f"event stream refused: HTTP {exc.status}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RpcCallError(UNREACHABLE, f"cannot reach the node: {exc}") from None
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                note = json.loads(msg.data)
                if note.get("method") == "event":
                    yield note["params"]
        finally:
            await ws.close()
        self.last_close_code = ws.close_code
