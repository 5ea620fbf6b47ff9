"""The light chain backend against real Electrum servers (ElectrumX's e-x over the regtest
chain): what it sees and proves, servers that lie, no server at all, failover and reconnects.
(The wallet and trading suites also run whole on this backend: see their `BACKENDS` params.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.app.electrumx import ElectrumX
from node.app.regtest import Regtest, free_port
from protocol.networks import get_network
from wallet.chain import Utxo
from wallet.electrum import ElectrumBackend, parse_server
from wallet.errors import ServerLied, WalletError
from wallet.merkle import check_header, merkle_root, verify_inclusion

from .cluster import NodeProc, wait_for
from .electrum_liar import LyingElectrum, has_work

pytestmark = pytest.mark.asyncio(loop_scope="module")
NET = get_network("litecoin-regtest")
PASSPHRASE = "light as a feather"
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(loop_scope="module")
async def honest(electrum: ElectrumX) -> AsyncIterator[ElectrumBackend]:
    backend = ElectrumBackend([electrum.url], NET)
    await backend.start()
    yield backend
    await backend.close()


async def paid(regtest: Regtest, sats: int) -> tuple[str, str]:
    """A fresh address of the miner's wallet and the txid of a payment to it (unmined)."""
    address = str(await regtest.arpc("getnewaddress", wallet="miner"))
    txid, _ = await regtest.afund(address, sats)
    return address, txid


async def utxo(backend: ElectrumBackend, address: str, txid: str) -> Utxo | None:
    return next((u for u in await backend.unspent([address]) if u.txid == txid), None)


async def test_sees_a_payment_then_proves_its_confirmation(
        regtest: Regtest, honest: ElectrumBackend) -> None:
    address, txid = await paid(regtest, 1_234_567)
    await honest.watch([{"address": address}], rescan=False)

    async def in_mempool() -> Utxo | None:
        return await utxo(honest, address, txid)
    seen = await wait_for(in_mempool, 30, what="the unconfirmed payment")
    assert seen.amount == 1_234_567 and seen.confirmations == 0
    await regtest.amine(1)

    async def confirmed() -> bool:
        u = await utxo(honest, address, txid)
        return u is not None and u.confirmations == 1
    await wait_for(confirmed, 30, what="one merkle-proved confirmation")
    assert (await honest.tx_status(txid))["confirmations"] == 1
    assert honest.lies == 0
    # the proof the backend checked, checked again here from the server's own answer
    height = await honest.tip_height()
    proof = await honest.call("blockchain.transaction.get_merkle", txid, height)
    header = await honest.call("blockchain.block.header", height)
    verify_inclusion(txid, proof["merkle"], proof["pos"], header, NET.name)
    with pytest.raises(ServerLied):  # any other position, or another transaction, fails
        verify_inclusion("00" * 32, proof["merkle"], proof["pos"], header, NET.name)


async def test_a_reorg_that_drops_the_block_unconfirms_the_payment(
        regtest: Regtest, honest: ElectrumBackend) -> None:
    address, txid = await paid(regtest, 2_222_222)
    await honest.watch([{"address": address}], rescan=False)
    [block] = await regtest.amine(1)

    async def confirmations(n: int) -> bool:
        u = await utxo(honest, address, txid)
        return u is not None and u.confirmations == n
    await wait_for(lambda: confirmations(1), 30, what="the payment confirmed")
    # a longer branch without that block (the server follows only a longer one): the payment
    # goes back to the mempool, and the backend must stop counting it as confirmed
    await regtest.arpc("invalidateblock", block)
    for _ in range(2):
        await regtest.arpc("generateblock", regtest.miner_address, [])
    await wait_for(lambda: confirmations(0), 30, what="the payment unconfirmed after the reorg")
    assert (await honest.tx_status(txid))["confirmations"] == 0
    await regtest.amine(1)
    await wait_for(lambda: confirmations(1), 30, what="the payment confirmed again")
    assert (await honest.tx_status(txid))["confirmations"] == 1
    assert honest.lies == 0


