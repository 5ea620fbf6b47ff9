"""Services plug into the node core: each registers its JSON-RPC methods (a duplicate name is
refused), maps its own errors to codes, owns background tasks in the node's task group, and may
serve libp2p streams with async handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol.errors import LocalProtocolError, RemoteProtocolError, TorvError

if TYPE_CHECKING:
    from node.core.node import NodeCore

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

# JSON-RPC error codes (documented in docs/api.md)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = 1000
NETWORK_ERROR = 1001
PEER_ERROR = 1002
WALLET_LOCKED = 1003
WALLET_ERROR = 1004
NO_CHAIN = 1005
CHAIN_ERROR = 1006
REFUSED = 1007
NOT_ALLOWED = 1008
LIMIT = 1009


class RpcError(TorvError):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid_params(field: str, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"{field}: {message}", {"field": field})


class NotFound(TorvError):
    """The thing asked for does not exist here or on the network."""


class Service:
    """Base of the node's services. Subclasses set ``name`` and override what they need."""

    name = "service"

    def __init__(self, core: NodeCore) -> None:
        self.core = core

    def rpc_methods(self) -> dict[str, Handler]:
        return {}

    def map_error(self, exc: TorvError) -> RpcError | None:
        """This service's errors as JSON-RPC errors; None leaves it to the core's defaults."""
        return None

    def info(self) -> dict[str, Any] | None:
        """A section of ``node.info`` (under ``name``), or None."""
        return None

    async def start(self) -> None:
        """Called once the host runs; spawn background tasks with ``core.spawn``."""

    async def stop(self) -> None:
        """Called before the host stops (in reverse order of start)."""


@dataclass(frozen=True)
class Method:
    handler: Handler
    service: Service | None


class RpcRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def register(self, name: str, handler: Handler, service: Service | None = None) -> None:
        if name in self._methods:
            owner = self._methods[name].service
            raise LocalProtocolError(
                f"RPC method {name} is already registered by "
                f"{owner.name if owner else 'the core'}")
        self._methods[name] = Method(handler, service)

    def add(self, service: Service) -> None:
        for name, handler in service.rpc_methods().items():
            self.register(name, handler, service)

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)


def map_core_error(exc: TorvError) -> RpcError:
    """Errors no service claimed: by kind, with their own message (never a traceback)."""
    from node.net.host import P2PError

    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, LocalProtocolError):
        return RpcError(INVALID_PARAMS, str(exc), {"field": exc.field} if exc.field else None)
    if isinstance(exc, NotFound):
        return RpcError(NOT_FOUND, str(exc))
    if isinstance(exc, P2PError):
        return RpcError(NETWORK_ERROR, str(exc))
    if isinstance(exc, RemoteProtocolError):
        return RpcError(PEER_ERROR, str(exc))
    return RpcError(INTERNAL_ERROR, str(exc))
