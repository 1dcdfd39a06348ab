"""Backtest and screen engines end to end through the sandbox, with exact numbers."""

from __future__ import annotations

import numpy as np
import pytest

from stratagem.data.store import iso_to_day
from stratagem.engines.backtest import run_backtest
from stratagem.engines.screen import run_screen
from stratagem.errors import BadInput

ALWAYS = "def classify_symbol(symbol):\n    d = get_price_data(symbol, days=1)\n    return {'signal': True, 'score': d['close'][-1]}\n"


def test_backtest_instances_and_forward_returns_are_exact(sandbox, market):
    r = run_backtest(sandbox, market, ALWAYS, ["AAPL", "MSFT"], start=iso_to_day("2012-12-20"),
                     end=iso_to_day("2013-03-01"), windows=[1, 5])
    inst = r["instances"]
    # one instance per (symbol, session), ordered by date then ticker
    assert [(i["date"], i["ticker"]) for i in inst[:4]] == [("2012-12-20", "AAPL"), ("2012-12-20", "MSFT"),
                                                             ("2012-12-21", "AAPL"), ("2012-12-21", "MSFT")]
    a, b = market.range("AAPL")
    adj = np.asarray(market.columns["adj_close"][a:b])
    dates = np.asarray(market.dates("AAPL"))
    for i in (x for x in inst if x["ticker"] == "AAPL"):
        t = int(np.searchsorted(dates, iso_to_day(i["date"])))
        for w in (1, 5):
            want = adj[t + w] / adj[t] - 1 if t + w < len(adj) else None
            assert i["returns"][str(w)] == want
        assert i["timestamp"] == iso_to_day(i["date"]) * 86_400_000
        assert i["score"] == float(market.columns["close"][a + t])
    last = [i for i in inst if i["date"] == "2013-03-01"]
    assert all(i["returns"]["1"] is None for i in last)
    pm = r["performance_metrics"]
    assert pm["evaluated"] == len(inst) and pm["by_window"]["1"]["count"] == len(inst) - 2
    # equal-weight benchmark over the same days, here the same two symbols -> mean excess 0
    assert pm["by_window"]["1"]["excess_mean"] == pytest.approx(0.0, abs=1e-15)


def test_backtest_reports_errors_and_skips(sandbox, market):
    src = "def classify_symbol(symbol):\n    if symbol == 'IBM':\n        return 1 / 0\n    return False\n"
    r = run_backtest(sandbox, market, src, ["IBM", "AAPL", "ZZZZ"], start=iso_to_day("2013-02-20"),
                     end=iso_to_day("2013-03-01"))
    assert r["errors"]["count"] == 8 and r["errors"]["examples"][0]["symbol"] == "IBM"
    assert "ZeroDivisionError" in r["errors"]["examples"][0]["message"]
    assert r["skipped"] == [{"symbol": "ZZZZ", "reason": "no data in dataset 'sample'"}]
    assert r["bias"]["skipped_symbols"] == r["skipped"]


def test_backtest_bad_range(sandbox, market):
    with pytest.raises(BadInput, match="after"):
        run_backtest(sandbox, market, ALWAYS, ["AAPL"], start=iso_to_day("2013-01-10"), end=iso_to_day("2013-01-01"))


def test_screen_ranks_by_score_and_limits(sandbox, market):
    r = run_screen(sandbox, market, ALWAYS, market.symbols, asof=iso_to_day("2012-06-01"), limit=3)
    scores = [x["score"] for x in r["ranked_results"]]
    assert r["asof"] == "2012-06-01" and len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert r["ranked_results"][0]["symbol"] == "GOOG" and r["evaluated"] == 5


def test_screen_before_a_listing_treats_it_as_no_data(sandbox, market):
    r = run_screen(sandbox, market, ALWAYS, ["FB", "AAPL"], asof=iso_to_day("2010-01-04"), limit=5)
    assert [x["symbol"] for x in r["ranked_results"]] == ["AAPL"] and r["errors"] == []


def test_screen_with_run_screening_drops_forged_symbols(sandbox, market):
    src = ALWAYS + "\ndef run_screening(universe, limit):\n    return {'ranked_results': [{'symbol': 'PWNED', 'score': 1e308}] + [{'symbol': s, 'score': 1.0, 'values': {'x': 1}} for s in universe]}\n"
    r = run_screen(sandbox, market, src, ["AAPL", "MSFT"], limit=5)
    assert [x["symbol"] for x in r["ranked_results"]] == ["AAPL", "MSFT"]
    assert any("outside the universe" in e["message"] for e in r["errors"])


