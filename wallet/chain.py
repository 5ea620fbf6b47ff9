"""Chain backends. The node talks to the chain only through ``ChainBackend``.

``CoreRpcBackend`` speaks Bitcoin Core's JSON-RPC, served alike by bitcoind and litecoind. It
keeps a *watch-only legacy wallet* named ``torv-<fingerprint>`` inside the chain node, into
which we import our BIP84 descriptors (public keys only) and each escrow address; the chain
node then tracks UTXOs and confirmations for us. (Descriptor wallets would do as well, but the
Debian litecoind is built without SQLite, so legacy ``importmulti`` is the common ground.)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from protocol.networks import Network
from protocol.settlement import Output

from .errors import ChainError, WalletError
from .headers import genesis_hash

COIN = Decimal(100_000_000)
FALLBACK_FEE_RATE = 20  # sat/vB when the chain cannot estimate (e.g. regtest)
RPC_WALLET_NOT_FOUND = -18
RPC_WALLET_ALREADY_LOADED = -35


def to_sats(value: Any) -> int:
    return int(Decimal(str(value)) * COIN)


@dataclass(frozen=True)
class Utxo:
    txid: str
    vout: int
    amount: int
    address: str
    confirmations: int


class ChainBackend(Protocol):
    """What the node asks of a chain. ``output`` and ``tx_confirmations`` are this node's own
    view: a full node's, or a light server's claims checked against our headers."""

    async def close(self) -> None: ...
    async def tip_height(self) -> int: ...
    async def watch(self, items: list[dict[str, Any]], rescan: bool) -> None: ...
    async def unspent(self, addresses: list[str] | None = None) -> list[Utxo]: ...
    async def transactions(self, count: int) -> list[dict[str, Any]]: ...
    async def broadcast(self, raw_hex: str) -> str: ...
    async def test_accept(self, raw_hex: str) -> tuple[bool, str]: ...
    async def fee_rate(self, target_blocks: int = 6) -> int: ...
    async def tx_status(self, txid: str) -> dict[str, Any]: ...
    async def output(self, txid: str, vout: int) -> Output | None: ...
    async def raw_transaction(self, txid: str) -> bytes | None: ...
    async def tx_confirmations(self, txid: str) -> int | None: ...
    async def wait_change(self, timeout: float, consumer: str = "") -> None: ...


async def probe_core(spec: str, network: Network, timeout: float = 10.0) -> int:
    """Whether ``spec`` (``parse_chain_rpc``) reaches a full node of ``network``: it answers
    with our credentials and its block 0 is the network's genesis. Returns its height; a
    ChainError or WalletError says why not."""
    url, user, password = parse_chain_rpc(spec, network)
    backend = CoreRpcBackend(url, user, password, "torv-probe", timeout=timeout)
    try:
        if str(await backend.call("getblockhash", 0)) != genesis_hash(network.name):
            raise ChainError(f"{url} serves another chain than {network.name}")
        return int(await backend.call("getblockcount"))
    finally:
        await backend.close()


def parse_chain_rpc(spec: str, network: Network) -> tuple[str, str, str]:
    """``http://user:pass@host:port`` or a path to the chain node's ``.cookie`` file."""
    if spec.startswith(("http://", "https://")):
        parts = urlsplit(spec)
        if not parts.username:
            raise WalletError("--chain-rpc URL needs user:password@")
        netloc = f"{parts.hostname}:{parts.port or network.rpc_port}"
        url = urlunsplit((parts.scheme, netloc, "", "", ""))
        return url, unquote(parts.username), unquote(parts.password or "")
    try:
        user, _, password = Path(spec).read_text().strip().partition(":")
    except OSError as exc:
        raise WalletError(f"cannot read chain cookie file {spec}: {exc.strerror}") from None
    return f"http://127.0.0.1:{network.rpc_port}", user, password


