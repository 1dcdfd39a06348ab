"""The embedded alert log: one SQLite file under the Stratagem home (``alerts.sqlite3``).

Its own file, not the strategy store's: alerts are written on every fired signal by the
notification path and read by the API, the WebSocket gateway and the CLI, and a busy alert
stream should never queue behind (or block) strategy writes.

* ``alert_logs`` holds one row per dedup key (``strategy:version:symbol:bar``): ``add`` is an
  ``INSERT OR IGNORE`` whose row count says whether this call logged it, so concurrent
  notifications of a duplicate delivery log (and deliver) exactly once.
* ``alert_deliveries`` holds one row per (dedup key, channel), upserted. It is a separate
  table so a channel may report before the alert itself is logged (the gateway hears fired
  alerts from its own subscription, in parallel with the notify function).
* WAL mode, ``busy_timeout`` and one connection per thread per process, as in
  :mod:`stratagem.store.sqlite`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import InfraUnavailable
from .notify import check_list_args, sort_entries
from .sqlite_wal import enable_wal

DEFAULT_FILENAME = "alerts.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_logs (
    dedup_key   TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    strategy_id TEXT    NOT NULL,            -- str(id): stored ids are integers, local runs 'local'
    version     INTEGER,
    symbol      TEXT    NOT NULL,
    bar_ms      INTEGER NOT NULL,            -- bar time, UTC ms
    created_ms  INTEGER NOT NULL,            -- when it was logged, UTC ms
    alert_json  TEXT    NOT NULL             -- the alert as fired
);
CREATE INDEX IF NOT EXISTS alert_logs_by_user_bar ON alert_logs (user_id, bar_ms);
CREATE INDEX IF NOT EXISTS alert_logs_by_user_created ON alert_logs (user_id, created_ms);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    dedup_key   TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    result_json TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (dedup_key, channel)
);
"""


class SqliteAlertLog:
    """:class:`~stratagem.notify.AlertLog` on SQLite (the embedded default)."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time,
                 busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    @classmethod
    def in_home(cls, home: str | Path, **kw) -> SqliteAlertLog:
        return cls(Path(home) / DEFAULT_FILENAME, **kw)

    # -- connections -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
                enable_wal(conn, self.busy_timeout_s)
                conn.execute("PRAGMA synchronous=NORMAL")
            except (OSError, sqlite3.Error) as exc:
                raise InfraUnavailable(f"cannot open the alert log {self.path}: {exc}") from exc
            self._local.conn, self._local.pid = conn, os.getpid()
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    conn.executescript(SCHEMA)
                    self._schema_ready = True
        return conn

    def _write(self, sql: str, args: tuple, then: list[tuple[str, tuple]] | None = None) -> int:
        """One ``BEGIN IMMEDIATE`` transaction: ``sql``, then ``then`` only if ``sql`` changed a row."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = conn.execute(sql, args).rowcount
                if n and then:
                    for more, more_args in then:
                        conn.execute(more, more_args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk full...
            raise InfraUnavailable(f"the alert log {self.path} is unavailable: {exc}") from exc
        return n

    # -- the port ------------------------------------------------------------------------------
    def add(self, user_id: str, alert: dict, *, sending: Sequence[str] = ()) -> bool:
        now = round(self.clock() * 1000)
        # a delivery recorded before the entry (the gateway) wins over the "sending" claim
        claims = [("INSERT OR IGNORE INTO alert_deliveries (dedup_key, channel, result_json, updated_ms) "
                   "VALUES (?, ?, ?, ?)", (alert["dedup_key"], ch, json.dumps({"status": "sending", "at": now}), now))
                  for ch in sending]
        n = self._write(
            "INSERT OR IGNORE INTO alert_logs (dedup_key, user_id, strategy_id, version, symbol, bar_ms, created_ms,"
            " alert_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert["dedup_key"], user_id, str(alert["strategy_id"]), alert.get("strategy_version"), alert["symbol"],
             int(alert["timestamp"]), now, json.dumps(alert, default=str, allow_nan=False)), claims)
        return n == 1

    def set_delivery(self, key: str, channel: str, result: dict) -> None:
        self._write("INSERT INTO alert_deliveries (dedup_key, channel, result_json, updated_ms) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (dedup_key, channel) DO UPDATE SET result_json = excluded.result_json, "
                    "updated_ms = excluded.updated_ms",
                    (key, channel, json.dumps(result, default=str), round(self.clock() * 1000)))

    def list(self, user_id: str, strategy_id: int | str | None = None, limit: int = 100, *,
             since: int | None = None, until: int | None = None, created_after: int | None = None) -> list[dict]:
        check_list_args(limit, since, until)
        where, args = ["user_id = ?"], [user_id]
        for cond, value in (("strategy_id = ?", None if strategy_id is None else str(strategy_id)),
                            ("bar_ms >= ?", since), ("bar_ms <= ?", until), ("created_ms >= ?", created_after)):
            if value is not None:
                where.append(cond)
                args.append(value)
        order = "created_ms ASC, bar_ms ASC" if created_after is not None else "bar_ms DESC, created_ms DESC"
        sql = (f"SELECT dedup_key, user_id, created_ms, alert_json FROM alert_logs WHERE {' AND '.join(where)} "
               f"ORDER BY {order} LIMIT ?")
        return self._read(sql, (*args, limit), created_after)

    def get(self, user_id: str, key: str) -> dict | None:
        rows = self._read("SELECT dedup_key, user_id, created_ms, alert_json FROM alert_logs "
                          "WHERE dedup_key = ? AND user_id = ?", (key, user_id), None)
        return rows[0] if rows else None

    def _read(self, sql: str, args: tuple, created_after: int | None) -> list[dict]:
        conn = self._conn()
        try:
            conn.execute("BEGIN")  # one snapshot for the entries and their deliveries
            try:
                rows = conn.execute(sql, args).fetchall()
                keys = [r[0] for r in rows]
                deliveries: dict[str, dict] = {}
                for i in range(0, len(keys), 500):
                    chunk = keys[i:i + 500]
                    for k, ch, res in conn.execute(
                            "SELECT dedup_key, channel, result_json FROM alert_deliveries WHERE dedup_key IN "
                            f"({','.join('?' * len(chunk))})", chunk):
                        deliveries.setdefault(k, {})[ch] = json.loads(res)
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise InfraUnavailable(f"the alert log {self.path} is unavailable: {exc}") from exc
        out = [{**json.loads(a), "user_id": u, "created_at": c, "delivery": deliveries.get(k, {})}
               for k, u, c, a in rows]
        return sort_entries(out, created_after)
