"""Switching an SQLite file to WAL safely when several threads or processes open it at once.

SQLite answers a contended ``PRAGMA journal_mode = WAL`` with SQLITE_BUSY at once: its busy
handler (``busy_timeout``) is not used for that switch. Every embedded SQLite file (strategy
store, alert log, live bars) is opened concurrently by the functions, the gateway and the CLI,
so the switch is retried with jitter until the connection's timeout.
"""

from __future__ import annotations

import random
import sqlite3
import time


def enable_wal(conn: sqlite3.Connection, timeout_s: float) -> str:
    """Put ``conn``'s file in WAL mode; returns the journal mode it ended in.

    A file already in WAL returns at once. A filesystem without shared memory may refuse WAL:
    SQLite then keeps its mode (e.g. ``delete``), which is still correct, only slower.
    Raises :class:`sqlite3.OperationalError` if the file stays locked past ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
            if mode == "wal":
                return mode
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.002, 0.02))
