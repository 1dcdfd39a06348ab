"""The alert-log API (/api/getAlertLogs, /api/getTrackRecord): tenancy, filters, the track
record's forward returns against the data, and its baseline backtest job."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stratagem import factory, messages
from stratagem.alertlog import SqliteAlertLog
from stratagem.api import Api, ApiKeyAuth, RateLimiter
from stratagem.bus import InProcessBus
from stratagem.data.store import iso_to_day
from stratagem.engines.common import ms
from stratagem.jobs import MemoryJobStore
from stratagem.service import Services, handle_notify
from stratagem.store import MemoryStore

ALWAYS = "def classify_symbol(s):\n    return {'signal': True, 'score': 1.0}\n"


class Collect:
    channel = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, user_id: str, alert: dict) -> dict:
        self.sent.append((user_id, alert["dedup_key"]))
        return {"status": "sent"}


@pytest.fixture
def world(sandbox, market, tmp_path):
    svc = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                   sandbox_factory=lambda: sandbox, alert_log=SqliteAlertLog(tmp_path / "alerts.sqlite3"),
                   notifiers=[Collect()])
    factory.wire_in_process(svc)
    api = Api(svc, ApiKeyAuth({"ka": "alice", "kb": "bob"}), limiter=RateLimiter(rate=1e9, burst=10**9))
    return svc, api


def call(api: Api, key: str, path: str, body: dict) -> tuple[int, dict]:
    status, doc = api.handle("POST", path, json.dumps(body).encode(), {"Authorization": f"Bearer {key}"})
    json.dumps(doc, allow_nan=False)  # what the function would serialise
    return status, doc


def fire(svc: Services, user: str, rec, symbol: str, date: str) -> dict:
    day = iso_to_day(date)
    alert = {"strategy_id": rec.id, "strategy_version": rec.version, "strategy_name": rec.name, "symbol": symbol,
             "date": date, "timestamp": ms(day), "close": 1.0, "score": 1.0, "values": {"x": 1.0},
             "dedup_key": f"{rec.id}:{rec.version}:{symbol}:{day}", "demo_data": False, "message": f"{symbol} fired"}
    handle_notify(svc, messages.make("stratagem.alert.v1", alert=alert, user_id=user))
    return alert


def test_alert_logs_are_per_user_filtered_and_carry_delivery(world):
    svc, api = world
    a = svc.store.create("alice", name="a", code=ALWAYS)
    b = svc.store.create("bob", name="b", code=ALWAYS)
    fire(svc, "alice", a, "AAPL", "2012-03-01")
    fire(svc, "alice", a, "MSFT", "2012-03-02")
    fire(svc, "alice", a, "MSFT", "2012-03-02")  # duplicate delivery: logged and sent once
    fire(svc, "bob", b, "IBM", "2012-03-05")
    assert svc.notifiers[0].sent == [("alice", f"{a.id}:1:AAPL:{iso_to_day('2012-03-01')}"),
                                      ("alice", f"{a.id}:1:MSFT:{iso_to_day('2012-03-02')}"),
                                      ("bob", f"{b.id}:1:IBM:{iso_to_day('2012-03-05')}")]
    status, doc = call(api, "ka", "/api/getAlertLogs", {})
    assert status == 200
    assert [(e["symbol"], e["date"]) for e in doc["alerts"]] == [("MSFT", "2012-03-02"), ("AAPL", "2012-03-01")]
    assert all(e["delivery"] == {"test": {"status": "sent"}} and "user_id" not in e for e in doc["alerts"])
    status, doc = call(api, "kb", "/api/getAlertLogs", {})
    assert [e["symbol"] for e in doc["alerts"]] == ["IBM"]  # bob never sees alice's alerts
    assert call(api, "kb", "/api/getAlertLogs", {"strategyId": a.id})[0] == 404  # nor learns her strategy exists
    status, doc = call(api, "ka", "/api/getAlertLogs", {"since": ms(iso_to_day("2012-03-02")), "limit": 5})
    assert [e["symbol"] for e in doc["alerts"]] == ["MSFT"]
    status, doc = call(api, "ka", "/api/getAlertLogs", {"until": ms(iso_to_day("2012-03-01"))})
    assert [e["symbol"] for e in doc["alerts"]] == ["AAPL"]
    status, doc = call(api, "ka", "/api/getAlertLogs", {"limit": 0})
    assert status == 400 and "limit must be a positive integer" in doc["error"]["message"]
    status, doc = call(api, "ka", "/api/getAlertLogs", {"limit": 5000})
    assert status == 400 and "limit must be an integer from 1 to 1000" in doc["error"]["message"]
    status, doc = call(api, "ka", "/api/getAlertLogs", {"since": "yesterday"})
    assert status == 400 and "since must be a UTC timestamp in milliseconds" in doc["error"]["message"]
    assert call(api, "nobody", "/api/getAlertLogs", {})[0] == 401


def test_track_record_returns_match_the_data_and_baseline_is_the_same_version_before_the_alerts(world, market):
    svc, api = world
    rec = svc.store.create("alice", name="always", code=ALWAYS)
    svc.store.set_alert("alice", rec.id, True, ["AAPL", "MSFT"])
    fire(svc, "alice", rec, "AAPL", "2012-06-01")
    fire(svc, "alice", rec, "MSFT", "2012-06-04")
    fire(svc, "alice", rec, "AAPL", "2013-12-27")  # near the end of the data: 5- and 10-day returns unknown
    status, doc = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id})
    assert status == 200, doc
    assert doc["strategy"]["version"] == 1 and doc["windows"] == [1, 5, 10]

    def expected(symbol, date, w):
        a, b = market.range(symbol)
        days = np.asarray(market.columns["date"][a:b])
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=float)
        t = int(np.searchsorted(days, iso_to_day(date)))
        return None if t + w >= len(days) else adj[t + w] / adj[t] - 1

    got = {(e["symbol"], e["date"]): e["returns"] for e in doc["alerts"]}
    for (sym, date), rets in got.items():
        for w in (1, 5, 10):
            want = expected(sym, date, w)
            assert (rets[str(w)] is None) if want is None else rets[str(w)] == pytest.approx(want, rel=1e-12)
    assert got[("AAPL", "2013-12-27")]["10"] is None
    live = doc["live"]["1"]
    assert live["count"] == 3 - sum(r["1"] is None for r in got.values())
    bt = doc["backtest"]
    assert bt["status"] == "done" and bt["version"] == 1 and bt["symbols"] == 2
    assert bt["end"] == "2012-05-31"  # the day before the first alert: no overlap with the live sample
    job = svc.jobs.get("alice", bt["jobId"])
    assert job.params["purpose"] == "track_record_baseline"
    by_window = job.result["performance_metrics"]["by_window"]
    row = doc["comparison"]["5"]
    assert row["backtest"]["mean"] == pytest.approx(by_window["5"]["mean"])
    assert row["mean_diff"] == pytest.approx(doc["live"]["5"]["mean"] - by_window["5"]["mean"])
    # asking again reuses the baseline job: no second backtest
    published = len(svc.bus.published)
    status, again = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id})
    assert status == 200 and again["backtest"]["jobId"] == bt["jobId"] and again["comparison"] == doc["comparison"]
    status, again = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id, "backtestJobId": bt["jobId"]})
    assert status == 200 and again["backtest"]["jobId"] == bt["jobId"] and again["comparison"] == doc["comparison"]
    assert len(svc.bus.published) == published
    # bob cannot read alice's baseline job through his own track record
    bob = svc.store.create("bob", name="b", code=ALWAYS)
    assert call(api, "kb", "/api/getTrackRecord", {"strategyId": bob.id, "backtestJobId": bt["jobId"]})[0] == 404


def test_track_record_tenancy_and_bad_input(world):
    svc, api = world
    rec = svc.store.create("alice", name="always", code=ALWAYS)
    assert call(api, "kb", "/api/getTrackRecord", {"strategyId": rec.id})[0] == 404
    status, doc = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id})
    assert status == 200 and doc["alerts"] == [] and doc["backtest"]["status"] == "none"
    assert call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id, "backtestJobId": "nope"})[0] == 404
    status, doc = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id, "version": 7})
    assert status == 400 and "versions 1..1" in doc["error"]["message"]
    assert call(api, "ka", "/api/getTrackRecord", {})[0] == 400


def test_create_telegram_link_issues_a_code_for_the_caller(world, tmp_path):
    from stratagem.telegram import ChatDirectory, TelegramNotifier

    svc, api = world
    status, doc = call(api, "ka", "/api/createTelegramLink", {})
    assert status == 503 and "Telegram is not configured" in doc["error"]["message"]
    chats = ChatDirectory(tmp_path / "chats.json")
    svc.notifiers.append(TelegramNotifier("123456789:AAHfakeTOKENforTESTS_abcdefghijklmnopq", chats))
    chats.responder = None  # no bot to answer in this test
    status, doc = call(api, "ka", "/api/createTelegramLink", {})
    assert status == 200 and doc["send"] == f"/start {doc['code']}" and doc["expiresInSeconds"] == 900
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": doc["send"],
                                          "chat": {"id": 31337, "type": "private"}}}
    assert chats.handle_update(update) == "alice" and chats.chat_for("alice") == 31337
    assert chats.chat_for("bob") is None


def test_track_record_counts_live_bars_beyond_the_dataset(world, market):
    from stratagem.engines.common import iso
    from stratagem.live import Bar, MemoryLiveBars

    svc, api = world
    svc.live_bars = MemoryLiveBars()
    rec = svc.store.create("alice", name="always", code=ALWAYS)
    _a, b = market.range("AAPL")
    last = int(market.columns["date"][b - 1])
    close_last = float(market.columns["close"][b - 1])
    fire(svc, "alice", rec, "AAPL", iso(last))  # an alert on the dataset's last bar
    _status, doc = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id})
    assert doc["alerts"][0]["returns"]["1"] is None and doc["live"]["1"]["pending"] == 1
    svc.live_bars.put([Bar("AAPL", last + 1, 1.0, 1.0, 1.0, close_last * 1.05, 1000.0)])  # the next session, live
    _status, doc = call(api, "ka", "/api/getTrackRecord", {"strategyId": rec.id})
    assert doc["alerts"][0]["returns"]["1"] == pytest.approx(0.05, rel=1e-12)
    assert doc["alerts"][0]["returns"]["5"] is None
    assert doc["live"]["1"]["count"] == 1 and doc["live"]["1"]["hit_rate"] == 1.0
