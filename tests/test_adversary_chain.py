"""The money-safe issue's chain findings: an Electrum server that lies (a proxy in front of the
real ElectrumX, ``tests/electrum_liar.py``) can hide, never forge; no fee estimate drains a
wallet; a reorg to a branch without a payment takes the payment away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from embit.transaction import Transaction

from node.app.electrumx import ElectrumX
from node.app.regtest import Regtest
from protocol.fees import MAX_FEE_SHARE_BP
from protocol.networks import get_network
from wallet.electrum import ElectrumBackend
from wallet.merkle import scripthash

from .cluster import wait_for
from .electrum_liar import LyingElectrum
from .trade_kit import fund, reach, start_market, trader

pytestmark = pytest.mark.asyncio(loop_scope="module")
NET = get_network("litecoin-regtest")


@pytest_asyncio.fixture(loop_scope="module")
async def honest(electrum: ElectrumX) -> AsyncIterator[ElectrumBackend]:
    backend = ElectrumBackend([electrum.url], NET)
    await backend.start()
    yield backend
    await backend.close()


async def mined_elsewhere(regtest: Regtest) -> tuple[str, int]:
    """A real transaction in a real block (paying the miner): (txid, height)."""
    address = str(await regtest.arpc("getnewaddress", wallet="miner"))
    txid, _ = await regtest.afund(address, 10**8)
    [block] = await regtest.amine(1)
    height = int((await regtest.arpc("getblockheader", block))["height"])
    return txid, height


async def test_3_an_electrum_server_cannot_forge_funds(
        regtest: Regtest, electrum: ElectrumX) -> None:
    txid, height = await mined_elsewhere(regtest)
    liar = await LyingElectrum(electrum.port, "forge").start()
    fooled = ElectrumBackend([liar.url], NET)
    try:
        await fooled.start()
        victim = str(await regtest.arpc("getnewaddress", wallet="miner"))
        await fooled.watch([{"address": victim}], rescan=False)
        lies = fooled.lies
        await liar.forge(scripthash(bytes(NET.script_for(victim).data)), txid, height,
                         50 * 10**8)

        async def caught() -> bool:
            return fooled.lies > lies

        await wait_for(caught, 30, what="the forged output to be caught")
        assert liar.tampered >= 1
        assert await fooled.unspent([victim]) == []
        assert await fooled.output(txid, 0) is None or \
            (await fooled.output(txid, 0)).script != bytes(NET.script_for(victim).data)
    finally:
        await fooled.close()
        await liar.close()


async def test_3_a_vendor_on_a_lying_server_never_sees_a_forged_escrow_payment(
        regtest: Regtest, electrum: ElectrumX, tmp_path: Path) -> None:
    txid, height = await mined_elsewhere(regtest)
    liar = await LyingElectrum(electrum.port, "forge").start()
    market = await start_market(tmp_path, regtest)
    await market.vendor.stop()
    vendor = trader(tmp_path, "vendor", regtest, chain=["--electrum", liar.url])
    vendor.port = market.vendor.port
    market.vendor = await vendor.start()
    try:
        made = await market.listing()
        oid = (await market.order(made))["order_id"]
        await reach([market.vendor], oid, "PENDING")
        confirmed = await market.vendor.call("order.confirm", order_id=oid)
        escrow = confirmed["escrow_address"]
        await liar.forge(scripthash(bytes(NET.script_for(escrow).data)), txid, height,
                         50 * 10**8)

        async def caught() -> bool:
            info = await market.vendor.call("wallet.info")
            return bool(info["electrum_rejected_proofs"])

        await wait_for(caught, 30, what="the vendor's node to catch the forged output")
        await market.mine(3)  # blocks pass: the vendor's watcher looks again, and again
        got = await market.vendor.call("order.get", order_id=oid)
        assert got["state"] == "AWAITING_PAYMENT" and got["funding"] is None
        assert [m["kind"] for m in got["messages"]] == ["ORDER", "ORDER_CONFIRMATION"]
    finally:
        for node in market.nodes:
            await node.stop()
        await liar.close()


async def test_4_a_servers_fee_estimate_cannot_drain_the_wallet(
        regtest: Regtest, electrum: ElectrumX, tmp_path: Path) -> None:
    liar = await LyingElectrum(electrum.port, "fee").start()
    node = await trader(tmp_path, "payer", regtest, chain=["--electrum", liar.url]).start()
    try:
        await fund(node, regtest, 10**8)
        amount = 10**7  # 0.1 LTC
        to = str(await regtest.arpc("getnewaddress", wallet="miner"))
        sent = await node.call("wallet.send", address=to, amount=amount)
        raw = await regtest.arpc("getrawtransaction", sent["txid"])
        tx = Transaction.parse(bytes.fromhex(raw))
        spent = 0
        for vin in tx.vin:
            prev = await regtest.arpc("getrawtransaction", vin.txid.hex(), True)
            spent += round(prev["vout"][vin.vout]["value"] * 10**8)
        fee = spent - sum(int(o.value) for o in tx.vout)
        vsize = int((await regtest.arpc("decoderawtransaction", raw))["vsize"])
        assert liar.tampered >= 1
        assert fee <= NET.max_fee_rate * (vsize + 2)  # the network's rate ceiling
        assert fee <= amount * MAX_FEE_SHARE_BP // 10_000  # and 5% of the amount
    finally:
        await node.stop()
        await liar.close()


async def test_a_reorg_to_a_branch_without_the_payment_takes_it_away(
        regtest: Regtest, honest: ElectrumBackend) -> None:
    address = str(await regtest.arpc("getnewaddress", wallet="miner"))
    txid, _ = await regtest.afund(address, 3_330_000)
    await honest.watch([{"address": address}], rescan=False)
    [block] = await regtest.amine(1)

    async def confirmations(n: int) -> bool:
        found = [u for u in await honest.unspent([address]) if u.txid == txid]
        return bool(found) and found[0].confirmations == n

    await wait_for(lambda: confirmations(1), 30, what="the payment confirmed")
    # the branch that wins spends the payment's input elsewhere: the payment never was
    await regtest.arpc("invalidateblock", block)
    tx = await regtest.arpc("getrawtransaction", txid, True)
    spend = [{"txid": v["txid"], "vout": v["vout"]} for v in tx["vin"]]
    total = 0.0
    for v in tx["vin"]:
        prev = await regtest.arpc("getrawtransaction", v["txid"], True)
        total += float(prev["vout"][v["vout"]]["value"])
    elsewhere = str(await regtest.arpc("getnewaddress", wallet="miner"))
    double = await regtest.arpc("createrawtransaction", spend,
                                {elsewhere: round(total - 0.01, 8)})
    signed = await regtest.arpc("signrawtransactionwithwallet", double, wallet="miner")
    # mined straight into a block: the mempool (which holds the payment again) is bypassed
    await regtest.arpc("generateblock", regtest.miner_address, [signed["hex"]])
    await regtest.arpc("generateblock", regtest.miner_address, [])

    async def gone() -> bool:
        return not [u for u in await honest.unspent([address]) if u.txid == txid]

    await wait_for(gone, 30, what="the payment to vanish with its branch")
    assert honest.lies == 0
    assert honest.chain.tip == await regtest.arpc("getblockcount")


async def test_a_server_lying_about_its_tip_adds_no_confirmations(
        regtest: Regtest, electrum: ElectrumX) -> None:
    liar = await LyingElectrum(electrum.port, "tip").start()
    fooled = ElectrumBackend([liar.url], NET)
    try:
        await fooled.start()
        real = int(await regtest.arpc("getblockcount"))
        assert await fooled.tip_height() == real
        address = str(await regtest.arpc("getnewaddress", wallet="miner"))
        txid, _ = await regtest.afund(address, 5 * 10**6)
        await fooled.watch([{"address": address}], rescan=False)
        await regtest.amine(1)

        async def confirmed_once() -> bool:
            found = [u for u in await fooled.unspent([address]) if u.txid == txid]
            return bool(found) and found[0].confirmations == 1

        await wait_for(confirmed_once, 30, what="one confirmation, not 101")
        assert fooled.chain.tip == real + 1
    finally:
        await fooled.close()
        await liar.close()


async def test_with_two_servers_a_hidden_chain_with_more_work_is_followed(
        regtest: Regtest, electrum: ElectrumX) -> None:
    liar = await LyingElectrum(electrum.port, "stale").start()
    height = int(await regtest.arpc("getblockcount"))
    liar.freeze_at = height
    liar.frozen_header = str(await regtest.arpc("getblockheader",
                                                await regtest.arpc("getblockhash", height),
                                                False))
    backend = ElectrumBackend([liar.url, electrum.url], NET, cross_check_seconds=0.5)
    try:
        await backend.start()
        assert backend.server == liar.url and backend.chain.tip == height
        await regtest.amine(3)  # the liar hides these; the honest server shows them

        async def followed() -> bool:
            return backend.chain.tip == height + 3

        await wait_for(followed, 30, what="the chain with more work, from the other server")
    finally:
        await backend.close()
        await liar.close()
