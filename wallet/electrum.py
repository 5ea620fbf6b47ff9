"""A light chain backend: the Electrum protocol (ElectrumX, Fulcrum, electrs), via aiorpcX.

The server learns which addresses we watch (our receive/change addresses and the escrows of
our orders); it can hide transactions but cannot forge them:

- the wallet keeps its own header chain (``headers.py``: linked from a compiled-in
  checkpoint, proof of work and difficulty checked, the most work wins on a reorg), and
  heights and confirmations come from it, never from the server's word;
- every confirmed transaction is checked by its merkle proof against our header at its height;
- every output the server lists (``listunspent``) is checked in the raw transaction, whose
  bytes hash to its txid: the script and the value must be what the server claims;
- with several servers, the others' tips are asked now and then: a chain with more work wins.

Subscriptions (``blockchain.headers.subscribe``, ``blockchain.scripthash.subscribe``) replace
polling; several servers may be given, tried in turn, reconnecting with backoff; a call waits a
little for a connection and then fails with a clear error naming the servers tried.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiorpcx import RPCError, RPCSession, TaskTimeout, connect_rs
from embit.descriptor import Descriptor
from embit.transaction import Transaction

from protocol.networks import Network
from protocol.settlement import Output

from .chain import COIN, FALLBACK_FEE_RATE, Utxo
from .errors import ChainError, ServerLied, WalletError
from .headers import HeaderChain, genesis_hash
from .merkle import check_header, header_time, scripthash, sha256d, verify_inclusion

log = logging.getLogger("torv.electrum")
logging.getLogger("torv.electrum.session").setLevel(logging.WARNING)
PROTOCOL_VERSION = "1.4"  # 1.7 drops blockchain.scripthash.*; every server speaks 1.4
CONNECT_WAIT = 10.0  # seconds a call waits for a connection before it fails
HANDSHAKE_TIMEOUT = 15.0  # connecting and the version/tip exchange, per server
MAX_BACKOFF = 30.0
HEADER_BATCH = 2016  # headers asked for at once (the servers' usual maximum)
CROSS_CHECK_SECONDS = 60.0


def parse_server(url: str) -> tuple[str, int, bool]:
    """``tcp://host:port`` or ``ssl://host:port`` -> (host, port, use TLS)."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme, parts.hostname, parts.port  # .port may raise
    except ValueError:
        scheme, host, port = "", None, None
    if scheme not in ("tcp", "ssl") or not host or not port:
        raise WalletError(f"--electrum wants tcp://host:port or ssl://host:port, not {url!r}")
    return host, port, scheme == "ssl"


async def probe(url: str, network: Network, timeout: float = HANDSHAKE_TIMEOUT) -> int:
    """Whether ``url`` is an Electrum server of ``network``: it answers, and its block 0 is
    the network's genesis. Returns its tip height; a ChainError (or WalletError for a bad
    URL) says why not."""
    host, port, use_tls = parse_server(url)
    context = ssl.create_default_context() if use_tls else None

    async def ask() -> int:
        async with connect_rs(host, port, ssl=context) as session:
            session.sent_request_timeout = timeout
            await session.send_request("server.version", ["torv", PROTOCOL_VERSION])
            header = bytes.fromhex(str(await session.send_request("blockchain.block.header",
                                                                  [0])))
            if sha256d(header)[::-1].hex() != genesis_hash(network.name):
                raise ChainError(f"{url} serves another chain than {network.name}")
            tip = await session.send_request("blockchain.headers.subscribe", [])
            return int(tip["height"])

    try:
        return await asyncio.wait_for(ask(), timeout)
    except (OSError, TimeoutError, RPCError, TaskTimeout, ValueError, KeyError,
            TypeError) as exc:
        raise ChainError(f"{url}: {type(exc).__name__}: {exc}"[:200]) from None


