"""Test helpers: real nodes in their own processes (see node/launcher.py)."""

from __future__ import annotations

from typing import Any

from node.launcher import NodeProc, start_cluster, wait_for

__all__ = ["NodeProc", "sample_listing", "start_cluster", "wait_for"]


def sample_listing(title: str, amount: int = 100_000, **extra: Any) -> dict[str, Any]:
    return {"title": title, "description": f"{title}, in good condition",
            "price": {"amount": amount, "currency": "LTC"}, "quantity": 1, **extra}
