"""Cross-tenant checks on every Pub/Sub-triggered path: a message naming another user's job,
strategy or identity is rejected (malformed: acknowledged, never retried) and changes nothing."""

from __future__ import annotations

import copy

import pytest
from stratagem import messages
from stratagem.bus import InProcessBus
from stratagem.data.store import iso_to_day
from stratagem.jobs import MemoryJobStore
from stratagem.service import (
    TOPICS,
    Services,
    handle_backtest_shard,
    handle_generate,
    handle_screen_shard,
    handle_validate,
    submit_backtest,
    submit_generate,
    submit_screen,
)
from stratagem.store import MemoryStore

CODE = "def classify_symbol(symbol):\n    return {'signal': True, 'score': 1.0}\n"
CANDIDATE = {"name": "evil", "description": "d", "code": CODE, "parameters": [], "explanation": "", "generator": "x"}


@pytest.fixture
def svc(sandbox, market):
    from stratagem.generation.offline import OfflineGenerator

    bus = InProcessBus()
    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=bus, market=market, sandbox_factory=lambda: sandbox,
                 generator_factory=OfflineGenerator)
    bus.subscribe(TOPICS["generate"], lambda m, mid: handle_generate(s, m, mid))
    bus.subscribe(TOPICS["validate"], lambda m, mid: handle_validate(s, m, mid))
    bus.subscribe(TOPICS["backtest"], lambda m, mid: handle_backtest_shard(s, m, mid))
    bus.subscribe(TOPICS["screen"], lambda m, mid: handle_screen_shard(s, m, mid))
    return s


def _snapshot(svc: Services) -> dict:
    """Everything a forged message could change: both users' strategies and every job."""
    return {
        "strategies": {u: [(r.id, r.version, r.code) for r in svc.store.list(u)] for u in ("alice", "bob")},
        "jobs": {jid: (j.user_id, j.status, copy.deepcopy(j.result), j.error)
                 for jid, j in getattr(svc.jobs, "_jobs", {}).items()},
        "shards": {jid: dict(svc.jobs.shard_results(jid)) for jid in getattr(svc.jobs, "_jobs", {})},
    }


def _forged(svc: Services, handler, msg: dict) -> None:
    before = _snapshot(svc)
    with pytest.raises(messages.MalformedMessage):
        handler(svc, msg, "")
    assert _snapshot(svc) == before, "a rejected message changed stored state"


@pytest.fixture
def world(svc):
    """Alice and Bob each own a strategy; Alice has finished generate, backtest and screen jobs."""
    a = svc.store.create("alice", name="a", code=CODE)
    b = svc.store.create("bob", name="b", code=CODE)
    gen_job = submit_generate(svc, "alice", "stocks that gap up on volume")
    bt_job = submit_backtest(svc, "alice", a.id, symbols=["AAPL"], start=iso_to_day("2012-12-01"),
                             end=iso_to_day("2012-12-31"))
    sc_job = submit_screen(svc, "alice", a.id, symbols=["AAPL", "MSFT"])
    msgs = {t: m for t, m, _ in svc.bus.published}
    return {"a": a, "b": b, "gen": gen_job, "bt": bt_job, "sc": sc_job, "msgs": msgs}


def test_generate_with_a_forged_user_is_rejected(svc, world) -> None:
    m = messages.make("stratagem.generate.v1", job_id=world["gen"].id, user_id="bob", prompt="x", strategy_id=-1)
    _forged(svc, handle_generate, m)
    # Bob's own message may not name his strategy for Alice's job either.
    m = messages.make("stratagem.generate.v1", job_id=world["gen"].id, user_id="alice", prompt="x",
                      strategy_id=world["b"].id)
    _forged(svc, handle_generate, m)
    m = messages.make("stratagem.generate.v1", job_id="no-such-job", user_id="bob", prompt="x", strategy_id=-1)
    _forged(svc, handle_generate, m)


def test_validate_with_a_forged_user_or_strategy_is_rejected(svc, world) -> None:
    base = {"job_id": world["gen"].id, "prompt": "x", "strategy_id": -1, "attempt": 1, "feedback": [],
            "attempts": [], "candidate": CANDIDATE}
    # Bob's identity on Alice's job: would store a strategy for Bob and finish Alice's job.
    _forged(svc, handle_validate, messages.make("stratagem.validate.v1", **{**base, "user_id": "bob"}))
    # Alice's job naming Bob's strategy (a new version of someone else's strategy).
    _forged(svc, handle_validate, messages.make("stratagem.validate.v1",
                                                **{**base, "user_id": "bob", "strategy_id": world["b"].id}))
    # A backtest job id passed off as a generate job.
    _forged(svc, handle_validate, messages.make("stratagem.validate.v1", **{**base, "user_id": "alice",
                                                                           "job_id": world["bt"].id}))


@pytest.mark.parametrize("kind", ["backtest", "screen"])
def test_shards_with_a_forged_user_job_or_strategy_are_rejected(svc, world, kind: str) -> None:
    handler = handle_backtest_shard if kind == "backtest" else handle_screen_shard
    job = world["bt"] if kind == "backtest" else world["sc"]
    msg = dict(world["msgs"][TOPICS[kind]])
    # Bob claims Alice's job.
    _forged(svc, handler, dict(msg, user_id="bob"))
    # Bob's identity, his own strategy, Alice's job id.
    _forged(svc, handler, dict(msg, user_id="bob", strategy_id=world["b"].id, version=world["b"].version))
    # Alice's identity and job, but another strategy than the job's (result would be merged into it).
    _forged(svc, handler, dict(msg, strategy_id=world["b"].id, version=world["b"].version))
    # A job of the other kind.
    other = world["sc"] if kind == "backtest" else world["bt"]
    _forged(svc, handler, dict(msg, job_id=other.id))
    assert svc.jobs.get("alice", job.id).status == "done"


def test_forged_messages_through_the_bus_are_dead_lettered_not_retried(svc, world) -> None:
    msg = dict(world["msgs"][TOPICS["screen"]], user_id="bob", shard=0)
    before = _snapshot(svc)
    svc.bus.publish(TOPICS["screen"], msg)
    assert svc.bus.dead_letters and svc.bus.dead_letters[-1][2] == "malformed"
    assert _snapshot(svc) == before
