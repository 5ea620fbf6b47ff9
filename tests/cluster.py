"""Test helpers: real nodes in their own processes (see node/launcher.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.app.launcher import NodeProc, start_cluster, wait_for

__all__ = ["NodeProc", "sample_listing", "start_cluster", "start_linked_pair", "wait_for"]


async def start_linked_pair(base: Path) -> list[NodeProc]:
    """Two nodes, the second bootstrapped from the first, once they are connected."""
    nodes = await start_cluster(base, 2)

    async def linked() -> bool:
        return (await nodes[0].call("node.info"))["peers"] > 0

    await wait_for(linked, 30, what="the two nodes to connect")
    return nodes


def sample_listing(title: str, amount: int = 100_000, **extra: Any) -> dict[str, Any]:
    return {"title": title, "description": f"{title}, in good condition",
            "price": {"amount": amount, "currency": "LTC"}, "quantity": 1, **extra}
