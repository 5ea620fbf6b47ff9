"""JSON-RPC 2.0 over HTTP (aiohttp), loopback only, bearer-token auth from a 0600 cookie file."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from protocol.errors import LocalProtocolError, RemoteProtocolError, TorvError
from wallet.atomic import write_private_file

log = logging.getLogger("torv.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Application errors (documented in docs/api.md)
NOT_FOUND = 1000
NETWORK_ERROR = 1001
PEER_ERROR = 1002
WALLET_LOCKED = 1003
WALLET_ERROR = 1004
NO_CHAIN = 1005
CHAIN_ERROR = 1006
REFUSED = 1007

COOKIE_NAME = "rpc.cookie"
PORT_FILE = "rpc.port"
MAX_BODY = 1 << 20
MAX_BATCH = 100


class RpcError(TorvError):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid_params(field: str, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"{field}: {message}", {"field": field})


Handler = Callable[[dict[str, Any]], Awaitable[Any]]
ErrorMapper = Callable[[TorvError], RpcError | None]


def write_cookie(data_dir: Path, port: int) -> str:
    token = secrets.token_urlsafe(32)
    write_private_file(data_dir / COOKIE_NAME, token.encode())
    write_private_file(data_dir / PORT_FILE, str(port).encode())
    return token


class RpcServer:
    """Dispatches JSON-RPC requests to ``methods``; maps Torv errors to JSON-RPC errors."""

    def __init__(self, methods: dict[str, Handler], map_error: ErrorMapper) -> None:
        self.methods = methods
        self.map_error = map_error
        self.token = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/rpc", self.handle_http)
        return app

    async def handle_http(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        expected = f"Bearer {self.token}"
        if not self.token or not hmac.compare_digest(auth.encode(), expected.encode()):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.json_response(_error(None, PARSE_ERROR, "parse error: body is not JSON"))
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
        response = await self._dispatch(req["method"], req.get("params", {}), rid)
        return None if is_notification else response

    async def _dispatch(self, method: str, params: Any, rid: Any) -> dict[str, Any]:
        handler = self.methods.get(method)
        if handler is None:
            return _error(rid, METHOD_NOT_FOUND, f"method not found: {method}")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error(rid, INVALID_PARAMS, "params must be an object (parameters by name)")
        try:
            result = await handler(params)
        except RpcError as exc:
            return _error(rid, exc.code, exc.message, exc.data)
        except LocalProtocolError as exc:
            data = {"field": exc.field} if exc.field else None
            return _error(rid, INVALID_PARAMS, str(exc), data)
        except TorvError as exc:
            mapped = self.map_error(exc)
            if mapped is None:
                mapped = RpcError(PEER_ERROR if isinstance(exc, RemoteProtocolError)
                                  else INTERNAL_ERROR, str(exc))
            return _error(rid, mapped.code, mapped.message, mapped.data)
        except Exception:
            log.exception("RPC method %s failed", method)
            return _error(rid, INTERNAL_ERROR, "internal error (see the node's log)")
        return {"jsonrpc": "2.0", "id": rid, "result": result}


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}