class CoreRpcBackend:
    def __init__(self, url: str, user: str, password: str, wallet_name: str,
                 timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.wallet_name = wallet_name
        self._ids = itertools.count(1)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, *params: Any, wallet: bool = False) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        url = f"{self.url}/wallet/{self.wallet_name}" if wallet else self.url
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            async with self._session.post(url, data=json.dumps(body)) as resp:
                if resp.status == 401:
                    raise ChainError("the chain node refused our RPC credentials")
                text = await resp.text()
        except TimeoutError:
            raise ChainError(f"the chain node did not answer {method} within "
                             f"{self._timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise ChainError(f"cannot reach the chain node: {type(exc).__name__}") from None
        try:
            reply = json.loads(text, parse_float=Decimal)
        except ValueError:
            raise ChainError(f"chain node sent non-JSON (HTTP {resp.status})") from None
        if reply.get("error"):
            err = reply["error"]
            raise ChainError(f"{method}: {err.get('message')}", err.get("code"))
        return reply["result"]

    async def ensure_wallet(self) -> None:
        """Create or load our watch-only wallet in the chain node."""
        try:
            await self.call("loadwallet", self.wallet_name)
        except ChainError as exc:
            # a restarted node finds its watch-only wallet still loaded (Core 0.21 says so
            # with -4 and words rather than -35)
            if exc.code == RPC_WALLET_ALREADY_LOADED or "already loaded" in str(exc):
                return
            if exc.code != RPC_WALLET_NOT_FOUND:
                raise
            await self.call("createwallet", self.wallet_name, True, True)

    async def tip_height(self) -> int:
        return int(await self.call("getblockcount"))

    async def watch(self, items: list[dict[str, Any]], rescan: bool) -> None:
        """Import watch-only descriptors/addresses: items of {desc, range} or {address}."""
        requests = []
        for item in items:
            req: dict[str, Any] = {"watchonly": True, "timestamp": 0 if rescan else "now"}
            if "desc" in item:
                info = await self.call("getdescriptorinfo", item["desc"])
                req["desc"] = f"{item['desc']}#{info['checksum']}"
                req["range"] = item["range"]
            else:
                req["scriptPubKey"] = {"address": item["address"]}
            requests.append(req)
        results = await self.call("importmulti", requests, {"rescan": rescan}, wallet=True)
        for res in results:
            if not res.get("success"):
                raise ChainError(f"import failed: {res.get('error', {}).get('message')}")

    async def unspent(self, addresses: list[str] | None = None) -> list[Utxo]:
        args: list[Any] = [0, 9_999_999]
        if addresses is not None:
            args.append(addresses)
        rows = await self.call("listunspent", *args, wallet=True)
        return [Utxo(r["txid"], int(r["vout"]), to_sats(r["amount"]), r.get("address", ""),
                     int(r["confirmations"])) for r in rows]

    async def transactions(self, count: int) -> list[dict[str, Any]]:
        rows = await self.call("listtransactions", "*", count, 0, True, wallet=True)
        return [{"txid": r["txid"], "address": r.get("address"), "category": r["category"],
                 "amount": to_sats(r["amount"]), "fee": to_sats(r.get("fee", 0)),
                 "confirmations": int(r["confirmations"]), "time": int(r.get("time", 0))}
                for r in rows]

    async def broadcast(self, raw_hex: str) -> str:
        return str(await self.call("sendrawtransaction", raw_hex))

    async def test_accept(self, raw_hex: str) -> tuple[bool, str]:
        res = (await self.call("testmempoolaccept", [raw_hex]))[0]
        return bool(res["allowed"]), str(res.get("reject-reason", ""))

    async def fee_rate(self, target_blocks: int = 6) -> int:
        res = await self.call("estimatesmartfee", target_blocks)
        if "feerate" not in res:
            return FALLBACK_FEE_RATE
        return max(1, int(Decimal(str(res["feerate"])) * COIN / 1000))

    async def wait_change(self, timeout: float, consumer: str = "") -> None:
        """Bitcoin Core tells us nothing: the caller's tick is a plain poll."""
        await asyncio.sleep(timeout)

    async def tx_status(self, txid: str) -> dict[str, Any]:
        try:
            tx = await self.call("gettransaction", txid, True, wallet=True)
            return {"txid": txid, "confirmations": int(tx["confirmations"])}
        except ChainError:
            raw = await self.call("getrawtransaction", txid, True)
            return {"txid": txid, "confirmations": int(raw.get("confirmations", 0))}

    async def output(self, txid: str, vout: int) -> Output | None:
        """An output as the full node sees it: unspent (mempool included), or in a transaction
        it knows (its wallet's, or by its index); None if it knows no such output."""
        found = await self.call("gettxout", txid, vout, True)
        if found:
            return Output(bytes.fromhex(found["scriptPubKey"]["hex"]), to_sats(found["value"]),
                          int(found["confirmations"]))
        tx = await self._raw(txid)
        if tx is None or vout >= len(tx["vout"]):
            return None
        out = tx["vout"][vout]
        return Output(bytes.fromhex(out["scriptPubKey"]["hex"]), to_sats(out["value"]),
                      int(tx.get("confirmations", 0)))

    async def raw_transaction(self, txid: str) -> bytes | None:
        tx = await self._raw(txid)
        return bytes.fromhex(tx["hex"]) if tx is not None and "hex" in tx else None

    async def tx_confirmations(self, txid: str) -> int | None:
        tx = await self._raw(txid)
        conf = None if tx is None else int(tx.get("confirmations", 0))
        return None if conf is None or conf < 0 else conf  # < 0: conflicted

    async def _raw(self, txid: str) -> dict[str, Any] | None:
        try:
            return dict(await self.call("getrawtransaction", txid, True))
        except ChainError:
            pass
        try:  # no transaction index: the wallet knows the escrows it watches
            tx = await self.call("gettransaction", txid, True, True, wallet=True)
        except ChainError:
            return None
        return {**tx["decoded"], "hex": tx.get("hex"), "confirmations": tx.get("confirmations", 0)}
