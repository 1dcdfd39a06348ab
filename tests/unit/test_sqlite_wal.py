"""enable_wal: the WAL switch retries a busy answer until its timeout instead of failing.

SQLite can answer the switch with SQLITE_BUSY without calling its busy handler (two
connections upgrading their locks at once; CI met it as "database is locked" when eight
threads opened a fresh alert log together). A connection with ``timeout=0`` gets the same
immediate answer deterministically, so the tests use one.
"""

import sqlite3
import threading

import pytest

from stratagem.sqlite_wal import enable_wal


def _reader_holding_a_lock(path):
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("CREATE TABLE IF NOT EXISTS t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # a shared lock on a rollback-journal file
    return reader


def test_a_plain_switch_fails_while_a_reader_holds_the_file(tmp_path):
    path = tmp_path / "x.sqlite3"
    reader = _reader_holding_a_lock(path)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        conn.execute("PRAGMA journal_mode = WAL")
    reader.execute("COMMIT")


def test_enable_wal_retries_until_the_reader_is_done(tmp_path):
    path = tmp_path / "x.sqlite3"
    reader = _reader_holding_a_lock(path)
    threading.Timer(0.2, lambda: reader.execute("COMMIT")).start()
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    assert enable_wal(conn, 10.0) == "wal"
    assert enable_wal(conn, 10.0) == "wal"  # already WAL: returns at once
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # the file's mode


def test_enable_wal_gives_up_after_its_timeout(tmp_path):
    path = tmp_path / "x.sqlite3"
    reader = _reader_holding_a_lock(path)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(conn, 0.1)
    reader.execute("COMMIT")
