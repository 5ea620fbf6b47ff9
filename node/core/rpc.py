"""The core's own API methods: node.info, node.peers, node.connect and rpc.discover."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.core.api import (
    NETWORK_ERROR,
    OBJECT,
    PEER_ID,
    Args,
    Method,
    Param,
    array,
    boolean,
    integer,
    obj,
    openrpc,
    string,
)
from node.core.events import event_schemas

if TYPE_CHECKING:
    from node.core.node import NodeCore

MULTIADDR = string(500, 1, r"/.+/p2p/12D3KooW[1-9A-HJ-NP-Za-km-z]{44}",
                   "must be a multiaddr ending in /p2p/<peer id>")
REACHABILITY = obj({
    "status": {"enum": ["public", "private", "unknown"]},
    "public_addrs": array(string(), 100), "relays": array(string(), 100),
    "direct_upgrades": integer(),
    "hole_punch": obj({"tried": integer(), "succeeded": integer()}, ("tried", "succeeded")),
    "checked_with": integer(),
}, ("status", "public_addrs", "relays", "direct_upgrades", "hole_punch"), additional=True,
    description="whether peers can dial this node (public), cannot (private: behind a NAT or "
    "a firewall), or it does not know yet; the addresses peers reached it at")
NODE_INFO = obj({
    "peer_id": PEER_ID, "identity": string(), "addrs": array(string(), 1000),
    "rpc_port": integer(0, 65535), "version": string(), "peers": integer(),
    "rejected": {"type": "object", "additionalProperties": integer()},
    "dropped_gossip": integer(), "banned_peers": integer(), "reachability": REACHABILITY,
    "runtime": obj({"gc_frozen": integer(), "gc_full_collections": integer()},
                   ("gc_frozen", "gc_full_collections"),
                   description="Python's garbage collector in the node process: objects "
                   "frozen at start, full collections so far"),
}, ("peer_id", "addrs", "version", "peers", "rejected"), additional=True,
    description="this node, and a section per service (market, wallet, trading, mail, ...)")
PEER = obj({"peer_id": PEER_ID, "addrs": array(string(), 1000),
            "gossip_score": {"type": "number"}, "relayed": boolean()},
           ("peer_id", "addrs", "gossip_score", "relayed"))


def methods(core: NodeCore) -> list[Method]:
    async def node_info(p: Args) -> Any:
        return core.info()

    async def node_peers(p: Args) -> Any:
        return core.peer_list()

    async def node_connect(p: Args) -> Any:
        return {"peer_id": await core.connect(p["addr"])}

    async def discover(p: Args) -> Any:
        return openrpc(core.registry, core.version, event_schemas())

    return [
        Method("node.info", "This node: its peer id, addresses, version, peers, what it "
               "rejected, and a section per service.", (), NODE_INFO, node_info),
        Method("node.peers", "The peers connected now, with their gossip scores.", (),
               array(PEER, 100_000), node_peers),
        Method("node.connect", "Connect to a peer by multiaddr.",
               (Param("addr", MULTIADDR, True),), obj({"peer_id": PEER_ID}, ("peer_id",)),
               node_connect, (NETWORK_ERROR,)),
        Method("rpc.discover", "This API described: an OpenRPC 1.x document of every method "
               "(parameters and result as JSON Schema, errors) and every event type of the "
               "/ws stream (under x-events).", (), OBJECT, discover),
    ]
