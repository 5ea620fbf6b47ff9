"""The community room's tables: each market's chain of descriptors and its moderation log (as
checked: only valid steps are stored), the markets this node joined, the changes waiting for
stewards' signatures, and the applications stewards received."""

from __future__ import annotations

from node.core.migrations import statements

V15_SCHEMA = """
CREATE TABLE market_chain (
    market TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (market, seq)) WITHOUT ROWID;
CREATE TABLE market_log (
    market TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (market, seq)) WITHOUT ROWID;
CREATE TABLE market_joined (market TEXT PRIMARY KEY, joined INTEGER NOT NULL);
CREATE TABLE market_proposals (
    hash TEXT PRIMARY KEY, market TEXT NOT NULL, kind TEXT NOT NULL, value BLOB NOT NULL,
    proposer TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX market_proposals_market ON market_proposals(market);
CREATE TABLE market_applications (
    market TEXT NOT NULL, vendor TEXT NOT NULL, note TEXT NOT NULL, created INTEGER NOT NULL,
    invited_by TEXT NOT NULL DEFAULT '', PRIMARY KEY (market, vendor)) WITHOUT ROWID;
CREATE TABLE market_invites (
    nonce TEXT PRIMARY KEY, market TEXT NOT NULL, created INTEGER NOT NULL,
    used_by TEXT NOT NULL DEFAULT '')
"""

v15 = statements(V15_SCHEMA)
"""Community markets (issue 19): descriptors, logs, joined markets, proposals, applications
(with the steward whose invitation came with one), and the invitations this node's steward
handed out (each admits one vendor)."""
