"""Each function through the Functions Framework (``create_app(...).test_client()``), with
saved Pub/Sub CloudEvents, wired to in-process services."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

functions_framework = pytest.importorskip("functions_framework")
from functions_framework import create_app  # noqa: E402

from stratagem import factory  # noqa: E402
from stratagem.bus import InProcessBus  # noqa: E402
from stratagem.jobs import MemoryJobStore  # noqa: E402
from stratagem.notify import MemoryAlertLog  # noqa: E402
from stratagem.service import Services  # noqa: E402
from stratagem.store import MemoryStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "functions"


class _Collect:
    channel = "test"

    def __init__(self):
        self.sent = []

    def send(self, user_id, alert):
        self.sent.append((user_id, alert["symbol"], alert["date"]))
        return {"status": "sent"}


@pytest.fixture
def svc(sandbox, market, monkeypatch):
    from stratagem.generation.offline import OfflineGenerator

    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                 sandbox_factory=lambda: sandbox, generator_factory=OfflineGenerator, alert_log=MemoryAlertLog(),
                 notifiers=[_Collect()])
    factory.wire_in_process(s)
    monkeypatch.setattr(factory, "_services", s)
    monkeypatch.setenv("STRATAGEM_API_KEYS", "k1:alice,k2:bob")
    return s


def app(name: str, signature: str):
    return create_app(target=name, source=str(ROOT / name / "main.py"), signature_type=signature).test_client()


def pubsub_event(msg: dict, event_id: str = "evt-1") -> tuple[dict, dict]:
    data = {"message": {"data": base64.b64encode(json.dumps(msg).encode()).decode(), "messageId": event_id},
            "subscription": "projects/p/subscriptions/s"}
    headers = {"ce-id": event_id, "ce-source": "//pubsub.googleapis.com/projects/p/topics/t", "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
    return data, headers


def test_api_function_end_to_end(svc, monkeypatch):

    client = app("api", "http")
    r = client.post("/api/createStrategyFromPrompt", json={"query": "RSI below 30", "strategyId": -1},
                    headers={"Authorization": "Bearer k1"})
    assert r.status_code == 200, r.get_json()
    sid = r.get_json()["result"]["strategy"]["id"]
    r = client.post("/api/getStrategies", json={}, headers={"Authorization": "Bearer k2"})
    assert r.get_json() == {"strategies": []}
    r = client.post("/api/getStrategy", json={"strategyId": sid}, headers={"Authorization": "Bearer k2"})
    assert r.status_code == 404
    r = client.post("/api/getStrategies", json={})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"


def test_backtest_function_with_duplicate_and_malformed_events(svc):
    from stratagem import messages
    from stratagem.data.store import iso_to_day
    from stratagem.jobs import Job

    rec = svc.store.create("alice", name="x", code="def classify_symbol(s):\n    return True\n")
    svc.jobs.create(Job("job1", "alice", "backtest", shards=1, params={
        "strategy_id": rec.id, "version": 1, "symbols": ["AAPL"], "start": iso_to_day("2013-02-01"),
        "end": iso_to_day("2013-02-28"), "windows": [1], "entry": "close"}))
    msg = messages.make("stratagem.backtest_shard.v1", job_id="job1", shard=0, shards=1, user_id="alice",
                        strategy_id=rec.id, version=1, symbols=["AAPL"], start=iso_to_day("2013-02-01"),
                        end=iso_to_day("2013-02-28"), params={})
    client = app("backtest", "cloudevent")
    data, headers = pubsub_event(msg)
    assert client.post("/", json=data, headers=headers).status_code == 200
    result = svc.jobs.get("alice", "job1").result
    assert len(result["instances"]) == 19
    assert client.post("/", json=data, headers=headers).status_code == 200  # duplicate: no effect
    assert svc.jobs.get("alice", "job1").result == result
    bad, h2 = pubsub_event({"schema": "stratagem.backtest_shard.v1", "job_id": 5}, "evt-2")
    assert client.post("/", json=bad, headers=h2).status_code == 200  # acknowledged, logged, nothing written


def test_bars_tick_and_notify_fire_once(svc):
    from stratagem import messages
    from stratagem.data.store import iso_to_day

    from stratagem.live import history_bars

    rec = svc.store.create("alice", name="always", code="def classify_symbol(s):\n    return True\n")
    svc.store.set_alert("alice", rec.id, True, ["AAPL", "MSFT"])
    day = iso_to_day("2013-02-28")
    bars = [b.to_message() for b in history_bars(svc.market, ["AAPL", "IBM"], day, day)[0]]
    bars[0] = {k: v for k, v in bars[0].items() if k != "time"} | {"day": day}  # the legacy int date still works
    msg = messages.make("stratagem.bars.v1", bars=bars)
    client = app("alert_bars", "cloudevent")
    data, headers = pubsub_event(msg, "bars-1")
    assert client.post("/", json=data, headers=headers).status_code == 200
    data, headers = pubsub_event(msg, "bars-1-redelivered-with-a-new-id")
    assert client.post("/", json=data, headers=headers).status_code == 200
    sent = svc.notifiers[0].sent
    assert sent == [("alice", "AAPL", "2013-02-28")]  # IBM is outside the alert universe; fired once
    logs = svc.alert_log.list("alice")
    assert len(logs) == 1 and logs[0]["delivery"]["test"]["status"] == "sent"


def test_dead_letter_function_fails_the_job_and_retries_while_the_store_is_down(svc, monkeypatch):
    from stratagem import messages
    from stratagem.errors import InfraUnavailable
    from stratagem.jobs import Job

    rec = svc.store.create("alice", name="x", code="def classify_symbol(s):\n    return True\n")
    svc.jobs.create(Job("job-dl", "alice", "backtest", shards=1, params={"strategy_id": rec.id, "version": 1}))
    msg = messages.make("stratagem.backtest_shard.v1", job_id="job-dl", shard=0, shards=1, user_id="alice",
                        strategy_id=rec.id, version=1, symbols=["AAPL"], start=15000, end=15100)
    client = app("dead_letter", "cloudevent")
    data, headers = pubsub_event(msg, "dl-1")
    real_finish = svc.jobs.finish

    def down(*a, **kw):
        raise InfraUnavailable("Firestore is unavailable: injected")

    monkeypatch.setattr(svc.jobs, "finish", down)
    assert client.post("/", json=data, headers=headers).status_code == 500  # retried by Pub/Sub
    assert svc.jobs.get("alice", "job-dl").status == "queued"
    monkeypatch.setattr(svc.jobs, "finish", real_finish)
    assert client.post("/", json=data, headers=headers).status_code == 200
    job = svc.jobs.get("alice", "job-dl")
    assert job.status == "failed" and job.error["code"] == "dead_lettered"
    forged, h2 = pubsub_event({**msg, "user_id": "bob"}, "dl-2")
    assert client.post("/", json=forged, headers=h2).status_code == 200  # acknowledged, logged, nothing written
    assert svc.jobs.get("alice", "job-dl").error == job.error
