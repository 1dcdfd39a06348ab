"""The vectorised backtest assembly equals the per-symbol loops it replaced, bit for bit.

The loops below are the engine's earlier code, kept as the oracle: forward returns and the
benchmark per symbol (``np.add.at`` symbol by symbol), the equity rule position by
position, data quality symbol by symbol. The dataset is cut from the real sample with the
awkward cases added: a symbol with gaps inside its history, zero-volume days, a symbol
that stops trading early and one that starts late, signals on the last sessions (windows
and holds that run past the data), both entry rules and several windows and holds.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest

from stratagem.data.store import MarketData, build_store, iso_to_day
from stratagem.engines import metrics
from stratagem.engines.backtest import assemble_backtest, prepare_backtest
from stratagem.sandbox.pool import EvalOutcome


@pytest.fixture(scope="module")
def awkward(market, tmp_path_factory) -> MarketData:
    cut = iso_to_day("2013-01-31")
    bars = {s: market.bars(s, until_day=cut) for s in ("AAPL", "MSFT", "IBM", "FB")}
    keep = np.ones(len(bars["MSFT"].dates), bool)
    keep[[-300, -299, -250, -40, -39, -38, -2]] = False  # gaps inside MSFT's own history
    m = bars["MSFT"]
    bars["MSFT"] = replace(m, dates=m.dates[keep], open=m.open[keep], high=m.high[keep], low=m.low[keep],
                           close=m.close[keep], volume=m.volume[keep], adj_close=m.adj_close[keep])
    v = bars["IBM"].volume.copy()
    v[[-500, -120, -60]] = 0.0  # zero-volume days
    i = bars["IBM"]
    stop = len(i.dates) - 25  # IBM stops trading 25 sessions early
    bars["IBM"] = replace(i, dates=i.dates[:stop], open=i.open[:stop], high=i.high[:stop], low=i.low[:stop],
                          close=i.close[:stop], volume=v[:stop], adj_close=i.adj_close[:stop])
    path = build_store(bars, tmp_path_factory.mktemp("awkward") / "awkward", source="test")
    return MarketData(path)


def _signals(market: MarketData, symbols: list[str], start: int, end: int, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for s in symbols:
        d = np.asarray(market.dates(s))
        d = d[(d >= start) & (d <= end)].tolist()
        picks = set(rng.sample(d, min(len(d), 40))) | set(d[-3:])  # the last sessions too
        out += [(s, day, rng.random(), {"k": 1}) for day in sorted(picks)]
    out.sort(key=lambda r: (r[1], r[0]))
    return out


# -- the oracle: the per-symbol loops ------------------------------------------------------------
def oracle_returns(market, known, start, end, windows, entry, signals):
    cal = np.asarray(market.calendar())
    cal = cal[(cal >= start) & (cal <= end)]
    fwd, dates_of = {}, {}
    b_sum = {w: np.zeros(cal.size) for w in windows}
    b_n = {w: np.zeros(cal.size) for w in windows}
    for s in known:
        a, b = market.range(s)
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64)
        if entry == "close":
            px = adj
        else:
            close = np.asarray(market.columns["close"][a:b], dtype=np.float64)
            opn = np.asarray(market.columns["open"][a:b], dtype=np.float64)
            px = np.full(adj.shape[0], np.nan)
            px[:-1] = opn[1:] * (adj[1:] / close[1:])
        fwd[s] = {}
        for w in windows:
            out = np.full(adj.shape[0], np.nan)
            if w < adj.shape[0]:
                out[:-w] = adj[w:] / px[:-w] - 1.0
            fwd[s][w] = out
        sd = np.asarray(market.dates(s))
        dates_of[s] = sd
        j = np.minimum(np.searchsorted(cal, sd), max(cal.size - 1, 0))
        inside = (cal[j] == sd) if cal.size else np.zeros(sd.size, bool)
        for w in windows:
            ok = inside & np.isfinite(fwd[s][w])
            np.add.at(b_sum[w], j[ok], fwd[s][w][ok])
            np.add.at(b_n[w], j[ok], 1)
    rows = []
    for sym, day, _score, _v in signals:
        i = int(np.searchsorted(dates_of[sym], day))
        k = int(np.searchsorted(cal, day))
        rows.append({w: (float(fwd[sym][w][i]),
                         float(b_sum[w][k] / b_n[w][k]) if k < cal.size and b_n[w][k] > 0 else float("nan"))
                     for w in windows})
    return rows


def oracle_equity(market, symbols, signals, start, end, hold, entry):
    cal = np.asarray(market.calendar())
    lo, hi = int(np.searchsorted(cal, start, "left")), int(np.searchsorted(cal, end, "right"))
    days = cal[lo:min(len(cal), hi + hold)]
    total, count, bench_sum, bench_n = (np.zeros(days.size) for _ in range(4))
    by_symbol: dict = {}
    for s, d in signals:
        by_symbol.setdefault(s, []).append(d)
    for s in symbols:
        a, b = market.range(s)
        sd = np.asarray(market.columns["date"][a:b])
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64)
        daily = np.full(adj.shape[0], np.nan)
        daily[1:] = adj[1:] / adj[:-1] - 1.0
        j = np.minimum(np.searchsorted(days, sd), days.size - 1)
        cols = np.where(days[j] == sd, j, -1)
        ok = (cols >= 0) & np.isfinite(daily)
        okb = ok & (sd > start) & (sd <= end)
        np.add.at(bench_sum, cols[okb], daily[okb])
        np.add.at(bench_n, cols[okb], 1)
        if s not in by_symbol:
            continue
        close = np.asarray(market.columns["close"][a:b], dtype=np.float64)
        opn = np.asarray(market.columns["open"][a:b], dtype=np.float64)
        for t in np.searchsorted(sd, np.array(sorted(by_symbol[s]))).tolist():
            for k in range(1, hold + 1):
                u = t + k
                if u >= adj.shape[0] or cols[u] < 0:
                    break
                r = close[u] / opn[u] - 1.0 if entry == "next_open" and k == 1 else daily[u]
                if np.isfinite(r):
                    total[cols[u]] += r
                    count[cols[u]] += 1
    strat = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    bench = np.where(bench_n > 0, bench_sum / np.maximum(bench_n, 1), 0.0)
    keep = days > start
    return (metrics.equity_curve(strat[keep]).round(8).tolist(), metrics.equity_curve(bench[keep]).round(8).tolist(),
            float((count[keep] > 0).mean()))


def oracle_quality(market, symbols, start, end):
    cal = np.asarray(market.calendar())
    cal = cal[(cal >= start) & (cal <= end)]
    gaps, zero, n_gaps, n_zero = [], [], 0, 0
    for s in symbols:
        a, b = market.range(s)
        d = np.asarray(market.columns["date"][a:b])
        missing = np.setdiff1d(cal[(cal >= d[0]) & (cal <= d[-1])], d, assume_unique=True)
        n_gaps += int(missing.size)
        gaps += [(s, int(x)) for x in missing[:20]]
        v = np.asarray(market.columns["volume"][a:b])
        zd = d[(d >= start) & (d <= end) & (v == 0)]
        n_zero += int(zd.size)
        zero += [(s, int(x)) for x in zd[:20]]
    return n_gaps, gaps[:20], n_zero, zero[:20]


def _same(x: float, y: float | None) -> bool:
    return (y is None and not math.isfinite(x)) or (y is not None and x == y)


@pytest.mark.parametrize(("entry", "windows", "hold", "start"), [
    ("close", [1, 5, 10], None, "2011-06-01"),
    ("next_open", [1, 3, 20], 7, "2012-03-01"),
    ("close", [2, 60], 1, "2010-01-04"),
    ("next_open", [250], 30, "2012-11-01"),
])
def test_assembly_equals_the_per_symbol_loops(awkward, entry, windows, hold, start) -> None:
    m = awkward
    symbols = ["MSFT", "IBM", "AAPL", "FB", "NOPE"]  # not sorted: the user's order is the summing order
    spec = prepare_backtest(m, symbols, start=iso_to_day(start), windows=windows, entry=entry, hold=hold)
    signals = _signals(m, spec.symbols, spec.start, spec.end, seed=len(windows) + spec.hold)
    outcome = EvalOutcome(signals=signals, evaluated=len(signals) * 10)
    res = assemble_backtest(None, m, "src", spec, outcome, probe=0)

    want = oracle_returns(m, spec.symbols, spec.start, spec.end, spec.windows, entry, signals)
    assert len(res["instances"]) == len(signals)
    for inst, exp in zip(res["instances"], want):
        for w in spec.windows:
            assert _same(exp[w][0], inst["returns"][str(w)]), (inst, w, exp[w])
    for w in spec.windows:
        mine = np.array([exp[w][0] for exp in want])
        bench = np.array([exp[w][1] for exp in want])[np.isfinite(mine)]
        assert res["performance_metrics"]["by_window"][str(w)]["benchmark"] == metrics.nan_to_none(metrics.summary(bench))
        assert res["performance_metrics"]["by_window"][str(w)]["mean"] == metrics.nan_to_none(metrics.summary(mine.tolist()))["mean"]

    strat, bench, exposure = oracle_equity(m, spec.symbols, [(s, d) for s, d, *_ in signals],
                                           spec.start, spec.end, spec.hold, entry)
    eq = res["equity"]
    assert eq["strategy"] == strat and eq["benchmark"] == bench and eq["exposure"] == exposure

    n_gaps, gaps, n_zero, zero = oracle_quality(m, spec.symbols, spec.start, spec.end)
    q = res["bias"]
    assert q["missing_sessions"]["count"] == n_gaps
    assert [(g["symbol"], iso_to_day(g["date"])) for g in q["missing_sessions"]["examples"]] == gaps
    assert q["zero_volume_days"]["count"] == n_zero
    assert [(g["symbol"], iso_to_day(g["date"])) for g in q["zero_volume_days"]["examples"]] == zero
    assert res["skipped"] == [{"symbol": "NOPE", "reason": "no data in dataset 'awkward'"}]


def test_the_awkward_cases_are_there(awkward) -> None:
    # guards the test above against a fixture that quietly lost its gaps or zero volumes
    n_gaps, _, n_zero, _ = oracle_quality(awkward, ["MSFT", "IBM"], iso_to_day("2010-01-04"), iso_to_day("2013-01-31"))
    assert n_gaps >= 5 and n_zero == 3
    assert awkward.dates("IBM")[-1] < awkward.dates("AAPL")[-1]


def test_no_signals_and_an_empty_range(awkward) -> None:
    spec = prepare_backtest(awkward, ["AAPL", "MSFT"], start=iso_to_day("2012-06-01"), end=iso_to_day("2012-06-30"))
    res = assemble_backtest(None, awkward, "src", spec, EvalOutcome(evaluated=40), probe=0)
    assert res["instances"] == [] and res["equity"]["exposure"] == 0.0
    assert all(v is None or v == 0.0 for v in (res["equity"]["total_return"],))
