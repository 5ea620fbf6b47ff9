"""Torv's node: all I/O (libp2p, SQLite, JSON-RPC, background tasks)."""
