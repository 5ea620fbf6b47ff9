"""How the community room's objects look in the API (JSON-native values only)."""

from __future__ import annotations

from typing import Any

from node.community.store import Proposal
from protocol import markets as mk


def market_json(head: mk.Descriptor, joined: bool, log_length: int) -> dict[str, Any]:
    b = head.body
    return {"market": head.market_id, "seq": head.seq, "hash": head.hash,
            "name": b["name"], "description": b["description"], "region": b["region"],
            "rules": b["rules"], "stewards": list(b["stewards"]), "threshold": b["threshold"],
            "admission": b["admission"], "moderators": list(b["moderators"]),
            "members": list(b["members"]), "origin": b["origin"], "joined": joined,
            "log": log_length}


def entry_json(e: mk.LogEntry, deciders: dict[str, mk.Deciders]) -> dict[str, Any]:
    b = e.body
    by = deciders.get(str(b["descriptor"]))
    signed = sorted(mk.log_signers(e, by.stewards)) if by else []
    return {"seq": e.seq, "hash": e.hash, "action": b["action"], "vendor": b["vendor"],
            "listing": b["listing"], "reason": b["reason"], "time": b["time"],
            "descriptor": b["descriptor"], "signed_by": signed}


def change_of(item: mk.Descriptor | mk.LogEntry, head: mk.Descriptor | None) -> dict[str, Any]:
    """What a proposal changes: a log entry's action, or the descriptor fields that differ
    from the market's newest (members as admitted and expelled)."""
    if isinstance(item, mk.LogEntry):
        b = item.body
        return {"action": b["action"], "vendor": b["vendor"], "listing": b["listing"],
                "reason": b["reason"]}
    if head is None or item.seq == 1:
        return {"found": item.body["name"]}
    out: dict[str, Any] = {}
    for key in mk.CHANGEABLE:
        if item.body[key] != head.body[key]:
            out[key] = item.body[key]
    before, after = set(head.body["members"]), set(item.body["members"])
    if after - before:
        out["admit"] = sorted(after - before)
    if before - after:
        out["expel"] = sorted(before - after)
    return out


def proposal_json(p: Proposal, head: mk.Descriptor | None, deciders: mk.Deciders | None,
                  me: str) -> dict[str, Any]:
    signers = sorted(p.item.sigs)
    return {"proposal": p.hash, "market": p.market, "kind": p.kind,
            "name": head.body["name"] if head else (
                p.item.body["name"] if isinstance(p.item, mk.Descriptor) else ""),
            "change": change_of(p.item, head), "proposer": p.proposer, "created": p.created,
            "signed_by": signers, "needed": deciders.threshold if deciders else 0,
            "signed_by_you": me in signers, "current": deciders is not None}
