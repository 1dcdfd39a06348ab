"""The AlertLog port's behaviour, on the memory and SQLite adapters (the Firestore adapter
reruns these tests against the emulator: tests/integration/test_firestore_alertlog.py)."""

from __future__ import annotations

import threading

import pytest
from stratagem.alertlog import SqliteAlertLog
from stratagem.errors import BadInput
from stratagem.notify import MemoryAlertLog

DAY = 86_400_000


class TickClock:
    """Each call one millisecond later (created times are distinct and ordered)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.t += 0.001
            return self.t


def make(sid=1, symbol="AAPL", day=15000, version=1, **extra):
    return {"strategy_id": sid, "strategy_version": version, "strategy_name": "gap", "symbol": symbol,
            "date": "2011-01-26", "timestamp": day * DAY, "close": 12.5, "score": 3.2,
            "values": {"gap": 0.031, "rel_volume": 2.0}, "dedup_key": f"{sid}:{version}:{symbol}:{day}",
            "demo_data": False, "message": f"gap: {symbol}", **extra}


@pytest.fixture(params=["memory", "sqlite"])
def alert_log(request, tmp_path):
    if request.param == "memory":
        return MemoryAlertLog(clock=TickClock())
    return SqliteAlertLog(tmp_path / "alerts.sqlite3", clock=TickClock())


def test_add_once_per_dedup_key(alert_log):
    a = make()
    assert alert_log.add("alice", a) is True
    assert alert_log.add("alice", a) is False
    assert alert_log.add("alice", dict(a, message="changed")) is False
    rows = alert_log.list("alice")
    assert len(rows) == 1 and rows[0]["message"] == "gap: AAPL"
    e = rows[0]
    assert e["user_id"] == "alice" and e["strategy_id"] == 1 and e["strategy_version"] == 1
    assert e["symbol"] == "AAPL" and e["timestamp"] == 15000 * DAY and e["values"] == {"gap": 0.031, "rel_volume": 2.0}
    assert isinstance(e["created_at"], int) and e["delivery"] == {}


def test_delivery_status_per_channel_and_overwrite(alert_log):
    a = make()
    alert_log.add("alice", a)
    alert_log.set_delivery(a["dedup_key"], "telegram", {"status": "sending", "at": 1})
    alert_log.set_delivery(a["dedup_key"], "telegram", {"status": "failed", "permanent": True, "reason": "blocked"})
    alert_log.set_delivery(a["dedup_key"], "console", {"status": "sent"})
    e = alert_log.get("alice", a["dedup_key"])
    assert e["delivery"] == {"telegram": {"status": "failed", "permanent": True, "reason": "blocked"},
                             "console": {"status": "sent"}}


def test_a_delivery_recorded_before_the_alert_is_kept_and_does_not_block_logging(alert_log):
    a = make()
    alert_log.set_delivery(a["dedup_key"], "websocket", {"status": "sent", "connections": 2})
    assert alert_log.list("alice") == []  # a delivery alone is no alert
    assert alert_log.add("alice", a) is True
    assert alert_log.get("alice", a["dedup_key"])["delivery"] == {"websocket": {"status": "sent", "connections": 2}}


def test_users_see_only_their_own_alerts(alert_log):
    alert_log.add("alice", make(sid=1))
    alert_log.add("bob", make(sid=2, symbol="MSFT"))
    assert [e["symbol"] for e in alert_log.list("alice")] == ["AAPL"]
    assert [e["symbol"] for e in alert_log.list("bob")] == ["MSFT"]
    assert alert_log.get("bob", make(sid=1)["dedup_key"]) is None
    assert alert_log.list("carol") == []


def test_filters_order_and_limit(alert_log):
    for k, (sid, sym, day) in enumerate([(1, "AAPL", 100), (1, "MSFT", 101), (2, "AAPL", 102), (1, "IBM", 103)]):
        alert_log.add("alice", make(sid=sid, symbol=sym, day=day))
    assert [e["timestamp"] // DAY for e in alert_log.list("alice")] == [103, 102, 101, 100]  # newest bar first
    assert [e["symbol"] for e in alert_log.list("alice", 1)] == ["IBM", "MSFT", "AAPL"]
    assert [e["symbol"] for e in alert_log.list("alice", "2")] == ["AAPL"]
    assert [e["timestamp"] // DAY for e in alert_log.list("alice", since=101 * DAY, until=102 * DAY)] == [102, 101]
    assert len(alert_log.list("alice", limit=2)) == 2
    created = [e["created_at"] for e in alert_log.list("alice")][::-1]
    caught_up = alert_log.list("alice", created_after=created[1])
    assert [e["timestamp"] // DAY for e in caught_up] == [101, 102, 103]  # oldest logged first


@pytest.mark.parametrize("kwargs, message", [({"limit": 0}, "limit must be an integer from 1 to 1000"),
                                             ({"limit": 5000}, "from 1 to 1000"),
                                             ({"since": 10, "until": 5}, "since (10) is after until (5)")])
def test_bad_list_arguments_say_what_is_expected(alert_log, kwargs, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        alert_log.list("alice", **kwargs)


def test_concurrent_adds_log_exactly_once(alert_log):
    a = make()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        results.append(alert_log.add("alice", a))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_sqlite_log_survives_reopening(tmp_path):
    path = tmp_path / "alerts.sqlite3"
    first = SqliteAlertLog(path)
    first.add("alice", make())
    first.set_delivery(make()["dedup_key"], "file", {"status": "sent"})
    again = SqliteAlertLog(path)
    assert again.add("alice", make()) is False
    assert again.list("alice")[0]["delivery"] == {"file": {"status": "sent"}}


def test_add_claims_channels_in_the_same_write(alert_log):
    a = make()
    early = make(symbol="MSFT")
    alert_log.set_delivery(early["dedup_key"], "console", {"status": "sent"})  # reported before the entry
    assert alert_log.add("alice", a, sending=["console", "telegram"]) is True
    assert alert_log.add("alice", early, sending=["console", "telegram"]) is True
    d = alert_log.get("alice", a["dedup_key"])["delivery"]
    assert d["console"]["status"] == d["telegram"]["status"] == "sending" and isinstance(d["console"]["at"], int)
    d = alert_log.get("alice", early["dedup_key"])["delivery"]
    assert d["console"] == {"status": "sent"} and d["telegram"]["status"] == "sending"
    assert alert_log.add("alice", a, sending=["file"]) is False  # a duplicate claims nothing
    assert "file" not in alert_log.get("alice", a["dedup_key"])["delivery"]


def test_many_first_opens_of_a_fresh_file_all_succeed(tmp_path):
    # a fresh file opened by many connections at once: the WAL switch is contended and SQLite
    # answers it with SQLITE_BUSY at once (no busy handler), which used to escape as "locked"
    logs = [SqliteAlertLog(tmp_path / "alerts.sqlite3") for _ in range(12)]
    barrier = threading.Barrier(len(logs))
    errors: list[BaseException] = []
    added: list[bool] = []

    def worker(log):
        barrier.wait()
        try:
            added.append(log.add("alice", make()))
        except BaseException as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(added) == [False] * 11 + [True]