def test_demo_fundamentals_are_labelled_in_results(sandbox, market):
    src = ("def classify_symbol(symbol):\n    f = get_fundamental_data(symbol)\n"
           "    return {'signal': (f.get('pe_ratio') or 99) < 100, 'score': f.get('pe_ratio')}\n")
    r = run_screen(sandbox, market, src, ["AAPL", "MSFT"], asof=iso_to_day("2012-06-01"), limit=5)
    assert r["demo_data"] is True and "DEMO DATA" in r["warnings"][0]
    b = run_backtest(sandbox, market, src, ["AAPL"], start=iso_to_day("2012-06-01"), end=iso_to_day("2012-06-08"))
    assert b["demo_data"] is True and "DEMO DATA" in b["warnings"][0]
    plain = run_screen(sandbox, market, ALWAYS, ["AAPL"], limit=5)
    assert plain["demo_data"] is False and "warnings" not in plain


def test_next_open_entry_returns_are_exact(sandbox, market):
    r = run_backtest(sandbox, market, ALWAYS, ["MSFT"], start=iso_to_day("2013-02-20"), end=iso_to_day("2013-03-01"),
                     windows=[1, 3], entry="next_open", probe=0)
    a, b = market.range("MSFT")
    c = {k: np.asarray(market.columns[k][a:b]) for k in ("open", "close", "adj_close", "date")}
    for inst in r["instances"]:
        t = int(np.searchsorted(c["date"], iso_to_day(inst["date"])))
        for w in (1, 3):
            if t + w < len(c["date"]):
                entry_px = c["open"][t + 1] * c["adj_close"][t + 1] / c["close"][t + 1]
                assert inst["returns"][str(w)] == pytest.approx(c["adj_close"][t + w] / entry_px - 1, rel=1e-12)
            else:
                assert inst["returns"][str(w)] is None
    assert r["entry"] == "next_open" and "open[t+1]" in r["performance_metrics"]["returns_rule"]


def test_equity_curve_hand_check(sandbox, market):
    # One signal (AAPL on 2013-02-20), hold 2: the equity moves only on the two following sessions.
    src = ("def classify_symbol(symbol):\n    d = get_price_data(symbol, days=1)\n"
           "    return symbol == 'AAPL' and d['timestamps'][-1] == 1361318400000\n")
    r = run_backtest(sandbox, market, src, ["AAPL", "MSFT"], start=iso_to_day("2013-02-19"),
                     end=iso_to_day("2013-02-26"), windows=[2], probe=0)
    assert [(i["ticker"], i["date"]) for i in r["instances"]] == [("AAPL", "2013-02-20")]
    eq = r["equity"]
    a, b = market.range("AAPL")
    adj = np.asarray(market.columns["adj_close"][a:b])
    t = int(np.searchsorted(market.dates("AAPL"), iso_to_day("2013-02-20")))
    by_day = dict(zip(eq["dates"], eq["strategy"]))
    assert by_day["2013-02-20"] == 1.0  # nothing held yet
    assert by_day["2013-02-22"] == pytest.approx(adj[t + 2] / adj[t], rel=1e-7)
    assert by_day["2013-02-26"] == by_day["2013-02-22"]  # position closed: cash
    assert eq["total_return"] == pytest.approx(adj[t + 2] / adj[t] - 1, rel=1e-12)
    assert 0 < eq["exposure"] < 1 and eq["hold"] == 2


def test_bias_report(sandbox, market):
    r = run_backtest(sandbox, market, ALWAYS, ["AAPL", "FB"], start=iso_to_day("2012-12-20"),
                     end=iso_to_day("2013-03-01"), probe=2, universe_label="demo")
    bias = r["bias"]
    probe = bias["lookahead_probe"]
    assert probe["identical"] is True and len(probe["days"]) == 2
    assert "survivorship" in bias["survivorship"]["warning"]
    assert bias["missing_sessions"]["count"] == 0 and bias["zero_volume_days"]["count"] == 0
    assert "warnings" not in r


def test_probe_reports_mismatches(sandbox, market):
    from stratagem.engines.bias import lookahead_probe

    day = iso_to_day("2013-02-20")
    never = "def classify_symbol(symbol):\n    return False\n"
    # Claim the full run saw a signal the truncated run cannot reproduce: a mismatch must be reported.
    res = lookahead_probe(sandbox, market, never, {day: ["AAPL"]}, {("AAPL", day): 1.0}, set(), 1)
    assert res["identical"] is False and res["mismatches"][0]["symbol"] == "AAPL"


