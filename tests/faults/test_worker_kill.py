"""A sandbox worker process SIGKILLed from outside in the middle of a run (the OOM killer, an
operator, a crashed host process): the run continues in a fresh worker, the call that was in
flight is reported as an error, and every other (day, symbol) is evaluated exactly once with
the same signals as an undisturbed run."""

from __future__ import annotations

import os
import signal

import pytest
from stratagem.engines.common import trading_days

# Slow enough per call (~1 ms) that the worker flushes partial results while it runs, so the
# kill lands mid-run; deterministic, so an undisturbed run is the reference.
CODE = """
def classify_symbol(symbol):
    d = get_price_data(symbol, days=2)
    if len(d['close']) < 2:
        return False
    t = 0
    for i in range(1500):
        t += i % 7
    r = d['close'][-1] / d['close'][-2] - 1
    return {'signal': r > 0.01, 'score': r * 100 + t * 0}
"""


# ~3x slower per call: every worker flushes partial results (every 256 calls once 0.2 s passed)
# long before the plan ends, even on a fast machine, so each fresh worker is killed in turn.
SLOWER_CODE = CODE.replace("range(1500)", "range(4500)")


@pytest.fixture
def items(market) -> list[tuple[int, str]]:
    plan = trading_days(market, market.symbols, 14610, 15339)  # 2010-2011, every symbol
    return [(d, s) for d, syms in sorted(plan.items()) for s in syms]


def test_worker_sigkilled_mid_run(sandbox, items):
    # the slower strategy leaves a second or more of work after the first flush, so the kill
    # lands before the worker could finish (even if this thread is descheduled for a while)
    items = items[:1200]
    with sandbox.session(SLOWER_CODE) as sess:
        reference = sess.evaluate(items)
    assert reference.errors == [] and reference.evaluated == len(items) and reference.signals

    killed: list[int] = []
    with sandbox.session(SLOWER_CODE) as sess:
        def tick(n: int) -> None:
            # first partial result: the worker is mid-run; kill it from outside, once
            if not killed and sess.worker is not None:
                killed.append(sess.worker.pid)
                os.kill(sess.worker.pid, signal.SIGKILL)

        out = sess.evaluate(items, tick)
        survivor = sess.worker.pid if sess.worker is not None else None
    assert killed, "the run finished before a partial result arrived: nothing was killed"
    assert survivor != killed[0]  # the rest ran in a fresh worker
    assert out.worker_restarts == 1
    assert out.evaluated == len(items)  # every item accounted for once
    [(sym, day, why)] = out.errors  # exactly the call in flight is reported
    assert "crashed" in why
    lost = (sym, day)
    expected = [x for x in reference.signals if (x[0], x[1]) != lost]
    assert sorted(out.signals) == sorted(expected)  # nothing lost, nothing doubled
    keys = [(s, d) for s, d, *_ in out.signals]
    assert len(keys) == len(set(keys))


def test_every_worker_killed_stops_after_max_restarts(sandbox, market):
    """A run whose workers keep dying stops after MAX_RESTARTS fresh workers, reporting the rest
    as skipped (never an endless loop of forks), and still accounts for every item once."""
    from stratagem.sandbox.pool import MAX_RESTARTS

    # 8 years of every symbol: far more work than MAX_RESTARTS + 1 workers get through before
    # their first flush, so every worker is killed mid-run (never after it finished)
    plan = trading_days(market, market.symbols, 12419, 15339)  # 2004-01-01 .. 2011-12-31
    items = [(d, s) for d, syms in sorted(plan.items()) for s in syms]
    kills: list[int] = []
    with sandbox.session(SLOWER_CODE) as sess:
        def tick(n: int) -> None:
            if sess.worker is not None and sess.worker.pid not in kills:
                kills.append(sess.worker.pid)
                os.kill(sess.worker.pid, signal.SIGKILL)

        out = sess.evaluate(items, tick)
    assert len(kills) == MAX_RESTARTS + 1 and out.worker_restarts == MAX_RESTARTS + 1
    assert out.evaluated == len(items)
    assert len(out.signals) + len(out.errors) <= len(items)
    skipped = [e for e in out.errors if e[2].startswith("skipped")]
    assert skipped and len([e for e in out.errors if "crashed" in e[2]]) == MAX_RESTARTS + 1
    seen = [(s, d) for s, d, *_ in out.signals] + [(s, d) for s, d, _m in out.errors]
    assert len(seen) == len(set(seen))
