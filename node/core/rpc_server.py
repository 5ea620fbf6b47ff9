"""JSON-RPC 2.0 over HTTP and the live event stream over WebSocket (aiohttp).

Loopback only; every request needs ``Authorization: Bearer <token>`` from the 0600 cookie file.
Any body, however hostile (deep nesting, huge numbers, invalid UTF-8, lone surrogates, 50 MB),
gets a JSON-RPC error or a 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import json
import logging
import secrets
import socket
import struct
import termios
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, web

from node.core.api import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)
from node.core.events import Event, StreamOpen
from node.core.node import NodeCore
from protocol.errors import TorvError
from wallet.atomic import write_private_file

log = logging.getLogger("torv.rpc")

COOKIE_NAME = "rpc.cookie"
PORT_FILE = "rpc.port"
MAX_BODY = 1 << 20
MAX_BATCH = 100
MAX_JSON_DEPTH = 32
WS_SEND_TIMEOUT = 10.0
WS_CLOSE_TOO_SLOW = 4008  # private-use close code: the client fell too far behind
# The kernel's send buffer for an event socket: small and fixed (no autotuning to megabytes),
# so a client that stops reading shows up as a full queue soon, not after 4 MB.
WS_SNDBUF = 64 * 1024

CORE_KEY = web.AppKey("core", NodeCore)
SERVER_KEY: web.AppKey[RpcServer] = web.AppKey("server")
SOCKETS_KEY: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets", set)


def write_cookie(data_dir: Path, port: int) -> str:
    token = secrets.token_urlsafe(32)
    write_private_file(data_dir / COOKIE_NAME, token.encode())
    write_private_file(data_dir / PORT_FILE, str(port).encode())
    return token


class BadJson(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise BadJson(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Parse a request body; BadJson (with a message for the caller) on anything hostile."""
    try:
        value = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise BadJson("nested too deeply") from None
    except UnicodeDecodeError:
        raise BadJson("body is not UTF-8") from None
    except ValueError as exc:  # includes integers of more than 4300 digits
        raise BadJson(str(exc).split(":")[0] if isinstance(exc, BadJson) else
                      "body is not JSON") from None
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    """Depth at most MAX_JSON_DEPTH; every string valid Unicode (no lone surrogates)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadJson(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            _utf8(item)
        elif isinstance(item, list):
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            for k, v in item.items():
                _utf8(k)
                stack.append((v, depth + 1))


def _utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson("a string holds a lone surrogate (invalid Unicode)") from None


class RpcServer:
    def __init__(self, core: NodeCore, event_queue: int, check_results: bool = False) -> None:
        self.core = core
        self.event_queue = event_queue
        self.token = ""
        # every answer checked against its method's declared result schema (the tests run
        # every node so; TORV_CHECK_RESULTS=1): a mismatch is an internal error
        self.check_results = check_results

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app[CORE_KEY] = self.core
        app[SERVER_KEY] = self
        app[SOCKETS_KEY] = set()
        app.router.add_post("/rpc", self.handle_http)
        app.router.add_get("/ws", self.handle_ws)
        app.on_shutdown.append(self._close_sockets)
        return app

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        expected = f"Bearer {self.token}"
        return bool(self.token) and hmac.compare_digest(auth.encode(), expected.encode())

    # ------------------------------------------------------------------ HTTP
    async def handle_http(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.read()  # over MAX_BODY: aiohttp answers 413 itself
        try:
            payload = parse_json(body)
        except BadJson as exc:
            return web.json_response(_error(None, PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(payload, list):
            if not payload or len(payload) > MAX_BATCH:
                return web.json_response(_error(
                    None, INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} requests"))
            results = [await self.handle_one(item) for item in payload]
            out = [r for r in results if r is not None]
            return web.json_response(out) if out else web.Response(status=204)
        result = await self.handle_one(payload)
        return web.json_response(result) if result is not None else web.Response(status=204)

    async def handle_one(self, req: Any) -> dict[str, Any] | None:
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(
            req.get("method"), str
        ):
            return _error(None, INVALID_REQUEST,
                          "invalid request: need jsonrpc '2.0' and a method name")
        rid = req.get("id")
        is_notification = "id" not in req
        if rid is not None and not isinstance(rid, str | int) or isinstance(rid, bool):
            return _error(None, INVALID_REQUEST, "invalid request: id must be a string or number")
        response = await self.dispatch(req["method"], req.get("params", {}), rid)
        return None if is_notification else response

    async def dispatch(self, name: str, params: Any, rid: Any) -> dict[str, Any]:
        method = self.core.registry.get(name)
        if method is None:
            return _error(rid, METHOD_NOT_FOUND, f"method not found: {name[:100]}")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error(rid, INVALID_PARAMS, "params must be an object (parameters by name)")
        try:
            result = await method.handler(method.validate(params))
        except TorvError as exc:
            mapped = self.core.errors.error(exc)
            return _error(rid, mapped.code, mapped.message, mapped.data)
        except Exception:
            log.exception("RPC method %s failed", name)
            return _error(rid, INTERNAL_ERROR, "internal error (see the node's log)")
        if self.check_results:
            wrong = method.result_errors(result)
            if wrong:
                log.error("RPC method %s answered outside its result schema: %s", name, wrong)
                return _error(rid, INTERNAL_ERROR, f"{name} answered outside its result "
                              f"schema: {'; '.join(wrong[:3])}")
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ------------------------------------------------------------------ WebSocket
    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WS_SNDBUF)
        sockets = request.app[SOCKETS_KEY]
        sockets.add(ws)
        sub = self.core.events.subscribe(self.event_queue)
        sub.offer(StreamOpen(self.core.me, self.event_queue))
        tasks = [asyncio.ensure_future(self._pump(ws, sub)),
                 asyncio.ensure_future(self._drain(ws)),
                 asyncio.ensure_future(sub.wait_closed())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            reason = sub.closed or ""
            sub.close()
            sockets.discard(ws)
            if reason.startswith("too slow") or tasks[0].done() and _timed_out(tasks[0]):
                log.info("dropped an event-stream client: %s", reason or "send timed out")
                await _drop_slow(request, WS_CLOSE_TOO_SLOW, "too slow: events dropped")
            elif reason == "node stopping":
                await _close(ws, request, WSCloseCode.GOING_AWAY, "node stopping")
            else:
                await _close(ws, request, WSCloseCode.OK, "")
        return ws

    @staticmethod
    async def _pump(ws: web.WebSocketResponse, sub: Any) -> None:
        while (event := await sub.get()) is not None:
            await asyncio.wait_for(ws.send_str(notification(event)), WS_SEND_TIMEOUT)

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for _ in ws:  # the stream is one-way; client messages are read and ignored
            pass

    async def _close_sockets(self, app: web.Application) -> None:
        sockets = app[SOCKETS_KEY]
        for ws in list(sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=WSCloseCode.GOING_AWAY,
                                                message=b"node stopping"), 2)


def _timed_out(task: asyncio.Future[Any]) -> bool:
    return not task.cancelled() and isinstance(task.exception(), TimeoutError)


async def _close(ws: web.WebSocketResponse, request: web.Request, code: int, text: str) -> None:
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
        await asyncio.wait_for(ws.close(code=code, message=text.encode()), 2)


async def _drop_slow(request: web.Request, code: int, text: str) -> None:
    """Drop a client that stopped reading: queue a close frame with ``code`` behind what it has
    not read yet (written to the transport directly: aiohttp's own close would wait for a drain
    that never comes), give it 2 s to take everything, then cut the connection, so nothing
    stays buffered for it in the node or the kernel."""
    transport = request.transport
    if transport is None:
        return
    payload = code.to_bytes(2, "big") + text.encode()[:120]
    transport.write(bytes([0x88, len(payload)]) + payload)  # FIN + close, unmasked
    sock = transport.get_extra_info("socket")
    for _ in range(20):
        if not transport.get_write_buffer_size() and _unsent(sock) == 0:
            transport.close()
            return
        await asyncio.sleep(0.1)
    transport.abort()


def _unsent(sock: Any) -> int:
    """Bytes the kernel still holds for the peer (Linux SIOCOUTQ); -1 if unknown."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                  b"\0\0\0\0"))[0])
    except (OSError, AttributeError, ValueError):
        return -1


def notification(event: Event) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "event", "params": event.to_json()})


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}


__all__ = ["RpcServer", "write_cookie"]
