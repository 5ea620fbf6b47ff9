"""Torv's terminal UI: a client of the node's JSON-RPC API only."""
