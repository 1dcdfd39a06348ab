"""Batches: several strategies of one tenant in one worker, one slot each (decision 0006).

What a batch must keep from one-worker-per-strategy: the same signals, no state shared
between slots, a strategy that cannot load or breaks a limit costing only itself, and demo
data labelled per strategy.
"""

from __future__ import annotations

import pytest

from stratagem.data.store import iso_to_day
from stratagem.sandbox.pool import Batch, Sandbox
from stratagem.settings import SandboxLimits

DAY = iso_to_day("2012-12-31")
DAYS = [iso_to_day(d) for d in ("2012-12-24", "2012-12-26", "2012-12-27", "2012-12-28", "2012-12-31")]
SYMS = ["AAPL", "GOOG", "IBM", "MSFT"]

UP = """
def classify_symbol(symbol):
    d = get_price_data(symbol, days=2)
    return {'signal': d['close'][-1] > d['close'][-2], 'score': d['close'][-1] - d['close'][-2]}
"""
HIGH = """
def classify_symbol(symbol):
    d = get_price_data(symbol, days=20)
    return {'signal': d['close'][-1] >= max(d['close']), 'score': float(len(d['close']))}
"""
COUNTING = """
calls = []

def classify_symbol(symbol):
    calls.append(symbol)
    return {'signal': True, 'score': float(len(calls))}
"""
# Breaks the memory limit on IBM only (the worker dies mid-job; the other symbols succeed).
KILLER = ("def classify_symbol(symbol):\n    if symbol == 'IBM':\n        x = np.ones(40_000_000)\n"
          "        return float(x.sum()) > 0\n    return True\n")
DEMO = """
def classify_symbol(symbol):
    f = get_fundamental_data(symbol)
    return {'signal': True, 'score': f.get('pe_ratio')}
"""


def items(days=DAYS, syms=SYMS):
    return [(d, s) for d in days for s in syms]


@pytest.fixture()
def sbx(market):
    s = Sandbox(market.path, SandboxLimits(memory_mb=128, cpu_seconds=20, call_seconds=1.0), workers=2)
    s.start()
    yield s
    s.close()


def test_a_batch_gives_each_strategy_its_own_signals(sbx: Sandbox) -> None:
    sources = [UP, HIGH, UP.replace(">", "<")]
    batch = Batch(sbx, sources)
    try:
        outs = batch.evaluate([(k, items()) for k in range(3)])
        for k, src in enumerate(sources):
            alone = sbx.run(src, [(d, SYMS) for d in DAYS], workers=1)
            assert sorted(outs[k].signals) == sorted(alone.signals), k
            assert outs[k].evaluated == len(DAYS) * len(SYMS) and outs[k].errors == []
        assert batch.worker is not None and len({batch.worker.pid}) == 1
    finally:
        batch.close()


def test_slots_share_no_module_state_and_each_resets_on_its_own_dates(sbx: Sandbox) -> None:
    batch = Batch(sbx, [COUNTING, COUNTING])
    try:
        first = batch.evaluate([(0, items(DAYS[:2], ["AAPL"])), (1, items(DAYS[:1], ["AAPL"]))])
        assert sorted(sc for *_, sc, _v in first[0].signals) == [1.0, 2.0]
        assert sorted(sc for *_, sc, _v in first[1].signals) == [1.0]  # not 3: slot 0's calls are not its
        # slot 1 moves forward (keeps its count); slot 0 goes back in time (module re-run)
        again = batch.evaluate([(1, items(DAYS[2:3], ["AAPL"])), (0, items(DAYS[:1], ["AAPL"]))])
        assert [sc for *_, sc, _v in again[1].signals] == [2.0]
        assert [sc for *_, sc, _v in again[0].signals] == [1.0]
    finally:
        batch.close()


def test_a_strategy_that_cannot_load_is_left_out(sbx: Sandbox) -> None:
    batch = Batch(sbx, [UP, "import os\ndef classify_symbol(s):\n    return True\n",
                        "x = 1 / 0\ndef classify_symbol(s):\n    return True\n", HIGH])
    try:
        outs = batch.evaluate([(k, items()) for k in range(4)])
        assert sorted(batch.load_errors) == [1, 2] and set(outs) == {0, 3}
        assert "import" in batch.load_errors[1].message and "ZeroDivisionError" in batch.load_errors[2].message
        assert outs[0].evaluated == outs[3].evaluated == len(DAYS) * len(SYMS)
    finally:
        batch.close()


def test_a_load_that_kills_the_worker_costs_only_its_own_slot(sbx: Sandbox) -> None:
    hog = "x = bytearray(600 * 1024 * 1024)\ndef classify_symbol(s):\n    return True\n"
    batch = Batch(sbx, [UP, hog, HIGH])
    try:
        outs = batch.evaluate([(k, items()) for k in range(3)])
        assert list(batch.load_errors) == [1] and set(outs) == {0, 2}
        assert outs[0].evaluated == outs[2].evaluated == len(DAYS) * len(SYMS) and not outs[0].errors
    finally:
        batch.close()


