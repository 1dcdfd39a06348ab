"""handle_notify against a real SQLite alert log: duplicate deliveries in parallel send once per
channel; a redelivery after a crash mid-send sends the channels without an outcome, and only those."""

from __future__ import annotations

import threading
import time

from stratagem import messages
from stratagem.alertlog import SqliteAlertLog
from stratagem.service import NOTIFY_STALE_SENDING_S, Services, handle_notify

DAY = 86_400_000
ALERT = {"strategy_id": 3, "strategy_version": 1, "strategy_name": "gap", "symbol": "AAPL", "date": "2012-03-01",
         "timestamp": 15400 * DAY, "close": 1.0, "score": 1.0, "values": {}, "dedup_key": "3:1:AAPL:15400",
         "demo_data": False, "message": "AAPL"}
MSG = messages.make("stratagem.alert.v1", alert=ALERT, user_id="alice")


class Channel:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.channel = name
        self.fail = fail
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def send(self, user_id: str, alert: dict) -> dict:
        with self._lock:
            self.sent.append(alert["dedup_key"])
        if self.fail:
            raise RuntimeError("chat not found")
        return {"status": "sent"}


def services(tmp_path, *channels) -> Services:
    return Services(store=None, jobs=None, bus=None, market=None, sandbox_factory=None,  # type: ignore[arg-type]
                    alert_log=SqliteAlertLog(tmp_path / "alerts.sqlite3"), notifiers=list(channels))


def test_parallel_duplicate_deliveries_send_once_per_channel(tmp_path):
    a, b = Channel("console"), Channel("telegram")
    svc = services(tmp_path, a, b)
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait()
        handle_notify(svc, MSG, f"evt-{k}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.sent == [ALERT["dedup_key"]] and b.sent == [ALERT["dedup_key"]]
    entry = svc.alert_log.get("alice", ALERT["dedup_key"])
    assert entry["delivery"] == {"console": {"status": "sent"}, "telegram": {"status": "sent"}}


def test_a_failed_channel_is_recorded_and_not_retried_by_a_duplicate(tmp_path):
    ok, bad = Channel("console"), Channel("telegram", fail=True)
    svc = services(tmp_path, ok, bad)
    handle_notify(svc, MSG, "evt-1")
    handle_notify(svc, MSG, "evt-2")
    assert ok.sent == bad.sent == [ALERT["dedup_key"]]
    d = svc.alert_log.get("alice", ALERT["dedup_key"])["delivery"]
    assert d["telegram"] == {"status": "failed", "error": "RuntimeError: chat not found"}


def test_a_redelivery_after_a_crash_mid_send_finishes_the_missing_channels(tmp_path):
    a, b = Channel("console"), Channel("telegram")
    svc = services(tmp_path, a, b)
    # what a crashed first attempt leaves: logged, console sent, telegram marked sending long ago
    svc.alert_log.add("alice", ALERT)
    svc.alert_log.set_delivery(ALERT["dedup_key"], "console", {"status": "sent"})
    stale = int(time.time() * 1000) - (NOTIFY_STALE_SENDING_S + 60) * 1000
    svc.alert_log.set_delivery(ALERT["dedup_key"], "telegram", {"status": "sending", "at": stale})
    handle_notify(svc, MSG, "evt-redelivered")
    assert a.sent == [] and b.sent == [ALERT["dedup_key"]]
    assert svc.alert_log.get("alice", ALERT["dedup_key"])["delivery"]["telegram"] == {"status": "sent"}
    # a fresh "sending" mark (another instance is on it right now) is left alone
    svc.alert_log.set_delivery(ALERT["dedup_key"], "telegram", {"status": "sending", "at": int(time.time() * 1000)})
    handle_notify(svc, MSG, "evt-again")
    assert b.sent == [ALERT["dedup_key"]]


def test_a_message_naming_another_user_for_a_logged_alert_sends_nothing(tmp_path):
    a = Channel("console")
    svc = services(tmp_path, a)
    handle_notify(svc, MSG, "evt-1")
    forged = messages.make("stratagem.alert.v1", alert=ALERT, user_id="mallory")
    handle_notify(svc, forged, "evt-2")
    assert a.sent == [ALERT["dedup_key"]]
    assert svc.alert_log.list("mallory") == []
