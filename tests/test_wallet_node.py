"""The wallet through a real node's JSON-RPC, against a real regtest chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from protocol.escrow import parse_witness_script
from protocol.networks import get_network
from tui.client import RpcCallError, RpcClient
from wallet.psbt_ops import Payment

from .cluster import NodeProc, wait_for
from .conftest import BACKENDS, backend_args
from .wallets import MakeWallet, make_wallet  # noqa: F401 - a fixture

pytestmark = pytest.mark.asyncio(loop_scope="module")
PASSPHRASE = "correct horse battery staple 7"
NET = get_network("litecoin-regtest")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def wnode(request: pytest.FixtureRequest, regtest: Regtest,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NodeProc]:
    """A wallet node on each chain backend: a full node's RPC, then an Electrum server."""
    node = NodeProc(tmp_path_factory.mktemp("wallet") / "node",
                    extra_args=["--chain", "litecoin-regtest",
                                *backend_args(request, request.param), "--log-level", "DEBUG"],
                    env={"TORV_WALLET_PASSPHRASE": PASSPHRASE})
    await node.start()
    yield node
    await node.stop()


async def _has(events: list[dict[str, Any]], kind: str, **fields: Any) -> bool:
    return any(e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
               for e in events)


async def balance(node: NodeProc) -> dict[str, int]:
    return dict((await node.call("wallet.info"))["balance"])


async def test_fund_see_balance_and_send(wnode: NodeProc, regtest: Regtest) -> None:
    info = await wnode.call("wallet.info")
    assert info["network"] == "litecoin-regtest" and info["locked"] is False
    assert info["balance"] == {"confirmed": 0, "unconfirmed": 0}
    assert (await wnode.call("node.info"))["wallet"]["backend"] is True
    assert (await wnode.call("node.info"))["identity"] == "wallet"  # created with its wallet
    addr = (await wnode.call("wallet.address"))["address"]
    assert addr.startswith("rltc1q")
    assert (await wnode.call("wallet.address"))["address"] != addr
    events = RpcClient.from_data_dir(wnode.data_dir)
    seen: list[dict[str, Any]] = []

    async def record() -> None:
        async for event in events.events():
            seen.append(event)

    recorder = asyncio.create_task(record())
    try:
        await wait_for(lambda: _has(seen, "stream.open"), 10, what="the event stream")
        await regtest.afund(addr, 200_000_000)

        async def pending() -> bool:
            return (await balance(wnode))["unconfirmed"] == 200_000_000
        await wait_for(pending, 30, what="unconfirmed balance")
        await wait_for(lambda: _has(seen, "wallet.balance", unconfirmed=200_000_000), 30,
                       what="a wallet.balance event")
    finally:
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        await events.close()
    await regtest.amine(1)

    async def confirmed() -> bool:
        return (await balance(wnode)) == {"confirmed": 200_000_000, "unconfirmed": 0}
    await wait_for(confirmed, 30, what="confirmed balance")

    payee = await regtest.arpc("getnewaddress", wallet="miner")
    txid = (await wnode.call("wallet.send", address=payee, amount=50_000_000))["txid"]
    await regtest.amine(1)
    tx = await regtest.arpc("getrawtransaction", txid, True)
    assert tx["confirmations"] == 1
    paid = [o for o in tx["vout"] if o["scriptPubKey"].get("addresses") == [payee]]
    assert int(paid[0]["value"] * 10**8) == 50_000_000

    async def settled() -> bool:  # a light backend sees the block a moment later
        after = await balance(wnode)
        return after["unconfirmed"] == 0 and 149_900_000 < after["confirmed"] < 150_000_000
    await wait_for(settled, 30, what="the change confirmed, minus a small fee")

    async def one_conf() -> bool:
        return (await wnode.call("wallet.transaction", txid=txid))["confirmations"] == 1
    await wait_for(one_conf, 30, what="the sent transaction confirmed once")
    txs = await wnode.call("wallet.transactions")
    assert {t["category"] for t in txs} >= {"receive"}
    assert any(t["txid"] == txid for t in txs)


async def test_bad_sends_get_clear_errors(wnode: NodeProc) -> None:
    with pytest.raises(RpcCallError) as err:  # a bitcoin regtest address on litecoin
        await wnode.call("wallet.send", address="bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
                         amount=1000)
    assert err.value.code == -32602 and "address" in err.value.message
    with pytest.raises(RpcCallError) as err:
        await wnode.call("wallet.send", address=(await wnode.call("wallet.address"))["address"],
                         amount=10**15)
    assert err.value.code == 1004 and "insufficient" in err.value.message