def test_a_call_that_breaks_a_limit_costs_that_call_and_the_rest_continue(sbx: Sandbox) -> None:
    batch = Batch(sbx, [UP, KILLER, HIGH])
    try:
        before = batch._ensure_worker().pid
        outs = batch.evaluate([(k, items(DAYS[-1:])) for k in range(3)])
        assert [(s, m[:12]) for s, _d, m in outs[1].errors] == [("IBM", "memory limit")]
        assert sorted(s for s, *_ in outs[1].signals) == ["AAPL", "GOOG", "MSFT"]
        for k in (0, 2):  # the slots after the crash ran in the replacement worker, complete
            alone = sbx.run([UP, KILLER, HIGH][k], [(DAYS[-1], SYMS)], workers=1)
            assert sorted(outs[k].signals) == sorted(alone.signals) and outs[k].evaluated == 4
        assert batch.worker.pid != before
    finally:
        batch.close()


def test_demo_data_is_labelled_per_strategy(sbx: Sandbox) -> None:
    batch = Batch(sbx, [DEMO, UP])
    try:
        outs = batch.evaluate([(0, items(DAYS[-1:])), (1, items(DAYS[-1:]))])
        assert outs[0].demo_data_used is True and outs[1].demo_data_used is False
    finally:
        batch.close()


def test_overlay_is_sent_once_per_worker(sbx: Sandbox, market) -> None:
    last = int(market.dates("AAPL")[-1])
    d1 = last + 3
    bars = {"AAPL": [[d1, 500.0, 510.0, 490.0, 505.0, 1e6]]}
    batch = Batch(sbx, [UP, COUNTING])
    try:
        outs = batch.evaluate([(0, [(d1, "AAPL")]), (1, [(d1, "AAPL")])], overlay=bars)
        assert [d for _s, d, *_ in outs[0].signals + outs[1].signals] == [d1, d1]
        w = batch.worker
        assert batch._overlay_delta(w, bars) == (False, None)  # the worker holds them now
    finally:
        batch.close()


def test_each_outcome_is_handed_over_as_it_lands_and_a_failing_handler_breaks_nothing(sbx: Sandbox) -> None:
    """``on_done`` gets every slot's complete outcome in slot order, before ``evaluate`` returns
    (the alert path publishes one strategy's alerts while the worker evaluates the next); an
    exception in it is raised only after every job was read, and the worker stays usable."""
    batch = Batch(sbx, [UP, HIGH, UP.replace(">", "<")])
    seen: list[tuple[int, int, int]] = []

    def on_done(slot, out):
        seen.append((slot, out.evaluated, len(out.signals)))
        if slot == 0:
            raise RuntimeError("the claim store is down (injected)")

    try:
        with pytest.raises(RuntimeError, match="injected"):
            batch.evaluate([(k, items()) for k in range(3)], on_done=on_done)
        n = len(DAYS) * len(SYMS)
        assert [(s, e) for s, e, _ in seen] == [(0, n), (1, n), (2, n)]
        again = batch.evaluate([(k, items()) for k in range(3)])  # same worker, nothing left unread
        assert [len(again[k].signals) for k in range(3)] == [c for *_, c in seen]
    finally:
        batch.close()


def test_a_job_cut_short_by_a_crash_is_handed_over_once_complete(sbx: Sandbox) -> None:
    batch = Batch(sbx, [UP, KILLER, HIGH])
    seen: list[tuple[int, int]] = []
    try:
        batch.evaluate([(k, items(DAYS[-1:])) for k in range(3)], on_done=lambda k, out: seen.append((k, out.evaluated)))
        assert seen == [(0, 4), (1, 4), (2, 4)]  # slot 1 once, with its calls from both workers
    finally:
        batch.close()


BURN = """
def classify_symbol(symbol):
    x = 0
    for i in range(300000):
        x += i
    d = get_price_data(symbol, days=2)
    return {'signal': d['close'][-1] > d['close'][-2], 'score': float(x % 7)}
"""


def test_a_worker_near_its_cpu_budget_is_replaced_by_one_loaded_in_the_background(market) -> None:
    """A batch's warm worker is retired at half its CPU budget; its successor (every slot
    loaded) is prepared in the background before that, so the tick that retires it does not
    wait for the loads, and the signals are the same before and after."""
    sbx = Sandbox(market.path, SandboxLimits(memory_mb=128, cpu_seconds=2.0, call_seconds=1.0), workers=1)
    sbx.start()
    batch = Batch(sbx, [BURN, UP])
    try:
        first = batch.evaluate([(0, items(DAYS[-1:])), (1, items(DAYS[-1:]))])
        pids = {batch.worker.pid}
        for _ in range(80):  # about 10 here; more where the CPU is faster
            outs = batch.evaluate([(0, items(DAYS[-1:])), (1, items(DAYS[-1:]))])
            assert [sorted(outs[k].signals) for k in (0, 1)] == [sorted(first[k].signals) for k in (0, 1)]
            assert not outs[0].errors and not outs[1].errors and outs[0].worker_restarts == 0
            pids.add(batch.worker.pid)
            if batch.successors_used:
                break
        assert batch.successors_used == 1 and len(pids) == 2, (batch.successors_used, pids)
    finally:
        batch.close()
        sbx.close()
