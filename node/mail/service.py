"""Mail that always arrives: letters (chat, order contracts, receipts) sealed to their
recipient, delivered directly when it is reachable and otherwise held by other peers until it
comes online (protocol/mail.py, docs/protocol.md "Mail").

Sending: a letter is sealed and stored in ``mail_out`` before anything is sent. The outbox
tries the recipient directly, with backoff, until it acknowledges; after the first failure it
also asks the ``HOLDERS`` peers closest to the recipient in the DHT keyspace to hold the
envelope. The recipient's receipt (or a direct acknowledgement) marks it delivered.

Receiving: directly, or by fetching from every peer we connect to and, every
``MAIL_POLL_SECONDS``, from the peers closest to us. A letter is handled (by the service that
registered its kind), then its id is recorded, then the holder is told to drop it; the first
copy wins, later ones are dropped by id. Handlers are idempotent, so a crash between the steps
loses nothing and repeats nothing visible.

Holding: we keep envelopes for others within quotas (``mail_store``), hand them only to their
recipient (the connection authenticates it), and drop them when acknowledged or expired.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.events import MailHeld
from node.core.outbox import Outbox
from node.core.services import Service
from node.mail import store as mail_store
from node.net.host import P2PError
from protocol.errors import RemoteProtocolError, TorvError
from protocol.mail import (
    CHAT,
    HOLDERS,
    MAIL_PROTOCOL,
    MAIL_TTL,
    MAX_FETCH,
    MAX_FETCH_BYTES,
    MAX_REQUEST,
    MAX_RESPONSE,
    RECEIPT,
    Envelope,
    Letter,
    hold_work_bits,
    make_ack,
    make_deliver,
    make_fetch,
    make_hold,
    make_waiting,
    open_envelope,
    parse_fetched,
    parse_ok,
    parse_request,
    pick_holders,
    seal,
    solve_work,
    work_asked,
    work_ok,
)
from protocol.rates import StoreRates
from protocol.store import MAX_MAILBOXES, StoreObject

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.mail")
MAIL_POLL_SECONDS = 60.0
PURGE_SECONDS = 600.0
SEND_WORKERS = 8
HOLD_SEARCH_SECONDS = 10.0  # the longest a send looks for holders beyond its connections
QUICK_WORK_BITS = 16  # proof of work this small is solved in a thread, not a process
MAIL_IDLE_SECONDS = 5.0  # the outbox looks for due letters at least this often
SEEN_KEEP = MAIL_TTL + 86400  # received ids are kept past any envelope's life
CLOCK_SKEW = 3600  # a letter may claim to be this much from the future
CHAT_BURST, CHAT_REFILL_S = 30.0, 1.0

MAILBOX_SECONDS = 600.0  # how often a node reviews the mailboxes it names in its profile

LetterHandler = Callable[[Letter], Awaitable[None]]
ProfileOf = Callable[[str], Awaitable[StoreObject | None]]
# (our letters the receipt changed, "delivered" or "read", the receipt letter or None when a
# direct delivery was acknowledged)
ReceiptHook = Callable[[list[mail_store.OutRow], str, Letter | None], Awaitable[None]]


class MailService(Service):
    name = "mail"

    def __init__(self, core: NodeCore) -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.handlers: dict[str, LetterHandler] = {RECEIPT: self._on_receipt}
        # set by the runner from the market: a peer's signed profile (its addresses and the
        # mailboxes it named), and publishing the mailboxes we name in ours
        self.profile_of: ProfileOf | None = None
        self.cached_profile_of: ProfileOf | None = None  # the copy held here, no lookup
        self.name_mailboxes: Callable[[list[str]], Awaitable[None]] | None = None
        self.mailboxes: list[str] = []
        self.receipt_hooks: list[ReceiptHook] = []
        self.outbox: Outbox[mail_store.OutRow] = Outbox(
            core, "mail", self._due, self._next_due, lambda row: row.id, self._send_one,
            SEND_WORKERS, MAIL_IDLE_SECONDS)
        self._fetching: set[str] = set()
        self._fetch_again: set[str] = set()
        self.received = 0
        self.fetched = 0
        self.held_for_others = 0  # envelopes this node took to hold for their recipients
        # chat letters delivered directly, per sender (the sender retries what is refused)
        self._chat_rates = StoreRates(10_000, CHAT_BURST, CHAT_REFILL_S)

    # ------------------------------------------------------------------ lifecycle
    def info(self) -> dict[str, Any]:
        return {"received": self.received, "fetched_from_holders": self.fetched,
                "held_for_others": self.held_for_others}

    async def start(self) -> None:
        self.core.host.serve(MAIL_PROTOCOL, self.handle_request, MAX_REQUEST)
        self.core.on_new_peer(self._peer_up)
        self.core.spawn(self.outbox.run(), "mail outbox")
        self.core.spawn(self._poll_loop(), "mail poll")
        self.core.spawn(self._purge_loop(), "mail purge")
        self.core.spawn(self._mailbox_loop(), "mailboxes")

    async def stats(self) -> dict[str, int]:
        return await self.db.read(mail_store.mailbox_stats)

    # ------------------------------------------------------------------ sending
    async def send(self, recipient: str, kind: str, data: dict[str, Any],
                   ref: str | None = None, meta: dict[str, Any] | None = None,
                   letter_id: str | None = None,
                   also: Callable[[sqlite3.Connection, str, int], None] | None = None) -> str:
        """Seal a letter to ``recipient`` and queue it; stored (with ``also(conn, id, now)``'s
        writes, in the same transaction) before this returns."""
        letter_id = letter_id or secrets.token_hex(16)
        now = self.core.now()
        letter = await self.core.cpu(Letter.create, self.core.identity, letter_id, recipient,
                                     now, kind, data)
        env = await self.core.cpu(seal, letter, now + MAIL_TTL)
        lid = letter_id

        def write(conn: sqlite3.Connection) -> None:
            queued = mail_store.queue_letter(conn, env, recipient, kind, ref, meta or {}, now,
                                             time.time())
            if queued and also is not None:
                also(conn, lid, now)

        await self.db.write(write)
        self.outbox.wake()
        return letter_id

    async def letter(self, letter_id: str) -> mail_store.OutRow | None:
        """A letter of ours, by id (while we keep it)."""
        return await self.db.read(partial(mail_store.get_out, letter_id=letter_id))

    async def letters_about(self, ref: str) -> list[mail_store.OutRow]:
        """Our letters about ``ref`` (an order id), oldest first."""
        return await self.db.read(partial(mail_store.out_for_ref, ref=ref))

    async def _due(self) -> list[mail_store.OutRow]:
        return await self.db.read(partial(mail_store.due, now=time.time(),
                                          now_s=self.core.now()))

    async def _next_due(self) -> float | None:
        return await self.db.read(partial(mail_store.next_due, now_s=self.core.now()))

    async def _send_one(self, row: mail_store.OutRow) -> None:
        """Deliver directly; when the recipient is not connected to us (behind a NAT it may
        not be reachable at all), have holders take the letter at the same time, rather than
        after the direct attempt timed out: a holder the recipient is connected to tells it
        at once. A recipient we reach only through a relay is treated the same way: a relayed
        connection can stop answering (py-libp2p 0.8.1), and the holders are the path that
        does not depend on it."""
        host = self.core.host
        direct_only = host.usable(row.recipient) and not host.is_relayed(row.recipient)
        if direct_only or len(row.held_by) >= HOLDERS:
            if not await self._direct(row) and len(row.held_by) < HOLDERS:
                await self._hold(row)
            return
        if self.core.host.hopeless(row.recipient):
            # a dial to it runs already or failed lately: holders only, try directly later
            await self.db.write(partial(mail_store.attempt_failed, letter_id=row.id,
                                        error="not reachable directly lately",
                                        now=time.time()))
            await self._hold(row)
            return
        await asyncio.gather(self._direct(row), self._hold(row))

    async def _tell_waiting(self, recipient: str) -> None:
        try:
            parse_ok(await self.core.host.request(recipient, MAIL_PROTOCOL, make_waiting(),
                                                  1024))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("telling %s its mail is waiting: %s", recipient[:12], exc)

    async def _direct(self, row: mail_store.OutRow) -> bool:
        connected = self.core.host.usable(row.recipient)
        if not connected:
            self.core.host.dials.begin(row.recipient)  # from the address lookup on
        try:
            return await self._direct_send(row)
        finally:
            if not connected:
                self.core.host.dials.end(row.recipient)

    async def _direct_send(self, row: mail_store.OutRow) -> bool:
        try:
            addrs = await self._addresses(row.recipient)
            parse_ok(await self.core.host.request(row.recipient, MAIL_PROTOCOL,
                                                  make_deliver(row.envelope), 1024,
                                                  addrs or None))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("mail %s to %s: %s", row.id[:8], row.recipient[:12], exc)
            await self.db.write(partial(mail_store.attempt_failed, letter_id=row.id, error=str(exc),
                                        now=time.time()))
            return False
        changed = await self.db.write(partial(mail_store.mark, ids=[row.id],
                                              sender_of_receipt=row.recipient,
                                              status="delivered", now=self.core.now()))
        await self._receipts(changed, "delivered", None)
        return True

    async def _hold(self, row: mail_store.OutRow) -> None:
        """Have ``HOLDERS`` peers hold the envelope: first the mailboxes the recipient named
        and the peers we are connected to (no lookup: a recipient behind a NAT is usually
        connected to one of them, which then tells it at once), then, when none of them took
        it or at a later attempt, the peers closest to the recipient in the DHT."""
        held = list(row.held_by)
        refused: set[str] = {self.me, row.recipient, *held}
        profile = await self._profile(row.recipient, cached=True)
        mailboxes = profile.mailboxes if profile is not None else []
        held = await self._hold_with(row, self.core.peers(), mailboxes, held, refused)
        if not held or (row.held_by and len(held) < HOLDERS):
            # nobody we know took it, or a later attempt: look further (a DHT lookup may
            # wait on peers that cannot be dialed, so the first attempt that found a holder
            # among our connections leaves it for the next)
            try:
                async with asyncio.timeout(HOLD_SEARCH_SECONDS):  # a sender is not tied up
                    if profile is None:
                        profile = await self._profile(row.recipient)
                        mailboxes = profile.mailboxes if profile is not None else []
                    candidates = await self.core.host.closest_peers(row.recipient,
                                                                    HOLDERS * 3)
                    held = await self._hold_with(row, candidates + self.core.peers(),
                                                 mailboxes, held, refused)
            except TimeoutError:
                log.debug("looking for holders of %s took too long", row.id[:8])
        if held != row.held_by:
            await self.db.write(partial(mail_store.set_held, letter_id=row.id, holders=held,
                                        done=row.kind == RECEIPT, now=self.core.now()))
            self.core.events.publish(MailHeld(row.id, row.recipient, row.kind, row.ref or "",
                                              len(set(held))))

    async def _hold_with(self, row: mail_store.OutRow, candidates: list[str],
                         mailboxes: list[str], held: list[str],
                         refused: set[str]) -> list[str]:
        held = list(held)
        for _ in range(HOLDERS * 3):  # bounded: each round asks new peers only
            picks = pick_holders(candidates, row.recipient, refused, HOLDERS - len(held),
                                 mailboxes)
            if not picks:
                break
            for peer in picks:
                refused.add(peer)
                try:
                    await self._ask_to_hold(peer, row.envelope)
                    held.append(peer)
                except (P2PError, RemoteProtocolError) as exc:
                    log.debug("holder %s refused mail %s: %s", peer[:12], row.id[:8], exc)
            if len(held) >= HOLDERS:
                break
        return held

    async def _ask_to_hold(self, peer: str, env: Envelope) -> None:
        """Ask ``peer`` to hold ``env``, with the proof of work it asks (computed off the
        loop, in a worker process); RemoteProtocolError if it refuses."""
        bits = hold_work_bits(0, 0, env.size)
        for _ in range(2):  # our estimate, then what the holder asks for
            work = await self._solve(peer, env, bits)
            resp = await self.core.host.request(peer, MAIL_PROTOCOL, make_hold(env, work),
                                                1024)
            asked = work_asked(resp)
            if asked is None or asked <= bits:
                parse_ok(resp)
                return
            bits = asked
        raise RemoteProtocolError(f"holder {peer[:12]} asks for more work than it said")

    async def _solve(self, holder: str, env: Envelope, bits: int) -> bytes:
        """The proof of work: a little in a thread (milliseconds), more in a worker process
        (the pool takes a moment to start)."""
        if bits <= QUICK_WORK_BITS:
            return await self.core.cpu(solve_work, holder, env, bits)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.core.workers(), solve_work, holder, env, bits)

    async def _profile(self, peer: str, cached: bool = False) -> StoreObject | None:
        """A peer's signed profile: the copy held here (``cached``), or a fresh lookup."""
        lookup = self.cached_profile_of if cached else self.profile_of
        if lookup is None:
            return None
        try:
            return await lookup(peer)
        except (TorvError, P2PError):
            return None

    async def _addresses(self, peer: str) -> list[str]:
        if peer in self.core.peers():
            return []
        known = self.core.peer_addrs(peer)
        profile = await self._profile(peer)
        listed = list(profile.body.get("addrs", [])) if profile is not None else []
        return listed + [a for a in known if a not in listed]

    # ------------------------------------------------------------------ serving
    async def handle_request(self, peer: str, raw: object) -> dict[str, Any]:
        try:
            op, arg = parse_request(raw)
            if op == "deliver":
                env: Envelope = arg
                letter = await self.core.cpu(open_envelope, env, self.core.identity)
                if letter.sender != peer:
                    raise RemoteProtocolError("a letter is delivered by its sender (others "
                                              "hold it)")
                if letter.kind == CHAT and not self._chat_rates.allow(peer, CHAT,
                                                                      time.monotonic()):
                    return {"error": "slow down: too many chat messages (try again later)"}
                await self.receive(letter)
                return {"ok": True}
            if op == "hold":
                env, work = arg
                now = self.core.now()
                if env.to == self.me:
                    raise RemoteProtocolError("deliver a letter for us, do not ask us to hold "
                                              "it")
                if not now < env.expires <= now + MAIL_TTL + CLOCK_SKEW:
                    raise RemoteProtocolError("the envelope's expiry must be within 14 days")
                total, for_them = await self.db.read(partial(mail_store.load, recipient=env.to))
                bits = hold_work_bits(total, for_them, env.size)
                if not await self.core.cpu(work_ok, self.me, env, work, bits):
                    return {"error": f"work: {bits} bits of proof of work needed",
                            "work": bits}
                try:
                    await self.db.write(partial(mail_store.hold, env=env, storer=peer, now=now))
                except mail_store.QuotaExceeded as exc:
                    return {"error": str(exc)}
                self.held_for_others += 1
                if env.to in self.core.peers():  # the recipient is here: tell it now
                    self.core.spawn(self._tell_waiting(env.to), f"waiting {env.to[-6:]}")
                return {"ok": True, "expires": env.expires}
            if op == "waiting":  # a holder says it has mail for us: take it now
                self.core.spawn(self.fetch_from(peer), f"fetch {peer[-6:]}")
                return {"ok": True}
            if op == "fetch":
                envs, nxt = await self.db.read(partial(
                    mail_store.held_for, recipient=peer, after=arg, now=self.core.now(),
                    limit=MAX_FETCH, max_bytes=MAX_FETCH_BYTES))
                return {"envelopes": [e.to_value() for e in envs], "next": nxt}
            removed = await self.db.write(partial(mail_store.drop_held, recipient=peer, ids=arg))
            return {"ok": True, "removed": removed}
        except RemoteProtocolError as exc:
            self.core.reject("mail", str(exc))
            return {"error": str(exc)[:200]}

    # ------------------------------------------------------------------ receiving
    async def receive(self, letter: Letter, via_holder: bool = False) -> bool:
        """Handle a verified letter to us once; False if we had it already."""
        now = self.core.now()
        if letter.created > now + CLOCK_SKEW or letter.created + MAIL_TTL < now:
            raise RemoteProtocolError("the letter is outside its 14 days")
        if await self.db.read(partial(mail_store.was_seen, letter_id=letter.id,
                                      sender=letter.sender)):
            return False
        handler = self.handlers.get(letter.kind)
        if handler is None:
            raise RemoteProtocolError(f"this node takes no {letter.kind} letters")
        await handler(letter)
        new = await self.db.write(partial(mail_store.seen, letter_id=letter.id,
                                          sender=letter.sender, now=now))
        if new:
            self.received += 1
            if via_holder and letter.kind != RECEIPT:
                await self.send(letter.sender, RECEIPT, {"of": [letter.id],
                                                         "status": "delivered"})
        return new

    async def _on_receipt(self, letter: Letter) -> None:
        data = letter.data
        changed = await self.db.write(partial(mail_store.mark, ids=list(data["of"]),
                                              sender_of_receipt=letter.sender,
                                              status=str(data["status"]), now=self.core.now()))
        await self._receipts(changed, str(data["status"]), letter)

    async def _receipts(self, rows: list[mail_store.OutRow], status: str,
                        letter: Letter | None) -> None:
        for hook in self.receipt_hooks:
            try:
                await hook(rows, status, letter)
            except TorvError as exc:
                log.warning("a receipt hook failed: %s", exc)

    async def fetch_from(self, peer: str) -> int:
        """Take the mail ``peer`` holds for us; returns how many letters were new. Asked
        while a fetch from that peer runs, it fetches once more when that one ends (a letter
        may have come in behind the page already read)."""
        if peer == self.me:
            return 0
        if peer in self._fetching:
            self._fetch_again.add(peer)
            return 0
        new = 0
        for _ in range(10):  # bounded: a peer saying "waiting" without end gets ten rounds
            self._fetch_again.discard(peer)
            new += await self._fetch_round(peer)
            if peer not in self._fetch_again:
                break
        return new

    async def _fetch_round(self, peer: str) -> int:
        self._fetching.add(peer)
        new, after = 0, None
        try:
            for _ in range(1000):  # bounded: 1000 pages of MAX_FETCH
                resp = await self.core.host.request(peer, MAIL_PROTOCOL, make_fetch(after),
                                                    MAX_RESPONSE)
                envs, after = parse_fetched(resp)
                done: list[str] = []
                for env in envs:
                    try:
                        letter = await self.core.cpu(open_envelope, env, self.core.identity)
                        if letter.id != env.id:
                            raise RemoteProtocolError("mismatched envelope")
                        new += await self.receive(letter, via_holder=True)
                    except RemoteProtocolError as exc:
                        self.core.reject("mail", f"held letter from {peer[:12]}: {exc}")
                    done.append(env.id)
                if done:
                    parse_ok(await self.core.host.request(peer, MAIL_PROTOCOL, make_ack(done),
                                                          1024))
                if after is None:
                    break
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("fetching mail from %s: %s", peer[:12], exc)
        finally:
            self._fetching.discard(peer)
        if new:
            self.fetched += new
            log.info("%d letter(s) for us from holder %s", new, peer[:12])
        return new

    async def _peer_up(self, peer: str) -> None:
        if await self.db.write(partial(mail_store.retry_now, recipient=peer, now=time.time())):
            self.outbox.wake()
        await self.fetch_from(peer)

    async def _poll_loop(self) -> None:
        """Now and then, look for holders of our mail beyond the peers we meet anyway: the
        mailboxes we named, and the peers closest to us."""
        while True:
            for _ in range(60):  # the first look as soon as we have a peer (bounded: 30 s)
                if self.core.peers():
                    break
                await asyncio.sleep(0.5)
            closest = await self.core.host.closest_peers(self.me, HOLDERS * 2)
            for peer in dict.fromkeys([*self.mailboxes, *closest]):
                if peer != self.me:
                    await self.fetch_from(peer)
            await asyncio.sleep(MAIL_POLL_SECONDS)

    async def _mailbox_loop(self) -> None:
        """Name in our profile the peers that hold our mail: our bootstrap peers and the peers
        we have known longest, chosen by us (a peer that grinds ids close to ours cannot make
        itself our only holder)."""
        for _ in range(120):  # bounded: until we have a peer (60 s)
            if self.core.peers():
                break
            await asyncio.sleep(0.5)
        while True:
            chosen = await self._choose_mailboxes()
            if chosen and chosen != self.mailboxes:
                self.mailboxes = chosen
                if self.name_mailboxes is not None:
                    await self.name_mailboxes(chosen)
            await asyncio.sleep(MAILBOX_SECONDS)

    async def _choose_mailboxes(self) -> list[str]:
        bootstrap = [a.rsplit("/p2p/", 1)[1] for a in self.core.config.bootstrap
                     if "/p2p/" in a]
        known = await self.core.known_peer_ids(MAX_MAILBOXES * 4)
        keep = [m for m in self.mailboxes if m in known or m in bootstrap]  # stay while seen
        pool = [p for p in dict.fromkeys([*keep, *bootstrap, *known]) if p != self.me]
        return pool[:MAX_MAILBOXES]

    async def _purge_loop(self) -> None:
        while True:
            now = self.core.now()
            dropped = await self.db.write(partial(mail_store.purge, now=now,
                                                  seen_before=now - SEEN_KEEP))
            if dropped:
                log.info("dropped %d expired letter(s) held for others", dropped)
            await asyncio.sleep(PURGE_SECONDS)
