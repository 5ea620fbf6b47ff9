"""The node's one SQLite database, kept off the event loop.

All writes run on one writer thread, each inside ``BEGIN IMMEDIATE ... COMMIT`` (so everything a
call does commits together or not at all); reads run on a small pool of reader threads with
their own connections (WAL lets them read while the writer writes). The event loop only awaits.

The schema is versioned with ``PRAGMA user_version`` and brought up to date, when the database is
opened, by the ordered steps its opener gives (``node.core.migrations`` runs them).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from protocol.errors import TorvError

T = TypeVar("T")
log = logging.getLogger("torv.db")
DB_NAME = "torv.sqlite3"
READERS = 2


class DatabaseError(TorvError):
    """The database cannot be opened or upgraded (e.g. it is from a newer Torv)."""


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


Step = Callable[[sqlite3.Connection, Path], None]


def migrate(conn: sqlite3.Connection, data_dir: Path, steps: Sequence[Step]) -> int:
    """Bring the database to ``len(steps)`` (``PRAGMA user_version``), each step in its own
    transaction; returns the version it started at. A newer database is refused."""
    start = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if start > len(steps):
        raise DatabaseError(f"the database is from a newer Torv (schema {start}, this one "
                            f"knows {len(steps)}); upgrade Torv")
    for version in range(start, len(steps)):
        def step(c: sqlite3.Connection, v: int = version) -> None:
            steps[v](c, data_dir)
            c.execute(f"PRAGMA user_version = {v + 1}")

        transaction(conn, step)
        if start > 0 or version > 0:
            log.info("database upgraded to schema %d", version + 1)
    return start


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class Database:
    """Open with ``await Database.open(path)``; ``await db.write(fn)`` / ``await db.read(fn)``."""

    def __init__(self, path: Path, steps: Sequence[Step] = ()) -> None:
        self.path = path
        self._steps = list(steps)
        self.data_dir = path.parent
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="torv-db-write")
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="torv-db-read")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_conn: sqlite3.Connection | None = None
        self.closed = False

    @classmethod
    async def open(cls, path: Path, steps: Sequence[Step]) -> Database:
        db = cls(path, steps)
        try:
            await db.call_writer(db._migrate)
        except BaseException:
            await db.close()
            raise
        return db

    @classmethod
    def open_sync(cls, path: Path, steps: Sequence[Step]) -> Database:
        """For command-line tools without a running loop."""
        db = cls(path, steps)
        db._writer.submit(db._migrate).result()
        return db

    def _migrate(self) -> None:
        migrate(self._writer_conn(), self.data_dir, self._steps)

    def _writer_conn(self) -> sqlite3.Connection:
        if self._write_conn is None:
            self._write_conn = connect(self.path)
            with self._lock:
                self._conns.append(self._write_conn)
        return self._write_conn

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def call_writer(self, fn: Callable[[], T]) -> T:
        if self.closed:
            raise DatabaseError("the database is closed")
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction on the writer thread."""
        return await self.call_writer(lambda: transaction(self._writer_conn(), fn))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a reader thread (a consistent snapshot for its duration)."""
        if self.closed:
            raise DatabaseError("the database is closed")

        def run() -> T:
            conn = self._reader_conn()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write from a command-line tool (no event loop)."""
        return self._writer.submit(lambda: transaction(self._writer_conn(), fn)).result()

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._writer.submit(lambda: fn(self._writer_conn())).result()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await asyncio.to_thread(self._shutdown)

    def close_sync(self) -> None:
        if not self.closed:
            self.closed = True
            self._shutdown()

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
