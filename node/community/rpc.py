"""The market.* API methods (community markets): each checks its parameters and calls one
method of the community service."""

from __future__ import annotations

from typing import Any

from node.community.service import CommunityService
from node.core.api import (
    NETWORK_ERROR,
    NOT_FOUND,
    PEER_ID,
    Args,
    Method,
    Param,
    array,
    boolean,
    enum,
    integer,
    nullable,
    obj,
    string,
)
from protocol import markets as mk
from protocol.errors import LocalProtocolError
from protocol.market_wire import MAX_INVITE_CODE, MAX_NOTE

MARKET_ID = string(64, 64, "[0-9a-f]{64}", "must be a market id (64 hex characters)")
HASH = string(64, 64, "[0-9a-f]{64}", "must be 64 hex characters")
PEERS = array(PEER_ID, mk.MAX_STEWARDS, unique=True)
MEMBERS = array(PEER_ID, mk.MAX_MEMBERS, unique=True)
MARKET = obj({
    "market": MARKET_ID, "seq": integer(1), "hash": HASH, "name": string(),
    "description": string(), "region": string(), "rules": string(), "stewards": PEERS,
    "threshold": integer(1), "admission": enum(mk.ADMISSIONS),
    "moderators": array(PEER_ID, mk.MAX_MODERATORS), "members": MEMBERS,
    "origin": nullable(obj({"market": HASH, "descriptor": HASH}, ("market", "descriptor"))),
    "joined": boolean(), "log": integer()},
    ("market", "seq", "hash", "name", "description", "region", "rules", "stewards",
     "threshold", "admission", "moderators", "members", "origin", "joined", "log"))
STEP = obj({"market": MARKET_ID, "proposal": HASH, "kind": enum(["descriptor", "entry"]),
            "status": enum(["proposed", "done"]), "signed_by": PEERS, "needed": integer(1)},
           ("market", "proposal", "kind", "status", "signed_by", "needed"))
ENTRY = obj({"seq": integer(1), "hash": HASH, "action": enum(mk.ACTIONS), "vendor": PEER_ID,
             "listing": string(32), "reason": string(), "time": integer(),
             "descriptor": HASH, "signed_by": PEERS},
            ("seq", "hash", "action", "vendor", "listing", "reason", "time", "descriptor",
             "signed_by"))
PROPOSAL = obj({"proposal": HASH, "market": MARKET_ID, "kind": enum(["descriptor", "entry"]),
                "name": string(), "change": {"type": "object"}, "proposer": PEER_ID,
                "created": integer(), "signed_by": PEERS, "needed": integer(),
                "signed_by_you": boolean(), "current": boolean()},
               ("proposal", "market", "kind", "name", "change", "proposer", "created",
                "signed_by", "needed", "signed_by_you", "current"))
APPLICATION = obj({"market": MARKET_ID, "vendor": PEER_ID, "note": string(),
                   "created": integer(), "invited_by": nullable(PEER_ID)},
                  ("market", "vendor", "note", "created", "invited_by"))
FIELDS = {"name": string(mk.MAX_NAME, 1), "description": string(mk.MAX_DESCRIPTION),
          "region": string(mk.MAX_REGION), "rules": string(mk.MAX_RULES)}


