"""The wallet.* and escrow.* API methods: each calls one method of the wallet holder (or of the
wallet it holds) and shapes the answer."""

from __future__ import annotations

from typing import Any

from node.core.api import (
    CHAIN_ERROR,
    NO_CHAIN,
    REFUSED,
    TXID,
    WALLET_ERROR,
    WALLET_LOCKED,
    Args,
    Method,
    Param,
    array,
    boolean,
    integer,
    nullable,
    obj,
    string,
)
from node.wallet.service import WalletHolder

WALLET = (WALLET_ERROR, WALLET_LOCKED, NO_CHAIN, CHAIN_ERROR)
PASSPHRASE = string(1000)
ADDRESS = string(200, 1, description="an address of the node's network")
AMOUNT = integer(1, description="base units (satoshis, litoshis)")
PUBKEY = string(66, 66, "[0-9a-fA-F]{66}", "must be a compressed public key (66 hex characters)")
OUTPUTS = array(obj({"address": ADDRESS, "amount": AMOUNT}, ("address", "amount")), 100, 1)
PSBT = string(200_000, 1, description="base64")
UTXO = obj({"txid": TXID, "vout": integer(), "amount": integer(), "confirmations": integer()},
           ("txid", "vout", "amount", "confirmations"))
BALANCE = obj({"confirmed": integer(), "unconfirmed": integer()}, ("confirmed", "unconfirmed"),
              additional=True)
WALLET_INFO = obj({
    "network": nullable(string()), "backend": boolean(), "backend_kind": nullable(string()),
    "electrum_server": nullable(string()), "exists": boolean(), "locked": boolean(),
    "balance": nullable(BALANCE), "tip": nullable(integer())},
    ("network", "backend", "exists", "locked", "balance", "tip"),
    additional=True)


