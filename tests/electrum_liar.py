"""A lying Electrum server: a proxy in front of a real one that forwards everything and
alters chosen replies, as a hostile or compromised server would.

Modes:
- ``merkle``: every ``blockchain.transaction.get_merkle`` reply gets a wrong sibling hash,
  so the proof no longer leads to the block's merkle root;
- ``header``: every header it serves (``blockchain.block.header`` replies,
  ``blockchain.headers.subscribe`` replies and notifications) gets another nonce, so it no
  longer carries its proof of work;
- ``easy``: every header it serves claims a target easier than the chain allows;
- ``fee``: every fee estimate is 5 coins per kB (500,000 sat/vB);
- ``tip``: it claims its tip is 100 blocks higher than it is (with the real tip's header);
- ``stale``: it hides every block after the height ``freeze_at`` (its tip stays there, its
  headers stop there), as a server that keeps a client on an old chain;
- ``forge``: for the scripthashes ``forge()`` names, it adds to the history and the unspent
  outputs a real transaction at its real height (its merkle proof is genuine) that pays
  something else, and notifies the client of the change: funds that do not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

HEADERS = {"blockchain.block.header", "blockchain.block.headers", "blockchain.headers.subscribe"}
FORGED = {"blockchain.scripthash.get_history", "blockchain.scripthash.listunspent",
          "blockchain.scripthash.subscribe"}
TAMPERED = {"merkle": {"blockchain.transaction.get_merkle"}, "header": HEADERS, "easy": HEADERS,
            "fee": {"blockchain.estimatefee"}, "forge": FORGED,
            "tip": {"blockchain.headers.subscribe"},
            "stale": {"blockchain.headers.subscribe", "blockchain.block.headers"}}
LIMIT = 16 * 1024 * 1024  # one JSON line may be long (2016 headers in hex)
FAKE_STATUS = "ff" * 32


def has_work(raw: bytes) -> bool:
    """Whether a regtest header carries the proof of work its target asks, computed here on
    its own (not by wallet.merkle, which the tests check against it)."""
    pow_hash = hashlib.scrypt(raw, salt=raw, n=1024, r=1, p=1, dklen=32)
    bits = int.from_bytes(raw[72:76], "little")
    return int.from_bytes(pow_hash, "little") <= (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))


def _tamper(mode: str, result: Any) -> Any:
    if mode == "fee":
        return 5.0
    if mode == "tip" and isinstance(result, dict) and "height" in result:
        return {**result, "height": int(result["height"]) + 100}
    if mode == "merkle" and isinstance(result, dict) and result.get("merkle"):
        branch = list(result["merkle"])
        branch[0] = f"{int(branch[0], 16) ^ 1:064x}"
        return {**result, "merkle": branch}
    if mode == "merkle" and isinstance(result, dict):  # a one-transaction block: no branch
        return {**result, "merkle": ["11" * 32]}
    if mode in ("header", "easy") and isinstance(result, dict) and "count" in result:
        raw = str(result["hex"])  # block.headers: every header of the batch
        return {**result, "hex": "".join(_tamper(mode, raw[i:i + 160])
                                         for i in range(0, len(raw), 160))}
    if mode in ("header", "easy") and isinstance(result, dict) and "hex" in result:
        return {**result, "hex": _tamper(mode, result["hex"])}  # headers.subscribe
    if mode in ("header", "easy") and isinstance(result, str) and len(result) == 160:
        raw = bytearray(bytes.fromhex(result))
        if mode == "header":  # another nonce whose hash misses the target (on regtest
            nonce = int.from_bytes(raw[76:80], "little")  # about half of them still hit it)
            for flip in range(1, 64):
                raw[76:80] = (nonce ^ flip).to_bytes(4, "little")
                if not has_work(bytes(raw)):
                    break
        else:
            raw[72:76] = (0x2200FFFF).to_bytes(4, "little")
        return raw.hex()
    return result


class LyingElectrum:
    def __init__(self, upstream_port: int, mode: str) -> None:
        if mode not in TAMPERED:
            raise ValueError(f"no such mode {mode!r}")
        self.upstream_port = upstream_port
        self.mode = mode
        self.tampered = 0
        self.forged: dict[str, dict[str, Any]] = {}  # scripthash -> the entry it adds
        self.freeze_at = -1  # stale mode: the last height it shows (headers from the real one)
        self.frozen_header = ""
        self._clients: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> LyingElectrum:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=LIMIT)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port,
                                                             limit=LIMIT)
        asked: dict[Any, Any] = {}  # ids of requests whose replies we alter -> their params
        self._clients.append(writer)

        async def to_server() -> None:
            while line := await reader.readline():
                msg = json.loads(line)
                if isinstance(msg, dict) and msg.get("method") in TAMPERED[self.mode]:
                    asked[msg.get("id")] = (msg["method"], msg.get("params"))
                up_writer.write(line)
                await up_writer.drain()

        async def to_client() -> None:
            while line := await up_reader.readline():
                msg = json.loads(line)
                if isinstance(msg, dict) and "result" in msg and msg.get("id") in asked:
                    method, params = asked.pop(msg["id"])
                    if self.mode == "forge":
                        result = self._forge(method, params, msg["result"])
                    elif self.mode == "stale":
                        result = self._stale(method, params, msg["result"])
                    else:
                        result = await asyncio.to_thread(_tamper, self.mode, msg["result"])
                    if result != msg["result"]:
                        msg["result"] = result
                        self.tampered += 1
                    line = json.dumps(msg).encode() + b"\n"
                elif self.mode == "stale" and isinstance(msg, dict) and msg.get("method") == \
                        "blockchain.headers.subscribe":
                    continue  # no news of blocks past the frozen tip
                elif isinstance(msg, dict) and msg.get("method") in TAMPERED[self.mode] \
                        and msg.get("params"):  # a notification of a new block
                    msg["params"] = [_tamper(self.mode, msg["params"][0])]
                    self.tampered += 1
                    line = json.dumps(msg).encode() + b"\n"
                writer.write(line)
                await writer.drain()

        pumps = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:  # until either side hangs up (or sends what is not JSON), or we close
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # close() cancelled us: the end of the connection, not an error
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            writer.close()
            up_writer.close()
            self._tasks.discard(task)
            self._clients.remove(writer)

    def _stale(self, method: str, params: Any, result: Any) -> Any:
        if method == "blockchain.headers.subscribe":
            return {"height": self.freeze_at, "hex": self.frozen_header}
        start = int(params[0])
        keep = max(0, self.freeze_at - start + 1)
        raw = str(result["hex"])[:160 * keep]
        return {**result, "hex": raw, "count": len(raw) // 160}

    def _forge(self, method: str, params: Any, result: Any) -> Any:
        sh = params[0] if isinstance(params, list) and params else None
        entry = self.forged.get(str(sh))
        if entry is None:
            return result
        if method == "blockchain.scripthash.subscribe":
            return FAKE_STATUS
        if method == "blockchain.scripthash.get_history":
            return [*result, {"tx_hash": entry["tx_hash"], "height": entry["height"]}]
        return [*result, entry]

    async def forge(self, scripthash: str, txid: str, height: int, value: int) -> None:
        """Claim ``value`` at ``scripthash`` in the real transaction ``txid`` (mined at
        ``height``, paying something else), and tell every client the address changed."""
        self.forged[scripthash] = {"tx_hash": txid, "height": height, "tx_pos": 0,
                                   "value": value}
        note = {"jsonrpc": "2.0", "method": "blockchain.scripthash.subscribe",
                "params": [scripthash, FAKE_STATUS]}
        for writer in list(self._clients):
            writer.write(json.dumps(note).encode() + b"\n")
            await writer.drain()
