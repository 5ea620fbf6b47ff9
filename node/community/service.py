"""Community markets on the node (issue 19): create, join and leave markets; stewards propose
changes (a new descriptor, or a moderation log entry) and sign each other's proposals through
the mail the node already delivers, so they need never be online together; vendors apply to
approved markets. What a market shows is searchable (``listing.search {market}``).

Co-signing: a steward's node signs its own proposal and sends it, with the signatures gathered
so far, as a ``market`` letter to the stewards who have not signed. A steward's node that
receives one keeps the signatures that verify and queues it for its user (``market.queue``,
event ``market.proposal``); ``market.sign`` adds its signature and sends it on the same way.
The node whose signature completes the threshold takes the step, gossips it on the market's
topic and sends the finished step to the other stewards, whose queues then clear. Nothing a
letter carries is believed: every signature is checked against the stewards who decide.
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from node.community import store
from node.community.chains import MarketChains, MarketPort
from node.community.views import entry_json, market_json, proposal_json
from node.core.events import MarketApplication, MarketChanged, MarketProposal
from node.core.services import NotFound, Service
from protocol import markets as mk
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.mail import MARKET, Letter
from protocol.market_wire import (
    APPLY,
    MARKETS_PROTOCOL,
    MAX_REQUEST,
    PROPOSAL,
    item_from_value,
    make_invite,
    read_invite,
)

if TYPE_CHECKING:
    from node.core.node import NodeCore
    from node.mail.service import MailService

class CommunityService(Service):
    name = "markets"
    rpc_errors: ClassVar[dict[type[BaseException], int]] = {}

    def __init__(self, core: NodeCore, mail: MailService, market: MarketPort) -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.mail = mail
        self.chains = MarketChains(core, market)
        mail.handlers[MARKET] = self._on_letter

    # ------------------------------------------------------------------ lifecycle
    def info(self) -> dict[str, Any]:
        c = self.chains
        return {"known": len(c.heads), "joined": len(c.joined), "steps_taken": c.applied}

    async def start(self) -> None:
        await self.chains.load()
        self.core.host.serve(MARKETS_PROTOCOL, self.chains.serve, MAX_REQUEST)
        for market in sorted(self.chains.joined):
            await self.chains.subscribe(market)
        for market in self.chains.heads:
            await self.chains._publish_scope(market)
        self.chains.market.carry_markets(sorted(self.chains.joined))
        self.core.on_new_peer(self._peer_up)

    async def _peer_up(self, peer: str) -> None:
        """A peer connected: catch up on the markets we joined (a steward's change made
        while we were away)."""
        for market in sorted(self.chains.joined):
            await self.chains.catch_up_with(market, peer)

    # ------------------------------------------------------------------ reading
    def _head(self, market: str) -> mk.Descriptor:
        head = self.chains.heads.get(market)
        if head is None:
            raise NotFound(f"no market {market[:16]}… known here (market.join finds it)")
        return head

    async def get(self, market: str) -> dict[str, Any]:
        head = self.chains.heads.get(market)
        if head is None and not await self.chains.find(market, self.core.peers()):
            raise NotFound(f"no market {market[:16]}… here or at the connected peers")
        return self._view(market)

    def _view(self, market: str) -> dict[str, Any]:
        tail = self.chains.tails.get(market)
        return market_json(self._head(market), market in self.chains.joined,
                           tail.seq if tail else 0)

    async def markets(self) -> list[dict[str, Any]]:
        views = [self._view(m) for m in self.chains.heads]
        return sorted(views, key=lambda v: (not v["joined"], v["name"].lower(), v["market"]))

    async def log(self, market: str, limit: int) -> list[dict[str, Any]]:
        self._head(market)
        entries = await self.db.read(partial(store.log, market=market))
        return [entry_json(e, self.chains.deciders[market]) for e in entries[-limit:]]

    async def queue(self, market: str | None) -> dict[str, Any]:
        """What waits for this steward: proposals it has not signed, and applications."""
        props = await self.db.read(partial(store.proposals, market=market))
        apps = await self.db.read(partial(store.applications, market=market))
        return {
            "proposals": [proposal_json(p, self.chains.heads.get(p.market),
                                        self._deciders_of(p.item), self.me) for p in props],
            "applications": [{"market": m, "vendor": v, "note": n, "created": t,
                              "invited_by": i or None} for m, v, n, t, i in apps],
        }

    async def moderators_for(self, markets: list[str], vendor: str, listing_id: str
                             ) -> dict[str, list[str]]:
        """The moderators of the markets among ``markets`` (a listing's) that show the
        vendor's listing, each with the names of those markets (checkout offers them first)."""
        out: dict[str, list[str]] = {}
        for market in markets:
            head = self.chains.heads.get(market)
            if head is None:
                continue
            entries = await self.db.read(partial(store.log, market=market))
            if not mk.shows(head, entries, vendor, listing_id):
                continue
            for moderator in head.body["moderators"]:
                out.setdefault(moderator, []).append(str(head.body["name"]))
        return out

    # ------------------------------------------------------------------ joining
    async def create(self, name: str, stewards: list[str] | None, threshold: int,
                     admission: str, description: str, region: str, rules: str,
                     moderators: list[str], members: list[str],
                     origin: mk.Descriptor | None = None) -> dict[str, Any]:
        """Found a market (or fork one: ``origin``), signed by this node as a steward; with
        a threshold above 1 the other founding stewards sign it first (``market.queue``)."""
        stewards = sorted(set(stewards or [self.me]))
        if self.me not in stewards:
            raise LocalProtocolError("you are one of the founding stewards", field="stewards")
        if origin is not None:
            d = mk.fork(origin, stewards, threshold, name)
        else:
            d = mk.found(name, stewards, threshold, admission, description, region, rules,
                         moderators, members)
        d = d.signed_by(self.core.identity)
        result = await self._gathered(d, self.me)
        if d.market_id in self.chains.heads:
            await self.join(d.market_id)
        return result

    async def join(self, market: str, peer: str | None = None) -> dict[str, Any]:
        """Follow a market: find it (at ``peer``, else the connected peers), keep its chain,
        take its gossip, and search in it."""
        if market not in self.chains.heads:
            peers = [peer] if peer else self.core.peers()
            if not await self.chains.find(market, peers):
                raise NotFound(f"no market {market[:16]}… at "
                               + ("that peer" if peer else "the connected peers"))
        await self.db.write(partial(store.join, market=market, now=self.core.now()))
        self.chains.joined.add(market)
        self.chains.market.carry_markets(sorted(self.chains.joined))
        await self.chains.subscribe(market)
        self._changed(market)
        return self._view(market)

    def _changed(self, market: str) -> None:
        head = self._head(market)
        self.core.events.publish(MarketChanged(market, head.seq, str(head.body["name"])))

    async def leave(self, market: str) -> dict[str, Any]:
        """Stop following a market (its chain stays known; your listings stay yours)."""
        self._head(market)
        await self.db.write(partial(store.leave, market=market))
        self.chains.joined.discard(market)
        self.chains.market.carry_markets(sorted(self.chains.joined))
        await self.chains.unsubscribe(market)
        self._changed(market)
        return self._view(market)

    async def invite(self, market: str) -> dict[str, Any]:
        """An invitation code for one vendor: when it applies with it, this steward's node
        proposes and signs its admission by itself (the other stewards still decide)."""
        head = self._head(market)
        if self.me not in head.stewards:
            raise LocalProtocolError("only a steward of the market invites", field="market")
        if head.body["admission"] != "approved":
            raise LocalProtocolError("an open market takes any vendor: no need to invite",
                                     field="market")
        nonce = secrets.token_hex(16)
        await self.db.write(partial(store.put_invite, nonce=nonce, market=market,
                                    now=self.core.now()))
        return {"market": market, "code": make_invite(self.core.identity, market, nonce)}

    async def apply(self, market: str, note: str, invite: str | None = None
                    ) -> dict[str, Any]:
        """Ask an approved market's stewards to admit you (a letter to each), with the
        invitation code a steward gave you."""
        head = self._head(market)
        data: dict[str, Any] = {"op": APPLY, "market": market, "note": note}
        if invite is not None:
            data["invite"] = read_invite(invite, market)
        if head.body["admission"] != "approved":
            raise LocalProtocolError("an open market takes any vendor: no need to apply",
                                     field="market")
        if self.me in head.body["members"]:
            raise LocalProtocolError("you are a member of this market already", field="market")
        to = [s for s in head.stewards if s != self.me]
        for steward in to:
            await self.mail.send(steward, MARKET, data)
        return {"market": market, "sent_to": to}

    # ------------------------------------------------------------------ proposing, signing
    async def propose(self, market: str, changes: dict[str, Any], admit: list[str],
                      expel: list[str], entry: dict[str, Any] | None) -> dict[str, Any]:
        """A steward proposes a change: descriptor fields, members admitted or expelled, or
        (``entry``) a moderation log entry; signed by this node, sent to the other stewards."""
        head = self._head(market)
        if self.me not in head.stewards:
            raise LocalProtocolError("only a steward of the market proposes its changes",
                                     field="market")
        item: mk.Descriptor | mk.LogEntry
        if entry is not None:
            if changes or admit or expel:
                raise LocalProtocolError("a proposal is a log entry or a descriptor change, "
                                         "not both", field="action")
            tail = self.chains.tails.get(market)
            item = mk.next_entry(tail, head, entry["action"], entry["vendor"],
                                 entry.get("listing") or "", entry["reason"], self.core.now())
        else:
            members = set(head.body["members"])
            if (admit or expel) and head.body["admission"] != "approved":
                raise LocalProtocolError("an open market has no members to admit or expel",
                                         field="admit")
            if not changes and not admit and not expel:
                raise LocalProtocolError("propose at least one change", field="market")
            item = mk.propose(head, **changes, members=sorted((members | set(admit))
                                                              - set(expel)))
        return await self._gathered(item.signed_by(self.core.identity), self.me)

    async def sign(self, proposal: str) -> dict[str, Any]:
        """Add your signature to a proposal in your queue (and send it on)."""
        p = await self.db.read(partial(store.proposal, h=proposal))
        if p is None:
            raise NotFound("no such proposal waits here (market.queue lists them)")
        deciders = self._deciders_of(p.item)
        if deciders is None or self.me not in deciders.stewards:
            raise LocalProtocolError("you are not one of the stewards who decide this",
                                     field="proposal")
        result = await self._gathered(p.item.signed_by(self.core.identity), p.proposer)
        await self._follow_stewarded(p.market)
        return result

    async def _follow_stewarded(self, market: str) -> None:
        """A steward's node follows the markets it stewards (a founding it co-signed)."""
        head = self.chains.heads.get(market)
        if head is not None and self.me in head.stewards and market not in self.chains.joined:
            await self.join(market)

    def _deciders_of(self, item: mk.Descriptor | mk.LogEntry) -> mk.Deciders | None:
        """The stewards whose signatures count for ``item``: a founding's own, a change's
        those of the head it follows, a log entry's those of the descriptor it names."""
        if isinstance(item, mk.Descriptor):
            if item.seq == 1:
                return mk.Deciders.of(item)
            head = self.chains.heads.get(item.market_id)
            if head is None or item.seq != head.seq + 1 or item.body["prev"] != head.hash:
                return None
            return mk.Deciders.of(head)
        return self.chains.deciders.get(item.market_id, {}).get(str(item.body["descriptor"]))

    async def _gathered(self, item: mk.Descriptor | mk.LogEntry, proposer: str,
                        letter: bool = False) -> dict[str, Any]:
        """Merge ``item``'s signatures with those stored for it (keeping those that verify);
        take the step once the threshold is met, else keep it queued. Our own signature
        (not a letter's) is sent on to the stewards who have not signed."""
        deciders = self._deciders_of(item)
        if deciders is None:
            raise RemoteProtocolError("the proposal follows no step this node holds")
        kind = "descriptor" if isinstance(item, mk.Descriptor) else "entry"
        stored = await self.db.read(partial(store.proposal, h=item.hash))
        sigs = {**(stored.item.sigs if stored else {}), **item.sigs}
        merged = type(item)(item.body, sigs)
        signers = await self.core.cpu(_signers, merged, deciders.stewards)
        merged = type(item)(item.body, {k: v for k, v in sigs.items() if k in signers})
        status = "proposed"
        if len(signers) >= deciders.threshold:
            if await self.chains.apply(merged):
                status = "done"
                await self.chains.announce(merged)
                if not letter:  # the steward that completes it tells the others
                    await self._send(merged, [s for s in deciders.stewards if s != self.me])
                if kind == "descriptor" and merged.seq > 1:
                    await self.db.write(partial(store.drop_applications,
                                                market=merged.market_id,
                                                vendors=list(merged.body["members"])))
            await self.db.write(partial(store.drop_proposal, h=item.hash))
        else:
            new = stored is None
            p = store.Proposal(item.hash, deciders.market_id, kind, merged,
                               stored.proposer if stored else proposer,
                               stored.created if stored else self.core.now())
            await self.db.write(partial(store.put_proposal, p=p))
            if not letter:
                await self._send(merged, [s for s in deciders.stewards
                                          if s != self.me and s not in signers])
            if new and self.me not in signers:
                self.core.events.publish(MarketProposal(deciders.market_id, item.hash, kind,
                                                        proposer))
        return {"market": deciders.market_id, "proposal": item.hash, "kind": kind,
                "status": status, "signed_by": sorted(signers),
                "needed": deciders.threshold}

    async def _send(self, item: mk.Descriptor | mk.LogEntry, to: list[str]) -> None:
        key = "descriptor" if isinstance(item, mk.Descriptor) else "entry"
        for steward in to:
            await self.mail.send(steward, MARKET, {"op": PROPOSAL,
                                                   "item": {key: item.to_value()}})

    # ------------------------------------------------------------------ letters
    async def _on_letter(self, letter: Letter) -> None:
        data = letter.data
        if data["op"] == APPLY:
            await self._on_application(letter.sender, data["market"], data["note"],
                                       data.get("invite"))
            return
        item = item_from_value(RemoteProtocolError, data["item"])
        if isinstance(item, mk.Descriptor) and item.seq > 1 and (
                item.market_id not in self.chains.heads
                or item.seq > self.chains.heads[item.market_id].seq + 1):
            await self.chains.catch_up_with(item.market_id, letter.sender)
        head = self.chains.heads.get(item.market_id)
        if isinstance(item, mk.Descriptor) and head is not None and item.seq <= head.seq:
            return  # a step already taken (the finished step, or a late copy)
        deciders = self._deciders_of(item)
        if deciders is None:
            raise RemoteProtocolError("a proposal that follows no step this node holds")
        if letter.sender not in deciders.stewards:
            raise RemoteProtocolError("a proposal from someone who is not a steward")
        if self.me not in deciders.stewards:
            raise RemoteProtocolError("a proposal sent to someone who is not a steward")
        await self._gathered(item, letter.sender, letter=True)
        await self._follow_stewarded(item.market_id)

    async def _on_application(self, vendor: str, market: str, note: str,
                              invite: dict[str, Any] | None) -> None:
        """A vendor's application: queued for this steward; with an invitation this node
        handed out (unused), its admission is proposed and signed here at once."""
        head = self.chains.heads.get(market)
        if head is None or self.me not in head.stewards:
            raise RemoteProtocolError("an application to a market this node does not steward")
        if head.body["admission"] != "approved" or vendor in head.body["members"]:
            return
        invited_by = ""
        if invite is not None and invite["by"] in head.stewards:
            invited_by = invite["by"]  # its signature was checked with the letter
        await self.db.write(partial(store.put_application, market=market, vendor=vendor,
                                    note=note, now=self.core.now(), invited_by=invited_by))
        self.core.events.publish(MarketApplication(market, vendor))
        if invited_by == self.me and await self.db.write(partial(
                store.use_invite, nonce=invite["nonce"] if invite else "", market=market,
                vendor=vendor)):
            await self.propose(market, {}, [vendor], [], None)


def _signers(item: mk.Descriptor | mk.LogEntry, stewards: list[str]) -> set[str]:
    if isinstance(item, mk.Descriptor):
        return mk.valid_signers(item, stewards)
    return mk.log_signers(item, stewards)