def methods(holder: WalletHolder) -> list[Method]:
    async def info(p: Args) -> Any:
        return await holder.status()

    async def create(p: Args) -> Any:
        wallet = await holder.create(p["passphrase"])
        return {"mnemonic": await wallet.mnemonic(p["passphrase"]),
                "network": wallet.network.name}

    async def unlock(p: Args) -> Any:
        await holder.require().unlock(p["passphrase"])
        return {"locked": False}

    async def lock(p: Args) -> Any:
        holder.require().lock()
        return {"locked": True}

    async def mnemonic(p: Args) -> Any:
        return {"mnemonic": await holder.require().mnemonic(p["passphrase"])}

    async def address(p: Args) -> Any:
        return {"address": await holder.require().new_address()}

    async def send(p: Args) -> Any:
        return await holder.send(p["address"], p["amount"], p["allow_high_fee"])

    async def transactions(p: Args) -> Any:
        return await holder.require().transactions(p["count"])

    async def transaction(p: Args) -> Any:
        return await holder.transaction(p["txid"])

    async def history(p: Args) -> Any:
        return await holder.require().history(p["count"])

    async def escrow_key(p: Args) -> Any:
        pub, index = await holder.require(unlocked=True).new_escrow_key("escrow.key")
        return {"pubkey": pub, "index": index}

    async def escrow_create(p: Args) -> Any:
        return await holder.create_escrow(p["buyer"], p["vendor"], p["moderator"],
                                          p["timeout_blocks"], p["timeout_hours"])

    async def escrow_status(p: Args) -> Any:
        return await holder.escrow_status(p["address"])

    async def escrow_release_psbt(p: Args) -> Any:
        return await holder.release_psbt(p["txid"], p["vout"], p["amount"],
                                         p["witness_script"], p["outputs"], p["timeout"])

    async def escrow_sign(p: Args) -> Any:
        return await holder.sign_release(p["psbt"], p["outputs"], p["max_fee"])

    async def escrow_finalize(p: Args) -> Any:
        return await holder.require().finalize_release(p["psbts"], p["timeout"],
                                                       p["broadcast"])

    passphrase = (Param("passphrase", PASSPHRASE, True),)
    mnemonic_result = obj({"mnemonic": string()}, ("mnemonic",))
    locked = obj({"locked": boolean()}, ("locked",))
    txid_result = obj({"txid": TXID}, ("txid",))
    return [
        Method("wallet.info", "The wallet: its network, backend, whether it exists and is "
               "locked, and its balance.", (), WALLET_INFO, info, (CHAIN_ERROR,)),
        Method("wallet.create", "Create the wallet (24 words, encrypted with the passphrase); "
               "answers the words once.", passphrase,
               obj({"mnemonic": string(), "network": string()}, ("mnemonic", "network")),
               create, WALLET),
        Method("wallet.unlock", "Unlock the wallet for signing.", passphrase, locked, unlock,
               WALLET),
        Method("wallet.lock", "Lock the wallet (its keys leave memory).", (), locked, lock,
               WALLET),
        Method("wallet.mnemonic", "The wallet's 24 words (needs the passphrase).", passphrase,
               mnemonic_result, mnemonic, WALLET),
        Method("wallet.address", "A new receiving address.", (),
               obj({"address": string()}, ("address",)), address, WALLET),
        Method("wallet.send", "Pay an address; a fee over the bound is refused unless "
               "allow_high_fee.", (Param("address", ADDRESS, True), Param("amount", AMOUNT, True),
                                   Param("allow_high_fee", boolean(), default=False)),
               txid_result, send, (*WALLET, REFUSED)),
        Method("wallet.transactions", "The wallet's transactions, newest first.",
               (Param("count", integer(1, 1000), default=100),),
               array(obj({"txid": TXID}, ("txid",), additional=True), 1000), transactions,
               WALLET),
        Method("wallet.history", "One line per transaction touching the wallet's own funds, "
               "newest first: its net effect on them (amount, base units; negative when the "
               "wallet paid) and the fee when the wallet paid it.",
               (Param("count", integer(1, 1000), default=100),),
               array(obj({"txid": TXID, "amount": integer(-(2**63)), "fee": nullable(integer()),
                          "confirmations": integer(), "time": integer()},
                         ("txid", "amount", "fee", "confirmations", "time")), 1000), history,
               WALLET),
        Method("wallet.transaction", "A transaction's status on the chain.",
               (Param("txid", TXID, True),), obj({"txid": TXID}, additional=True),
               transaction, WALLET),
        Method("escrow.key", "A fresh escrow public key of this wallet (never reused).", (),
               obj({"pubkey": PUBKEY, "index": integer()}, ("pubkey", "index")), escrow_key,
               WALLET),
        Method("escrow.create", "A 2-of-3 escrow address of three public keys, with a timeout "
               "after which the vendor alone may claim it; watched from now on.",
               (Param("buyer", PUBKEY, True), Param("vendor", PUBKEY, True),
                Param("moderator", PUBKEY, True), Param("timeout_blocks", integer(1, 0xFFFF)),
                Param("timeout_hours", integer(1))),
               obj({"address": string(), "witness_script": string()},
                   ("address", "witness_script"), additional=True), escrow_create, WALLET),
        Method("escrow.status", "The unspent outputs of an escrow address and the chain tip.",
               (Param("address", ADDRESS, True),),
               obj({"address": string(), "tip": integer(), "utxos": array(UTXO, 10_000)},
                   ("address", "tip", "utxos")), escrow_status, WALLET),
        Method("escrow.release_psbt", "An unsigned PSBT releasing an escrow output to outputs "
               "(timeout: the vendor's path after the timeout), and the fee to leave for it.",
               (Param("txid", TXID, True), Param("vout", integer(0, 2**32 - 1), True),
                Param("amount", AMOUNT, True),
                Param("witness_script", string(20_000, 2, "(?:[0-9a-fA-F]{2})+",
                                               "must be hex"), True),
                Param("outputs", OUTPUTS, True), Param("timeout", boolean(), default=False)),
               obj({"psbt": PSBT, "suggested_fee": integer()}, ("psbt", "suggested_fee")),
               escrow_release_psbt, WALLET),
        Method("escrow.sign", "Sign an escrow release PSBT if it pays exactly outputs and its "
               "fee is within max_fee and the bound.",
               (Param("psbt", PSBT, True), Param("outputs", OUTPUTS, True),
                Param("max_fee", integer(0))),
               obj({"psbt": PSBT}, ("psbt",)), escrow_sign, (*WALLET, REFUSED)),
        Method("escrow.finalize", "Combine signed release PSBTs into a transaction and "
               "broadcast it (unless broadcast is false).",
               (Param("psbts", array(PSBT, 3, 1), True),
                Param("timeout", boolean(), default=False),
                Param("broadcast", boolean(), default=True)),
               obj({"txid": TXID, "hex": string()}, ("txid",), additional=True),
               escrow_finalize, (*WALLET, REFUSED)),
    ]
