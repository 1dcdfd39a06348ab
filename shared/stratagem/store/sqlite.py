"""The embedded default strategy store: one SQLite file under the Stratagem home.

* WAL mode, so readers never block the writer; ``synchronous=NORMAL`` (a power cut may
  lose the last commits, never corrupt the file).
* Every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front,
  so concurrent writers from any number of threads and processes queue on
  ``busy_timeout`` instead of failing half way, and an id can never be handed out twice
  (``AUTOINCREMENT``: never reused, even after a delete). Reads use one deferred
  transaction each, so a record and its versions come from one snapshot.
* One connection per thread per process (a forked child opens its own).
* The schema is created on first use, not in ``__init__``; ``schema_version`` records
  which migrations ran, and a file written by a newer Stratagem is refused.

A Firestore adapter keeps the same layout in documents (see :mod:`stratagem.store.base`).
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from ..errors import BadInput, InfraUnavailable, StratagemError
from ..sqlite_wal import enable_wal
from .base import (
    Clock,
    RunRecord,
    SaveDispatch,
    StrategyRecord,
    StrategyVersion,
    check_active,
    check_fields,
    check_request_id,
    check_run,
    check_strategy_id,
    check_universe,
    check_user_id,
    check_version,
    code_sha256,
    iso_utc,
    no_version,
    not_found,
    utc_now,
)

DEFAULT_FILENAME = "strategies.sqlite3"

# Migration n (1-based) brings the schema from version n-1 to n. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE strategies (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id         TEXT    NOT NULL,
        version         INTEGER NOT NULL,            -- latest version number
        is_alert_active INTEGER NOT NULL DEFAULT 0,
        alert_universe  TEXT,                        -- JSON list of symbols, NULL = default
        created_at      TEXT    NOT NULL,
        updated_at      TEXT    NOT NULL
    );
    CREATE INDEX strategies_by_user ON strategies (user_id, id);
    CREATE INDEX strategies_alerting ON strategies (id) WHERE is_alert_active = 1;

    CREATE TABLE strategy_versions (
        strategy_id INTEGER NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        description TEXT    NOT NULL,
        prompt      TEXT    NOT NULL,
        code        TEXT    NOT NULL,
        parameters  TEXT    NOT NULL,                -- JSON
        explanation TEXT    NOT NULL,
        created_at  TEXT    NOT NULL,
        code_sha256 TEXT    NOT NULL,
        PRIMARY KEY (strategy_id, version)
    ) WITHOUT ROWID;

    CREATE TABLE runs (
        strategy_id    INTEGER NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
        run_id         TEXT    NOT NULL,
        user_id        TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        mode           TEXT    NOT NULL CHECK (mode IN ('backtest', 'screen', 'replay')),
        params         TEXT    NOT NULL,             -- JSON object
        result_summary TEXT    NOT NULL,             -- JSON object
        created_at     TEXT    NOT NULL,
        UNIQUE (strategy_id, run_id)
    );
    CREATE INDEX runs_by_strategy ON runs (strategy_id, created_at);

    CREATE TABLE requests (                          -- idempotent create/save
        user_id     TEXT    NOT NULL,
        request_id  TEXT    NOT NULL,
        strategy_id INTEGER NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        created_at  TEXT    NOT NULL,
        PRIMARY KEY (user_id, request_id)
    ) WITHOUT ROWID;
    CREATE INDEX requests_by_strategy ON requests (strategy_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_STRATEGY_COLUMNS = """
    s.id, s.user_id, s.version AS latest, s.is_alert_active, s.alert_universe, s.created_at,
    s.updated_at, v.version, v.name, v.description, v.prompt, v.code, v.parameters,
    v.explanation, v.created_at AS version_created_at
