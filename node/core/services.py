"""What a service is to the node core: a name, a section of ``node.info``, a start (spawning
its tasks in the node's task group, serving its libp2p protocols) and a stop, and the error
classes it raises with the JSON-RPC code each answers with. Its API methods are declared in
its room's ``rpc`` module and registered by the runner (``NodeCore.add``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from protocol.errors import TorvError

if TYPE_CHECKING:
    from node.core.node import NodeCore


class NotFound(TorvError):
    """The thing asked for does not exist here or on the network."""


class OutOfStock(TorvError):
    """A listing of ours has fewer items left than an order asks for."""

    def __init__(self, listing_id: str, available: int, wanted: int) -> None:
        super().__init__(f"out of stock: {available} left of listing {listing_id[:12]}, "
                         f"{wanted} asked for")
        self.available = available


class Service:
    """Base of the node's services. Subclasses set ``name`` and override what they need."""

    name = "service"
    # the error classes this service raises, and the JSON-RPC code each answers with
    rpc_errors: ClassVar[Mapping[type[BaseException], int]] = {}

    def __init__(self, core: NodeCore) -> None:
        self.core = core

    def info(self) -> dict[str, Any] | None:
        """A section of ``node.info`` (under ``name``), or None."""
        return None

    async def start(self) -> None:
        """Called once the host runs; spawn background tasks with ``core.spawn``."""

    async def stop(self) -> None:
        """Called before the host stops (in reverse order of start)."""
