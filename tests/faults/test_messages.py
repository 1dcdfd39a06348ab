"""Pub/Sub deliveries through the real Functions Framework conversion path, in the exact body
a push subscription POSTs (``{"message": {data, messageId, publishTime}, "subscription"}``):
malformed messages acknowledged with a logged reason, duplicates ignored, a reused message id
(an emulator restarted numbers messages from 1 again) still processed, poison and transient
failures answered 500 so Pub/Sub redelivers and finally dead-letters."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

functions_framework = pytest.importorskip("functions_framework")
from functions_framework import create_app
from stratagem import factory, messages
from stratagem.bus import InProcessBus
from stratagem.data.store import iso_to_day
from stratagem.jobs import Job, MemoryJobStore
from stratagem.service import Services
from stratagem.store import MemoryStore

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
START, END = iso_to_day("2013-02-01"), iso_to_day("2013-02-28")


@pytest.fixture
def svc(sandbox, market, monkeypatch) -> Services:
    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                 sandbox_factory=lambda: sandbox)
    monkeypatch.setattr(factory, "_services", s)
    return s


@pytest.fixture
def backtest_fn():
    return create_app(target="backtest", source=str(FUNCTIONS / "backtest" / "main.py"),
                      signature_type="cloudevent").test_client()


def push(data: bytes, message_id: str, publish_time: str) -> dict:
    """The body a Pub/Sub push subscription POSTs."""
    return {"message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "message_id": message_id,
                        "publishTime": publish_time, "attributes": {}},
            "subscription": "projects/stratagem-local/subscriptions/stratagem-backtest-push"}


def new_job(svc: Services, job_id: str) -> dict:
    rec = svc.store.create("alice", name="x", code="def classify_symbol(s):\n    return True\n")
    svc.jobs.create(Job(job_id, "alice", "backtest", shards=1, params={
        "strategy_id": rec.id, "version": 1, "symbols": ["AAPL"], "start": START, "end": END, "windows": [1],
        "entry": "close"}))
    return messages.make("stratagem.backtest_shard.v1", job_id=job_id, shard=0, shards=1, user_id="alice",
                         strategy_id=rec.id, version=1, symbols=["AAPL"], start=START, end=END, params={})


def post(fn, body: dict) -> int:
    return fn.post("/", json=body).status_code


def test_duplicates_ignored_and_reused_ids_processed(svc, backtest_fn):
    msg = new_job(svc, "job1")
    body = push(json.dumps(msg).encode(), "1", "2026-11-25T10:00:00.000Z")
    assert post(backtest_fn, body) == 200
    first = svc.jobs.get("alice", "job1")
    assert first.status == "done" and len(first.result["instances"]) == 19
    assert post(backtest_fn, body) == 200  # the same message again
    assert svc.jobs.get("alice", "job1").result == first.result
    assert svc.jobs.seen_event("backtest/1@2026-11-25T10:00:00.000Z")

    # a different message that reuses id "1" (the emulator restarted): processed, not dropped
    msg2 = new_job(svc, "job2")
    assert post(backtest_fn, push(json.dumps(msg2).encode(), "1", "2026-11-25T11:00:00.000Z")) == 200
    assert svc.jobs.get("alice", "job2").status == "done"


@pytest.mark.parametrize("data,reason", [
    (b"{not json", "not JSON"),
    (json.dumps({"schema": "stratagem.nope.v9"}).encode(), "unknown message schema"),
    (json.dumps({"schema": "stratagem.backtest_shard.v1", "job_id": 7}).encode(), "must be str"),
    (json.dumps([1, 2]).encode(), "must be a JSON object"),
])
def test_malformed_acknowledged_with_a_logged_reason(svc, backtest_fn, capsys, data, reason):
    assert post(backtest_fn, push(data, "9", "2026-11-25T10:00:00.000Z")) == 200  # acked: never retried
    logged = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    [rec] = [r for r in logged if r.get("message") == "malformed message acknowledged without processing"]
    assert reason in rec["reason"] and rec["function"] == "backtest"


def test_poison_and_transient_answer_500_until_dead_lettered(svc, backtest_fn, monkeypatch):
    """A message that crashes its handler answers 500 on every delivery (no event recorded, so
    each redelivery runs again: Pub/Sub dead-letters it after max_delivery_attempts); a
    transient error answers 500 and the redelivery succeeds once the fault is gone."""
    msg = new_job(svc, "job3")
    poison = dict(msg, symbols=[1234])  # passes the schema, breaks the run
    svc.jobs.create(Job("job3", "alice", "backtest", shards=1,
                        params={"strategy_id": msg["strategy_id"], "version": 1}))  # passes the tenancy check
    body = push(json.dumps(poison).encode(), "5", "2026-11-25T10:00:00.000Z")
    assert [post(backtest_fn, body) for _ in range(3)] == [500, 500, 500]
    assert not svc.jobs.seen_event("backtest/5@2026-11-25T10:00:00.000Z")

    from stratagem.errors import InfraUnavailable

    msg4 = new_job(svc, "job4")
    real = svc.jobs.put_shard
    calls = []

    def down_once(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise InfraUnavailable("Firestore is unavailable (injected): retrying may help")
        return real(*a, **kw)
    monkeypatch.setattr(svc.jobs, "put_shard", down_once)
    body = push(json.dumps(msg4).encode(), "6", "2026-11-25T10:00:00.000Z")
    assert post(backtest_fn, body) == 500  # Pub/Sub will redeliver
    assert svc.jobs.get("alice", "job4").status == "queued"
    assert post(backtest_fn, body) == 200  # the redelivery
    assert svc.jobs.get("alice", "job4").status == "done" and len(calls) == 2
