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


class MemoryAlertLog:
    """Alert logs (the seed's ``alertLogs``): one entry per fired alert, with delivery status."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}
        self._lock = threading.Lock()

    def add(self, user_id: str, alert: dict) -> bool:
        """Record once per dedup key; False if already there."""
        with self._lock:
            key = alert["dedup_key"]
            if key in self.entries:
                return False
            self.entries[key] = {"user_id": user_id, **alert, "delivery": {}}
            return True

    def set_delivery(self, key: str, channel: str, result: dict) -> None:
        with self._lock:
            self.entries[key]["delivery"][channel] = result

    def list(self, user_id: str, strategy_id: int | None = None, limit: int = 100) -> list[dict]:
        with self._lock:
            rows = [e for e in self.entries.values() if e["user_id"] == user_id
                    and (strategy_id is None or e["strategy_id"] == strategy_id)]
        rows.sort(key=lambda e: (e["timestamp"], e["symbol"]), reverse=True)
        return rows[:limit]
