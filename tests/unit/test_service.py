"""The service core wired in-process: API -> bus -> handlers -> stores, sharding and idempotence."""

from __future__ import annotations

import json

import pytest

from stratagem.api import Api, ApiKeyAuth, RateLimiter
from stratagem.bus import InProcessBus
from stratagem.data.store import iso_to_day
from stratagem.engines.backtest import run_backtest
from stratagem.jobs import MemoryJobStore
from stratagem.service import (TOPICS, Services, handle_backtest_shard, handle_generate, handle_screen_shard,
                               handle_validate, submit_backtest)
from stratagem.store import MemoryStore

CODE = ("def classify_symbol(symbol):\n    d = get_price_data(symbol, days=2)\n"
        "    if len(d['close']) < 2:\n        return False\n"
        "    r = d['close'][-1] / d['close'][-2] - 1\n    return {'signal': r > 0.02, 'score': r * 100}\n")


@pytest.fixture
def svc(sandbox, market):
    bus = InProcessBus()
    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=bus, market=market, sandbox_factory=lambda: sandbox,
                 generator_factory=lambda: __import__("stratagem.generation.offline", fromlist=["x"]).OfflineGenerator())
    bus.subscribe(TOPICS["generate"], lambda m, mid: handle_generate(s, m, mid))
    bus.subscribe(TOPICS["validate"], lambda m, mid: handle_validate(s, m, mid))
    bus.subscribe(TOPICS["backtest"], lambda m, mid: handle_backtest_shard(s, m, mid))
    bus.subscribe(TOPICS["screen"], lambda m, mid: handle_screen_shard(s, m, mid))
    return s


@pytest.fixture
def api(svc):
    return Api(svc, ApiKeyAuth({"key-alice": "alice", "key-bob": "bob"}))


def call(api, path, body, key="key-alice"):
    status, doc = api.handle("POST", path, json.dumps(body).encode(), {"Authorization": f"Bearer {key}"})
    return status, doc


def test_sharded_backtest_equals_single_run(svc, sandbox, market):
    rec = svc.store.create("alice", name="up2", code=CODE)
    kw = dict(start=iso_to_day("2011-01-01"), end=iso_to_day("2012-12-31"), windows=[1, 5])
    job = submit_backtest(svc, "alice", rec.id, shard_size=2, **kw)  # 5 symbols -> 3 shards
    assert job.shards == 3
    merged = svc.jobs.get("alice", job.id).result
    single = run_backtest(sandbox, market, CODE, market.symbols, probe=2, universe_label="request",
                          strategy_info={"id": rec.id, "version": rec.version, "name": rec.name}, **kw)
    assert merged["instances"] == single["instances"]
    assert merged["performance_metrics"] == single["performance_metrics"]
    assert merged["equity"] == single["equity"]


def test_duplicate_and_replayed_shards_count_once(svc):
    rec = svc.store.create("alice", name="up2", code=CODE)
    job = submit_backtest(svc, "alice", rec.id, shard_size=2, start=iso_to_day("2012-01-01"), end=iso_to_day("2012-03-01"))
    before = svc.jobs.get("alice", job.id).result
    for i in range(len(svc.bus.published)):
        svc.bus.redeliver(i)  # same event ids: ignored
    topic, msg, _mid = svc.bus.published[-1]
    handle_backtest_shard(svc, msg, "another-event-id")  # a retried shard under a new id: counts once
    after = svc.jobs.get("alice", job.id).result
    assert after == before and svc.bus.dead_letters == []


def test_forged_user_in_a_message_is_rejected(svc):
    rec = svc.store.create("alice", name="up2", code=CODE)
    job = submit_backtest(svc, "alice", rec.id, start=iso_to_day("2012-01-01"), end=iso_to_day("2012-02-01"))
    _t, msg, _ = svc.bus.published[-1]
    forged = dict(msg, user_id="bob", shard=0)
    svc.bus.publish(TOPICS["backtest"], forged)
    assert svc.bus.dead_letters and svc.bus.dead_letters[-1][2] == "malformed"
    assert svc.jobs.get("alice", job.id).status == "done"