@pytest.mark.parametrize("mode", ["merkle", "header", "easy"])
async def test_a_lying_server_can_hide_but_never_forge_a_confirmation(
        regtest: Regtest, electrum: ElectrumX, honest: ElectrumBackend, mode: str) -> None:
    liar = await LyingElectrum(electrum.port, mode).start()
    fooled = ElectrumBackend([liar.url], NET)
    try:
        await fooled.start()
        address, txid = await paid(regtest, 700_000)
        await honest.watch([{"address": address}], rescan=False)
        await fooled.watch([{"address": address}], rescan=False)
        await regtest.amine(1)

        async def honest_sees() -> bool:
            u = await utxo(honest, address, txid)
            return u is not None and u.confirmations == 1
        await wait_for(honest_sees, 30, what="the honest view of the confirmation")

        async def lie_caught() -> bool:
            return fooled.lies >= 1 and await utxo(fooled, address, txid) is not None
        await wait_for(lie_caught, 30, what="the forged proof to be caught")
        assert liar.tampered >= 1
        seen = await utxo(fooled, address, txid)
        assert seen is not None and seen.confirmations == 0  # shown, never trusted as mined
        assert (await fooled.tx_status(txid))["confirmations"] == 0
    finally:
        await fooled.close()
        await liar.close()


async def test_headers_easier_than_the_chain_or_without_work_are_refused(
        regtest: Regtest) -> None:
    # a real header of the regtest chain, with its real scrypt proof of work
    tip = await regtest.arpc("getbestblockhash")
    genesis = str(await regtest.arpc("getblockheader", tip, False))
    check_header(genesis, "litecoin-regtest")
    with pytest.raises(ServerLied, match="easier"):
        check_header(genesis, "litecoin")  # mainnet demands far more work
    raw = bytearray(bytes.fromhex(genesis))
    for flip in range(1, 64):  # another nonce, one whose hash misses the target
        raw[76] ^= flip
        if not has_work(bytes(raw)):
            break
    with pytest.raises(ServerLied, match="proof of work"):
        check_header(raw.hex(), "litecoin-regtest")
    with pytest.raises(ServerLied, match="malformed"):
        merkle_root("00" * 32, ["zz" * 32], 0)
    with pytest.raises(ServerLied, match="position"):
        merkle_root("00" * 32, ["11" * 32], 2)


async def test_server_urls_are_checked() -> None:
    assert parse_server("tcp://127.0.0.1:50001") == ("127.0.0.1", 50001, False)
    assert parse_server("ssl://electrum.example.org:50002") == ("electrum.example.org", 50002,
                                                                True)
    for bad in ("http://h:1", "tcp://h", "tcp://:5", "tcp://h:99999", "tcp://[::1", "h:1"):
        with pytest.raises(WalletError, match="tcp://host:port or ssl://host:port"):
            parse_server(bad)


