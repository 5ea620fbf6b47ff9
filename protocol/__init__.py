"""Torv's wire protocol, sans-I/O: canonical encoding, signed objects, listings, stores.

Nothing in this package touches sockets, clocks or disks; callers pass the time and
randomness in.
"""
