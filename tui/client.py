"""A small async JSON-RPC client for a running Torv node (used by the TUI and `torv rpc`)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import aiohttp

COOKIE_NAME = "rpc.cookie"
PORT_FILE = "rpc.port"


class RpcCallError(Exception):
    """The node answered with a JSON-RPC error (or could not be reached)."""

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
        raise RpcCallError(-1, f"no running node found in {data_dir}") from None
    return f"http://127.0.0.1:{port}/rpc", token


class RpcClient:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.url = url
        self.token = token
        self._ids = itertools.count(1)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_data_dir(cls, data_dir: Path, timeout: float = 60.0) -> RpcClient:
        url, token = read_endpoint(data_dir)
        return cls(url, token, timeout)

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, **params: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._session.post(
                self.url, json=body, headers={"Authorization": f"Bearer {self.token}"}
            ) as resp:
                if resp.status == 401:
                    raise RpcCallError(401, "unauthorized: wrong or missing RPC token")
                reply = await resp.json()
        except aiohttp.ClientError as exc:
            raise RpcCallError(-1, f"cannot reach the node: {exc}") from None
        if "error" in reply:
            err = reply["error"]
            raise RpcCallError(err.get("code", 0), err.get("message", "error"), err.get("data"))
        return reply["result"]