def test_api_flow_and_tenancy(api, svc):
    st, doc = call(api, "/api/createStrategyFromPrompt", {"query": "stocks that gap up more than 3% on high volume",
                                                          "strategyId": -1})
    assert st == 200, doc
    sid = doc["result"]["strategy"]["id"]
    assert sid == 1 and "classify_symbol" in doc["result"]["strategy"]["code"]
    st, doc = call(api, "/api/getStrategies", {})
    assert [s["id"] for s in doc["strategies"]] == [sid]
    # bob sees nothing of alice's, on every endpoint
    assert call(api, "/api/getStrategies", {}, "key-bob")[1] == {"strategies": []}
    for path, body in [("/api/getStrategy", {"strategyId": sid}), ("/api/getStrategyVersions", {"strategyId": sid}),
                       ("/api/setAlert", {"strategyId": sid, "active": True}),
                       ("/api/runBacktest", {"strategyId": sid}),
                       ("/api/runUnifiedStrategy", {"strategyId": sid, "executionMode": "screening"}),
                       ("/api/createStrategyFromPrompt", {"query": "rsi below 30", "strategyId": sid})]:
        st, doc = call(api, path, body, "key-bob")
        assert st == 404 and doc["error"]["code"] == "not_found", (path, doc)
    st, doc = call(api, "/api/runBacktest", {"strategyId": sid, "start": 1325376000000, "returnWindows": [1, 5]})
    assert st == 200 and doc["status"] == "done" and doc["result"]["windows"] == [1, 5]
    bob_job = call(api, "/api/getJob", {"jobId": doc["jobId"]}, "key-bob")
    assert bob_job[0] == 404
    st, doc = call(api, "/api/runUnifiedStrategy", {"strategyId": sid, "executionMode": "screening", "limit": 3})
    assert st == 200 and "ranked_results" in doc["result"]
    st, doc = call(api, "/api/setAlert", {"strategyId": sid, "active": True, "symbols": ["aapl"]})
    assert st == 200 and doc["strategy"]["isAlertActive"] is True and doc["strategy"]["alertUniverse"] == ["AAPL"]


@pytest.mark.parametrize("path,body,status,needle", [
    ("/api/getStrategy", {}, 400, "strategyId"),
    ("/api/getStrategy", {"strategyId": "1"}, 400, "integer"),
    ("/api/getStrategy", {"strategyId": 999}, 404, "not found"),
    ("/api/runUnifiedStrategy", {"strategyId": 1, "executionMode": "live"}, 400, "executionMode"),
    ("/api/runBacktest", {"strategyId": 1, "returnWindows": [0]}, 400, "returnWindows"),
    ("/api/createStrategyFromPrompt", {"query": ""}, 400, "query"),
    ("/api/nope", {}, 404, "endpoints"),
])
def test_bad_input_is_4xx_with_error_json(api, path, body, status, needle):
    st, doc = call(api, path, body)
    assert st == status and needle in doc["error"]["message"] and doc["error"]["code"]


def test_auth_size_and_rate_limits(svc):
    api = Api(svc, ApiKeyAuth({"k": "alice"}), limiter=RateLimiter(rate=0.001, burst=2))
    assert api.handle("POST", "/api/getStrategies", b"{}", {})[0] == 401
    assert api.handle("POST", "/api/getStrategies", b"{}", {"X-API-Key": "wrong"})[0] == 401
    assert api.handle("POST", "/api/getStrategies", b"x" * 70_000, {"X-API-Key": "k"})[0] == 413
    assert api.handle("POST", "/api/getStrategies", b"not json", {"X-API-Key": "k"})[0] == 400
    assert api.handle("POST", "/api/getStrategies", b"{}", {"X-API-Key": "k"})[0] == 429  # burst of 2 used up
    api2 = Api(svc, ApiKeyAuth({"k": "alice"}))
    assert api2.handle("POST", "/api/getStrategies", b"not json", {"X-API-Key": "k"})[0] == 400
    assert api2.handle("GET", "/api/getStrategies", b"", {"X-API-Key": "k"})[0] == 405


