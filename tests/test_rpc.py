"""The JSON-RPC API of one real node: auth, error codes, parameter errors, batches, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tui.client import RpcCallError

from .cluster import NodeProc, sample_listing

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NodeProc]:
    n = NodeProc(tmp_path_factory.mktemp("rpc") / "node")
    await n.start()
    yield n
    await n.stop()


async def raw_post(node: NodeProc, body: bytes | str, token: str | None = "cookie") -> Any:
    assert node.client is not None
    headers = {"Content-Type": "application/json"}
    if token == "cookie":
        token = node.client.token
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as s, s.post(node.client.url, data=body,
                                                     headers=headers) as r:
        text = await r.text()
        return r.status, (json.loads(text) if text else None)


def req(method: str, params: Any = None, rid: Any = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        out["params"] = params
    return out


async def test_cookie_is_private_and_token_required(node: NodeProc) -> None:
    mode = stat.S_IMODE(os.stat(node.data_dir / "rpc.cookie").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(node.data_dir / "node.key").st_mode) == 0o600
    for token in (None, "wrong-token", ""):
        status, _ = await raw_post(node, json.dumps(req("node.info")), token=token)
        assert status == 401
    status, body = await raw_post(node, json.dumps(req("node.info")))
    assert status == 200 and body["result"]["peer_id"] == node.peer_id


async def test_rpc_binds_loopback_only(node: NodeProc) -> None:
    out = (await asyncio.to_thread(subprocess.run, ["ss", "-ltnH"], capture_output=True,
                                   text=True, check=False)).stdout
    port = node.info["rpc_port"]
    lines = [ln for ln in out.splitlines() if f":{port} " in ln]
    assert lines and all("127.0.0.1:" in ln for ln in lines)


@pytest.mark.parametrize(("body", "code"), [
    ("{not json", -32700),
    (json.dumps({"jsonrpc": "1.0", "id": 1, "method": "node.info"}), -32600),
    (json.dumps([]), -32600),
    (json.dumps([{"jsonrpc": "2.0", "id": i, "method": "node.info"} for i in range(101)]),
     -32600),
    (json.dumps([1]), None),
    (json.dumps(req("no.such.method")), -32601),
    (json.dumps(req("listing.get", {"id": 5})), -32602),
    (json.dumps(req("node.info", [1, 2])), -32602),
    (json.dumps(req("listing.get", {"id": "ab" * 16})), 1000),
])
async def test_standard_error_codes(node: NodeProc, body: str, code: int | None) -> None:
    status, reply = await raw_post(node, body)
    assert status == 200
    if code is None:  # a batch of one invalid entry: a list holding one error
        assert [r["error"]["code"] for r in reply] == [-32600]
        return
    assert reply["error"]["code"] == code, reply
    assert "Traceback" not in reply["error"]["message"]


@pytest.mark.parametrize(("params", "field"), [
    ({"price": {"amount": 1, "currency": "LTC"}, "quantity": 1}, "title"),
    ({"title": "x" * 141, "price": {"amount": 1, "currency": "LTC"}, "quantity": 1}, "title"),
    ({"title": "ok", "price": {"amount": -5, "currency": "LTC"}, "quantity": 1}, "price.amount"),
    ({"title": "ok", "price": {"amount": 5, "currency": "LTC"}, "quantity": "many"}, "quantity"),
    ({"title": "ok", "price": {"amount": 5, "currency": "LTC"}, "quantity": 1,
      "tags": ["t"] * 11}, "tags"),
    ({"title": "ok", "price": {"amount": 5, "currency": "LTC"}, "quantity": 1, "colour": "red"},
     "colour"),
])
async def test_bad_params_name_the_field(node: NodeProc, params: dict[str, Any],
                                         field: str) -> None:
    with pytest.raises(RpcCallError) as err:
        await node.call("listing.create", **params)
    assert err.value.code == -32602
    assert field in err.value.message


async def test_batch_and_notifications(node: NodeProc) -> None:
    batch = [req("node.info", rid=1), req("nope", rid="b"),
             {"jsonrpc": "2.0", "method": "node.info"}]
    status, reply = await raw_post(node, json.dumps(batch))
    assert status == 200 and len(reply) == 2
    by_id = {r["id"]: r for r in reply}
    assert by_id[1]["result"]["peer_id"] == node.peer_id
    assert by_id["b"]["error"]["code"] == -32601


async def test_listing_lifecycle_and_search(node: NodeProc) -> None:
    made = await node.call("listing.create", **sample_listing(
        "Copper kettle", tags=["kitchen"],
        shipping=[{"region": "DK", "price": {"amount": 500, "currency": "LTC"}}]))
    assert made["seq"] == 1 and len(made["id"]) == 32
    assert [x["id"] for x in await node.call("listing.list")] == [made["id"]]
    hits = await node.call("listing.search", query="kett")  # prefix match
    assert hits[0]["listing"]["id"] == made["id"] and hits[0]["score"] > 0
    assert await node.call("listing.search", query="kitchen") != []
    assert await node.call("listing.search", query='"); DROP TABLE listings; --') == []
    upd = await node.call("listing.update", id=made["id"], quantity=7)
    assert upd["seq"] == 2 and upd["quantity"] == 7 and upd["title"] == "Copper kettle"
    with pytest.raises(RpcCallError) as err:
        await node.call("listing.update", id=made["id"])
    assert err.value.code == -32602
    assert (await node.call("listing.delete", id=made["id"]))["deleted"] is True
    with pytest.raises(RpcCallError) as err:
        await node.call("listing.delete", id=made["id"])
    assert err.value.code == 1000
    fetched = await node.call("store.fetch", peer_id=node.peer_id)
    assert fetched["listings"] == [] and fetched["manifest_seq"] >= 3


async def test_an_update_removes_an_optional_field_given_as_null(node: NodeProc) -> None:
    made = await node.call("listing.create", **sample_listing("Oak stool"), type="physical",
                           condition="used", terms="No returns", moderators=[node.peer_id],
                           markets=["7c" * 32])
    assert made["terms"] == "No returns" and made["markets"] == ["7c" * 32]
    less = await node.call("listing.update", id=made["id"], terms=None, markets=None,
                           moderators=None)
    assert "terms" not in less and "markets" not in less and "moderators" not in less
    assert less["condition"] == "used" and less["seq"] == 2
    plain = await node.call("listing.update", id=made["id"], type=None, condition=None)
    assert "type" not in plain and "condition" not in plain  # signed as v1 again
    got = await node.call("listing.get", id=made["id"])
    assert got == plain and got["seq"] == 3
    with pytest.raises(RpcCallError, match="title"):  # a required field is not removed
        await node.call("listing.update", id=made["id"], title=None)
    with pytest.raises(RpcCallError, match="skus"):  # the rules still hold after removal
        await node.call("listing.update", id=made["id"],
                        options=[{"name": "size", "values": ["S"]}])


async def test_profile(node: NodeProc) -> None:
    assert (await node.call("profile.set", name="Kettle Co"))["name"] == "Kettle Co"
    prof = await node.call("profile.set", about="Since 1890")
    assert prof["name"] == "Kettle Co" and prof["about"] == "Since 1890"
    assert (await node.call("profile.get"))["seq"] == prof["seq"]


async def test_cli_rpc(node: NodeProc) -> None:
    cmd = [sys.executable, "-m", "node.app.cli", "rpc", "--data-dir", str(node.data_dir)]
    root = Path(__file__).resolve().parent.parent
    ok = await asyncio.to_thread(subprocess.run, cmd + ["node.info"], capture_output=True,
                                 text=True, cwd=root)
    assert ok.returncode == 0 and json.loads(ok.stdout)["peer_id"] == node.peer_id
    bad = await asyncio.to_thread(subprocess.run, cmd + ["listing.get", '{"id": "zz"}'],
                                  capture_output=True, text=True,
                         cwd=root)
    assert bad.returncode != 0 and "id" in bad.stderr
    notjson = await asyncio.to_thread(subprocess.run, cmd + ["node.info", "{"],
                                      capture_output=True, text=True, cwd=root)
    assert notjson.returncode == 2


async def test_rpc_discover_describes_every_method_and_event(node: NodeProc) -> None:
    assert node.client is not None
    doc = await node.client.call("rpc.discover")
    assert doc["openrpc"].startswith("1.") and doc["info"]["version"] == "0.3.0"
    methods = {m["name"]: m for m in doc["methods"]}
    assert {"node.info", "listing.create", "order.create", "order.pay", "chat.send",
            "wallet.send", "escrow.sign", "rpc.discover"} <= set(methods)
    create = {p["name"]: p for p in methods["order.create"]["params"]}
    assert create["listing_id"]["required"] and create["listing_id"]["schema"]["pattern"]
    assert not create["shipping_option"]["required"]
    assert {e["code"] for e in methods["order.pay"]["errors"]} >= {-32602, 1003, 1008}
    assert "x-message" not in json.dumps(doc)  # our own annotations stay inside
    events = {e["type"]: e for e in doc["x-events"]}
    assert events["order.state"]["schema"]["required"] == ["type", "order_id", "role", "state"]
    # the node validates from the same schema it publishes
    with pytest.raises(RpcCallError) as err:
        await node.client.call("listing.search", query="x", limit=501)
    assert err.value.code == -32602 and err.value.data == {"field": "limit"}
    schema = {p["name"]: p for p in methods["listing.search"]["params"]}["limit"]["schema"]
    assert schema["maximum"] == 500


async def test_cli_rpc_help_prints_a_method_from_the_node(node: NodeProc) -> None:
    cmd = [sys.executable, "-m", "node.app.cli", "rpc", "--data-dir", str(node.data_dir)]
    root = Path(__file__).resolve().parent.parent
    out = await asyncio.to_thread(subprocess.run, cmd + ["--help", "order.dispute"],
                                  capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("order.dispute: ") and "order_id (required)" in out.stdout
    assert "reason (required)" in out.stdout and "1008: " in out.stdout
    unknown = await asyncio.to_thread(subprocess.run, cmd + ["--help", "order.bogus"],
                                      capture_output=True, text=True, cwd=root)
    assert unknown.returncode == 2 and "order.dispute" in unknown.stderr
    plain = await asyncio.to_thread(subprocess.run, cmd + ["--help"], capture_output=True,
                                    text=True, cwd=root)
    assert plain.returncode == 0 and "usage: torv rpc" in plain.stdout


async def test_node_connect_rejects_bad_addr(node: NodeProc) -> None:
    with pytest.raises(RpcCallError) as err:
        await node.call("node.connect", addr="/ip4/127.0.0.1/tcp/1")
    assert err.value.code == -32602 and "addr" in err.value.message
    with pytest.raises(RpcCallError) as err:
        await node.call("node.connect",
                        addr="/ip4/127.0.0.1/tcp/1/p2p/" + node.peer_id[:-1] + "x")
    assert err.value.code in (1001, -32602)


async def test_node_refuses_bad_startup_options(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    base = [sys.executable, "-m", "node.app.cli", "node", "--data-dir", str(tmp_path),
            "--rpc-port", "0"]
    bad_listen = await asyncio.to_thread(subprocess.run, base + ["--listen", "garbage"],
                                         capture_output=True, text=True,
                                cwd=root, timeout=60)
    assert bad_listen.returncode == 1 and "bad --listen address" in bad_listen.stderr
    bad_chain = await asyncio.to_thread(subprocess.run, base + ["--chain", "dogecoin"],
                                        capture_output=True, text=True,
                               cwd=root, timeout=60)
    assert bad_chain.returncode == 2 and "invalid choice" in bad_chain.stderr
    unreachable = await asyncio.to_thread(subprocess.run,
        base + ["--listen", "/ip4/127.0.0.1/tcp/0", "--chain", "litecoin-regtest",
                "--chain-rpc", "http://u:p@127.0.0.1:1"], capture_output=True, text=True,
        cwd=root, timeout=60)
    assert unreachable.returncode == 1 and "cannot reach the chain node" in unreachable.stderr
    assert not (tmp_path / "rpc.cookie").exists()


HOSTILE_BODIES = [
    pytest.param(b"[" * 1000 + b"]" * 1000, id="nested-1000"),
    pytest.param(b"[" * 100 + b"]" * 100, id="nested-100"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "listing.search", "params": '
                 b'{"query": ' + b"[" * 40 + b"0" + b"]" * 40 + b"}}", id="nested-params"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "listing.search", "params": '
                 b'{"query": "x", "limit": ' + b"9" * 5000 + b"}}", id="huge-int"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "listing.search", "params": '
                 b'{"query": "x", "limit": 1e999}}', id="huge-float"),
    pytest.param(b'{"jsonrpc": "2.0", "id": NaN, "method": "node.info"}', id="nan"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "listing.search", "params": '
                 b'{"query": "\xff\xfe"}}', id="invalid-utf8"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "listing.search", "params": '
                 b'{"query": "\\ud800"}}', id="lone-surrogate"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "profile.set", "params": '
                 b'{"name": "\\udfff"}}', id="surrogate-in-a-write"),
    pytest.param(b"\x00" * 100, id="nul-bytes"),
    pytest.param(b"", id="empty"),
    pytest.param(b'"just a string"', id="a-string"),
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_hostile_bodies_never_get_a_5xx(node: NodeProc, body: bytes) -> None:
    status, reply = await raw_post(node, body)
    assert status < 500
    if status == 200:
        assert reply["error"]["code"] in (-32700, -32600, -32602), reply
        assert "Traceback" not in reply["error"]["message"]
    assert (await node.call("node.info"))["peer_id"] == node.peer_id  # and the node carries on


async def test_a_50_mb_body_is_refused_with_413(node: NodeProc) -> None:
    assert node.client is not None
    chunk = b"1," * (512 * 1024)

    async def body() -> AsyncIterator[bytes]:  # 50 MB, sent a MB at a time
        yield b"["
        for _ in range(50):
            yield chunk
        yield b"1]"

    headers = {"Authorization": f"Bearer {node.client.token}"}
    async with aiohttp.ClientSession() as s, s.post(node.client.url, data=body(),
                                                     headers=headers) as r:
        assert r.status == 413
    assert (await node.call("node.info"))["peer_id"] == node.peer_id


async def test_node_info_rejected_always_has_every_key(node: NodeProc) -> None:
    info = await node.call("node.info")
    assert info["rejected"] == {"gossip": 0, "gossip_rate": 0, "dht": 0, "stream": 0,
                                "fetch": 0, "order": 0, "mail": 0, "market": 0}
    assert info["identity"] == "random"
