"""The wallet.* and escrow.* JSON-RPC methods."""

from __future__ import annotations

from typing import Any

from embit.script import Script

from node.core.params import Params
from node.core.services import Handler, invalid_params
from node.wallet.service import WalletHolder
from protocol.errors import LocalProtocolError
from protocol.escrow import EscrowTerms, parse_witness_script
from protocol.fees import release_vsize
from protocol.networks import Network
from wallet.psbt_ops import EscrowUtxo, Payment, build_release
from wallet.wallet import encode_psbt


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
        except LocalProtocolError as exc:
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


def wallet_methods(svc: WalletHolder) -> dict[str, Handler]:
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
        return {"mnemonic": await wallet.mnemonic(p.raw["passphrase"]),
                "network": wallet.network.name}

    async def unlock(params: dict[str, Any]) -> Any:
        p = Params(params, {"passphrase"})
        await svc.require().unlock(p.text("passphrase", True, 1000))
        return {"locked": False}

    async def lock(params: dict[str, Any]) -> Any:
        Params(params, set())
        svc.require().lock()
        return {"locked": True}

    async def mnemonic(params: dict[str, Any]) -> Any:
        p = Params(params, {"passphrase"})
        return {"mnemonic": await svc.require().mnemonic(p.text("passphrase", True, 1000))}

    async def address(params: dict[str, Any]) -> Any:
        Params(params, set())
        return {"address": await svc.require().new_address()}

    async def send(params: dict[str, Any]) -> Any:
        p = Params(params, {"address", "amount", "allow_high_fee"})
        wallet = svc.require(unlocked=True)
        addr, amount = p.text("address", True, 200), p.integer("amount", True, 1)
        try:
            wallet.network.script_for(addr)
        except LocalProtocolError as exc:
            raise invalid_params("address", str(exc)) from None
        return {"txid": await wallet.send(addr, amount,
                                          p.boolean("allow_high_fee", False))}

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
        pub, index = await svc.require(unlocked=True).new_escrow_key("escrow.key")
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
        except LocalProtocolError as exc:
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
        except LocalProtocolError as exc:
            raise invalid_params("witness_script", str(exc)) from None
        timeout = p.boolean("timeout", False)
        utxo = EscrowUtxo(p.text("txid", True, 64), p.integer("vout", True),
                          p.integer("amount", True, 1), Script(ws_bytes))
        psbt = build_release(utxo, _payments(p, wallet.network),
                             sequence=parsed.timeout_blocks if timeout else None)
        return {"psbt": encode_psbt(psbt),
                "suggested_fee": (await wallet.fee_rate())
                * release_vsize(len(p.raw["outputs"]), timeout)}

    async def escrow_sign(params: dict[str, Any]) -> Any:
        p = Params(params, {"psbt", "outputs", "max_fee"})
        wallet = svc.require(unlocked=True)
        signed = await wallet.sign_release(p.text("psbt", True, 200_000),
                                           _payments(p, wallet.network),
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
