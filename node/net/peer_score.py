"""Gossipsub peer scoring: what a peer's misbehaviour costs it (py-libp2p ``ScoreParams``).

py-libp2p 0.8.1 ships every weight at 0 and every threshold at -inf, so a flooder is never
penalised. Torv sets (the heartbeat is 1 s, so a decay is per second):

- P4, invalid messages: each message our topic validator refuses (garbage, forged, stale, over
  its vendor's rate) costs the peer that forwarded it ``INVALID_WEIGHT``; the count decays by
  ``INVALID_DECAY`` a second (half-life ~23 s) and is capped at ``INVALID_CAP``.
- P2, first deliveries: each valid message a peer is first to bring us earns
  ``FIRST_DELIVERY_WEIGHT``, capped at ``FIRST_DELIVERY_CAP`` (so an honest neighbour's credit
  absorbs an occasional refusal; a flooder's is spent in a few messages).
- P5, behaviour: py-libp2p's own penalties (IHAVE/IWANT spam, GRAFT floods, messages it could
  not deliver) cost ``BEHAVIOUR_WEIGHT`` each past a slack of ``BEHAVIOUR_SLACK``.
- P7 (same IP) stays off: homes share addresses behind NAT, and tests run on one address.

Thresholds: below ``PUBLISH_THRESHOLD`` (-50: about five refusals more than a peer's credit)
a peer's messages are dropped before they are validated; below ``GOSSIP_THRESHOLD`` we stop
gossiping with it; below ``GRAYLIST_THRESHOLD`` its GRAFTs are refused. A penalised peer
recovers as its count decays (from the cap: a few minutes), so a peer that relayed one bad
burst is not shut out for good.

Two kinds of refusal: REJECT (garbage, forged, or a vendor's own over-rate or stale copies
sent by the vendor itself) counts against the forwarder; IGNORE (over-rate or stale copies
*relayed* by another peer, which may have accepted them honestly a moment earlier) is neither
forwarded nor counted. A peer driven below ``PUBLISH_THRESHOLD`` by rejected messages is
blacklisted in pubsub (its stream closed, new ones refused) for ``BAN_SECONDS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from libp2p.peer.id import ID
from libp2p.pubsub.score import PeerScorer, ScoreParams, TopicScoreParams

INVALID_WEIGHT = 10.0
INVALID_DECAY = 0.97
INVALID_CAP = 1000.0
FIRST_DELIVERY_WEIGHT = 0.5
FIRST_DELIVERY_DECAY = 0.995
FIRST_DELIVERY_CAP = 60.0
BEHAVIOUR_WEIGHT = 1.0
BEHAVIOUR_DECAY = 0.99
BEHAVIOUR_SLACK = 10.0
PUBLISH_THRESHOLD = -50.0
GOSSIP_THRESHOLD = -50.0
GRAYLIST_THRESHOLD = -200.0
ACCEPT_PX_THRESHOLD = 0.0


def score_params() -> ScoreParams:
    return ScoreParams(
        p2_first_message_deliveries=TopicScoreParams(
            weight=FIRST_DELIVERY_WEIGHT, cap=FIRST_DELIVERY_CAP, decay=FIRST_DELIVERY_DECAY),
        p4_invalid_messages=TopicScoreParams(
            weight=INVALID_WEIGHT, cap=INVALID_CAP, decay=INVALID_DECAY),
        p5_behavior_penalty_weight=BEHAVIOUR_WEIGHT,
        p5_behavior_penalty_decay=BEHAVIOUR_DECAY,
        p5_behavior_penalty_threshold=BEHAVIOUR_SLACK,
        publish_threshold=PUBLISH_THRESHOLD,
        gossip_threshold=GOSSIP_THRESHOLD,
        graylist_threshold=GRAYLIST_THRESHOLD,
        accept_px_threshold=ACCEPT_PX_THRESHOLD,
    )

BAN_SECONDS = 300.0


class TorvScorer(PeerScorer):
    """py-libp2p's scorer with two additions: an *ignored* message (``Verdict.IGNORE``: not
    forwarded, not held against the peer that relayed it) is not counted as invalid, and a
    peer whose score falls below ``PUBLISH_THRESHOLD`` through invalid messages is reported
    (``on_bad``) so the host can shut it out of pubsub for ``BAN_SECONDS``."""

    def __init__(self, params: ScoreParams, on_bad: Callable[[ID], None]) -> None:
        super().__init__(params)
        self.ignored: Counter[ID] = Counter()
        self._on_bad = on_bad

    def ignore_next(self, peer: ID) -> None:
        self.ignored[peer] += 1

    def on_invalid_message(self, peer: ID, topic: str) -> None:
        if self.ignored[peer] > 0:
            self.ignored[peer] -= 1
            if self.ignored[peer] <= 0:
                del self.ignored[peer]
            return
        super().on_invalid_message(peer, topic)
        if self.topic_score(peer, topic) - self.behavior_penalty[peer] < PUBLISH_THRESHOLD:
            self._on_bad(peer)

    def remove_peer(self, peer: ID) -> None:
        super().remove_peer(peer)
        self.ignored.pop(peer, None)