class ElectrumSession(RPCSession):
    """A client session that hands the server's notifications to its backend."""

    def __init__(self, transport: Any, on_notify: Callable[[str, Any], None]) -> None:
        super().__init__(transport)
        self._notify = on_notify
        # aiorpcX logs each concurrency retune at INFO under the class name
        self.logger = logging.getLogger("torv.electrum.session")

    async def handle_request(self, request: Any) -> None:
        self._notify(request.method, request.args)


class ElectrumBackend:
    """``ChainBackend`` over the Electrum protocol."""

    def __init__(self, servers: list[str], network: Network, timeout: float = 30.0,
                 headers_path: Path | None = None,
                 cross_check_seconds: float = CROSS_CHECK_SECONDS) -> None:
        if not servers:
            raise WalletError("give at least one --electrum server")
        self.servers = [parse_server(s) for s in servers]
        self.urls = list(servers)
        self.network = network
        self.timeout = timeout
        self._session: ElectrumSession | None = None
        self._client: Any = None
        self._connected = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._generation = 0  # counts changes; each consumer remembers the last it saw
        self._seen_generation: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty: set[str] = set()  # scripthashes the server says changed
        self._dirty_event = asyncio.Event()
        self.chain = HeaderChain(network.name, headers_path)
        self.cross_check_seconds = cross_check_seconds
        self._tip_hint = -1  # the height the server last told of
        self._header_wake = asyncio.Event()
        self._synced = asyncio.Event()  # our chain reached the server's tip at least once
        self._syncing = asyncio.Lock()  # one header sync at a time (they share the chain)
        self._watched: dict[str, str] = {}  # scripthash -> address
        self._status: dict[str, str | None] = {}
        self._utxos: dict[str, list[dict[str, Any]]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._verified: dict[str, tuple[int, bytes]] = {}  # txid -> (height, block hash)
        self._txs: dict[str, bytes] = {}
        self._refreshing: dict[str, asyncio.Lock] = {}
        self.last_error = ""
        self.server = ""
        self.lies = 0  # proofs and headers from the server that failed our checks

    # ------------------------------------------------------------------ connection
    async def start(self) -> None:
        """Connect (failing clearly if no server answers), bring our header chain to the
        server's tip, then keep connected and in step."""
        await asyncio.to_thread(self.chain.load)
        await self._connect_any()
        try:
            await self._sync_headers()
        except ChainError as exc:  # it can hide the chain from us, never forge it: go on
            log.warning("header sync with %s: %s", self.server, exc)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._supervise()), loop.create_task(self._refresher()),
                       loop.create_task(self._header_syncer())]
        if len(self.servers) > 1:
            self._tasks.append(loop.create_task(self._cross_checker()))

    async def close(self) -> None:
        """Stop our tasks (they are ours alone, cancelled here) and disconnect."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._drop()

    async def _drop(self) -> None:
        self._connected.clear()
        session, self._session = self._session, None
        if session is not None:
            try:
                await session.close(force_after=1)
            except Exception:  # noqa: BLE001 - closing a broken session: nothing to do
                pass

    async def _connect_any(self) -> None:
        errors = []
        for (host, port, use_tls), url in zip(self.servers, self.urls, strict=True):
            try:
                await asyncio.wait_for(self._connect(host, port, use_tls), HANDSHAKE_TIMEOUT)
            except (OSError, TimeoutError, RPCError, TaskTimeout, ChainError) as exc:
                errors.append(f"{url}: {exc or type(exc).__name__}")
                await self._drop()
                continue
            self.server = url
            log.info("connected to Electrum server %s", url)
            if self._watched:  # after a reconnect: subscribe again to everything we watch
                await self._subscribe(list(self._watched))
            return
        self.last_error = "; ".join(errors)
        raise ChainError(f"no Electrum server answers ({self.last_error})")

    async def _connect(self, host: str, port: int, use_tls: bool) -> None:
        context = ssl.create_default_context() if use_tls else None

        def factory(transport: Any) -> ElectrumSession:
            return ElectrumSession(transport, self._on_notify)

        client = connect_rs(host, port, session_factory=factory, ssl=context)
        session = await client.__aenter__()
        session.sent_request_timeout = self.timeout
        self._session = session
        await session.send_request("server.version", ["torv", PROTOCOL_VERSION])
        head = await session.send_request("blockchain.headers.subscribe", [])
        self._on_header(head)
        self._connected.set()

    async def _supervise(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(0.5)
            if self._session is not None and not self._session.is_closing():
                delay = 0.5
                continue
            log.warning("lost the Electrum server %s; reconnecting", self.server)
            await self._drop()
            while True:
                try:
                    await self._connect_any()
                    break
                except ChainError as exc:
                    log.warning("%s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)

    async def call(self, method: str, *args: Any) -> Any:
        if not self._connected.is_set():
            try:
                await asyncio.wait_for(self._connected.wait(), CONNECT_WAIT)
            except TimeoutError:
                raise ChainError("no Electrum server answers (tried "
                                 f"{', '.join(self.urls)}: {self.last_error or 'connecting'})"
                                 ) from None
        session = self._session
        if session is None:
            raise ChainError("no Electrum server connected")
        try:
            return await session.send_request(method, list(args))
        except RPCError as exc:
            raise ChainError(f"{method}: {exc.message}", exc.code) from None
        except TaskTimeout:
            raise ChainError(f"the Electrum server did not answer {method} within "
                             f"{self.timeout:g} s") from None
        except (OSError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and session is self._session:
                raise
            raise ChainError(f"the Electrum server connection broke during {method}") from None

    # ------------------------------------------------------------------ notifications
    def _on_notify(self, method: str, args: Any) -> None:
        if method == "blockchain.headers.subscribe" and args:
            self._on_header(args[0])
        elif method == "blockchain.scripthash.subscribe" and len(args) == 2:
            sh, status = str(args[0]), args[1]
            if sh in self._watched and self._status.get(sh) != status:
                self._status[sh] = status
                self._dirty.add(sh)
                self._dirty_event.set()

    def _on_header(self, head: Any) -> None:
        """The server tells of a tip: our header syncer fetches what we lack and checks it."""
        try:
            height, header = int(head["height"]), str(head["hex"])
            check_header(header, self.network.name)
        except (KeyError, TypeError, ValueError, ChainError) as exc:
            if isinstance(exc, ServerLied):
                self.lies += 1
            log.warning("ignoring a bad header from the Electrum server: %s", exc)
            return
        if self.chain.hash_at(height) != sha256d(bytes.fromhex(header)):
            self._tip_hint = height
            self._header_wake.set()

    # ------------------------------------------------------------------ our header chain
    async def _header_syncer(self) -> None:
        while True:
            await self._header_wake.wait()
            self._header_wake.clear()
            try:
                await self._sync_headers()
            except ChainError as exc:
                log.warning("header sync with %s: %s", self.server, exc)

    async def _sync_headers(self, call: Any = None) -> bool:
        """Bring our chain to the tip ``call`` (a server's RPC; ours by default) shows; on a
        fork, step back until its headers join ours and take its branch if it has more work.
        Returns whether our chain changed."""
        async with self._syncing:
            return await self._sync_headers_locked(call or self.call)

    async def _sync_headers_locked(self, call: Any) -> bool:
        head = await call("blockchain.headers.subscribe")
        try:
            target = int(head["height"])
        except (KeyError, TypeError, ValueError):
            raise ServerLied("the server's tip is not {height, hex}") from None
        changed, start, step = False, self.chain.tip + 1, 1
        for _ in range(10_000):  # bounded: each round moves forward or steps back
            if start > target:
                break
            got = await call("blockchain.block.headers", start, min(HEADER_BATCH,
                                                                    target - start + 1))
            raw = self._headers_from(got)
            if not raw:
                break
            if raw[4:36] != self.chain.hash_at(start - 1):
                if start - 1 <= self.chain.base:
                    raise ServerLied("the server's chain does not join our checkpoint")
                start, step = max(self.chain.base + 1, start - step), step * 2
                continue
            try:
                accepted = await asyncio.to_thread(self.chain.connect, start, raw)
            except ServerLied as exc:
                self.lies += 1
                raise ChainError(f"the Electrum server {self.server} sent headers that break "
                                 f"the chain's rules: {exc}") from None
            if accepted.reorg_from is not None:
                self._on_reorg(accepted.reorg_from)
            changed = changed or accepted.count > 0
            start += len(raw) // 80
        self._synced.set()
        if changed:
            await asyncio.to_thread(self.chain.save)
            self._notify_change()
        return changed

    @staticmethod
    def _headers_from(got: Any) -> bytes:
        try:
            raw = bytes.fromhex(str(got["hex"]))
        except (KeyError, TypeError, ValueError):
            raise ServerLied("blockchain.block.headers answered without hex") from None
        return raw

    def _on_reorg(self, height: int) -> None:
        """Our chain changed from ``height`` on: what was proven in those blocks is proven no
        more; every watched address is looked at again."""
        log.warning("the chain reorganised from height %d", height)
        self._verified = {t: v for t, v in self._verified.items() if v[0] < height}
        self._dirty.update(self._watched)
        self._dirty_event.set()

    async def _cross_checker(self) -> None:
        """With several servers, ask the others for their tips now and then: a chain with more
        work than ours (one our server hides) is followed."""
        while True:
            await asyncio.sleep(self.cross_check_seconds)
            for (host, port, use_tls), url in zip(self.servers, self.urls, strict=True):
                if url != self.server:
                    await self._cross_check(host, port, use_tls, url)

    async def _cross_check(self, host: str, port: int, use_tls: bool, url: str) -> None:
        context = ssl.create_default_context() if use_tls else None
        try:
            async with connect_rs(host, port, ssl=context) as session:
                session.sent_request_timeout = self.timeout

                async def call(method: str, *args: Any) -> Any:
                    return await session.send_request(method, list(args))

                await call("server.version", "torv", PROTOCOL_VERSION)
                if await self._sync_headers(call):
                    log.warning("Electrum server %s showed a chain with more work than %s's",
                                url, self.server)
        except (OSError, TimeoutError, RPCError, TaskTimeout, ChainError) as exc:
            log.debug("cross-check with %s: %s", url, exc)

    def _notify_change(self) -> None:
        """A new block, or a watched address changed: wake every consumer."""
        self._generation += 1
        self._wakeup.set()

    async def wait_change(self, timeout: float, consumer: str = "") -> None:
        """Until the server has told of a new block or a change to a watched address since
        ``consumer``'s last call (or ``timeout`` seconds). Each consumer (the chain watcher,
        the balance loop) keeps its own place, so none misses a change another consumed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._seen_generation.get(consumer, 0) == self._generation:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                break
        self._seen_generation[consumer] = self._generation

    # ------------------------------------------------------------------ watching
    def _addresses(self, items: list[dict[str, Any]]) -> dict[str, str]:
        out = {}
        for item in items:
            if "desc" in item:
                desc = Descriptor.from_string(item["desc"])
                lo, hi = item["range"]
                for i in range(lo, hi + 1):
                    spk = desc.derive(i).script_pubkey()
                    out[scripthash(spk.data)] = self.network.address(spk)
            else:
                spk = self.network.script_for(item["address"])
                out[scripthash(spk.data)] = item["address"]
        return out

    async def watch(self, items: list[dict[str, Any]], rescan: bool) -> None:
        """Subscribe to these descriptors' addresses and addresses (the server indexes the
        whole chain, so there is nothing to rescan)."""
        new = {sh: a for sh, a in self._addresses(items).items() if sh not in self._watched}
        self._watched.update(new)
        await self._subscribe(list(new))

    async def _subscribe(self, hashes: list[str]) -> None:
        async def one(sh: str) -> None:
            status = await self.call("blockchain.scripthash.subscribe", sh)
            self._status[sh] = status
            if status is None:
                self._utxos[sh], self._history[sh] = [], []
            else:
                await self._refresh(sh)

        for i in range(0, len(hashes), 50):
            await asyncio.gather(*(one(sh) for sh in hashes[i:i + 50]))
        if hashes:
            self._notify_change()

    async def _refresher(self) -> None:
        """Fetch what changed for the addresses the server notified us about."""
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            hashes, self._dirty = list(self._dirty), set()
            for sh in hashes:
                try:
                    await self._refresh(sh)
                except ChainError as exc:
                    log.warning("refreshing %s: %s", self._watched.get(sh, sh), exc)
            self._notify_change()

    async def _refresh(self, sh: str) -> None:
        lock = self._refreshing.setdefault(sh, asyncio.Lock())
        async with lock:
            history = await self.call("blockchain.scripthash.get_history", sh)
            utxos = await self.call("blockchain.scripthash.listunspent", sh)
            for entry in history:
                await self._verify(str(entry["tx_hash"]), int(entry["height"]))
            self._history[sh] = [dict(e) for e in history]
            self._utxos[sh] = [u for u in map(dict, utxos) if await self._output_is(sh, u)]

    async def _output_is(self, sh: str, utxo: dict[str, Any]) -> bool:
        """Whether the transaction the server names (its bytes hash to its txid) has, at the
        position it names, an output to this script of the value it claims."""
        try:
            txid, pos, value = str(utxo["tx_hash"]), int(utxo["tx_pos"]), int(utxo["value"])
            out = Transaction.parse(await self.raw_tx(txid)).vout[pos]
            real = scripthash(bytes(out.script_pubkey.data)) == sh and int(out.value) == value
        except (KeyError, TypeError, ValueError, IndexError, ChainError):
            real = False
        if not real:
            self.lies += 1
            log.warning("Electrum server %s listed an output that its transaction does not "
                        "have (ignored)", self.server)
        return real

    async def _verify(self, txid: str, height: int) -> None:
        """Check a confirmed transaction is in the block the server names (merkle proof).
        A proof that fails leaves the transaction unconfirmed to us (a server can hide a
        transaction, never forge a confirmation), and is counted and logged."""
        block = self.chain.hash_at(height) if height > 0 else None
        if block is None and height > self.chain.tip:  # a block we have not seen yet
            try:
                await self._sync_headers()
            except ChainError as exc:  # unproven: counted unconfirmed
                log.debug("header sync for %s: %s", txid[:16], exc)
            block = self.chain.hash_at(height)
        if block is None or self._verified.get(txid) == (height, block):
            return
        proof = await self.call("blockchain.transaction.get_merkle", txid, height)
        header = self.chain.header(height)
        try:
            if not isinstance(proof, dict) or header is None:
                raise ServerLied("the server sent a merkle proof that is not an object")
            verify_inclusion(txid, proof.get("merkle"), proof.get("pos"), header.hex(),
                             self.network.name)
        except ServerLied as exc:
            self.lies += 1
            log.warning("Electrum server %s: %s (transaction %s… counted unconfirmed)",
                        self.server, exc, txid[:16])
            return
        self._verified[txid] = (height, block)

    def _confirmations(self, txid: str, height: int) -> int:
        """Confirmations by our own chain: only for a transaction proven in the block our
        chain has at that height."""
        proven = self._verified.get(txid)
        if height <= 0 or proven is None or proven != (height, self.chain.hash_at(height)):
            return 0
        return max(0, self.chain.tip - height + 1)

    # ------------------------------------------------------------------ ChainBackend
    async def tip_height(self) -> int:
        """Our own header chain's tip (brought to the server's first, once)."""
        if not self._synced.is_set():
            try:
                await self._sync_headers()
            except ChainError as exc:
                log.warning("header sync with %s: %s", self.server, exc)
        return self.chain.tip

    async def unspent(self, addresses: list[str] | None = None) -> list[Utxo]:
        if addresses is None:
            hashes = list(self._watched)
        else:
            wanted = self._addresses([{"address": a} for a in addresses])
            unknown = {sh: a for sh, a in wanted.items() if sh not in self._watched}
            if unknown:
                self._watched.update(unknown)
                await self._subscribe(list(unknown))
            hashes = list(wanted)
        loading = [sh for sh in hashes if sh not in self._utxos]
        if loading:  # watched, but the first answer is still on its way: wait for it
            await self._subscribe(loading)
        out = []
        for sh in hashes:
            for u in self._utxos.get(sh, []):
                txid, height = str(u["tx_hash"]), int(u["height"])
                out.append(Utxo(txid, int(u["tx_pos"]), int(u["value"]), self._watched[sh],
                                self._confirmations(txid, height)))
        return out

    async def raw_tx(self, txid: str) -> bytes:
        if txid not in self._txs:
            raw = bytes.fromhex(str(await self.call("blockchain.transaction.get", txid)))
            if Transaction.parse(raw).txid().hex() != txid:
                raise ChainError("the Electrum server sent a transaction that is not the one "
                                 "asked for")
            self._txs[txid] = raw
        return self._txs[txid]

    async def transactions(self, count: int) -> list[dict[str, Any]]:
        """Payments to our watched addresses, newest first (as Core's receive entries)."""
        rows: list[dict[str, Any]] = []
        by_address = {a: sh for sh, a in self._watched.items()}
        seen: set[str] = set()
        for history in list(self._history.values()):
            for entry in history:
                txid, height = str(entry["tx_hash"]), int(entry["height"])
                if txid in seen:
                    continue
                seen.add(txid)
                tx = Transaction.parse(await self.raw_tx(txid))
                header = self.chain.header(height) if height > 0 else None
                when = header_time(header.hex()) if header is not None else int(time.time())
                for out in tx.vout:
                    try:
                        address = self.network.address(out.script_pubkey)
                    except Exception:  # noqa: BLE001 - a non-standard output: not ours
                        continue
                    if address in by_address:
                        rows.append({"txid": txid, "address": address, "category": "receive",
                                     "amount": int(out.value), "fee": 0,
                                     "confirmations": self._confirmations(txid, height),
                                     "time": when})
        rows.sort(key=lambda r: int(r["confirmations"]))  # newest (least confirmed) first
        return rows[:count]

    async def broadcast(self, raw_hex: str) -> str:
        txid = str(await self.call("blockchain.transaction.broadcast", raw_hex))
        # read our own writes: what the transaction spends and pays among watched addresses
        # is fetched again before we return (not left to the server's notification)
        try:
            tx = Transaction.parse(bytes.fromhex(raw_hex))
            touched = {scripthash(out.script_pubkey.data) for out in tx.vout}
            for vin in tx.vin:
                prev = Transaction.parse(await self.raw_tx(vin.txid.hex()))
                if vin.vout < len(prev.vout):
                    touched.add(scripthash(prev.vout[vin.vout].script_pubkey.data))
            for sh in touched & set(self._watched):
                await self._refresh(sh)
        except (ChainError, ValueError) as exc:
            log.debug("refresh after broadcast: %s", exc)
        return txid

    async def output(self, txid: str, vout: int) -> Output | None:
        """An output of a transaction the server shows at the output's script (its bytes
        checked against the txid; confirmations only by merkle proof)."""
        try:
            tx = Transaction.parse(await self.raw_tx(txid))
        except ChainError:
            return None
        if vout >= len(tx.vout):
            return None
        out = tx.vout[vout]
        spk = bytes(out.script_pubkey.data)
        conf = await self._confirmations_at(txid, spk)
        return None if conf is None else Output(spk, int(out.value), conf)

    async def raw_transaction(self, txid: str) -> bytes | None:
        try:
            return await self.raw_tx(txid)
        except ChainError:
            return None

    async def tx_confirmations(self, txid: str) -> int | None:
        try:
            tx = Transaction.parse(await self.raw_tx(txid))
        except ChainError:
            return None
        return await self._confirmations_at(txid, bytes(tx.vout[0].script_pubkey.data))

    async def _confirmations_at(self, txid: str, spk: bytes) -> int | None:
        """Confirmations of ``txid`` by the history of one of its output scripts (None: the
        server does not show it there)."""
        sh = scripthash(spk)
        history = self._history.get(sh)
        if history is None or not any(e["tx_hash"] == txid for e in history):
            history = list(await self.call("blockchain.scripthash.get_history", sh))
        entry = next((e for e in history if e.get("tx_hash") == txid), None)
        if entry is None:
            return None
        height = int(entry["height"])
        await self._verify(txid, height)
        return self._confirmations(txid, height)

    async def test_accept(self, raw_hex: str) -> tuple[bool, str]:
        """What can be checked without a full node: every input is an unspent output we can
        see, and relative and absolute timelocks are met. (Scripts and signatures are checked
        by the network when the transaction is broadcast.)"""
        try:
            tx = Transaction.parse(bytes.fromhex(raw_hex))
        except Exception:  # noqa: BLE001 - embit raises assorted errors on bad bytes
            return False, "not a transaction"
        tip = await self.tip_height()
        if tx.locktime and tx.locktime < 500_000_000 and tx.locktime > tip:
            return False, "non-final"
        for vin in tx.vin:
            prev_txid, vout = vin.txid.hex(), vin.vout
            try:
                prev = Transaction.parse(await self.raw_tx(prev_txid))
            except ChainError:
                return False, "missing-inputs"
            if vout >= len(prev.vout):
                return False, "missing-inputs"
            address = self.network.address(prev.vout[vout].script_pubkey)
            utxo = next((u for u in await self.unspent([address])
                         if (u.txid, u.vout) == (prev_txid, vout)), None)
            if utxo is None:
                return False, "missing-inputs (spent or unknown)"
            seq = vin.sequence
            if tx.version >= 2 and not seq & (1 << 31) and not seq & (1 << 22):
                if utxo.confirmations < (seq & 0xFFFF):
                    return False, "non-BIP68-final"
        return True, ""

    async def fee_rate(self, target_blocks: int = 6) -> int:
        """sat/vB: the server's estimate, never under its relay fee; our fallback when it
        cannot estimate (regtest)."""
        relay = await self.call("blockchain.relayfee")
        floor = max(1, int(Decimal(str(relay)) * COIN / 1000)) if relay and relay > 0 else 1
        estimate = await self.call("blockchain.estimatefee", target_blocks)
        if not estimate or estimate <= 0:
            return max(floor, FALLBACK_FEE_RATE)
        return max(floor, int(Decimal(str(estimate)) * COIN / 1000))

    async def tx_status(self, txid: str) -> dict[str, Any]:
        """Confirmations of a transaction touching a watched address (an escrow's funding or
        release), checked by its merkle proof."""
        histories = list(self._history.values())
        if not any(e["tx_hash"] == txid for h in histories for e in h):
            # not among watched addresses (e.g. just after a restart): its first output's
            # history says where it was mined
            try:
                tx = Transaction.parse(await self.raw_tx(txid))
            except ChainError:
                raise ChainError(f"transaction {txid[:16]}… is not known to the server"
                                 ) from None
            if tx.vout:
                histories = [await self.call("blockchain.scripthash.get_history",
                                             scripthash(tx.vout[0].script_pubkey.data))]
        for entry in (e for h in histories for e in h):
            if entry["tx_hash"] == txid:
                height = int(entry["height"])
                await self._verify(txid, height)
                return {"txid": txid, "confirmations": self._confirmations(txid, height)}
        return {"txid": txid, "confirmations": 0}

