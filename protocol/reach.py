"""Reachability: can peers dial us? (``/torv/reach/1.0.0``; docs/protocol.md "Reachability").

A node asks a few of the peers it is connected to to open a TCP connection back to it, on its
listen ports, at the address they see its connection come from. A peer dials nothing but that
address (the requester's own: no one can aim a peer's dials at a third party) and only the
ports asked, at most ``MAX_PORTS``, and answers which ones it reached. What the node concludes
from the answers is ``verdict``: the majority of the latest answer of each peer asked.

Sans-I/O: the messages, their checks and the verdict; the dialling is in node/core/reach.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fields as f
from .errors import RemoteProtocolError

REACH_PROTOCOL = "/torv/reach/1.0.0"
MAX_PORTS = 4
MAX_MESSAGE = 1024
PUBLIC, PRIVATE, UNKNOWN = "public", "private", "unknown"
STATUSES = (PUBLIC, PRIVATE, UNKNOWN)


def make_dialback(ports: list[int]) -> dict[str, Any]:
    """Ask a peer to dial us back on ``ports`` (1..MAX_PORTS distinct TCP ports)."""
    return {"op": "dialback", "ports": sorted(set(ports))[:MAX_PORTS]}


def parse_dialback(raw: Any) -> list[int]:
    """The ports a dial-back request names (RemoteProtocolError if it is malformed)."""
    err = RemoteProtocolError
    if not isinstance(raw, dict) or raw.get("op") != "dialback":
        raise err("a reach request is {op: dialback, ports}")
    f.exact_keys(err, "request", raw, {"op", "ports"})
    ports = raw["ports"]
    if not isinstance(ports, list) or not 1 <= len(ports) <= MAX_PORTS:
        raise err(f"ports: 1 to {MAX_PORTS} TCP ports")
    out = [f.integer(err, "ports", p, 1, 65535) for p in ports]
    if len(set(out)) != len(out):
        raise err("ports: each port once")
    return out


def make_answer(reached: list[int], observed: str) -> dict[str, Any]:
    return {"reached": sorted(reached), "observed": observed}


def parse_answer(raw: Any, asked: list[int]) -> tuple[list[int], str]:
    """(ports reached, the address the peer saw us at), checked against what we asked."""
    err = RemoteProtocolError
    if isinstance(raw, dict) and "error" in raw:
        raise err(f"the peer refused: {str(raw['error'])[:100]}")
    if not isinstance(raw, dict):
        raise err("a reach answer is {reached, observed}")
    f.exact_keys(err, "answer", raw, {"reached", "observed"})
    reached = raw["reached"]
    if not isinstance(reached, list) or len(reached) > MAX_PORTS:
        raise err("reached: a list of the ports asked")
    ports = [f.integer(err, "reached", p, 1, 65535) for p in reached]
    if not set(ports) <= set(asked) or len(set(ports)) != len(ports):
        raise err("reached: only ports asked, each once")
    observed = f.text(err, "observed", raw["observed"], 45, 2)
    try:
        ipaddress.ip_address(observed)
    except ValueError:
        raise err("observed: an IP address") from None
    return ports, observed


def verdict(answers: Mapping[str, bool]) -> str:
    """Our status from the latest answer of each peer asked (peer -> it reached us): public
    when more peers reached us than did not, private when more did not, unknown on a tie or
    with no answers. One lying peer among honest ones cannot flip it."""
    yes = sum(1 for v in answers.values() if v)
    no = len(answers) - yes
    if yes > no:
        return PUBLIC
    if no > yes:
        return PRIVATE
    return UNKNOWN


def seen_at(observed: Mapping[str, str]) -> list[str]:
    """The IPs to tell a peer we are seen at from outside (a hole punch), from the latest
    answer of each peer asked (peer -> the IP it saw our connection come from): the one most
    peers saw first (on a tie the smaller, so the choice is stable), then any other that more
    than one peer saw (another address family, a second uplink). A lying peer among honest
    ones is outvoted; a liar could only make our own punch miss, never aim it at anyone
    (what we dial comes from the other side's CONNECT)."""
    counts: dict[str, int] = {}
    for ip in observed.values():
        counts[ip] = counts.get(ip, 0) + 1
    ranked = sorted(counts, key=lambda ip: (-counts[ip], ip))
    return ranked[:1] + [ip for ip in ranked[1:] if counts[ip] > 1]


def public_addr(observed: str, port: int) -> str:
    """The multiaddr a peer reached us at."""
    kind = "ip6" if ":" in observed else "ip4"
    return f"/{kind}/{observed}/tcp/{port}"


@dataclass
class Reachability:
    """What ``node.info.reachability`` says (and the ``node.reachability`` event)."""

    status: str = UNKNOWN
    public_addrs: list[str] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)
    direct_upgrades: int = 0
    hole_punch_tried: int = 0
    hole_punch_succeeded: int = 0
    checked_with: int = 0  # peers whose answers the status rests on

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "public_addrs": list(self.public_addrs),
                "relays": list(self.relays), "direct_upgrades": self.direct_upgrades,
                "hole_punch": {"tried": self.hole_punch_tried,
                               "succeeded": self.hole_punch_succeeded},
                "checked_with": self.checked_with}
