"""The process layer: fresh workers, limits that name themselves, nothing inherited, nothing left."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stratagem.data.store import iso_to_day
from stratagem.errors import StrategyFailed, StrategyRejected
from stratagem.sandbox.pool import Sandbox
from stratagem.settings import SandboxLimits
from tests.conftest import EXAMPLES

BENIGN = sorted((EXAMPLES / "benign").glob("*.py")) if (EXAMPLES / "benign").exists() else []
DAY = iso_to_day("2012-12-31")


def strat(body: str) -> str:
    return "def classify_symbol(symbol):\n" + "\n".join("    " + ln for ln in body.strip().splitlines()) + "\n"


@pytest.mark.parametrize("path", BENIGN, ids=[p.name for p in BENIGN])
def test_benign_samples_run_and_self_checks_pass(sandbox: Sandbox, path: Path) -> None:
    src = path.read_text()
    header = src.split("\n\n")[0]
    out = sandbox.run(src, [(DAY, ["AAPL", "MSFT", "FB", "NOPE"])])
    assert out.errors == [], out.errors
    assert out.evaluated == 4
    m = re.search(r"expect-symbols: ([A-Z,]+)", header)
    if m:
        got = {s for s, *_ in out.signals}
        assert set(m.group(1).split(",")) <= got, (got, [v for *_, v in out.signals])


def test_exact_values_cross_the_boundary(sandbox: Sandbox, market) -> None:
    src = strat("d = get_price_data(symbol, days=3)\nreturn {'signal': True, 'score': d['close'][-1], 'first': d['close'][0], 'n': len(d['close'])}")
    out = sandbox.run(src, [(DAY, ["AAPL"])])
    (sym, day, score, values), = out.signals
    import numpy as np

    a, _ = market.range("AAPL")
    i = a + int(np.searchsorted(market.dates("AAPL"), DAY))
    assert score == float(market.columns["close"][i]) and values == {"first": float(market.columns["close"][i - 2]), "n": 3.0}


def test_rejected_and_failing_modules(sandbox: Sandbox) -> None:
    with pytest.raises(StrategyRejected) as ei:
        sandbox.run("import os\n" + strat("return True"), [(DAY, ["AAPL"])])
    assert ei.value.details[0]["line"] == 1
    with pytest.raises(StrategyFailed, match="while loading: ZeroDivisionError"):
        sandbox.run("x = 1 / 0\n" + strat("return True"), [(DAY, ["AAPL"])])


def test_one_bad_symbol_does_not_stop_the_others(sandbox: Sandbox) -> None:
    src = strat("if symbol == 'AAPL':\n    raise ValueError('boom')\nreturn True")
    out = sandbox.run(src, [(DAY, ["AAPL", "MSFT", "IBM"])])
    assert [e[0] for e in out.errors] == ["AAPL"] and "ValueError: boom (line 3)" in out.errors[0][2]
    assert sorted(s for s, *_ in out.signals) == ["IBM", "MSFT"]


def test_memory_limit_names_itself_and_the_run_continues(sandbox: Sandbox) -> None:
    src = strat("if symbol == 'AAPL':\n    x = np.ones(40_000_000)\n    return float(x.sum()) > 0\nreturn True")
    out = sandbox.run(src, [(DAY, ["AAPL", "MSFT"]), (DAY + 1, ["AAPL", "MSFT"])], workers=1)
    msgs = {(s, d): m for s, d, m in out.errors}
    assert "memory limit" in msgs[("AAPL", DAY)] and "128 MB" in msgs[("AAPL", DAY)]
    assert ("MSFT", DAY) in {(s, d) for s, d, *_ in out.signals}
    assert out.evaluated == 4


def test_wall_clock_limit_per_call(sandbox: Sandbox) -> None:
    src = strat("if symbol == 'AAPL':\n    while True:\n        pass\nreturn True")
    out = sandbox.run(src, [(DAY, ["AAPL", "MSFT"])])
    assert out.errors[0][0] == "AAPL" and "time limit" in out.errors[0][2] and "2 s" in out.errors[0][2]
    assert [s for s, *_ in out.signals] == ["MSFT"]


def test_swallowed_timeouts_still_stop(sandbox: Sandbox) -> None:
    src = strat("while True:\n    try:\n        while True:\n            pass\n    except:\n        pass")
    out = sandbox.run(src, [(DAY, ["AAPL"])])
    assert "time limit" in out.errors[0][2]


def test_cpu_limit_per_run(market) -> None:
    sbx = Sandbox(market.path, SandboxLimits(cpu_seconds=1, call_seconds=30), workers=1)
    try:
        src = strat("n = 0\nfor i in range(30_000_000):\n    n += i\nreturn True")
        out = sbx.run(src, [(DAY, ["AAPL"])])
        assert "CPU limit" in out.errors[0][2] and "1 s" in out.errors[0][2]
    finally:
        sbx.close()


def test_no_state_carries_a_later_date_into_an_earlier_one(sandbox: Sandbox) -> None:
    src = (Path(__file__).parents[1] / "attacks" / "a11_lookahead_via_globals.py").read_text()
    days = [DAY - 30 + k for k in range(30)]
    plan = [(d, ["AAPL", "MSFT", "IBM"]) for d in days]
    out = sandbox.run(src, plan, workers=2)
    assert out.signals == [] and out.errors == []
    # Out-of-order plans are re-ordered per worker or reset: a reversed plan sees no future either.
    out = sandbox.run(src, list(reversed(plan)), workers=1)
    assert out.signals == []


def test_workers_hold_no_secrets_and_die_with_the_sandbox(market, monkeypatch) -> None:
    monkeypatch.setenv("STRATAGEM_TEST_SECRET", "s3cr3t-value-123")
    sbx = Sandbox(market.path, SandboxLimits(), workers=1)
    sbx.start()
    w = sbx.spawn()
    pids = [sbx._proc.pid, w.pid]
    for pid in pids:
        env = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"s3cr3t" not in env and b"STRATAGEM_TEST_SECRET" not in env
    status = Path(f"/proc/{w.pid}/status").read_text()
    if w.seccomp:
        assert re.search(r"Seccomp:\s+2", status)
    sbx.release(w)
    sbx.close()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_run_screening_and_forged_symbols(sandbox: Sandbox) -> None:
    src = strat("return True") + "\ndef run_screening(universe, limit):\n    return [{'symbol': s, 'score': 1.0} for s in universe] + [{'symbol': 'PWNED', 'score': 9.9}]\n"
    value = sandbox.call(src, "run_screening", [["AAPL", "MSFT"], 5], DAY)
    assert [r["symbol"] for r in value] == ["AAPL", "MSFT", "PWNED"]  # the engine (screen.py) drops PWNED


# -- warm workers: reused for the same strategy of the same tenant, with fresh module state ------
STATEFUL = """
calls = []