class _Scripted:
    """A generator fake (our own port, not a client library): returns the scripted answers in order."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.feedback_seen = []

    def generate(self, prompt, feedback=None):
        from stratagem.generation.base import GeneratedStrategy

        self.feedback_seen.append(list(feedback or []))
        code = self.answers.pop(0)
        if isinstance(code, Exception):
            raise code
        return GeneratedStrategy(name="s", description="d", code=code, generator="scripted")


def test_repair_loop_across_generate_and_validate_functions(svc):
    fake = _Scripted(["import os\ndef classify_symbol(s):\n    return False\n", CODE])
    svc.generator_factory = lambda: fake
    from stratagem.service import submit_generate

    job = submit_generate(svc, "alice", "two percent up day")
    done = svc.jobs.get("alice", job.id)
    assert done.status == "done", done.error
    stages = [(a["stage"], a["ok"]) for a in done.result["attempts"]]
    assert stages == [("validate", False), ("accepted", True)]
    assert "import of 'os' is not allowed" in fake.feedback_seen[1][0]  # the exact error went back


def test_refusal_and_exhaustion_fail_the_job_without_saving(svc):
    from stratagem.generation.base import GenerationRefused
    from stratagem.service import submit_generate

    svc.generator_factory = lambda: _Scripted([GenerationRefused("intraday bars are not available")])
    job = submit_generate(svc, "alice", "buy on the 5-minute chart")
    assert svc.jobs.get("alice", job.id).error["code"] == "refused"
    bad = "def classify_symbol(s):\n    return ().__class__\n"
    svc.generator_factory = lambda s=_Scripted([bad, bad, bad]): s
    job = submit_generate(svc, "alice", "anything")
    err = svc.jobs.get("alice", job.id).error
    assert err["code"] == "generation_failed" and len(err["details"]["attempts"]) == 3
    assert svc.store.list("alice") == []


# -- result cache shared by the functions ---------------------------------------------------------
def _counting(svc):
    published: list[str] = []
    orig = svc.bus.publish

    def publish(topic, msg, *a, **kw):
        published.append(topic)
        return orig(topic, msg, *a, **kw)

    svc.bus.publish = publish
    return published


def test_repeated_jobs_are_answered_from_the_result_cache(svc):
    from stratagem.cache import LayeredCache, MemoryCache
    from stratagem.service import submit_screen

    svc.cache = LayeredCache(MemoryCache())
    published = _counting(svc)
    rec = svc.store.create("alice", name="up2", code=CODE)
    kw = dict(start=iso_to_day("2012-01-01"), end=iso_to_day("2012-06-29"), windows=[1, 5])
    first = submit_backtest(svc, "alice", rec.id, shard_size=2, **kw)
    n_first = len(published)
    assert n_first == 3 and not first.params.get("cached")
    again = submit_backtest(svc, "alice", rec.id, shard_size=2, **kw)
    assert len(published) == n_first, "a cached backtest publishes nothing"
    assert again.params["cached"] is True and svc.jobs.get("alice", again.id).status == "done"
    assert svc.jobs.get("alice", again.id).result == svc.jobs.get("alice", first.id).result
    # Other parameters, a new version of the code, or another user with the same code: computed.
    submit_backtest(svc, "alice", rec.id, shard_size=2, **{**kw, "windows": [1]})
    assert len(published) > n_first
    n = len(published)
    svc.store.save("alice", rec.id, code=CODE.replace("0.02", "0.03"))
    v2 = submit_backtest(svc, "alice", rec.id, shard_size=2, **kw)
    assert len(published) > n and not v2.params.get("cached")
    n = len(published)
    bob = svc.store.create("bob", name="up2", code=CODE)
    b = submit_backtest(svc, "bob", bob.id, shard_size=2, **kw)
    assert len(published) > n and not b.params.get("cached")
    assert svc.jobs.get("bob", b.id).result["strategy"]["id"] == bob.id
    # Screens too.
    s1 = submit_screen(svc, "alice", rec.id, limit=3)
    n = len(published)
    s2 = submit_screen(svc, "alice", rec.id, limit=3)
    assert len(published) == n and svc.jobs.get("alice", s2.id).result == svc.jobs.get("alice", s1.id).result


def test_a_long_lived_in_process_bus_keeps_only_recent_messages():
    from stratagem.bus import InProcessBus

    bus = InProcessBus(history=3)
    got = []
    bus.subscribe(TOPICS["alerts"], lambda m, mid: got.append(m["alert"]["n"]))
    for n in range(10):
        bus.publish(TOPICS["alerts"], {"schema": "stratagem.alert.v1", "user_id": "u", "alert": {"n": n}})
    assert got == list(range(10))  # every message delivered
    assert [m["alert"]["n"] for _t, m, _mid in bus.published] == [7, 8, 9]  # the last 3 kept
    bus.redeliver()
    assert got[-1] == 9


def test_the_collector_pause_nests_and_restores_what_it_found():
    import gc
    import threading

    from stratagem.alerting import _gc_paused

    assert gc.isenabled()
    with _gc_paused():
        assert not gc.isenabled()
        started, release = threading.Event(), threading.Event()

        def other_tick():
            with _gc_paused():
                started.set()
                release.wait(5)

        t = threading.Thread(target=other_tick)
        t.start()
        started.wait(5)
        with _gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other pause is still open
    release.set()
    t.join(5)
    assert gc.isenabled()
    gc.disable()
    try:
        with _gc_paused():
            pass
        assert not gc.isenabled()  # a collector disabled by someone else stays disabled
    finally:
        gc.enable()