"""
_STRATEGY_FROM = "strategies s JOIN strategy_versions v ON v.strategy_id = s.id"


class SqliteStore(SaveDispatch):
    """A :class:`~stratagem.store.base.StrategyStore` in one SQLite file.

    >>> store = SqliteStore(tmp / "strategies.sqlite3")          # doctest: +SKIP
    >>> store = SqliteStore.in_home(settings.home)               # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = utc_now,
                 busy_timeout_s: float = 30.0) -> None:
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise BadInput(f"SqliteStore needs a file path, got {str(path)!r}; use MemoryStore for an "
                           "in-memory store")
        self.path = Path(path).expanduser()
        self._clock = clock
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: builtins.list[tuple[int, sqlite3.Connection]] = []
        self._ready_pid: int | None = None

    @classmethod
    def in_home(cls, home: str | os.PathLike[str], **kwargs: Any) -> SqliteStore:
        """The default store of a Stratagem home (``Settings.home``)."""
        return cls(Path(home) / DEFAULT_FILENAME, **kwargs)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- connections, transactions, schema --
    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise InfraUnavailable(f"cannot open the strategy store {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            with self._errors():
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != pid:  # new thread, or a forked child
            conn = self._connect()
            self._local.conn, self._local.pid = conn, pid
            with self._lock:
                self._connections.append((pid, conn))
        if self._ready_pid != pid:
            with self._lock:
                if self._ready_pid != pid:
                    self._migrate(conn)
                    self._ready_pid = pid
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring the file to SCHEMA_VERSION (under the write lock), then switch it to WAL."""
        with self._errors():
            if self._schema_version(conn) < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                                 "(version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
                    current = self._schema_version(conn)  # again, now that we hold the lock
                    for n in range(current + 1, SCHEMA_VERSION + 1):
                        for statement in _statements(MIGRATIONS[n - 1]):
                            conn.execute(statement)
                        conn.execute("INSERT INTO schema_version VALUES (?, ?)", (n, iso_utc(utc_now())))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            current = self._schema_version(conn)
            if current > SCHEMA_VERSION:
                raise StratagemError(
                    f"the strategy store {self.path} has schema version {current}, newer than this "
                    f"Stratagem understands ({SCHEMA_VERSION}); upgrade Stratagem to use it")
            enable_wal(conn, self._busy_ms / 1000)

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone():
            return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])
        return 0

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk I/O, read-only
            raise InfraUnavailable(f"the strategy store {self.path} is unavailable: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StratagemError(f"the strategy store {self.path} is unreadable ({exc}); move it "
                                 "aside to start with an empty store") from exc

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._errors():
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (disk full, ...)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened in this process (a forked child
        leaves the parent's alone)."""
        pid = os.getpid()
        with self._lock:
            conns = [c for p, c in self._connections if p == pid]
            self._connections = []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - best effort
                pass
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers (inside a transaction) --
    def _now(self) -> str:
        return iso_utc(self._clock())

    @staticmethod
    def _owned(conn: sqlite3.Connection, user_id: str, strategy_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM strategies WHERE id = ? AND user_id = ?",
                           (strategy_id, user_id)).fetchone()
        if row is None:
            raise not_found(strategy_id)
        return row

    @staticmethod
    def _record(row: sqlite3.Row, versions: builtins.list[StrategyVersion] | None = None) -> StrategyRecord:
        latest = row["version"] == row["latest"]
        universe = row["alert_universe"]
        return StrategyRecord(
            id=row["id"], user_id=row["user_id"], name=row["name"], description=row["description"],
            prompt=row["prompt"], code=row["code"], parameters=json.loads(row["parameters"]),
            explanation=row["explanation"], is_alert_active=bool(row["is_alert_active"]),
            alert_universe=None if universe is None else json.loads(universe),
            created_at=row["created_at"],
            updated_at=row["updated_at"] if latest else row["version_created_at"],
            version=row["version"], versions=versions,
        )

    def _fetch(self, conn: sqlite3.Connection, user_id: str, strategy_id: int,
               version: int | None = None, include_versions: bool = False) -> StrategyRecord:
        s = self._owned(conn, user_id, strategy_id)
        n = s["version"] if version is None else version
        row = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM {_STRATEGY_FROM} WHERE s.id = ? AND v.version = ?",
                           (strategy_id, n)).fetchone()
        if row is None:
            raise no_version(strategy_id, n, s["version"])
        return self._record(row, self._versions(conn, strategy_id) if include_versions else None)

    @staticmethod
    def _versions(conn: sqlite3.Connection, strategy_id: int) -> builtins.list[StrategyVersion]:
        rows = conn.execute("SELECT * FROM strategy_versions WHERE strategy_id = ? ORDER BY version",
                            (strategy_id,)).fetchall()
        return [StrategyVersion(
            id=r["strategy_id"], version=r["version"], name=r["name"], description=r["description"],
            prompt=r["prompt"], code=r["code"], parameters=json.loads(r["parameters"]),
            explanation=r["explanation"], created_at=r["created_at"], code_sha256=r["code_sha256"],
        ) for r in rows]

    def _replay(self, conn: sqlite3.Connection, user_id: str, request_id: str | None) -> StrategyRecord | None:
        if request_id is None:
            return None
        row = conn.execute("SELECT strategy_id, version FROM requests WHERE user_id = ? AND request_id = ?",
                           (user_id, request_id)).fetchone()
        return None if row is None else self._fetch(conn, user_id, row[0], row[1])

    @staticmethod
    def _insert_version(conn: sqlite3.Connection, strategy_id: int, n: int, f: dict[str, Any], now: str) -> None:
        conn.execute(
            "INSERT INTO strategy_versions (strategy_id, version, name, description, prompt, code, parameters, "
            "explanation, created_at, code_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (strategy_id, n, f["name"], f["description"], f["prompt"], f["code"], f["parameters_json"],
             f["explanation"], now, code_sha256(f["code"])))

    @staticmethod
    def _remember(conn: sqlite3.Connection, user_id: str, request_id: str | None, strategy_id: int,
                  n: int, now: str) -> None:
        if request_id is not None:
            conn.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", (user_id, request_id, strategy_id, n, now))

    # -- the port --
    def create(self, user_id: str, *, name: str, code: str, description: str = "", prompt: str = "",
               parameters: Any = None, explanation: str = "",
               request_id: str | None = None) -> StrategyRecord:
        check_user_id(user_id)
        request_id = check_request_id(request_id)
        f = check_fields({"name": name, "code": code, "description": description, "prompt": prompt,
                          "parameters": parameters, "explanation": explanation}, partial=False)
        with self._tx(write=True) as conn:
            done = self._replay(conn, user_id, request_id)
            if done is not None:
                return done
            now = self._now()
            sid = conn.execute("INSERT INTO strategies (user_id, version, created_at, updated_at) "
                               "VALUES (?, 1, ?, ?)", (user_id, now, now)).lastrowid
            assert sid is not None
            self._insert_version(conn, sid, 1, f, now)
            self._remember(conn, user_id, request_id, sid, 1, now)
            return self._fetch(conn, user_id, sid)

    def _append_version(self, user_id: str, strategy_id: int, fields: dict[str, Any],
                        request_id: str | None) -> StrategyRecord:
        with self._tx(write=True) as conn:
            s = self._owned(conn, user_id, strategy_id)
            done = self._replay(conn, user_id, request_id)
            if done is not None:
                return done
            cur = conn.execute("SELECT name, description, prompt, code, parameters AS parameters_json, explanation "
                               "FROM strategy_versions WHERE strategy_id = ? AND version = ?",
                               (strategy_id, s["version"])).fetchone()
            merged = {**dict(cur), **fields}
            n, now = s["version"] + 1, self._now()
            self._insert_version(conn, strategy_id, n, merged, now)
            conn.execute("UPDATE strategies SET version = ?, updated_at = ? WHERE id = ?", (n, now, strategy_id))
            self._remember(conn, user_id, request_id, strategy_id, n, now)
            return self._fetch(conn, user_id, strategy_id)

    def get(self, user_id: str, strategy_id: int, version: int | None = None, *,
            include_versions: bool = False) -> StrategyRecord:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        if version is not None:
            check_version(version)
        with self._tx(write=False) as conn:
            return self._fetch(conn, user_id, strategy_id, version, include_versions)

    def list(self, user_id: str) -> builtins.list[StrategyRecord]:
        check_user_id(user_id)
        with self._tx(write=False) as conn:
            rows = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM {_STRATEGY_FROM} "
                                "WHERE s.user_id = ? AND v.version = s.version ORDER BY s.id", (user_id,))
            return [self._record(r) for r in rows.fetchall()]

    def versions(self, user_id: str, strategy_id: int) -> builtins.list[StrategyVersion]:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._tx(write=False) as conn:
            self._owned(conn, user_id, strategy_id)
            return self._versions(conn, strategy_id)

    def set_alert(self, user_id: str, strategy_id: int, active: bool,
                  universe: builtins.list[str] | None = None) -> StrategyRecord:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        active = check_active(active)
        symbols = check_universe(universe)
        with self._tx(write=True) as conn:
            self._owned(conn, user_id, strategy_id)
            conn.execute(
                "UPDATE strategies SET is_alert_active = ?, alert_universe = COALESCE(?, alert_universe), "
                "updated_at = ? WHERE id = ?",
                (int(active), None if symbols is None else json.dumps(symbols), self._now(), strategy_id))
            return self._fetch(conn, user_id, strategy_id)

    def active_alerts(self) -> builtins.list[StrategyRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM {_STRATEGY_FROM} "
                                "WHERE s.is_alert_active = 1 AND v.version = s.version ORDER BY s.id")
            return [self._record(r) for r in rows.fetchall()]

    def record_run(self, run: RunRecord) -> RunRecord:
        run = check_run(run)
        with self._tx(write=True) as conn:
            s = self._owned(conn, run.user_id, run.strategy_id)
            if run.version > s["version"]:
                raise no_version(run.strategy_id, run.version, s["version"])
            conn.execute(
                "INSERT INTO runs (strategy_id, run_id, user_id, version, mode, params, result_summary, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (strategy_id, run_id) DO UPDATE SET "
                "version = excluded.version, mode = excluded.mode, params = excluded.params, "
                "result_summary = excluded.result_summary",
                (run.strategy_id, run.run_id, run.user_id, run.version, run.mode, json.dumps(run.params),
                 json.dumps(run.result_summary), run.created_at or self._now()))
            row = conn.execute("SELECT * FROM runs WHERE strategy_id = ? AND run_id = ?",
                               (run.strategy_id, run.run_id)).fetchone()
            return self._run(row)

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        return RunRecord(run_id=row["run_id"], strategy_id=row["strategy_id"], version=row["version"],
                         user_id=row["user_id"], mode=row["mode"], params=json.loads(row["params"]),
                         result_summary=json.loads(row["result_summary"]), created_at=row["created_at"])

    def runs(self, user_id: str, strategy_id: int) -> builtins.list[RunRecord]:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._tx(write=False) as conn:
            self._owned(conn, user_id, strategy_id)
            rows = conn.execute("SELECT * FROM runs WHERE strategy_id = ? ORDER BY created_at, rowid",
                                (strategy_id,)).fetchall()
            return [self._run(r) for r in rows]

    def delete(self, user_id: str, strategy_id: int) -> None:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._tx(write=True) as conn:
            self._owned(conn, user_id, strategy_id)
            conn.execute("DELETE FROM strategies WHERE id = ?", (strategy_id,))  # cascades


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit our transaction)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:80]}")