def classify_symbol(symbol):
    calls.append(symbol)
    # Module state from an earlier run would show up as a longer list.
    return {'signal': True, 'score': float(len(calls))}
"""


def _pid_of(sess) -> int:
    return sess.worker.pid


def test_warm_worker_reused_per_tenant_with_fresh_module_state(market) -> None:
    sbx = Sandbox(market.path, SandboxLimits(memory_mb=128, cpu_seconds=20, call_seconds=2.0), workers=2)
    try:
        runs, pids = [], []
        for tenant in ("alice", "alice", "bob", "alice"):
            with sbx.session(STATEFUL, tenant=tenant) as sess:
                sess._ensure_worker()
                pids.append((tenant, _pid_of(sess)))
                out = sess.evaluate([(DAY, "AAPL"), (DAY, "MSFT")])
            runs.append([(s, score) for s, _d, score, _v in out.signals])
        # Every run sees a fresh module: the same scores each time, whichever worker ran it.
        assert runs == [[("AAPL", 1.0), ("MSFT", 2.0)]] * 4
        (a1, p1), (a2, p2), (b, pb), (a3, p3) = pids
        assert p1 == p2 == p3, "alice's second and third runs should take her warm worker"
        assert pb != p1, "a worker must never serve another tenant"
        # Another strategy (even for the same tenant) never gets that worker either.
        with sbx.session(STATEFUL.replace("1.0", "1.5").replace("float(len(calls))", "len(calls) + 0.5"),
                         tenant="alice") as sess:
            sess._ensure_worker()
            assert _pid_of(sess) not in (p1, pb)
        # No tenant: a fresh worker every time.
        seen = set()
        for _ in range(2):
            with sbx.session(STATEFUL) as sess:
                sess._ensure_worker()
                seen.add(_pid_of(sess))
        assert len(seen) == 2 and not seen & {p1, pb}
    finally:
        sbx.close()


def test_warm_worker_retired_after_a_tenth_of_the_cpu_limit(market) -> None:
    burn = strat("x = 0\nfor i in range(3000000):\n    x += i\nreturn x > 0")
    sbx = Sandbox(market.path, SandboxLimits(memory_mb=128, cpu_seconds=2.0, call_seconds=2.0), workers=1)
    try:
        pids = []
        for _ in range(2):
            with sbx.session(burn, tenant="alice") as sess:
                sess._ensure_worker()
                pids.append(_pid_of(sess))
                out = sess.evaluate([(DAY, "AAPL")])
                assert out.errors == [] and len(out.signals) == 1
        # The first run used more than 0.2 s of CPU (warm-up included): never reused.
        assert pids[0] != pids[1]
    finally:
        sbx.close()


def test_warm_screens_match_cold_ones(sandbox: Sandbox, market) -> None:
    from stratagem.engines.screen import run_screen

    src = (EXAMPLES / "benign").glob("*.py")
    for path in sorted(src)[:4]:
        code = path.read_text()
        cold = run_screen(sandbox, market, code, market.symbols, limit=10)
        warm = [run_screen(sandbox, market, code, market.symbols, limit=10, tenant="t") for _ in range(3)]
        for w in warm:
            assert w["ranked_results"] == cold["ranked_results"] and w["errors"] == cold["errors"], path.name


def test_plan_by_symbol_equals_plan_by_day(sandbox: Sandbox, market) -> None:
    from stratagem.engines.common import symbol_days, trading_days

    src = (EXAMPLES / "benign").glob("*.py")
    code = sorted(src)[0].read_text()
    lo, hi = iso_to_day("2012-01-01"), iso_to_day("2012-12-31")
    by_day = sandbox.run(code, list(trading_days(market, market.symbols, lo, hi).items()))
    for order in ("auto", "symbol", "day"):
        by_sym = sandbox.run(code, symbol_days(market, market.symbols, lo, hi), order=order)
        assert (by_sym.signals, by_sym.errors, by_sym.evaluated) == (by_day.signals, by_day.errors, by_day.evaluated)
    assert by_day.evaluated == sum(len(v) for v in symbol_days(market, market.symbols, lo, hi).values())
