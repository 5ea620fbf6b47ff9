"""The markets this node holds, kept whole and checked: each market's newest descriptor, who
decides its log under each descriptor of its chain, and its log's last entry (in memory, so a
gossip validator can check a change at once), stored in the room's tables.

A change comes from gossip on the market's topic, from a steward's letter, from a peer's
answer while catching up, or from this node's own stewards' signatures; every path ends in
``apply``, which takes only the next valid step (``protocol.markets``) under one lock, stores
it, tells the market room what the market now shows (search) and the event stream.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from node.community import store
from node.core.events import MarketChanged, MarketLogged
from node.net.host import GossipMessage, P2PError, Verdict
from protocol import markets as mk
from protocol.errors import RemoteProtocolError
from protocol.market_wire import (
    MARKETS_PROTOCOL,
    MAX_RESPONSE,
    PAGE,
    check_page,
    check_request,
    decode_item,
    encode_item,
    topic,
)

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.community")
CATCH_UP_PAGES = 64  # pages of one market asked of one peer at most, per catch-up
ASK_PEERS = 8  # peers asked for a market this node does not know


class MarketPort(Protocol):
    """What the community room needs of the market room: what each market shows, for search
    (node/market/scopes.py), and which markets this node joined (for a node that carries only
    its markets' stores, node/market/carry.py)."""

    async def set_market_scope(self, market: str, is_open: bool, members: list[str],
                               hidden: list[tuple[str, str]]) -> None: ...

    def carry_markets(self, joined: list[str]) -> None: ...


class MarketChains:
    def __init__(self, core: NodeCore, market: MarketPort) -> None:
        self.core = core
        self.db = core.db
        self.market = market
        self.heads: dict[str, mk.Descriptor] = {}
        self.deciders: dict[str, dict[str, mk.Deciders]] = {}
        self.tails: dict[str, mk.LogEntry | None] = {}
        self.joined: set[str] = set()
        self._lock = asyncio.Lock()
        self._consumers: dict[str, asyncio.Task[Any]] = {}
        self._catching: set[tuple[str, str]] = set()
        self.applied = 0

    # ------------------------------------------------------------------ loading
    async def load(self) -> None:
        heads = await self.db.read(store.heads)
        for head in heads:
            chain = await self.db.read(partial(store.chain, market=head.market_id))
            self.heads[head.market_id] = head
            self.deciders[head.market_id] = {d.hash: mk.Deciders.of(d) for d in chain}
            self.tails[head.market_id] = await self.db.read(
                partial(store.log_tail, market=head.market_id))
        self.joined = set(await self.db.read(store.joined))

    # ------------------------------------------------------------------ applying a step
    async def apply(self, item: mk.Descriptor | mk.LogEntry) -> bool:
        """Take ``item`` if it is the next valid step of its market (True), or a better
        descriptor at the newest seq; anything else: False (RemoteProtocolError if invalid)."""
        async with self._lock:
            if isinstance(item, mk.Descriptor):
                done = await self._apply_descriptor(item)
            else:
                done = await self._apply_entry(item)
        if done:
            self.applied += 1
            await self._publish_scope(item.market_id)
        return done

    async def _apply_descriptor(self, d: mk.Descriptor) -> bool:
        market = d.market_id
        head = self.heads.get(market)
        if head is None:
            if d.seq != 1:
                return False
            await self.core.cpu(mk.check_founding, d)
        elif d.seq == head.seq + 1:
            await self.core.cpu(mk.check_next, head, d)
        elif d.seq == head.seq and d.hash != head.hash and d.seq > 1:
            before = (await self.db.read(partial(store.chain, market=market, start=d.seq - 1,
                                                 limit=1)))[0]
            await self.core.cpu(mk.check_next, before, d)
            if mk.wins(head, d) is head:
                return False
            self.deciders[market].pop(head.hash, None)
        else:
            return False
        await self.db.write(partial(store.put_descriptor, d=d))
        self.heads[market] = d
        self.deciders.setdefault(market, {})[d.hash] = mk.Deciders.of(d)
        self.tails.setdefault(market, None)
        tail = self.tails[market]
        await self.db.write(partial(store.drop_stale_proposals, market=market, seq=d.seq,
                                    log_seq=tail.seq if tail else 0))
        self.core.events.publish(MarketChanged(market, d.seq, str(d.body["name"])))
        return True

    async def _apply_entry(self, e: mk.LogEntry) -> bool:
        market = e.market_id
        decided_by = self.deciders.get(market, {}).get(str(e.body["descriptor"]))
        if decided_by is None or market not in self.heads:
            return False
        tail = self.tails.get(market)
        if e.seq != (tail.seq + 1 if tail else 1):
            return False
        await self.core.cpu(mk.check_entry, e, decided_by, tail)
        await self.db.write(partial(store.put_entry, e=e))
        self.tails[market] = e
        head = self.heads[market]
        await self.db.write(partial(store.drop_stale_proposals, market=market, seq=head.seq,
                                    log_seq=e.seq))
        b = e.body
        self.core.events.publish(MarketLogged(market, e.seq, b["action"], b["vendor"],
                                              b["listing"]))
        return True

    async def _publish_scope(self, market: str) -> None:
        head = self.heads[market]
        entries = await self.db.read(partial(store.log, market=market))
        listings, members = mk.removed(entries)
        hidden = sorted(listings) + [(v, "") for v in sorted(members)]
        await self.market.set_market_scope(market, head.body["admission"] == "open",
                                           list(head.body["members"]), hidden)

    # ------------------------------------------------------------------ the network
    async def announce(self, item: mk.Descriptor | mk.LogEntry) -> None:
        """Gossip a step this node took (its own stewards' or a letter's) on the topic."""
        try:
            await self.core.host.publish(topic(item.market_id), encode_item(item))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("market gossip failed (peers catch up when they connect): %s", exc)

    async def subscribe(self, market: str) -> None:
        if market in self._consumers:
            return
        queue = await self.core.host.subscribe(topic(market), partial(self.validate, market))
        self._consumers[market] = self.core.spawn(self._consume(queue), f"market {market[:8]}")

    async def unsubscribe(self, market: str) -> None:
        task = self._consumers.pop(market, None)
        if task is not None:
            task.cancel()
        await self.core.host.unsubscribe(topic(market))

    def validate(self, market: str, origin: str, via: str, data: bytes) -> Verdict:
        """The topic validator: a market's next step, checked against what this node holds
        (signatures included); a step further ahead starts a catch-up from the peer that
        brought it; anything of another market or malformed is refused."""
        try:
            item = decode_item(data)
            if item.market_id != market:
                raise RemoteProtocolError("a step of another market on this market's topic")
            if isinstance(item, mk.Descriptor):
                head = self.heads.get(market)
                if head is None or item.seq <= head.seq:
                    return Verdict.IGNORE
                if item.seq > head.seq + 1:
                    self._catch_up_soon(market, via)
                    return Verdict.IGNORE
                mk.check_next(head, item)
                return Verdict.ACCEPT
            tail = self.tails.get(market)
            decided_by = self.deciders.get(market, {}).get(str(item.body["descriptor"]))
            expected = tail.seq + 1 if tail else 1
            if item.seq < expected:
                return Verdict.IGNORE
            if item.seq > expected or decided_by is None:
                self._catch_up_soon(market, via)
                return Verdict.IGNORE
            mk.check_entry(item, decided_by, tail)
            return Verdict.ACCEPT
        except RemoteProtocolError as exc:
            self.core.reject("market", str(exc))
            return Verdict.REJECT

    async def _consume(self, queue: asyncio.Queue[GossipMessage]) -> None:
        while True:
            msg = await queue.get()
            try:
                await self.apply(decode_item(msg.data))
            except RemoteProtocolError as exc:  # checked by the validator: a race at most
                log.debug("market step from %s not taken: %s", msg.from_peer[:12], exc)

    def _catch_up_soon(self, market: str, peer: str) -> None:
        if (market, peer) not in self._catching and len(self._catching) < 64:
            self._catching.add((market, peer))
            self.core.spawn(self._catch_up_task(market, peer), "market catch-up")

    async def _catch_up_task(self, market: str, peer: str) -> None:
        try:
            await self.catch_up_with(market, peer)
        finally:
            self._catching.discard((market, peer))

    async def catch_up_with(self, market: str, peer: str) -> None:
        """``catch_up``, its failures counted (a peer's wrong answer) or logged (no answer)."""
        try:
            await self.catch_up(market, peer)
        except RemoteProtocolError as exc:
            self.core.reject("market", f"{peer[:12]}: {exc}")
        except P2PError as exc:
            log.debug("market catch-up with %s: %s", peer[:12], exc)

    async def catch_up(self, market: str, peer: str) -> int:
        """Ask ``peer`` for what this node lacks of ``market`` (its chain from our head on, a
        step back when the peer's differs at our head, then its log); every step is checked
        by ``apply``. The number of steps taken."""
        taken = 0
        for op in ("chain", "log"):
            back = False
            for _ in range(CATCH_UP_PAGES):
                if op == "chain":
                    head = self.heads.get(market)
                    start = 1 if head is None else head.seq + (0 if back else 1)
                else:
                    tail = self.tails.get(market)
                    start = 1 if tail is None else tail.seq + 1
                raw = await self.core.host.request(
                    peer, MARKETS_PROTOCOL, {"op": op, "market": market, "from": start},
                    MAX_RESPONSE)
                items = check_page(raw, op)
                if not items:
                    break
                if op == "chain" and self.heads.get(market) is None and (
                        items[0].seq != 1 or items[0].hash != market):
                    raise RemoteProtocolError("answered another market's founding")
                step, diverged = 0, False
                for item in items:
                    try:
                        step += await self.apply(item)
                    except RemoteProtocolError:
                        if op != "chain" or back or step or market not in self.heads:
                            raise
                        diverged = True  # the peer's chain differs at our head: our head
                        break  # may be the loser of two changes at one seq
                taken += step
                if diverged:
                    back = True
                    continue
                if not step or len(items) < PAGE:
                    break
                back = False
            if market not in self.heads:
                break
        return taken

    async def find(self, market: str, peers: list[str]) -> bool:
        """Look for an unknown market at ``peers`` (the first few that answer)."""
        for peer in peers[:ASK_PEERS]:
            try:
                await self.catch_up(market, peer)
            except RemoteProtocolError as exc:
                self.core.reject("market", f"{peer[:12]} on market {market[:12]}: {exc}")
            except P2PError as exc:
                log.debug("%s had no market %s: %s", peer[:12], market[:12], exc)
            if market in self.heads:
                return True
        return False

    async def serve(self, peer: str, raw: object) -> dict[str, Any]:
        """A peer asks for a market's descriptors or log entries from a seq on."""
        r = check_request(raw)
        items: list[mk.Descriptor] | list[mk.LogEntry]
        if r["op"] == "chain":
            items = await self.db.read(partial(store.chain, market=r["market"],
                                               start=r["from"], limit=PAGE))
        else:
            items = await self.db.read(partial(store.log, market=r["market"],
                                               start=r["from"], limit=PAGE))
        out: list[dict[str, Any]] = []
        size = 0
        for item in items:
            size += len(encode_item(item))
            if out and size > MAX_RESPONSE // 2:
                break
            out.append(item.to_value())
        return {"items": out}