async def test_no_server_answering_is_a_clear_error_and_exit_1(tmp_path: Path) -> None:
    dead = [f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"]
    cmd = [sys.executable, "-m", "node.app.cli", "node", "--data-dir", str(tmp_path),
           "--rpc-port", "0", "--listen", "/ip4/127.0.0.1/tcp/0",
           "--chain", "litecoin-regtest", "--electrum", dead[0], "--electrum", dead[1]]
    out = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True,
                                  cwd=ROOT, timeout=60)
    assert out.returncode == 1
    assert "no Electrum server answers" in out.stderr
    assert dead[0] in out.stderr and dead[1] in out.stderr
    assert not (tmp_path / "rpc.cookie").exists()
    both = await asyncio.to_thread(subprocess.run, [*cmd, "--chain-rpc", "http://u:p@h:1"],
                                   capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert both.returncode == 2 and "not both" in both.stderr


def light_node(base: Path, servers: list[str]) -> NodeProc:
    args = ["--chain", "litecoin-regtest", "--chain-poll", "0.3"]
    for url in servers:
        args += ["--electrum", url]
    return NodeProc(base / "light", extra_args=args, env={"TORV_WALLET_PASSPHRASE": PASSPHRASE})


async def confirmed_balance(node: NodeProc) -> int:
    return int((await node.call("wallet.info"))["balance"]["confirmed"])


async def test_fails_over_to_the_next_server_and_reconnects_after_a_restart(
        regtest: Regtest, electrum: ElectrumX, tmp_path: Path) -> None:
    own = await asyncio.to_thread(ElectrumX(regtest).start)
    dead = f"tcp://127.0.0.1:{free_port()}"
    node = light_node(tmp_path, [dead, own.url, electrum.url])
    try:
        await node.start()  # the first server never answers: the second is used
        assert (await node.call("node.info"))["wallet"]["electrum_server"] == own.url
        first, second, third = [(await node.call("wallet.address"))["address"]
                                for _ in range(3)]

        async def has(sats: int) -> bool:
            return await confirmed_balance(node) == sats
        await regtest.afund(first, 1_000_000)
        await regtest.amine(1)
        await wait_for(lambda: has(1_000_000), 30, what="the first payment")

        # its server restarts: the node reconnects (to the next that answers) and catches up
        # on what happened meanwhile
        await asyncio.to_thread(own.stop, True)
        await regtest.afund(second, 2_000_000)
        await regtest.amine(1)
        await wait_for(lambda: has(3_000_000), 30, what="the payment made while it was down")
        assert (await node.call("node.info"))["wallet"]["electrum_server"] == electrum.url
        await asyncio.to_thread(own.start)
        await regtest.afund(third, 4_000_000)
        await regtest.amine(1)
        await wait_for(lambda: has(7_000_000), 30, what="a payment after failover")
        info = await node.call("wallet.info")
        assert info["backend_kind"] == "electrum" and info["electrum_rejected_proofs"] == 0

        # a restart of the node itself: the server keeps no state for it, the node tells it
        # every address again, and the balance is there at once
        await node.stop()
        await node.start()
        assert await confirmed_balance(node) == 7_000_000
    finally:
        await node.stop()
        await asyncio.to_thread(own.stop)


async def test_a_lone_server_restarting_is_waited_for_with_backoff(
        regtest: Regtest, tmp_path: Path) -> None:
    own = await asyncio.to_thread(ElectrumX(regtest).start)
    node = light_node(tmp_path, [own.url])
    try:
        await node.start()
        address = (await node.call("wallet.address"))["address"]
        await asyncio.to_thread(own.stop, True)
        await regtest.afund(address, 500_000)
        await regtest.amine(1)
        await asyncio.to_thread(own.start)

        async def caught_up() -> bool:
            return await confirmed_balance(node) == 500_000
        await wait_for(caught_up, 45, what="the node to reconnect and catch up")
        assert (await node.call("node.info"))["wallet"]["electrum_server"] == own.url
    finally:
        await node.stop()
        await asyncio.to_thread(own.stop)


@pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")
async def test_the_tui_says_which_server_it_trusts(electrum: ElectrumX, tmp_path: Path) -> None:
    from textual.widgets import Static

    from tui.app import TorvApp
    from tui.client import RpcClient

    node = light_node(tmp_path, [electrum.url])
    await node.start()
    try:
        app = TorvApp(RpcClient.from_data_dir(node.data_dir))
        async with app.run_test(size=(140, 50)) as pilot:
            app.query_one("TabbedContent").active = "wallet"

            async def shown() -> bool:
                await pilot.pause()
                return f"via Electrum server {electrum.url}" in str(
                    app.query_one("#balance", Static).render())
            await wait_for(shown, 30, what="the wallet view naming the server")
    finally:
        await node.stop()
