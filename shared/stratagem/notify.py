"""Notification port: deliver a fired alert to a user's channels.

The embedded default writes to the console (stderr) and appends JSON lines to a file;
Telegram and the WebSocket gateway implement the same ``Notifier`` protocol. A delivery
result is recorded per channel in the alert log, so a failed channel never loses the alert.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from collections.abc import Sequence
from typing import Protocol


class Notifier(Protocol):
    channel: str

    def send(self, user_id: str, alert: dict) -> dict:
        """Deliver; returns ``{"status": "sent"|"failed"|"skipped", ...}`` (raises only if retrying helps)."""
        ...


class ConsoleNotifier:
    channel = "console"

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr

    def send(self, user_id: str, alert: dict) -> dict:
        self.stream.write(f"[alert for {user_id}] {alert.get('message', '')}\n")
        self.stream.flush()
        return {"status": "sent"}


class FileNotifier:
    """Appends one JSON line per alert (what a user's local 'inbox' looks like)."""

    channel = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, user_id: str, alert: dict) -> dict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"user_id": user_id, **alert}, default=str) + "\n")
        return {"status": "sent", "path": str(self.path)}


MAX_LOG_LIMIT = 1000


class AlertLog(Protocol):
    """Alert logs (the seed's ``alertLogs``): one entry per fired alert, with delivery status.

    An entry is the alert as fired (``strategy_id``, ``strategy_version``, ``strategy_name``,
    ``symbol``, ``date``, ``timestamp`` = bar time in UTC ms, ``close``, ``score``, ``values``,
    ``message``, ``dedup_key``, ...) plus ``user_id``, ``created_at`` (UTC ms when it was logged)
    and ``delivery`` (``{channel: result}``). Adapters: :class:`MemoryAlertLog` (tests),
    :class:`stratagem.alertlog.SqliteAlertLog` (embedded default),
    :class:`stratagem.alertlog_firestore.FirestoreAlertLog` (Google Cloud).
    """

    def add(self, user_id: str, alert: dict, *, sending: Sequence[str] = ()) -> bool:
        """Record ``alert`` once per ``dedup_key``; False if it was already logged.

        ``sending`` channels are marked ``{"status": "sending", "at": ms}`` in the same write, so
        a concurrent duplicate that finds the entry also finds every channel claimed."""
        ...

    def set_delivery(self, key: str, channel: str, result: dict) -> None:
        """Record one channel's outcome; may arrive before :meth:`add` (the WebSocket gateway
        hears the alert from its own subscription), and is then kept until the entry is added."""
        ...

    def list(self, user_id: str, strategy_id: int | str | None = None, limit: int = 100, *,
             since: int | None = None, until: int | None = None,
             created_after: int | None = None) -> list[dict]:
        """``user_id``'s entries, newest bar first (oldest logged first with ``created_after``).

        ``since``/``until`` bound the bar time (UTC ms, inclusive); ``created_after`` keeps
        entries logged at or after that UTC ms (a reconnecting client's catch-up)."""
        ...

    def get(self, user_id: str, key: str) -> dict | None:
        """``user_id``'s entry with this dedup key, or None (another user's looks missing)."""
        ...


def check_list_args(limit: int, since: int | None, until: int | None) -> None:
    """Shared argument checks of :meth:`AlertLog.list` (precise messages for API callers)."""
    from .errors import BadInput

    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LOG_LIMIT:
        raise BadInput(f"limit must be an integer from 1 to {MAX_LOG_LIMIT}, got {limit!r}")
    if since is not None and until is not None and since > until:
        raise BadInput(f"since ({since}) is after until ({until})")


def sort_entries(rows: list[dict], created_after: int | None) -> list[dict]:
    """Newest bar first for browsing; oldest logged first for catch-up (delivery order)."""
    if created_after is not None:
        rows.sort(key=lambda e: (e["created_at"], e["timestamp"], e["symbol"]))
    else:
        rows.sort(key=lambda e: (e["timestamp"], e["created_at"], e["symbol"]), reverse=True)
    return rows


class MemoryAlertLog:
    """In-memory :class:`AlertLog` (tests and throw-away services)."""

    def __init__(self, clock=None) -> None:
        import time

        self.clock = clock or time.time
        self.entries: dict[str, dict] = {}
        self._early: dict[str, dict] = {}  # deliveries recorded before the entry itself
        self._lock = threading.Lock()

    def add(self, user_id: str, alert: dict, *, sending: Sequence[str] = ()) -> bool:
        """Record once per dedup key; False if already there."""
        with self._lock:
            key = alert["dedup_key"]
            if key in self.entries:
                return False
            now = round(self.clock() * 1000)
            delivery = {ch: {"status": "sending", "at": now} for ch in sending}
            if self._early:
                delivery.update(self._early.pop(key, {}))
            entry = dict(alert)
            entry["user_id"], entry["created_at"], entry["delivery"] = user_id, now, delivery
            self.entries[key] = entry
            return True

    def set_delivery(self, key: str, channel: str, result: dict) -> None:
        with self._lock:
            target = self.entries[key]["delivery"] if key in self.entries else self._early.setdefault(key, {})
            target[channel] = result

    def list(self, user_id: str, strategy_id: int | str | None = None, limit: int = 100, *,
             since: int | None = None, until: int | None = None, created_after: int | None = None) -> list[dict]:
        check_list_args(limit, since, until)
        with self._lock:
            rows = [json.loads(json.dumps(e, default=str)) for e in self.entries.values() if e["user_id"] == user_id
                    and (strategy_id is None or str(e["strategy_id"]) == str(strategy_id))
                    and (since is None or e["timestamp"] >= since) and (until is None or e["timestamp"] <= until)
                    and (created_after is None or e["created_at"] >= created_after)]
        return sort_entries(rows, created_after)[:limit]

    def get(self, user_id: str, key: str) -> dict | None:
        with self._lock:
            e = self.entries.get(key)
            return json.loads(json.dumps(e, default=str)) if e and e["user_id"] == user_id else None