def test_assembly_reports_a_lookahead_the_probe_finds(sandbox, market):
    """The probe runs on a thread beside the assembly: its finding still reaches the bias
    report and the warnings (an outcome claiming signals a cut copy cannot reproduce)."""
    from stratagem.engines.backtest import assemble_backtest, prepare_backtest
    from stratagem.sandbox.pool import EvalOutcome

    never = "def classify_symbol(symbol):\n    return False\n"
    spec = prepare_backtest(market, ["AAPL", "IBM"], start=iso_to_day("2013-01-02"), end=iso_to_day("2013-01-31"))
    day = iso_to_day("2013-01-15")
    claimed = EvalOutcome(signals=[("AAPL", day, 1.0, {})], evaluated=40)
    r = assemble_backtest(sandbox, market, never, spec, claimed, probe=2)
    probe = r["bias"]["lookahead_probe"]
    assert probe["identical"] is False and {"symbol": "AAPL", "date": "2013-01-15"}.items() <= probe["mismatches"][0].items()
    assert any(w.startswith("LOOK-AHEAD") for w in r["warnings"])
    honest = assemble_backtest(sandbox, market, never, spec, EvalOutcome(evaluated=40), probe=2)
    assert honest["bias"]["lookahead_probe"]["identical"] is True and "warnings" not in honest
    assert assemble_backtest(sandbox, market, never, spec, EvalOutcome(), probe=2)["bias"]["lookahead_probe"] == {
        "skipped": True, "reason": "nothing was evaluated"}


def test_instances_with_non_finite_values_are_cleaned(market):
    """Sandbox results arrive JSON-safe, so assembly only checks them; an outcome built
    elsewhere with NaN/inf in its scores or values still comes out as JSON (None)."""
    import json

    from stratagem.engines.backtest import assemble_backtest, prepare_backtest
    from stratagem.sandbox.pool import EvalOutcome

    spec = prepare_backtest(market, ["AAPL"], start=iso_to_day("2013-01-02"), end=iso_to_day("2013-01-31"))
    day = iso_to_day("2013-01-15")
    out = EvalOutcome(signals=[("AAPL", day, float("nan"), {"x": float("inf"), "l": [1.0, float("-inf")], "s": "a"})],
                      evaluated=20)
    r = assemble_backtest(None, market, "", spec, out, probe=0)
    inst = r["instances"][0]
    assert inst["score"] is None and inst["values"] == {"x": None, "l": [1.0, None], "s": "a"}
    json.dumps(r, allow_nan=False)
    clean = EvalOutcome(signals=[("AAPL", day, 2.5, {"x": 1.5})], evaluated=20)
    assert assemble_backtest(None, market, "", spec, clean, probe=0)["instances"][0]["values"] == {"x": 1.5}


def test_day_plan_is_the_trading_days_map(market):
    from stratagem.engines.bias import DayPlan
    from stratagem.engines.common import trading_days

    start, end = iso_to_day("2011-06-01"), iso_to_day("2012-08-31")
    syms = ["AAPL", "FB", "IBM"]
    want = trading_days(market, syms, start, end)
    lazy = DayPlan(market, syms, start, end)
    for day in list(want)[::37] + [iso_to_day("2012-05-18")]:  # FB's first session
        assert lazy[day] == want[day]
    with pytest.raises(KeyError):
        lazy[iso_to_day("2012-06-02")]  # a Saturday
    with pytest.raises(KeyError):
        lazy[iso_to_day("2013-01-02")]  # outside the range
    assert dict(lazy) == want and len(lazy) == len(want)


def test_dates_outside_the_data(sandbox, market):
    with pytest.raises(BadInput, match="covers 2000-03-01..2013-03-01"):
        run_backtest(sandbox, market, ALWAYS, ["AAPL"], start=iso_to_day("2015-01-01"), end=iso_to_day("2016-01-01"))
    r = run_backtest(sandbox, market, ALWAYS, ["AAPL"], start=iso_to_day("2013-02-25"), end=iso_to_day("2014-01-01"), probe=0)
    assert "beyond the data" in r["warnings"][0]


def test_the_zygote_keeps_only_a_few_probe_datasets(market):
    """Each probed day runs on its own cut copy of the data, which the zygote opens and maps.
    A long-lived service probes every backtest: the zygote must let old copies go (it used to
    keep every one mapped, deleted files included)."""
    import re
    from pathlib import Path

    from stratagem.engines.bias import lookahead_probe
    from stratagem.sandbox.pool import Sandbox
    from stratagem.sandbox.worker import MAX_OTHER_DATASETS

    src = "def classify_symbol(s):\n    d = get_price_data(s, days=2)\n    return len(d['close']) == 2\n"
    cal = [int(d) for d in market.calendar()[-40:]]
    sbx = Sandbox(market.path, workers=2)
    sbx.start()
    try:
        for k in range(3):  # 9 cut copies in all
            days = cal[k * 10:k * 10 + 3]
            plan = {d: ["AAPL", "IBM"] for d in days}
            report = lookahead_probe(sbx, market, src, plan, {(s, d): None for d in days for s in plan[d]}, set())
            assert report["identical"] and len(report["days"]) == 3
        maps = Path(f"/proc/{sbx._proc.pid}/maps").read_text()
        mapped = set(re.findall(r"stratagem-probe-\w+/cut-\d+", maps))
        assert 0 < len(mapped) <= MAX_OTHER_DATASETS
    finally:
        sbx.close()
