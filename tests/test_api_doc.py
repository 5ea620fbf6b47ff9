"""docs/api.md and the API as the node declares it (``rpc.discover``) say the same: every
method and every parameter of one is in the other, every event type too, and every declared
schema is a valid JSON Schema. Built in-process: the node's rooms composed as the runner
composes them, without starting it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator

from node.app.runner import RunOptions, compose
from node.app.schema import MIGRATIONS
from node.core.api import openrpc
from node.core.database import DB_NAME, Database
from node.core.events import event_schemas, event_types
from node.core.node import NodeConfig, NodeCore
from node.wallet.service import WalletHolder
from protocol.identity import Identity

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
PREFIXES = ("node", "rpc", "profile", "listing", "store", "wallet", "escrow", "order",
            "dispute", "rating", "moderator", "chat", "notification", "settings", "rates",
            "market")
METHOD_RE = re.compile(r"`(" + "|".join(PREFIXES) + r")\.([a-z_]+)\b")
FILES = {"node.key"}  # named in the doc, not methods


@pytest_asyncio.fixture
async def document(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    db = await Database.open(tmp_path / DB_NAME, MIGRATIONS)
    try:
        core = NodeCore(NodeConfig(tmp_path), Identity(b"\x05" * 32), db, "random")
        compose(core, WalletHolder(tmp_path, db, None, None), RunOptions(tmp_path))
        yield openrpc(core.registry, core.version, event_schemas())
    finally:
        await db.close()


def _sections() -> dict[str, str]:
    """Each method named in api.md, with the text from each mention to the next method's
    (where its parameters are told); the event table aside."""
    text = "\n".join(line for line in DOC.read_text().splitlines()
                     if not line.startswith("| `"))
    hits = [(m.start(), f"{m.group(1)}.{m.group(2)}") for m in METHOD_RE.finditer(text)]
    out: dict[str, str] = {}
    hits = [(at, name) for at, name in hits if name not in FILES]
    for i, (at, name) in enumerate(hits):
        end = next((a for a, n in hits[i + 1:] if n != name), len(text))
        out[name] = out.get(name, "") + text[at:end]
    return out


async def test_every_method_is_in_the_doc_and_every_documented_one_exists(
        document: dict[str, Any]) -> None:
    declared = {m["name"] for m in document["methods"]}
    documented = set(_sections())
    assert declared - documented == set(), "declared but not in docs/api.md"
    assert documented - declared == set(), "in docs/api.md but not declared"


async def test_every_parameter_is_in_the_doc(document: dict[str, Any]) -> None:
    sections = _sections()
    missing = [f"{m['name']} {p['name']}" for m in document["methods"] for p in m["params"]
               if not re.search(rf"\b{p['name']}\b", sections[m["name"]])]
    assert not missing, "parameters docs/api.md does not mention: " + ", ".join(missing)


async def test_every_event_type_is_in_the_doc(document: dict[str, Any]) -> None:
    text = DOC.read_text()
    table = {t for t in re.findall(r"^\| (.+?) \|", text, re.M) for t in
             re.findall(r"`([a-z_]+\.[a-z_]+)`", t)}
    assert table == set(event_types()) == {e["type"] for e in document["x-events"]}


@pytest.mark.loop_stall_ok("checks every schema of the API, in the test itself")
async def test_every_schema_is_valid_json_schema(document: dict[str, Any]) -> None:
    for m in document["methods"]:
        assert m["summary"], m["name"]
        Draft202012Validator.check_schema(m["result"]["schema"])
        for p in m["params"]:
            Draft202012Validator.check_schema(p["schema"])
    for e in document["x-events"]:
        Draft202012Validator.check_schema(e["schema"])
