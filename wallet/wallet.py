"""The wallet: own funds (BIP84) and escrow keys over a keystore, a store and a chain backend.

Blocking work (Argon2id, the BIP39 seed stretch) runs in threads; the bookkeeping lives in a
``WalletStore`` (the node's database), read fresh on every call so another service may take an
escrow key in its own transaction.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path
from typing import Any

from embit.psbt import PSBT
from embit.script import Script, p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from protocol.escrow import EscrowTerms, parse_witness_script
from protocol.fees import bounded_rate, check_fee, payment_vsize
from protocol.networks import Network

from .chain import ChainBackend, Utxo
from .errors import NoChain, RefusedToSign, WalletError
from .keystore import Keystore, check_mnemonic, new_mnemonic
from .psbt_ops import Payment, combine, finalize, sign_escrow, sign_p2wpkh
from .store import WalletStore

GAP = 40  # addresses watched beyond the last one handed out
DUST = 546
WALLET_FILE = "wallet.json"


def decode_psbt(text: str) -> PSBT:
    try:
        return PSBT.parse(base64.b64decode(text, validate=True))
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad PSBTs
        raise WalletError("not a valid base64 PSBT") from None


def encode_psbt(psbt: PSBT) -> str:
    return base64.b64encode(psbt.serialize()).decode()


class Wallet:
    def __init__(self, data_dir: Path, keystore: Keystore, backend: ChainBackend | None,
                 store: WalletStore) -> None:
        self.data_dir = data_dir
        self.keystore = keystore
        self.network: Network = keystore.network
        self.backend = backend
        self.store = store
        self._addresses: dict[tuple[int, int], str] = {}

    def __repr__(self) -> str:
        return f"Wallet({self.keystore!r})"

    # ------------------------------------------------------------------ files
    @staticmethod
    def exists(data_dir: Path) -> bool:
        return (data_dir / WALLET_FILE).exists()

    @classmethod
    def open(cls, data_dir: Path, backend: ChainBackend | None, store: WalletStore) -> Wallet:
        return cls(data_dir, Keystore.load(data_dir / WALLET_FILE), backend, store)

    @classmethod
    async def create(cls, data_dir: Path, network: Network, passphrase: str,
                     backend: ChainBackend | None, store: WalletStore,
                     mnemonic: str | None = None) -> Wallet:
        """A new wallet (or one restored from ``mnemonic``); unlocked on return."""
        path = data_dir / WALLET_FILE
        if path.exists():
            raise WalletError("a wallet already exists in this data dir")
        words = check_mnemonic(mnemonic) if mnemonic else new_mnemonic(secrets.token_bytes(32))
        ks = await asyncio.to_thread(Keystore.create, path, network, words, passphrase)
        await store.reset(rescan=mnemonic is not None)
        return cls(data_dir, ks, backend, store)

    async def unlock(self, passphrase: str) -> None:
        await asyncio.to_thread(self.keystore.unlock, passphrase)

    def lock(self) -> None:
        self.keystore.lock()

    async def mnemonic(self, passphrase: str) -> str:
        return await asyncio.to_thread(self.keystore.mnemonic, passphrase)

    def chain(self) -> ChainBackend:
        if self.backend is None:
            raise NoChain("this node runs without a chain backend (start it with --chain)")
        return self.backend

    # ------------------------------------------------------------------ watching
    async def sync_watch(self, fresh_backend: bool = False) -> None:
        """Make sure the chain backend watches every address we may have handed out.
        ``fresh_backend``: the backend remembers nothing between runs (an Electrum server's
        subscriptions), so tell it everything again."""
        counters = await self.store.counters()
        want = max(counters.next_receive, counters.next_change) + GAP
        if want <= counters.watched_to and not counters.rescan and not fresh_backend:
            return
        await self.chain().watch(
            [{"desc": self.keystore.descriptor(c), "range": [0, want]} for c in (0, 1)],
            rescan=counters.rescan)
        await self.store.set_watched(want)

    def address_at(self, change: int, index: int) -> str:
        key = (change, index)
        if key not in self._addresses:
            self._addresses[key] = self.network.address(
                p2wpkh(self.keystore.own_pubkey(change, index)))
        return self._addresses[key]

    async def own_addresses(self) -> dict[str, tuple[int, int]]:
        counters = await self.store.counters()
        out = {}
        for change, upto in ((0, counters.next_receive), (1, counters.next_change)):
            for i in range(upto + GAP):
                out[self.address_at(change, i)] = (change, i)
        return out

    # ------------------------------------------------------------------ own funds
    async def new_address(self, change: int = 0) -> str:
        index = await self.store.take_address_index(change)
        if self.backend is not None:
            await self.sync_watch()
        return self.address_at(change, index)

    async def own_utxos(self) -> list[Utxo]:
        mine = await self.own_addresses()
        return [u for u in await self.chain().unspent() if u.address in mine]

    async def balance(self) -> dict[str, int]:
        utxos = await self.own_utxos()
        return {"confirmed": sum(u.amount for u in utxos if u.confirmations > 0),
                "unconfirmed": sum(u.amount for u in utxos if u.confirmations == 0)}

    async def fee_rate(self) -> int:
        """The chain backend's fee-rate estimate (sat/vB), never above the network's ceiling
        (``protocol.fees``): a lying or broken server cannot make us overpay."""
        return bounded_rate(self.network, await self.chain().fee_rate())

    async def send(self, address: str, amount: int, allow_high_fee: bool = False) -> str:
        return (await self.pay(address, amount, allow_high_fee))[0]

    async def pay(self, address: str, amount: int,
                  allow_high_fee: bool = False) -> tuple[str, int]:
        """Send ``amount`` to ``address``; returns (txid, output index of the payment). The fee
        is bounded (``protocol.fees.check_fee``): FeeTooHigh names it otherwise."""
        if amount < DUST:
            raise WalletError(f"amount must be at least {DUST}")
        dest = self.network.script_for(address)
        rate = await self.fee_rate()
        mine = await self.own_addresses()
        utxos = sorted((u for u in await self.own_utxos() if u.confirmations > 0),
                       key=lambda u: -u.amount)
        chosen: list[Utxo] = []
        for utxo in utxos:
            chosen.append(utxo)
            fee = rate * payment_vsize(len(chosen), 2)
            if sum(u.amount for u in chosen) >= amount + fee:
                break
        else:
            raise WalletError("insufficient confirmed funds")
        check_fee(self.network, fee, amount, payment_vsize(len(chosen), 2), allow_high_fee)
        change = sum(u.amount for u in chosen) - amount - fee
        vout = [TransactionOutput(amount, dest)]
        if change >= DUST:
            change_addr = await self.new_address(change=1)
            vout.append(TransactionOutput(change, self.network.script_for(change_addr)))
        tx = Transaction(version=2, vin=[TransactionInput(bytes.fromhex(u.txid), u.vout,
                                                          sequence=0xFFFFFFFD) for u in chosen],
                         vout=vout)
        for i, utxo in enumerate(chosen):
            change_flag, index = mine[utxo.address]
            sign_p2wpkh(tx, i, self.keystore.own_privkey(change_flag, index), utxo.amount)
        return await self.chain().broadcast(tx.serialize().hex()), 0

    async def transactions(self, count: int = 100) -> list[dict[str, Any]]:
        mine = await self.own_addresses()
        return [t for t in await self.chain().transactions(count) if t["address"] in mine]

    async def history(self, count: int = 100) -> list[dict[str, Any]]:
        """One entry per transaction touching the wallet's own funds, newest first: ``amount``
        its net effect on them (what came to our addresses less what our addresses spent),
        ``fee`` what it paid when we paid it (None otherwise). Read from the transactions
        themselves, so an escrow the chain node also watches counts as nobody's money."""
        mine = await self.own_addresses()
        chain = self.chain()
        seen: dict[str, dict[str, Any]] = {}
        for t in await chain.transactions(count * 4):
            entry = seen.setdefault(t["txid"], {"txid": t["txid"], "time": t["time"],
                                                "confirmations": t["confirmations"]})
            entry["time"] = max(entry["time"], t["time"])
        prev_cache: dict[str, Transaction | None] = {}

        async def tx_of(txid: str) -> Transaction | None:
            if txid not in prev_cache:
                raw = await chain.raw_transaction(txid)
                prev_cache[txid] = Transaction.parse(raw) if raw is not None else None
            return prev_cache[txid]

        out = []
        for entry in seen.values():
            tx = await tx_of(entry["txid"])
            if tx is None:
                continue
            received = sum(o.value for o in tx.vout if self._address(o.script_pubkey) in mine)
            spent, inputs_known, inputs = 0, True, 0
            for vin in tx.vin:
                prev = await tx_of(vin.txid.hex())
                if prev is None or vin.vout >= len(prev.vout):
                    inputs_known = False
                    continue
                out_prev = prev.vout[vin.vout]
                inputs += out_prev.value
                if self._address(out_prev.script_pubkey) in mine:
                    spent += out_prev.value
            if not received and not spent:
                continue
            fee = inputs - sum(o.value for o in tx.vout) if spent and inputs_known else None
            out.append({**entry, "amount": received - spent, "fee": fee})
        out.sort(key=lambda e: (-e["time"], e["txid"]))
        return out[:count]

    def _address(self, script: Script) -> str | None:
        try:
            return self.network.address(script)
        except Exception:  # noqa: BLE001 - a non-standard output: nobody's address here
            return None

    # ------------------------------------------------------------------ escrow
    def escrow_pubkey(self, index: int) -> str:
        return str(self.keystore.escrow_privkey(index).get_public_key().sec().hex())

    async def new_escrow_key(self, purpose: str = "") -> tuple[str, int]:
        """A fresh escrow public key from the hardened escrow branch (never reused)."""
        self.keystore.escrow_privkey(0)  # raises WalletLocked before anything is taken
        return await self.store.take_escrow_key(self.escrow_pubkey, purpose)

    async def create_escrow(self, terms: EscrowTerms) -> dict[str, Any]:
        ws = terms.witness_script()
        address = self.network.address(terms.script_pubkey())
        await self.watch_escrow(address, ws.data.hex())
        return {"address": address, "witness_script": ws.data.hex(),
                "timeout_blocks": terms.timeout_blocks}

    async def watch_escrow(self, address: str, witness_script_hex: str) -> None:
        await self.store.add_escrow(address, witness_script_hex)
        if self.backend is not None:
            await self.backend.watch([{"address": address}], rescan=False)

    async def escrow_utxos(self, address: str) -> list[Utxo]:
        return await self.chain().unspent([address])

    async def sign_release(self, psbt_b64: str, agreed: list[Payment],
                           max_fee: int | None) -> str:
        psbt = decode_psbt(psbt_b64)
        if not psbt.inputs or psbt.inputs[0].witness_script is None:
            raise RefusedToSign("the PSBT does not carry the escrow witness script")
        ws = psbt.inputs[0].witness_script
        parsed = parse_witness_script(ws.data)
        for key in parsed.keys:
            index = await self.store.escrow_key_index(key.hex())
            if index is not None:
                sign_escrow(psbt, self.network, self.keystore.escrow_privkey(index),
                            Script(ws.data),
                            agreed, max_fee)
                return encode_psbt(psbt)
        raise RefusedToSign("none of this wallet's escrow keys is in the escrow")

    async def finalize_release(self, psbts: list[str], timeout_path: bool,
                               broadcast: bool) -> dict[str, Any]:
        tx = finalize(combine([decode_psbt(p) for p in psbts]), timeout_path)
        raw = tx.serialize().hex()
        result: dict[str, Any] = {"txid": tx.txid().hex(), "hex": raw}
        if broadcast:
            result["txid"] = await self.chain().broadcast(raw)
        return result