async def test_lock_and_unlock(wnode: NodeProc) -> None:
    await wnode.call("wallet.lock")
    assert (await wnode.call("wallet.info"))["locked"] is True
    with pytest.raises(RpcCallError) as err:
        await wnode.call("wallet.send", address=(await wnode.call("wallet.address"))["address"],
                         amount=10_000)
    assert err.value.code == 1003
    with pytest.raises(RpcCallError) as err:
        await wnode.call("wallet.unlock", passphrase="not it")
    assert err.value.code == 1004 and "wrong wallet passphrase" in err.value.message
    assert "not it" not in err.value.message
    await wnode.call("wallet.unlock", passphrase=PASSPHRASE)
    assert (await wnode.call("wallet.info"))["locked"] is False


async def test_escrow_through_rpc(wnode: NodeProc, regtest: Regtest, tmp_path: Path,
                                  make_wallet: MakeWallet) -> None:  # noqa: F811
    vendor_key = (await wnode.call("escrow.key"))["pubkey"]
    assert vendor_key != (await wnode.call("escrow.key"))["pubkey"]  # never reused
    parties = {name: await make_wallet(tmp_path / name, "pw") for name in ("buyer", "moderator")}
    buyer_key, mod_key = [(await parties[n].new_escrow_key())[0] for n in ("buyer", "moderator")]
    escrow = await wnode.call("escrow.create", buyer=buyer_key, vendor=vendor_key,
                              moderator=mod_key, timeout_hours=1080)
    assert escrow["timeout_blocks"] == 25920
    assert parse_witness_script(bytes.fromhex(escrow["witness_script"])).vendor.hex() == \
        vendor_key
    txid, vout = await regtest.afund(escrow["address"], 30_000_000)
    await regtest.amine(1)

    async def funded() -> Any:
        st = await wnode.call("escrow.status", address=escrow["address"])
        return st["utxos"] and st["utxos"][0]["confirmations"] >= 1
    await wait_for(funded, 30, what="escrow funding seen")

    payee = await regtest.arpc("getnewaddress", wallet="miner")
    outputs = [{"address": payee, "amount": 29_990_000}]
    built = await wnode.call("escrow.release_psbt", txid=txid, vout=vout, amount=30_000_000,
                             witness_script=escrow["witness_script"], outputs=outputs)
    assert built["suggested_fee"] > 0
    agreed = [Payment(bytes(NET.script_for(payee).data), 29_990_000)]
    by_buyer = await parties["buyer"].sign_release(built["psbt"], agreed, 10_000)
    with pytest.raises(RpcCallError) as err:  # the vendor refuses an altered output
        await wnode.call("escrow.sign", psbt=built["psbt"],
                         outputs=[{"address": payee, "amount": 29_000_000}])
    assert err.value.code == 1007
    by_vendor = (await wnode.call("escrow.sign", psbt=built["psbt"], outputs=outputs,
                                  max_fee=10_000))["psbt"]
    with pytest.raises(RpcCallError) as err:  # a flag that is not a boolean is not guessed
        await wnode.call("escrow.finalize", psbts=[by_buyer, by_vendor], broadcast=0)
    assert err.value.code == -32602 and "broadcast" in err.value.message
    done = await wnode.call("escrow.finalize", psbts=[by_buyer, by_vendor], broadcast=True)
    await regtest.amine(1)
    assert (await regtest.arpc("getrawtransaction", done["txid"], True))["confirmations"] == 1


async def test_secrets_never_in_logs_or_errors(wnode: NodeProc) -> None:
    words = (await wnode.call("wallet.mnemonic", passphrase=PASSPHRASE))["mnemonic"]
    assert len(words.split()) == 24
    with pytest.raises(RpcCallError) as err:
        await wnode.call("wallet.mnemonic", passphrase="guess")
    assert "guess" not in str(err.value) and words.split()[0] not in str(err.value.data or "")
    log = wnode.log_path.read_text()
    assert "wallet" in log  # the log is real and covers the wallet
    assert words not in log and " ".join(words.split()[:3]) not in log
    assert PASSPHRASE not in log
    seed = (wnode.data_dir / "node.key").read_bytes().hex()
    assert seed not in log
    wallet_file = (wnode.data_dir / "wallet.json").read_text()
    assert words.split()[0] + " " + words.split()[1] not in wallet_file


async def test_node_without_chain_says_so(tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "plain").start()
    try:
        info = await node.call("node.info")
        assert info["wallet"]["network"] is None and info["wallet"]["backend"] is False
        with pytest.raises(RpcCallError) as err:
            await node.call("wallet.address")
        assert err.value.code == 1005 and "--chain" in err.value.message
    finally:
        await node.stop()
