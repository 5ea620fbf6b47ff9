"""The wallet's place in the node: opening it, and the wallet.* and escrow.* RPC methods."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from embit.script import Script

from protocol.errors import TorvError
from wallet.chain import CoreRpcBackend, parse_chain_rpc
from wallet.errors import (
    BadPassphrase,
    ChainError,
    NoChain,
    RefusedToSign,
    WalletError,
    WalletLocked,
)
from wallet.escrow import EscrowTerms, parse_witness_script
from wallet.networks import Network, get_network
from wallet.psbt_ops import EscrowUtxo, Payment, build_release, estimate_release_vsize
from wallet.wallet import Wallet, encode_psbt

from .node import Node
from .rpc_params import Params
from .rpc_server import (
    CHAIN_ERROR,
    NO_CHAIN,
    REFUSED,
    WALLET_ERROR,
    WALLET_LOCKED,
    Handler,
    RpcError,
    RpcServer,
    invalid_params,
)

log = logging.getLogger("torv.wallet")
PASSPHRASE_ENV = "TORV_WALLET_PASSPHRASE"


def map_wallet_error(exc: TorvError) -> RpcError | None:
    if isinstance(exc, WalletLocked):
        return RpcError(WALLET_LOCKED, str(exc))
    if isinstance(exc, NoChain):
        return RpcError(NO_CHAIN, str(exc))
    if isinstance(exc, RefusedToSign):
        return RpcError(REFUSED, str(exc))
    if isinstance(exc, WalletError):
        return RpcError(WALLET_ERROR, str(exc))
    if isinstance(exc, ChainError):
        return RpcError(CHAIN_ERROR, str(exc))
    return None


class WalletService:
    """Holds the (possibly absent, possibly locked) wallet for the node."""

    def __init__(self, data_dir: Path, network: Network | None,
                 backend: CoreRpcBackend | None) -> None:
        self.data_dir = data_dir
        self.network = network
        self.backend = backend
        self.wallet: Wallet | None = None
        if network is not None and Wallet.exists(data_dir):
            self.wallet = Wallet.open(data_dir, backend)
            if self.wallet.network != network:
                raise WalletError(f"the wallet in {data_dir} is for {self.wallet.network.name}, "
                                  f"not {network.name}")

    def require(self, unlocked: bool = False) -> Wallet:
        if self.network is None:
            raise NoChain("this node runs without a chain backend (start it with --chain); "
                          "wallet and trading are unavailable")
        if self.wallet is None:
            raise WalletError("no wallet yet: create one with wallet.create {passphrase}")
        if unlocked and self.wallet.keystore.locked:
            raise WalletLocked("the wallet is locked; unlock it with wallet.unlock")
        return self.wallet

    async def create(self, passphrase: str, mnemonic: str | None = None) -> Wallet:
        if self.network is None:
            raise NoChain("this node runs without a chain backend (start it with --chain)")
        self.wallet = Wallet.create(self.data_dir, self.network, passphrase, self.backend,
                                    mnemonic)
        if self.backend is not None:
            await self.wallet.sync_watch()
        return self.wallet

    def info(self) -> dict[str, Any]:
        return {"network": self.network.name if self.network else None,
                "backend": self.backend is not None,
                "exists": self.wallet is not None,
                "locked": self.wallet.keystore.locked if self.wallet else True}


def _payments(p: Params, network: Network) -> list[Payment]:
    raw = p.any("outputs")
    if not isinstance(raw, list) or not raw:
        raise invalid_params("outputs", "must be a non-empty list of {address, amount}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"address", "amount"}:
            raise invalid_params(f"outputs[{i}]", "must be {address, amount}")
        amount = item["amount"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise invalid_params(f"outputs[{i}].amount", "must be a positive integer")
        try:
            script = network.script_for(str(item["address"]))
        except WalletError as exc:
            raise invalid_params(f"outputs[{i}].address", str(exc)) from None
        out.append(Payment(bytes(script.data), amount))
    return out


def _hex(p: Params, name: str, length: int | None = None) -> bytes:
    value = p.text(name, True, 20_000)
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise invalid_params(name, "must be hex") from None
    if length is not None and len(data) != length:
        raise invalid_params(name, f"must be {length} bytes")
    return data


def wallet_methods(svc: WalletService) -> dict[str, Handler]:
    async def info(params: dict[str, Any]) -> Any:
        Params(params, set())
        out = svc.info()
        out["balance"] = None
        if svc.wallet is not None and svc.backend is not None:
            out["balance"] = await svc.wallet.balance()
        return out

    async def create(params: dict[str, Any]) -> Any:
        p = Params(params, {"passphrase"})
        wallet = await svc.create(p.text("passphrase", True, 1000))
        return {"mnemonic": wallet.keystore.mnemonic(p.raw["passphrase"]),
                "network": wallet.network.name}

    async def unlock(params: dict[str, Any]) -> Any:
        p = Params(params, {"passphrase"})
        svc.require().keystore.unlock(p.text("passphrase", True, 1000))
        return {"locked": False}

    async def lock(params: dict[str, Any]) -> Any:
        Params(params, set())
        svc.require().keystore.lock()
        return {"locked": True}

    async def mnemonic(params: dict[str, Any]) -> Any:
        p = Params(params, {"passphrase"})
        return {"mnemonic": svc.require().keystore.mnemonic(p.text("passphrase", True, 1000))}

    async def address(params: dict[str, Any]) -> Any:
        Params(params, set())
        return {"address": await svc.require().new_address()}

    async def send(params: dict[str, Any]) -> Any:
        p = Params(params, {"address", "amount"})
        wallet = svc.require(unlocked=True)
        addr, amount = p.text("address", True, 200), p.integer("amount", True, 1)
        try:
            wallet.network.script_for(addr)
        except WalletError as exc:
            raise invalid_params("address", str(exc)) from None
        return {"txid": await wallet.send(addr, amount)}

    async def transactions(params: dict[str, Any]) -> Any:
        p = Params(params, {"count"})
        return await svc.require().transactions(p.integer("count", False, 1, 1000) or 100)

    async def transaction(params: dict[str, Any]) -> Any:
        p = Params(params, {"txid"})
        txid = p.text("txid", True, 64)
        if len(txid) != 64 or any(c not in "0123456789abcdef" for c in txid):
            raise invalid_params("txid", "must be 64 lower-case hex characters")
        return await svc.require().chain().tx_status(txid)

    async def escrow_key(params: dict[str, Any]) -> Any:
        Params(params, set())
        pub, index = svc.require(unlocked=True).new_escrow_key()
        return {"pubkey": pub, "index": index}

    async def escrow_create(params: dict[str, Any]) -> Any:
        p = Params(params, {"buyer", "vendor", "moderator", "timeout_blocks", "timeout_hours"})
        wallet = svc.require()
        if p.has("timeout_blocks"):
            blocks = p.integer("timeout_blocks", True, 1, 0xFFFF)
        elif p.has("timeout_hours"):
            blocks = wallet.network.timeout_blocks(p.integer("timeout_hours", True, 1))
        else:
            raise invalid_params("timeout_blocks", "is required (or give timeout_hours)")
        try:
            terms = EscrowTerms(_hex(p, "buyer", 33), _hex(p, "vendor", 33),
                                _hex(p, "moderator", 33), blocks)
        except WalletError as exc:
            raise invalid_params("keys", str(exc)) from None
        return await wallet.create_escrow(terms)

    async def escrow_status(params: dict[str, Any]) -> Any:
        p = Params(params, {"address"})
        wallet = svc.require()
        addr = p.text("address", True, 200)
        utxos = await wallet.escrow_utxos(addr)
        return {"address": addr, "tip": await wallet.chain().tip_height(),
                "utxos": [{"txid": u.txid, "vout": u.vout, "amount": u.amount,
                           "confirmations": u.confirmations} for u in utxos]}

    async def escrow_release_psbt(params: dict[str, Any]) -> Any:
        p = Params(params, {"txid", "vout", "amount", "witness_script", "outputs", "timeout"})
        wallet = svc.require()
        ws_bytes = _hex(p, "witness_script")
        try:
            parsed = parse_witness_script(ws_bytes)
        except WalletError as exc:
            raise invalid_params("witness_script", str(exc)) from None
        timeout = p.boolean("timeout", False)
        utxo = EscrowUtxo(p.text("txid", True, 64), p.integer("vout", True),
                          p.integer("amount", True, 1), Script(ws_bytes))
        psbt = build_release(utxo, _payments(p, wallet.network),
                             sequence=parsed.timeout_blocks if timeout else None)
        return {"psbt": encode_psbt(psbt),
                "suggested_fee": (await wallet.chain().fee_rate())
                * estimate_release_vsize(len(p.raw["outputs"]), timeout)}

    async def escrow_sign(params: dict[str, Any]) -> Any:
        p = Params(params, {"psbt", "outputs", "max_fee"})
        wallet = svc.require(unlocked=True)
        signed = wallet.sign_release(p.text("psbt", True, 200_000), _payments(p, wallet.network),
                                     p.integer("max_fee", False, 0))
        return {"psbt": signed}

    async def escrow_finalize(params: dict[str, Any]) -> Any:
        p = Params(params, {"psbts", "timeout", "broadcast"})
        psbts = p.any("psbts")
        if not isinstance(psbts, list) or not psbts or not all(isinstance(x, str) for x in psbts):
            raise invalid_params("psbts", "must be a non-empty list of base64 PSBTs")
        return await svc.require().finalize_release(
            psbts, p.boolean("timeout", False), p.boolean("broadcast", True))

    return {
        "wallet.info": info, "wallet.create": create, "wallet.unlock": unlock,
        "wallet.lock": lock, "wallet.mnemonic": mnemonic, "wallet.address": address,
        "wallet.send": send, "wallet.transactions": transactions,
        "wallet.transaction": transaction,
        "escrow.key": escrow_key, "escrow.create": escrow_create,
        "escrow.status": escrow_status, "escrow.release_psbt": escrow_release_psbt,
        "escrow.sign": escrow_sign, "escrow.finalize": escrow_finalize,
    }


def wallet_extension(data_dir: Path, chain: str | None, chain_rpc: str | None,
                     passphrase: str | None = None) -> Any:
    """A runner extension: opens the wallet and registers wallet.* / escrow.* methods."""

    async def ext(node: Node, server: RpcServer) -> Any:
        network = get_network(chain) if chain else None
        backend = None
        if network is not None and chain_rpc:
            url, user, password = parse_chain_rpc(chain_rpc, network)
            backend = CoreRpcBackend(url, user, password, f"torv-{node.me[-12:]}")
            await backend.ensure_wallet()
        svc = WalletService(data_dir, network, backend)
        if network is not None and passphrase:
            if svc.wallet is None:
                await svc.create(passphrase)
                log.info("created a new %s wallet (back up its words: wallet.mnemonic)",
                         network.name)
            else:
                try:
                    svc.wallet.keystore.unlock(passphrase)
                except BadPassphrase:
                    log.warning("wrong wallet passphrase given at start; the wallet stays locked")
        if svc.wallet is not None and backend is not None:
            await svc.wallet.sync_watch()
        if network is None:
            log.info("no --chain given: running without a wallet backend")
        node.extra_info["wallet"] = svc.info
        server.methods.update(wallet_methods(svc))
        previous = server.map_error
        server.map_error = lambda exc: map_wallet_error(exc) or previous(exc)

        async def cleanup() -> None:
            if backend is not None:
                await backend.close()

        return cleanup

    return ext
