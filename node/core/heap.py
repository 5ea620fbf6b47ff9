"""The node process's garbage collector, set for a server whose startup objects live as long
as it does.

CPython's full collection (generation 2) walks every object the collector tracks, holding the
GIL, and while much is allocated and kept (a store's listings on their way to the database) it
runs every second or two. A node's startup leaves about 100,000 tracked objects that never
become garbage (modules, classes, functions, the libp2p host, the services); walking them took
40-78 ms a collection on the project's machine during a 100,000-listing join, whichever thread
triggered it, and the event loop stood still for that long (``node.info`` p99 52-57 ms). Those
objects need no walk: ``gc.freeze()`` moves every tracked object into a permanent generation the
collector skips (the freeze itself is a list splice, no walk). Objects made later are collected
as before; only a cycle among the frozen ones would never be freed, so the process collects
once before the first freeze, while nothing else runs (docs/performance.md)."""

from __future__ import annotations

import gc

_frozen = 0  # objects frozen, counted at the last freeze (counting walks them: ~7 ms)


def settle() -> None:
    """At process start, before the event loop: free what the imports left as garbage, then
    freeze the rest (the imported modules)."""
    gc.collect()
    freeze()


def freeze() -> None:
    """Freeze what exists now (the node started: host, services)."""
    global _frozen
    gc.freeze()
    _frozen = gc.get_freeze_count()


def info() -> dict[str, int]:
    """The collector's figures for ``node.info.runtime``: the objects frozen, and how many
    full collections ran (each a pause of the thread that triggered it)."""
    return {"gc_frozen": _frozen, "gc_full_collections": gc.get_stats()[2]["collections"]}
