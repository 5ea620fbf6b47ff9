"""The tables of messages: the mail outbox, letters seen, envelopes held for others, chat,
notifications."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.core.migrations import statements

V4_SCHEMA = """
CREATE TABLE mail_out (
    id TEXT PRIMARY KEY, recipient TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT,
    meta TEXT NOT NULL DEFAULT '{}', envelope BLOB NOT NULL, created INTEGER NOT NULL,
    expires INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL,
    delivered INTEGER, read INTEGER, held_by TEXT NOT NULL DEFAULT '[]',
    last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX mail_out_due ON mail_out(delivered, next_attempt);
CREATE INDEX mail_out_ref ON mail_out(ref);
CREATE TABLE mail_seen (id TEXT PRIMARY KEY, sender TEXT NOT NULL, received INTEGER NOT NULL);
CREATE INDEX mail_seen_received ON mail_seen(received);
CREATE TABLE mailbox (
    id TEXT PRIMARY KEY, recipient TEXT NOT NULL, storer TEXT NOT NULL,
    expires INTEGER NOT NULL, size INTEGER NOT NULL, envelope BLOB NOT NULL,
    received INTEGER NOT NULL);
CREATE INDEX mailbox_recipient ON mailbox(recipient, id);
CREATE INDEX mailbox_storer ON mailbox(storer);
CREATE INDEX mailbox_expires ON mailbox(expires);
CREATE TABLE chat (
    id TEXT PRIMARY KEY, peer TEXT NOT NULL, outgoing INTEGER NOT NULL, text TEXT NOT NULL,
    order_id TEXT, sent INTEGER NOT NULL, delivered INTEGER, read INTEGER);
CREATE INDEX chat_peer ON chat(peer, sent);
CREATE INDEX chat_order ON chat(order_id, sent);
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, text TEXT NOT NULL, ref TEXT,
    peer TEXT, created INTEGER NOT NULL, read INTEGER);
CREATE INDEX notifications_unread ON notifications(read, id)
"""


v4 = statements(V4_SCHEMA)


V6_SCHEMA = """
CREATE TABLE mail_seen_v6 (
    sender TEXT NOT NULL, id TEXT NOT NULL, received INTEGER NOT NULL,
    PRIMARY KEY (sender, id)) WITHOUT ROWID;
INSERT INTO mail_seen_v6 (sender, id, received) SELECT sender, id, received FROM mail_seen;
DROP TABLE mail_seen;
ALTER TABLE mail_seen_v6 RENAME TO mail_seen;
CREATE INDEX mail_seen_received ON mail_seen(received);
CREATE TABLE mailbox_v6 (
    storer TEXT NOT NULL, id TEXT NOT NULL, recipient TEXT NOT NULL,
    expires INTEGER NOT NULL, size INTEGER NOT NULL, envelope BLOB NOT NULL,
    received INTEGER NOT NULL, PRIMARY KEY (storer, id));
INSERT INTO mailbox_v6 SELECT storer, id, recipient, expires, size, envelope, received
    FROM mailbox;
DROP TABLE mailbox;
ALTER TABLE mailbox_v6 RENAME TO mailbox;
CREATE INDEX mailbox_recipient ON mailbox(recipient, id);
CREATE INDEX mailbox_expires ON mailbox(expires);
CREATE TABLE chat_v6 (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, peer TEXT NOT NULL,
    outgoing INTEGER NOT NULL, text TEXT NOT NULL, order_id TEXT, sent INTEGER NOT NULL,
    delivered INTEGER, read INTEGER, UNIQUE (peer, outgoing, id));
INSERT INTO chat_v6 (id, peer, outgoing, text, order_id, sent, delivered, read)
    SELECT id, peer, outgoing, text, order_id, sent, delivered, read FROM chat;
DROP TABLE chat;
ALTER TABLE chat_v6 RENAME TO chat;
CREATE INDEX chat_peer ON chat(peer, sent);
CREATE INDEX chat_order ON chat(order_id, sent)
"""


def v6(conn: sqlite3.Connection, data_dir: Path) -> None:
    """A letter is (sender, id): ids a sender chose cannot shadow another sender's letters,
    held envelopes or chat messages (one peer reusing another's id squatted them)."""
    for stmt in V6_SCHEMA.split(";"):
        conn.execute(stmt)


