"""Dead letters are made visible (service.handle_dead_letter, the ``dead_letter`` function).

A message whose handler fails on every delivery attempt is set aside by Pub/Sub (on the
in-process bus: after ``max_attempts``). Before the dead-letter function, its job stayed
"running" forever and an alert whose notification never went out left no trace of that. Now:
the job fails with a reason that says what happened, an undelivered alert is logged with its
channels failed, bars are stored for the next sweep; a finished job, a delivered channel and
another user's job are left alone, and a duplicate dead letter changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from stratagem import messages
from stratagem.bus import InProcessBus
from stratagem.data.store import iso_to_day
from stratagem.errors import InfraUnavailable
from stratagem.jobs import Job, MemoryJobStore
from stratagem.notify import MemoryAlertLog
from stratagem.service import (
    DEAD_LETTER_CODE,
    TOPICS,
    Services,
    handle_backtest_shard,
    handle_dead_letter,
    submit_backtest,
)
from stratagem.store import MemoryStore

from tests.faults.test_redelivery import CODE, RANGE  # the same strategy and range


class _Channel:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    def send(self, user_id: str, alert: dict) -> dict:
        raise AssertionError("a dead letter is never sent again")


@pytest.fixture
def svc(sandbox, market) -> Services:
    from stratagem import factory
    from stratagem.generation.offline import OfflineGenerator

    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(dead_letter_topic=TOPICS["dead_letter"]),
                 market=market, sandbox_factory=lambda: sandbox, generator_factory=OfflineGenerator,
                 alert_log=MemoryAlertLog(), notifiers=[_Channel("telegram"), _Channel("websocket")])
    factory.wire_in_process(s)
    return s


def _job(svc: Services, kind: str, user: str = "alice", **params: Any) -> Job:
    job = Job(f"{kind}-job", user, kind, shards=1, params=params)
    svc.jobs.create(job)
    return job


def _shard(job_id: str, rec_id: int, **over: Any) -> dict:
    return messages.make("stratagem.backtest_shard.v1", **{
        "job_id": job_id, "shard": 0, "shards": 1, "user_id": "alice", "strategy_id": rec_id, "version": 1,
        "symbols": ["AAPL"], "start": RANGE["start"], "end": RANGE["end"], **over})


def test_a_poison_shard_fails_its_job_with_the_reason(svc):
    """The backtest handler crashes on every attempt (symbols that are not strings): after the
    5 attempts the dead-letter function fails the job, saying what happened; another job of
    the same user is not affected."""
    rec = svc.store.create("alice", name="up2", code=CODE)
    good = submit_backtest(svc, "alice", rec.id, **RANGE)
    runs = []
    svc.bus.handlers[TOPICS["backtest"]] = [lambda m, mid: (runs.append(mid), handle_backtest_shard(svc, m, mid))]
    _job(svc, "backtest", strategy_id=rec.id, version=1)
    poison = _shard("backtest-job", rec.id, symbols=[1234])
    svc.bus.publish(TOPICS["backtest"], poison)
    assert len(runs) == 5 and [t for t, *_ in svc.bus.dead_letters] == [TOPICS["backtest"]]
    job = svc.jobs.get("alice", "backtest-job")
    assert job.status == "failed" and job.error["code"] == DEAD_LETTER_CODE
    assert "every delivery attempt" in job.error["message"] and "Submit the request again" in job.error["message"]
    assert job.error["details"] == {"schema": "stratagem.backtest_shard.v1", "shard": 0}
    assert svc.jobs.get("alice", good.id).status == "done"


@pytest.mark.parametrize("schema,kind", [("stratagem.generate.v1", "generate"), ("stratagem.validate.v1", "generate"),
                                         ("stratagem.backtest_shard.v1", "backtest"),
                                         ("stratagem.screen_shard.v1", "screen")])
def test_every_job_message_fails_its_job_once(svc, schema, kind):
    rec = svc.store.create("alice", name="up2", code=CODE)
    job = _job(svc, kind, strategy_id=rec.id if kind != "generate" else -1, version=1)
    common = {"job_id": job.id, "user_id": "alice"}
    msg = {
        "stratagem.generate.v1": lambda: messages.make(schema, prompt="gap up", strategy_id=-1, **common),
        "stratagem.validate.v1": lambda: messages.make(schema, prompt="gap up", strategy_id=-1, attempt=1,
                                                       feedback=[], attempts=[], candidate={}, **common),
        "stratagem.backtest_shard.v1": lambda: _shard(job.id, rec.id),
        "stratagem.screen_shard.v1": lambda: messages.make(schema, shard=0, shards=1, strategy_id=rec.id, version=1,
                                                           symbols=["AAPL"], asof=RANGE["end"], limit=5, **common),
    }[schema]()
    handle_dead_letter(svc, msg, "dl-1")
    failed = svc.jobs.get("alice", job.id)
    assert failed.status == "failed" and failed.error["code"] == DEAD_LETTER_CODE
    handle_dead_letter(svc, msg, "dl-1")  # duplicate delivery: recognised, nothing changes
    handle_dead_letter(svc, msg, "dl-2")  # a second dead letter of the same job: still the same
    assert svc.jobs.get("alice", job.id).error == failed.error


def test_a_finished_job_is_left_alone(svc):
    rec = svc.store.create("alice", name="up2", code=CODE)
    job = submit_backtest(svc, "alice", rec.id, **RANGE)
    done = svc.jobs.get("alice", job.id)
    assert done.status == "done"
    handle_dead_letter(svc, _shard(job.id, rec.id), "dl-late")  # e.g. a late copy of a shard that landed
    assert svc.jobs.get("alice", job.id).result == done.result and svc.jobs.get("alice", job.id).status == "done"


def test_a_forged_dead_letter_changes_nothing(svc):
    rec = svc.store.create("alice", name="up2", code=CODE)
    _job(svc, "backtest", strategy_id=rec.id, version=1)
    forged = _shard("backtest-job", rec.id, user_id="mallory")
    with pytest.raises(messages.MalformedMessage):
        handle_dead_letter(svc, forged, "dl-forged")
    assert svc.jobs.get("alice", "backtest-job").status == "queued"


def _alert(user: str = "alice") -> dict:
    alert = {"strategy_id": 7, "strategy_version": 1, "strategy_name": "gap", "symbol": "AAPL",
             "date": "2013-02-01", "timestamp": iso_to_day("2013-02-01") * 86_400_000, "close": 459.11,
             "score": 3.2, "values": {}, "dedup_key": "7:1:AAPL:15737", "demo_data": False, "message": "AAPL gapped"}
    return messages.make("stratagem.alert.v1", alert=alert, user_id=user)


def test_an_undelivered_alert_is_logged_with_its_channels_failed(svc):
    msg = _alert()
    handle_dead_letter(svc, msg, "dl-a")
    [entry] = svc.alert_log.list("alice")
    assert entry["symbol"] == "AAPL" and set(entry["delivery"]) == {"telegram", "websocket"}
    assert all(r["status"] == "failed" and "dead-lettered" in r["error"] for r in entry["delivery"].values())


def test_a_channel_that_was_delivered_stays_delivered(svc):
    msg = _alert()
    svc.alert_log.add("alice", msg["alert"], sending=["telegram", "websocket"])
    svc.alert_log.set_delivery(msg["alert"]["dedup_key"], "telegram", {"status": "sent"})
    handle_dead_letter(svc, msg, "dl-b")  # the notify handler died before recording websocket
    [entry] = svc.alert_log.list("alice")
    assert entry["delivery"]["telegram"] == {"status": "sent"}
    assert entry["delivery"]["websocket"]["status"] == "failed"


def test_an_alert_logged_for_another_user_is_rejected(svc):
    svc.alert_log.add("bob", _alert("bob")["alert"])
    with pytest.raises(messages.MalformedMessage):
        handle_dead_letter(svc, _alert("alice"), "dl-c")
    [entry] = svc.alert_log.list("bob")
    assert entry["delivery"] == {}


def test_dead_lettered_bars_are_stored_for_the_next_sweep(svc, market):
    from stratagem import alerting

    last = int(market.dates("AAPL")[-1])
    bar = {"symbol": "AAPL", "timeframe": "1d", "day": last + 3, "open": 450.0, "high": 460.0, "low": 440.0,
           "close": 455.0, "volume": 1e6}
    handle_dead_letter(svc, messages.make("stratagem.bars.v1", bars=[bar], source="test"), "dl-bars")
    stored = alerting.live_store(svc).bars_after({"AAPL": last})["AAPL"]
    assert [(b.day, b.close) for b in stored] == [(last + 3, 455.0)]


def test_a_tick_is_only_logged(svc):
    handle_dead_letter(svc, messages.make("stratagem.tick.v1", sweep_seconds=0, reason="scheduler"), "dl-tick")


def test_the_dead_letter_function_is_retried_not_dead_lettered_again(svc):
    """While the store is still down the dead-letter function fails too: the bus retries it,
    and never sends it to the dead-letter topic again (no loop)."""
    calls = []

    def down(m: dict, mid: str) -> None:
        calls.append(mid)
        raise InfraUnavailable("Firestore is unavailable: injected")

    svc.bus.handlers[TOPICS["dead_letter"]] = [down]
    svc.bus.handlers[TOPICS["backtest"]] = [lambda m, mid: down(m, mid)]
    svc.bus.publish(TOPICS["backtest"], _shard("no-such-job", 1))
    assert len(calls) == 10  # 5 deliveries of the shard, then 5 of its dead letter
    assert [t for t, *_ in svc.bus.dead_letters] == [TOPICS["backtest"], TOPICS["dead_letter"]]
