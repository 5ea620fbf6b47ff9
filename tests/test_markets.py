"""Community markets as data (issue 19, protocol/markets.py): a chain of descriptors, each
co-signed by M of the stewards before it; the moderation log; forks. As tables, and a property:
no set of signatures from fewer than M of the current stewards changes a market."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import canonical
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity
from protocol.markets import (
    Descriptor,
    LogEntry,
    check_chain,
    check_entry,
    check_founding,
    check_next,
    fork,
    found,
    propose,
    shows,
    wins,
)

S = [Identity(bytes([60 + i]) * 32) for i in range(6)]  # stewards and others
VENDOR, OUTSIDER = Identity(bytes([90]) * 32), Identity(bytes([91]) * 32)


def signed(d: Descriptor, *who: Identity) -> Descriptor:
    for identity in who:
        d = d.signed_by(identity)
    return d


def aarhus(threshold: int = 2) -> Descriptor:
    """A 2-of-3 approved market, founded by all three."""
    d = found("Aarhus makers", [s.peer_id for s in S[:3]], threshold, "approved",
              rules="Made by hand in Aarhus")
    return signed(d, *S[:3])


def test_founding_takes_m_of_its_own_stewards() -> None:
    d = found("Aarhus makers", [s.peer_id for s in S[:3]], 2, "approved")
    check_founding(signed(d, S[0], S[1]))
    with pytest.raises(RemoteProtocolError, match="2 of its stewards"):
        check_founding(signed(d, S[0]))
    with pytest.raises(RemoteProtocolError, match="1 verify"):
        check_founding(signed(d, S[0], OUTSIDER))  # not a steward: not counted
    assert aarhus().market_id == aarhus().hash  # the id is the founding body's hash


def test_a_change_takes_m_of_the_stewards_before_it() -> None:
    market = aarhus()
    admit = propose(market, members=[VENDOR.peer_id])
    check_next(market, signed(admit, S[0], S[2]))
    with pytest.raises(RemoteProtocolError, match="1 verify"):
        check_next(market, signed(admit, S[0]))
    with pytest.raises(RemoteProtocolError, match="1 verify"):
        check_next(market, signed(admit, S[1], OUTSIDER))
    # a forged signature (another body's) counts for nothing
    other = propose(market, members=[OUTSIDER.peer_id])
    forged = Descriptor(admit.body, {S[0].peer_id: other.signed_by(S[0]).sigs[S[0].peer_id],
                                     S[1].peer_id: admit.signed_by(S[1]).sigs[S[1].peer_id]})
    with pytest.raises(RemoteProtocolError, match="1 verify"):
        check_next(market, forged)


def test_new_stewards_are_chosen_by_the_old_ones() -> None:
    market = aarhus()
    rotate = signed(propose(market, stewards=[S[3].peer_id, S[4].peer_id], threshold=2),
                    S[0], S[1])
    check_next(market, rotate)
    # the new set decides the next change; the old set no longer can
    rules = propose(rotate, rules="Made by hand")
    check_next(rotate, signed(rules, S[3], S[4]))
    with pytest.raises(RemoteProtocolError, match="0 verify"):
        check_next(rotate, signed(rules, S[0], S[1]))
    assert check_chain([market, rotate, signed(rules, S[3], S[4])]).body["rules"] == \
        "Made by hand"


@pytest.mark.parametrize(("mutate", "why"), [
    (lambda b: {**b, "seq": b["seq"] + 1}, "has seq"),
    (lambda b: {**b, "prev": "0" * 64}, "does not follow"),
    (lambda b: {**b, "market": "1" * 64}, "another market"),
    (lambda b: {**b, "threshold": 4}, "threshold"),
    (lambda b: {**b, "admission": "invite-only"}, "admission"),
    (lambda b: {**b, "members": [VENDOR.peer_id, VENDOR.peer_id]}, "twice"),
    (lambda b: {**b, "extra": 1}, "unknown fields"),
])
def test_a_change_is_checked_whole(mutate: object, why: str) -> None:
    market = aarhus()
    body = mutate(propose(market, rules="x").body)  # type: ignore[operator]
    with pytest.raises(RemoteProtocolError, match=why):
        check_next(market, signed(Descriptor(body), *S[:3]))


def test_an_open_market_lists_no_members_and_a_fork_names_its_origin() -> None:
    with pytest.raises(LocalProtocolError, match="lists no members"):
        found("Online books", [S[0].peer_id], 1, "open", members=[VENDOR.peer_id])
    market = aarhus()
    copy = signed(fork(market, [S[4].peer_id, S[5].peer_id], 1, "Aarhus makers (co-op)"),
                  S[4])
    check_founding(copy)
    assert copy.body["origin"] == {"market": market.market_id, "descriptor": market.hash}
    assert copy.body["members"] == market.body["members"] and copy.market_id != market.market_id


def test_two_changes_at_one_seq_resolve_the_same_everywhere() -> None:
    market = aarhus()
    a = signed(propose(market, rules="A"), S[0], S[1])
    b = signed(propose(market, rules="B"), S[1], S[2])
    assert wins(a, b) is wins(b, a)
    later = signed(propose(a, rules="C"), S[0], S[1])
    assert wins(later, b) is later


def test_a_descriptor_round_trips_and_bad_values_are_refused() -> None:
    market = aarhus()
    value = canonical.decode(canonical.encode(market.to_value()))
    assert Descriptor.from_value(value).hash == market.hash
    for bad in ({"body": market.body}, {"body": market.body, "sigs": {"x": b"1"}},
                {"body": market.body, "sigs": {S[0].peer_id: b"short"}}):
        with pytest.raises(RemoteProtocolError):
            Descriptor.from_value(bad)


def entry(market: Descriptor, seq: int, prev: str, action: str, listing: str = "",
          vendor: Identity = VENDOR) -> LogEntry:
    return LogEntry({"market": market.market_id, "seq": seq, "prev": prev,
                     "descriptor": market.hash, "action": action, "vendor": vendor.peer_id,
                     "listing": listing, "reason": "not handmade", "time": 1_800_000_000})


def test_the_moderation_log_removes_with_m_signatures_and_shows_the_rest() -> None:
    market = aarhus()
    member = signed(propose(market, members=[VENDOR.peer_id, OUTSIDER.peer_id]), S[0], S[1])
    lid = "ab" * 16
    assert shows(member, [], VENDOR.peer_id, lid)
    assert not shows(member, [], S[5].peer_id, lid)  # not a member of an approved market
    first = entry(member, 1, "", "remove_listing", lid)
    check_entry(signed_entry(first, S[0], S[2]), member, None)
    with pytest.raises(RemoteProtocolError, match="1 verify"):
        check_entry(signed_entry(first, S[0]), member, None)
    log = [signed_entry(first, S[0], S[2])]
    assert not shows(member, log, VENDOR.peer_id, lid)
    assert shows(member, log, VENDOR.peer_id, "cd" * 16)  # only that listing
    second = signed_entry(entry(member, 2, log[0].hash, "remove_member", vendor=OUTSIDER),
                          S[1], S[2])
    check_entry(second, member, log[0])
    with pytest.raises(RemoteProtocolError, match="does not follow"):
        check_entry(second, member, None)
    log.append(second)
    assert not shows(member, log, OUTSIDER.peer_id, "cd" * 16)
    restore = signed_entry(entry(member, 3, second.hash, "restore_listing", lid), S[0], S[1])
    check_entry(restore, member, second)
    assert shows(member, [*log, restore], VENDOR.peer_id, lid)


def signed_entry(e: LogEntry, *who: Identity) -> LogEntry:
    for identity in who:
        e = e.signed_by(identity)
    return e


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 5), m_minus=st.integers(1, 4), data=st.data())
def test_fewer_than_m_stewards_never_change_a_market(n: int, m_minus: int,
                                                     data: st.DataObject) -> None:
    m = max(1, min(n, n - m_minus + 1))
    stewards = S[:n]
    market = signed(found("M", [s.peer_id for s in stewards], m), *stewards)
    change = propose(market, rules=data.draw(st.text(max_size=20)))
    # any signers: fewer than m stewards, plus any number of outsiders
    few = data.draw(st.lists(st.sampled_from(stewards), unique=True, max_size=m - 1))
    extra = data.draw(st.lists(st.sampled_from([VENDOR, OUTSIDER]), unique=True))
    attempt = signed(change, *few, *extra)
    with pytest.raises(RemoteProtocolError):
        check_next(market, attempt)
    # and m of them always do
    check_next(market, signed(change, *data.draw(st.permutations(stewards))[:m]))