def methods(community: CommunityService) -> list[Method]:
    async def create(p: Args) -> Any:
        return await community.create(p["name"], p["stewards"], p["threshold"],
                                      p["admission"], p["description"], p["region"],
                                      p["rules"], p["moderators"], p["members"])

    async def fork(p: Args) -> Any:
        origin = community.chains.heads.get(p["market"])
        if origin is None:
            await community.get(p["market"])
            origin = community.chains.heads[p["market"]]
        return await community.create(p["name"] or origin.body["name"], p["stewards"],
                                      p["threshold"], "", "", "", "", [], [], origin=origin)

    async def get(p: Args) -> Any:
        return await community.get(p["market"])

    async def market_list(p: Args) -> Any:
        return await community.markets()

    async def join(p: Args) -> Any:
        return await community.join(p["market"], p["peer_id"])

    async def leave(p: Args) -> Any:
        return await community.leave(p["market"])

    async def apply(p: Args) -> Any:
        return await community.apply(p["market"], p["note"], p["invite"])

    async def invite(p: Args) -> Any:
        return await community.invite(p["market"])

    async def propose(p: Args) -> Any:
        changes = {k: p[k] for k in mk.CHANGEABLE if k in p.given}
        entry = None
        if "action" in p.given:
            if "vendor" not in p.given or "reason" not in p.given:
                raise LocalProtocolError("a log entry names its vendor and a reason",
                                         field="vendor" if "vendor" not in p.given
                                         else "reason")
            entry = {k: p[k] for k in ("action", "vendor", "listing", "reason")}
        return await community.propose(p["market"], changes, p["admit"], p["expel"], entry)

    async def sign(p: Args) -> Any:
        return await community.sign(p["proposal"])

    async def queue(p: Args) -> Any:
        return await community.queue(p["market"])

    async def market_log(p: Args) -> Any:
        return await community.log(p["market"], p["limit"])

    found = (Param("name", FIELDS["name"], True),
             Param("stewards", PEERS, description="default: you alone; you are one of them"),
             Param("threshold", integer(1, mk.MAX_STEWARDS), default=1),
             Param("admission", enum(mk.ADMISSIONS), default="open"),
             *(Param(k, v, default="") for k, v in FIELDS.items() if k != "name"),
             Param("moderators", array(PEER_ID, mk.MAX_MODERATORS, unique=True), default=[]),
             Param("members", MEMBERS, default=[]))
    return [
        Method("market.create", "Found a community market, signed by you as a steward: "
               "open (any vendor) or approved (its members); with a threshold above 1 the "
               "other stewards sign it first (they find it in market.queue).",
               found, STEP, create),
        Method("market.fork", "Copy a market into a new one with other stewards; the new "
               "market names its origin, and its members and rules are kept.",
               (Param("market", MARKET_ID, True), Param("name", FIELDS["name"]),
                Param("stewards", PEERS), Param("threshold", integer(1, mk.MAX_STEWARDS),
                                                default=1)),
               STEP, fork, (NOT_FOUND,)),
        Method("market.get", "A market (from this node, else from the connected peers): its "
               "newest descriptor, whether you joined it, and its log's length.",
               (Param("market", MARKET_ID, True),), MARKET, get, (NOT_FOUND,)),
        Method("market.list", "The markets this node knows, those joined first.", (),
               array(MARKET, 10**6), market_list),
        Method("market.join", "Follow a market: find it (at peer_id, else the connected "
               "peers), keep its history, take its changes, search in it.",
               (Param("market", MARKET_ID, True), Param("peer_id", PEER_ID)), MARKET, join,
               (NOT_FOUND, NETWORK_ERROR)),
        Method("market.leave", "Stop following a market (your listings stay in your store).",
               (Param("market", MARKET_ID, True),), MARKET, leave, (NOT_FOUND,)),
        Method("market.invite", "As a steward of an approved market, make an invitation "
               "code for one vendor: when it applies with it, your node proposes and signs "
               "its admission at once.", (Param("market", MARKET_ID, True),),
               obj({"market": MARKET_ID, "code": string()}, ("market", "code")), invite,
               (NOT_FOUND,)),
        Method("market.apply", "Ask an approved market's stewards to admit you, with a note "
               "and the invitation code a steward gave you.",
               (Param("market", MARKET_ID, True), Param("note", string(MAX_NOTE), default=""),
                Param("invite", string(MAX_INVITE_CODE, 1))),
               obj({"market": MARKET_ID, "sent_to": PEERS}, ("market", "sent_to")), apply,
               (NOT_FOUND,)),
        Method("market.propose", "As a steward, propose a change: descriptor fields (name, "
               "description, region, rules, stewards, threshold, admission, moderators), "
               "members to admit or expel, or a log entry (action remove_listing, "
               "remove_member or restore_listing, with vendor, listing and reason). It is "
               "signed by you and sent to the other stewards; it takes effect once threshold "
               "of them signed.",
               (Param("market", MARKET_ID, True),
                *(Param(k, v) for k, v in FIELDS.items()),
                Param("stewards", PEERS), Param("threshold", integer(1, mk.MAX_STEWARDS)),
                Param("admission", enum(mk.ADMISSIONS)),
                Param("moderators", array(PEER_ID, mk.MAX_MODERATORS, unique=True)),
                Param("admit", MEMBERS, default=[]), Param("expel", MEMBERS, default=[]),
                Param("action", enum(mk.ACTIONS)), Param("vendor", PEER_ID),
                Param("listing", string(32, 32, "[0-9a-f]{32}", "must be a listing id"),
                      default=""),
                Param("reason", string(mk.MAX_REASON, 1))),
               STEP, propose, (NOT_FOUND,)),
        Method("market.sign", "As a steward, sign a proposal from your queue (market.queue); "
               "the signature that meets the threshold makes the change.",
               (Param("proposal", HASH, True),), STEP, sign, (NOT_FOUND,)),
        Method("market.queue", "What waits for you as a steward: proposals and applications "
               "(of one market, or all).", (Param("market", MARKET_ID),),
               obj({"proposals": array(PROPOSAL, 10**6),
                    "applications": array(APPLICATION, 10**6)},
                   ("proposals", "applications")), queue),
        Method("market.log", "A market's moderation log, oldest first (the last limit "
               "entries), each with the stewards who signed it.",
               (Param("market", MARKET_ID, True),
                Param("limit", integer(1, 10_000), default=500)),
               array(ENTRY, 10_000), market_log, (NOT_FOUND,)),
    ]
