"""The wallet: own funds (BIP84) and escrow keys over a keystore and a chain backend."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embit.psbt import PSBT
from embit.script import Script, p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from .atomic import write_private_file
from .chain import ChainBackend, Utxo
from .errors import NoChain, RefusedToSign, WalletError
from .escrow import EscrowTerms, parse_witness_script
from .keystore import Keystore, check_mnemonic, new_mnemonic
from .networks import Network
from .psbt_ops import Payment, combine, finalize, sign_escrow, sign_p2wpkh

GAP = 40  # addresses watched beyond the last one handed out
DUST = 546
WALLET_FILE = "wallet.json"
STATE_FILE = "wallet-state.json"


@dataclass
class WalletState:
    """Non-secret bookkeeping, written atomically after every change."""

    next_receive: int = 0
    next_change: int = 0
    next_escrow: int = 0
    watched_to: int = -1
    rescan: bool = False  # restored from words: the first import rescans the whole chain
    escrow_keys: dict[str, int] = field(default_factory=dict)  # pubkey hex -> index
    escrows: dict[str, str] = field(default_factory=dict)  # address -> witness script hex


def decode_psbt(text: str) -> PSBT:
    try:
        return PSBT.parse(base64.b64decode(text, validate=True))
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad PSBTs
        raise WalletError("not a valid base64 PSBT") from None


def encode_psbt(psbt: PSBT) -> str:
    return base64.b64encode(psbt.serialize()).decode()


class Wallet:
    def __init__(self, data_dir: Path, keystore: Keystore, backend: ChainBackend | None) -> None:
        self.data_dir = data_dir
        self.keystore = keystore
        self.network: Network = keystore.network
        self.backend = backend
        self.state = self._load_state()

    def __repr__(self) -> str:
        return f"Wallet({self.keystore!r})"

    # ------------------------------------------------------------------ files
    @staticmethod
    def exists(data_dir: Path) -> bool:
        return (data_dir / WALLET_FILE).exists()

    @classmethod
    def open(cls, data_dir: Path, backend: ChainBackend | None) -> Wallet:
        return cls(data_dir, Keystore.load(data_dir / WALLET_FILE), backend)

    @classmethod
    def create(cls, data_dir: Path, network: Network, passphrase: str,
               backend: ChainBackend | None, mnemonic: str | None = None) -> Wallet:
        path = data_dir / WALLET_FILE
        if path.exists():
            raise WalletError("a wallet already exists in this data dir")
        words = check_mnemonic(mnemonic) if mnemonic else new_mnemonic(secrets.token_bytes(32))
        ks = Keystore.create(path, network, words, passphrase)
        (data_dir / STATE_FILE).unlink(missing_ok=True)
        wallet = cls(data_dir, ks, backend)
        wallet.state.rescan = mnemonic is not None
        wallet._save_state()
        return wallet

    def _load_state(self) -> WalletState:
        path = self.data_dir / STATE_FILE
        if not path.exists():
            return WalletState()
        try:
            return WalletState(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            raise WalletError("wallet-state.json is damaged") from None

    def _save_state(self) -> None:
        write_private_file(self.data_dir / STATE_FILE, json.dumps(asdict(self.state)).encode())

    def chain(self) -> ChainBackend:
        if self.backend is None:
            raise NoChain("this node runs without a chain backend (start it with --chain)")
        return self.backend

    # ------------------------------------------------------------------ watching
    async def sync_watch(self) -> None:
        """Make sure the chain backend watches every address we may have handed out."""
        want = max(self.state.next_receive, self.state.next_change) + GAP
        if want <= self.state.watched_to:
            return
        await self.chain().watch(
            [{"desc": self.keystore.descriptor(c), "range": [0, want]} for c in (0, 1)],
            rescan=self.state.rescan)
        self.state.rescan = False
        self.state.watched_to = want
        self._save_state()

    def own_addresses(self) -> dict[str, tuple[int, int]]:
        out = {}
        for change, upto in ((0, self.state.next_receive), (1, self.state.next_change)):
            for i in range(upto + GAP):
                out[self.network.address(p2wpkh(self.keystore.own_pubkey(change, i)))] = (
                    change, i)
        return out

    # ------------------------------------------------------------------ own funds
    async def new_address(self, change: int = 0) -> str:
        if change:
            index, self.state.next_change = self.state.next_change, self.state.next_change + 1
        else:
            index, self.state.next_receive = self.state.next_receive, self.state.next_receive + 1
        self._save_state()
        if self.backend is not None:
            await self.sync_watch()
        return self.network.address(p2wpkh(self.keystore.own_pubkey(change, index)))

    async def own_utxos(self) -> list[Utxo]:
        mine = self.own_addresses()
        return [u for u in await self.chain().unspent() if u.address in mine]

    async def balance(self) -> dict[str, int]:
        utxos = await self.own_utxos()
        return {"confirmed": sum(u.amount for u in utxos if u.confirmations > 0),
                "unconfirmed": sum(u.amount for u in utxos if u.confirmations == 0)}

    async def send(self, address: str, amount: int) -> str:
        if amount < DUST:
            raise WalletError(f"amount must be at least {DUST}")
        dest = self.network.script_for(address)
        rate = await self.chain().fee_rate()
        mine = self.own_addresses()
        utxos = sorted((u for u in await self.own_utxos() if u.confirmations > 0),
                       key=lambda u: -u.amount)
        chosen: list[Utxo] = []
        for utxo in utxos:
            chosen.append(utxo)
            fee = rate * (11 + 68 * len(chosen) + 31 * 2)
            if sum(u.amount for u in chosen) >= amount + fee:
                break
        else:
            raise WalletError("insufficient confirmed funds")
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
        return await self.chain().broadcast(tx.serialize().hex())

    async def transactions(self, count: int = 100) -> list[dict[str, Any]]:
        mine = self.own_addresses()
        return [t for t in await self.chain().transactions(count) if t["address"] in mine]

    # ------------------------------------------------------------------ escrow
    def new_escrow_key(self) -> tuple[str, int]:
        """A fresh escrow public key from the hardened escrow branch (never reused)."""
        index = self.state.next_escrow
        pub = self.keystore.escrow_privkey(index).get_public_key().sec().hex()
        self.state.next_escrow = index + 1
        self.state.escrow_keys[pub] = index
        self._save_state()
        return pub, index

    async def create_escrow(self, terms: EscrowTerms) -> dict[str, Any]:
        ws = terms.witness_script()
        address = self.network.address(terms.script_pubkey())
        self.state.escrows[address] = ws.data.hex()
        self._save_state()
        if self.backend is not None:
            await self.backend.watch([{"address": address}], rescan=False)
        return {"address": address, "witness_script": ws.data.hex(),
                "timeout_blocks": terms.timeout_blocks}

    async def escrow_utxos(self, address: str) -> list[Utxo]:
        return await self.chain().unspent([address])

    def sign_release(self, psbt_b64: str, agreed: list[Payment], max_fee: int | None) -> str:
        psbt = decode_psbt(psbt_b64)
        if not psbt.inputs or psbt.inputs[0].witness_script is None:
            raise RefusedToSign("the PSBT does not carry the escrow witness script")
        ws = psbt.inputs[0].witness_script
        parsed = parse_witness_script(ws.data)
        ours = [k for k in parsed.keys if k.hex() in self.state.escrow_keys]
        if not ours:
            raise RefusedToSign("none of this wallet's escrow keys is in the escrow")
        key = self.keystore.escrow_privkey(self.state.escrow_keys[ours[0].hex()])
        sign_escrow(psbt, key, Script(ws.data), agreed, max_fee)
        return encode_psbt(psbt)

    async def finalize_release(self, psbts: list[str], timeout_path: bool,
                               broadcast: bool) -> dict[str, Any]:
        tx = finalize(combine([decode_psbt(p) for p in psbts]), timeout_path)
        raw = tx.serialize().hex()
        result: dict[str, Any] = {"txid": tx.txid().hex(), "hex": raw}
        if broadcast:
            result["txid"] = await self.chain().broadcast(raw)
        return result
