"""The adversary kit: a dishonest buyer, vendor or moderator is one of the test's real trading
nodes turned hostile. The test stops the node and takes its keys (its ``node.key`` and its
wallet, unlocked with the test's passphrase), makes the messages an attacker would (signed, so
they pass every check but the one under test), and has a real process with that identity
deliver them over the wire (``tests/hostile_trader.py``)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from embit.ec import PrivateKey

from node.core.database import DB_NAME
from protocol import contract as c
from protocol.contract_messages import OrderMessage
from protocol.identity import Identity
from wallet.keystore import Keystore

from .cluster import NodeProc
from .trade_kit import PASSPHRASE

ROOT = Path(__file__).resolve().parent.parent


def identity_of(node: NodeProc) -> Identity:
    return Identity((node.data_dir / "node.key").read_bytes())


def _db(node: NodeProc) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{node.data_dir / DB_NAME}?mode=ro", uri=True)


def contract_of(node: NodeProc, order_id: str) -> c.Contract:
    """``node``'s copy of a contract, read from its database."""
    with _db(node) as conn:
        wires = [bytes(r[0]) for r in conn.execute(
            "SELECT wire FROM order_messages WHERE order_id = ? AND position IS NOT NULL "
            "ORDER BY position", (order_id,))]
    return c.rebuild(wires)


async def escrow_key(node: NodeProc, order_id: str) -> PrivateKey:
    """The private escrow key ``node``'s wallet took for an order."""
    with _db(node) as conn:
        (index,) = conn.execute("SELECT escrow_key_index FROM orders WHERE order_id = ?",
                                (order_id,)).fetchone()
    keystore = Keystore.load(node.data_dir / "wallet.json")
    await asyncio.to_thread(keystore.unlock, PASSPHRASE)
    return keystore.escrow_privkey(int(index))


def sign(node: NodeProc, contract: c.Contract, kind: str, data: dict[str, Any],
         time: int, prev: bytes | None = None) -> OrderMessage:
    """A message of ``kind`` signed by ``node``'s identity, appended to ``contract`` (no rule
    checked: that is the receiver's job)."""
    from protocol.signed import SignedObject

    body = {"kind": kind, "order": contract.order_id,
            "prev": contract.head.digest if prev is None else prev, "time": time, "data": data}
    so = SignedObject.create(identity_of(node), "order", 1, body)
    return OrderMessage(so, so.to_wire())


async def deliver_as(node: NodeProc, target: NodeProc,
                     copies: list[list[bytes]]) -> list[dict[str, Any]]:
    """A hostile process with ``node``'s identity delivers ``copies`` to ``target``; its
    answers, one per copy."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.hostile_trader", str(node.data_dir / "node.key"),
        target.addr, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
    payload = json.dumps([[w.hex() for w in copy] for copy in copies]).encode()
    out, _ = await asyncio.wait_for(proc.communicate(payload), 120)
    lines = out.decode().splitlines()
    assert lines and lines[-1] == "done", lines
    return [json.loads(x) for x in lines[:-1]]


def release(contract: c.Contract, kind: str, key: PrivateKey, fee: int | None = None,
            to: str | None = None) -> bytes:
    """A release of ``kind`` signed with ``key``: a PSBT (FULFILLMENT, REFUND) or, on the
    timeout path, the finished transaction (TIMEOUT_CLAIM). ``fee`` and ``to`` default to what
    the contract allows; an attacker passes others."""
    from protocol import contract_rules as r
    from protocol import settlement as st
    from wallet.psbt_ops import EscrowUtxo, Payment, build_release, finalize, sign_escrow

    network = st.network_of(contract)
    f = st.funding(contract)
    ws = st.witness_script(contract)
    timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
    path = kind == r.TIMEOUT_CLAIM
    if fee is None:
        fee = st.fee_bounds(contract, 1, path)[0]
    if to is None:
        to = contract.terms.refund_address if kind == r.REFUND else \
            contract.data(r.ORDER_CONFIRMATION)["payout_address"]
    pays = [Payment(bytes(network.script_for(to).data), f.amount - fee)]
    psbt = build_release(EscrowUtxo(f.txid, f.vout, f.amount, ws), pays,
                         timeout if path else None)
    try:  # our signer refuses what the protocol refuses: an attacker signs anyway
        sign_escrow(psbt, network, key, ws, pays)
    except Exception:  # noqa: BLE001 - RefusedToSign: sign by hand below
        from embit.transaction import SIGHASH

        digest = psbt.sighash_segwit(0, ws, f.amount, SIGHASH.ALL)
        psbt.inputs[0].partial_sigs[key.get_public_key()] = \
            bytes(key.sign(digest).serialize()) + bytes([SIGHASH.ALL])
    if path:
        return bytes(finalize(psbt, timeout_path=True).serialize())
    return bytes(psbt.serialize())


def stored_listing(node: NodeProc, vendor: str, listing_id: str) -> bytes:
    with _db(node) as conn:
        (wire,) = conn.execute("SELECT wire FROM listings WHERE vendor = ? AND id = ?",
                               (vendor, listing_id)).fetchone()
    return bytes(wire)


def stored_profile(node: NodeProc, peer_id: str) -> bytes:
    with _db(node) as conn:
        (wire,) = conn.execute("SELECT wire FROM stores WHERE vendor = ? AND kind = 'profile'",
                               (peer_id,)).fetchone()
    return bytes(wire)


def order(buyer: NodeProc, listing_wire: bytes, moderator: str, moderator_profile: bytes,
          time: int, **over: Any) -> OrderMessage:
    """An ORDER signed by ``buyer``'s identity, built by hand (nothing checked)."""
    import secrets

    from embit.script import p2wpkh

    from protocol.networks import get_network
    from protocol.signed import SignedObject

    key = PrivateKey(secrets.token_bytes(32)).get_public_key()
    data = {"listing": listing_wire, "quantity": 1, "shipping": "", "address": b"",
            "moderator": moderator, "moderator_profile": moderator_profile,
            "moderator_index": 3, "buyer_key": bytes(key.sec()),
            "refund_address": get_network("litecoin-regtest").address(p2wpkh(key)),
            "network": "litecoin-regtest", "nonce": secrets.token_bytes(16), **over}
    body = {"kind": "ORDER", "order": "", "prev": b"", "time": time, "data": data}
    so = SignedObject.create(identity_of(buyer), "order", 1, body)
    return OrderMessage(so, so.to_wire())
