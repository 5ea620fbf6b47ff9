"""Knowing one's own reachability (protocol/reach.py, node/core/reach.py): the messages and the
verdict as tables, two real nodes that learn they can be dialled, and a real hostile peer that
asks for dial-backs as fast as it can and with malformed requests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node.net.host_support import tcp_ports
from protocol.errors import RemoteProtocolError
from protocol.reach import (
    PRIVATE,
    PUBLIC,
    UNKNOWN,
    make_answer,
    make_dialback,
    parse_answer,
    parse_dialback,
    public_addr,
    seen_at,
    verdict,
)

from .cluster import NodeProc, start_linked_pair, wait_for

ROOT = Path(__file__).resolve().parent.parent

BAD_REQUESTS = [
    ({"op": "dialback", "ports": []}, "1 to 4"),
    ({"op": "dialback", "ports": [1, 2, 3, 4, 5]}, "1 to 4"),
    ({"op": "dialback", "ports": [0]}, "ports"),
    ({"op": "dialback", "ports": [65536]}, "ports"),
    ({"op": "dialback", "ports": ["80"]}, "ports"),
    ({"op": "dialback", "ports": [True]}, "ports"),
    ({"op": "dialback", "ports": [80, 80]}, "each port once"),
    ({"op": "dialback", "ports": [80], "addr": "/ip4/10.0.0.1/tcp/80"}, "request"),
    ({"op": "scan", "ports": [80]}, "dialback"),
    (["dialback", [80]], "dialback"),
]


@pytest.mark.parametrize(("raw", "why"), BAD_REQUESTS)
def test_malformed_dialback_requests_are_refused(raw: Any, why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        parse_dialback(raw)


def test_a_request_names_ports_only_and_round_trips() -> None:
    assert parse_dialback(make_dialback([4718, 4717, 4717])) == [4717, 4718]
    assert parse_dialback(make_dialback(list(range(1, 10)))) == [1, 2, 3, 4]


BAD_ANSWERS = [
    ({"reached": [9], "observed": "1.2.3.4"}, "only ports asked"),
    ({"reached": [80, 80], "observed": "1.2.3.4"}, "each once"),
    ({"reached": [80], "observed": "example.org"}, "IP address"),
    ({"reached": [80], "observed": "1.2.3.4\n"}, "IP address"),
    ({"reached": [80], "observed": "1.2.3.4", "extra": 1}, "answer"),
    ({"reached": "80", "observed": "1.2.3.4"}, "reached"),
    ({"error": "busy"}, "refused: busy"),
]


@pytest.mark.parametrize(("raw", "why"), BAD_ANSWERS)
def test_answers_are_checked_against_what_was_asked(raw: Any, why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        parse_answer(raw, [80, 443])


def test_a_good_answer() -> None:
    assert parse_answer(make_answer([443], "203.0.113.7"), [80, 443]) == ([443], "203.0.113.7")
    assert parse_answer(make_answer([], "2001:db8::1"), [80]) == ([], "2001:db8::1")
    assert public_addr("203.0.113.7", 443) == "/ip4/203.0.113.7/tcp/443"
    assert public_addr("2001:db8::1", 443) == "/ip6/2001:db8::1/tcp/443"


VERDICTS = [
    ({}, UNKNOWN),
    ({"a": True}, PUBLIC),
    ({"a": False}, PRIVATE),
    ({"a": True, "b": False}, UNKNOWN),
    ({"liar": True, "b": False, "c": False}, PRIVATE),  # one liar among honest peers
    ({"liar": False, "b": True, "c": True}, PUBLIC),
]


@pytest.mark.parametrize(("answers", "status"), VERDICTS)
def test_the_verdict_is_the_majority(answers: dict[str, bool], status: str) -> None:
    assert verdict(answers) == status


SEEN = [
    ({}, []),
    ({"a": "100.64.0.10"}, ["100.64.0.10"]),
    ({"a": "100.64.0.10", "b": "100.64.0.10", "liar": "203.0.113.9"}, ["100.64.0.10"]),
    ({"liar": "203.0.113.9", "b": "100.64.0.10", "c": "100.64.0.10"}, ["100.64.0.10"]),
    ({"a": "198.51.100.2", "b": "100.64.0.10"}, ["100.64.0.10"]),  # a tie: the smaller
    ({"a": "100.64.0.10", "b": "100.64.0.10", "c": "2001:db8::7", "d": "2001:db8::7",
      "e": "198.51.100.2"}, ["100.64.0.10", "2001:db8::7"]),  # two families, both confirmed
]


@pytest.mark.parametrize(("observed", "told"), SEEN)
def test_the_outside_addresses_told_for_a_hole_punch(observed: dict[str, str],
                                                      told: list[str]) -> None:
    assert seen_at(observed) == told


@pytest.mark.asyncio
async def test_two_nodes_on_one_machine_learn_they_can_be_dialled(tmp_path: Path) -> None:
    nodes = await start_linked_pair(tmp_path)
    try:
        for node in nodes:
            port = node.addr.split("/tcp/")[1].split("/")[0]

            async def public(node: NodeProc = node) -> dict[str, Any] | None:
                reach = (await node.call("node.info"))["reachability"]
                return reach if reach["status"] == "public" else None

            reach = await wait_for(public, 60, what="the node to know it is reachable")
            assert f"/ip4/127.0.0.1/tcp/{port}" in reach["public_addrs"]
            assert reach["checked_with"] >= 1
            assert reach["hole_punch"] == {"tried": 0, "succeeded": 0}
    finally:
        for node in nodes:
            await node.stop()


@pytest.mark.asyncio
async def test_a_peer_cannot_make_a_node_dial_for_it_beyond_the_limits(tmp_path: Path) -> None:
    target = await NodeProc(tmp_path / "target").start()
    try:
        before = (await target.call("node.info"))["rejected"].get("stream", 0)
        abuser = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.reach_abuser", target.addr, str(tmp_path),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        out, _ = await asyncio.wait_for(abuser.communicate(), 120)
        report = json.loads(out.decode().strip().splitlines()[-1])
        # forty requests at once: one is served (it reached the abuser's own port), the
        # rest refused; no request can name another address
        assert report["answered"] == 1, report
        assert report["refused"] == 39, report
        assert len(report["reached"]) == 1 and len(report["reached"][0]) == 1
        assert len(report["malformed"]) == 6
        assert all(m for m in report["malformed"]), report

        async def counted() -> int | None:
            n = (await target.call("node.info"))["rejected"].get("stream", 0) - before
            return n if n >= 6 else None

        await wait_for(counted, 30, what="the malformed requests to be counted")
        assert (await target.call("node.info"))["peer_id"] == target.peer_id  # still serving
    finally:
        await target.stop()


def test_the_ports_a_node_listens_on() -> None:
    addrs = ["/ip4/127.0.0.1/tcp/4718/p2p/x", "/ip4/10.20.0.2/tcp/4717/p2p/x",
             "/ip6/::1/tcp/4719", "/ip4/10.20.0.2/udp/9/quic", "/ip4/1.2.3.4/tcp/"]
    assert tcp_ports(addrs) == [4717, 4718, 4719]
    assert tcp_ports(addrs, lan_only=True) == [4717]  # what a home router could forward
