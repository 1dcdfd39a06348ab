"""Transient failures half-way through a handler, on the in-process topology.

The in-process bus has Pub/Sub's delivery semantics that matter here (a handler that raises
is redelivered with the same message id, then dead-lettered after ``max_attempts``). Faults are
injected into our own job-store port (never into a client library): one call raises
``InfraUnavailable`` as Firestore does when it is unreachable. Each test proves the retried
delivery completes the work, counted once, and fails against the old behaviour (the event id
was recorded before the work, so the retry was taken for a duplicate and the shard, the
job's result or the generation was lost).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from stratagem.api import Api, ApiKeyAuth
from stratagem.bus import InProcessBus
from stratagem.data.store import iso_to_day
from stratagem.engines.backtest import run_backtest
from stratagem.errors import InfraUnavailable
from stratagem.generation.base import GeneratorUnavailable
from stratagem.jobs import MemoryJobStore
from stratagem.service import (
    TOPICS,
    Services,
    handle_backtest_shard,
    handle_generate,
    handle_screen_shard,
    handle_validate,
    submit_backtest,
    submit_screen,
)
from stratagem.store import MemoryStore

CODE = ("def classify_symbol(symbol):\n    d = get_price_data(symbol, days=2)\n"
        "    if len(d['close']) < 2:\n        return False\n"
        "    r = d['close'][-1] / d['close'][-2] - 1\n    return {'signal': r > 0.02, 'score': r * 100}\n")
RANGE = {"start": iso_to_day("2012-01-01"), "end": iso_to_day("2012-12-31")}


class FlakyJobs(MemoryJobStore):
    """The memory job store with scripted outages: ``fail[method] = n`` makes the next ``n``
    calls of ``method`` raise InfraUnavailable, after doing the work when ``after=True``
    (a write that was applied but whose answer was lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: dict[str, int] = {}
        self.after: set[str] = set()
        self.calls: dict[str, int] = {}

    def _fault(self, name: str, fn: Any, *a: Any, **kw: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            if name in self.after:
                fn(*a, **kw)
            raise InfraUnavailable(f"Firestore is unavailable ({name}): injected outage; retrying may help")
        return fn(*a, **kw)

    def put_shard(self, job_id: str, shard: int, result: Any) -> bool:
        return self._fault("put_shard", super().put_shard, job_id, shard, result)

    def try_finalize(self, job_id: str) -> bool:
        return self._fault("try_finalize", super().try_finalize, job_id)

    def finish(self, job_id: str, *, result: Any = None, error: dict | None = None) -> None:
        return self._fault("finish", super().finish, job_id, result=result, error=error)

    def mark_event(self, event_id: str) -> bool:
        return self._fault("mark_event", super().mark_event, event_id)


class Handlers:
    """Counts handler runs per topic (a retry must run the handler again, not be skipped)."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}


@pytest.fixture
def svc(sandbox, market) -> Services:
    from stratagem.generation.offline import OfflineGenerator

    bus = InProcessBus(max_attempts=5)
    s = Services(store=MemoryStore(), jobs=FlakyJobs(), bus=bus, market=market, sandbox_factory=lambda: sandbox,
                 generator_factory=OfflineGenerator)
    for key, fn in (("generate", handle_generate), ("validate", handle_validate),
                    ("backtest", handle_backtest_shard), ("screen", handle_screen_shard)):
        bus.subscribe(TOPICS[key], lambda m, mid, fn=fn: fn(s, m, mid))
    return s


def reference(sandbox, market, rec) -> dict:
    return run_backtest(sandbox, market, rec.code, market.symbols, probe=2, universe_label="request",
                        strategy_info={"id": rec.id, "version": rec.version, "name": rec.name}, **RANGE)


@pytest.mark.parametrize("method,after", [("put_shard", True), ("put_shard", False), ("try_finalize", True),
                                          ("finish", False), ("mark_event", True)])
def test_backtest_shard_retried_after_an_outage_completes_once(svc, sandbox, market, method, after):
    """An outage at each step of the shard handler: the redelivery finishes the job, and the
    merged result equals a single run (no shard lost, none counted twice)."""
    rec = svc.store.create("alice", name="up2", code=CODE)
    jobs: FlakyJobs = svc.jobs
    jobs.fail[method] = 1
    if after:
        jobs.after.add(method)
    if method in ("try_finalize", "finish"):
        # fail the finaliser: only the last shard's call finalises, so fail it then, not earlier
        jobs.fail[method] = 0
        original = jobs.put_shard

        def arm_on_last(job_id, shard, result, _orig=original):
            stored = _orig(job_id, shard, result)
            if len(jobs.shard_results(job_id)) == jobs.get_any(job_id).shards:
                jobs.fail[method] = 1
            return stored
        jobs.put_shard = arm_on_last  # type: ignore[method-assign]
    job = submit_backtest(svc, "alice", rec.id, shard_size=2, **RANGE)  # 5 symbols -> 3 shards
    done = svc.jobs.get("alice", job.id)
    assert done.status == "done", (done.status, done.error, svc.bus.dead_letters)
    assert jobs.fail[method] == 0, "the injected outage was never hit"
    assert svc.bus.dead_letters == []
    single = reference(sandbox, market, rec)
    assert done.result["instances"] == single["instances"]
    assert done.result["performance_metrics"] == single["performance_metrics"]
    assert sorted(svc.jobs.shard_results(job.id)) == [0, 1, 2]
    evaluated = sum(p["evaluated"] for p in svc.jobs.shard_results(job.id).values())
    assert evaluated == sum(len(s) for s in _plan(market).values())


def _plan(market) -> dict:
    from stratagem.engines.common import trading_days

    return trading_days(market, market.symbols, RANGE["start"], RANGE["end"])


def test_duplicates_and_out_of_order_shards(svc, sandbox, market):
    """Shards delivered in reverse order, each twice, plus a late duplicate after the job is
    done: the same result as a single run, each shard stored once."""
    rec = svc.store.create("alice", name="up2", code=CODE)
    bus: InProcessBus = svc.bus
    held: list[tuple[str, dict, str]] = []
    bus.handlers[TOPICS["backtest"]], saved = [], bus.handlers[TOPICS["backtest"]]
    bus.subscribe(TOPICS["backtest"], lambda m, mid: held.append((TOPICS["backtest"], m, mid)))
    job = submit_backtest(svc, "alice", rec.id, shard_size=2, **RANGE)
    bus.handlers[TOPICS["backtest"]] = saved
    assert [m["shard"] for _t, m, _mid in held] == [0, 1, 2]
    for _t, m, mid in reversed(held):
        handle_backtest_shard(svc, m, mid)
        handle_backtest_shard(svc, m, mid)  # duplicate delivery, same event id
        assert svc.jobs.get("alice", job.id).status in ("running", "done")
    done = svc.jobs.get("alice", job.id)
    handle_backtest_shard(svc, held[0][1], "a-new-event-id")  # late duplicate under a new id
    assert svc.jobs.get("alice", job.id).result == done.result
    assert done.result["instances"] == reference(sandbox, market, rec)["instances"]


def test_screen_finaliser_lost_is_redone(svc):
    rec = svc.store.create("alice", name="up2", code=CODE)
    jobs: FlakyJobs = svc.jobs
    jobs.fail["finish"] = 1
    job = submit_screen(svc, "alice", rec.id, asof=iso_to_day("2012-06-01"), shard_size=2)
    done = svc.jobs.get("alice", job.id)
    assert jobs.fail["finish"] == 0 and done.status == "done" and done.result["evaluated"] == 5


def test_poison_message_is_retried_then_dead_lettered(svc):
    """A message that passes the schema but crashes its handler every time (symbols that are not
    strings) is delivered max_attempts times, then dead-lettered; nothing else is affected."""
    rec = svc.store.create("alice", name="up2", code=CODE)
    job = submit_backtest(svc, "alice", rec.id, **RANGE)
    runs = []
    svc.bus.handlers[TOPICS["backtest"]] = [lambda m, mid: (runs.append(mid), handle_backtest_shard(svc, m, mid))]
    poison = {"schema": "stratagem.backtest_shard.v1", "job_id": job.id, "shard": 0, "shards": 1, "user_id": "alice",
              "strategy_id": rec.id, "version": 1, "symbols": [1234], "start": RANGE["start"], "end": RANGE["end"]}
    # the shard number is already stored, so the real handler would skip: use a fresh job
    from stratagem.jobs import Job
    svc.jobs.create(Job("poison-job", "alice", "backtest", shards=1,
                        params={"strategy_id": rec.id, "version": 1}))  # passes the tenancy check
    poison["job_id"] = "poison-job"
    svc.bus.publish(TOPICS["backtest"], poison)
    assert len(svc.bus.dead_letters) == 1 and svc.bus.dead_letters[0][1] == poison
    assert len(runs) == 5  # every attempt ran the handlers again (not skipped as a "duplicate")
    assert svc.jobs.get("alice", "poison-job").status not in ("done", "failed")  # stuck, visibly: never "done"
    assert svc.jobs.get("alice", job.id).status == "done"


def test_generate_redelivered_after_an_outage_creates_one_strategy(svc):
    """The event record fails to write after generate published its candidate: the retry runs
    generate again, two candidates reach validation, and still one strategy is stored (the
    store creates once per request id)."""
    jobs: FlakyJobs = svc.jobs
    jobs.fail["mark_event"] = 1
    jobs.after.add("mark_event")
    api = Api(svc, ApiKeyAuth({"k": "alice"}))
    status, doc = api.handle("POST", "/api/createStrategyFromPrompt",
                             json.dumps({"query": "stocks up more than 2% today"}).encode(),
                             {"Authorization": "Bearer k"})
    assert status == 200 and doc["status"] == "done", doc
    assert jobs.fail["mark_event"] == 0
    assert len(svc.store.list("alice")) == 1


class _Unavailable:
    name = "gemini"

    def generate(self, prompt: str, feedback: list[str] | None = None) -> Any:
        raise GeneratorUnavailable("Gemini is unavailable (503 UNAVAILABLE: overloaded) after 4 attempts; "
                                   "try again later")


def test_model_unavailable_fails_the_job_clearly(svc):
    svc.generator_factory = _Unavailable
    api = Api(svc, ApiKeyAuth({"k": "alice"}))
    status, doc = api.handle("POST", "/api/createStrategyFromPrompt", json.dumps({"query": "gap up"}).encode(),
                             {"Authorization": "Bearer k"})
    assert status == 422 and doc["status"] == "failed"
    assert doc["error"]["code"] == "generator_unavailable" and "503" in doc["error"]["message"]
    assert svc.store.list("alice") == [] and svc.bus.dead_letters == []


class _DownBus(InProcessBus):
    def publish(self, topic: str, message: dict) -> str:
        raise InfraUnavailable("Pub/Sub did not accept the message within 1 s (injected); retrying may help")


def test_publish_failure_answers_503_and_fails_the_job(svc):
    rec = svc.store.create("alice", name="up2", code=CODE)
    svc.bus = _DownBus()
    api = Api(svc, ApiKeyAuth({"k": "alice"}))
    status, doc = api.handle("POST", "/api/runBacktest", json.dumps({"strategyId": rec.id}).encode(),
                             {"Authorization": "Bearer k"})
    assert status == 503 and doc["error"]["code"] == "unavailable", doc
    [job] = list(svc.jobs._jobs.values())
    assert job.status == "failed" and "could not be queued" in job.error["message"]
