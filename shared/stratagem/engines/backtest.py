"""Backtest: evaluate a strategy on every (symbol, session) in a range, as of each close.

Forward returns come from the total-return adjusted close of the signalling symbol,
counted in that symbol's own trading days: ``adj_close[t+w] / adj_close[t] - 1``, ``None``
past the end of the data. The benchmark for a window is the equal-weight average forward
return of the whole universe on the same signal days.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.store import MarketData, days_to_iso
from ..errors import BadInput
from ..sandbox.pool import EvalOutcome, Sandbox
from . import metrics
from .bias import data_quality, lookahead_probe, survivorship
from .common import iso, ms, symbol_days, trading_days

MAX_ERROR_EXAMPLES = 20
DEMO_WARNING = ("DEMO DATA: the strategy used the bundled illustrative fundamentals/earnings; "
                "results that depend on them are not real")


def forward_returns(adj: np.ndarray, w: int) -> np.ndarray:
    """``adj[t+w]/adj[t]-1`` for every t (NaN where t+w is past the data)."""
    out = np.full(adj.shape[0], np.nan)
    if w < adj.shape[0]:
        out[:-w] = adj[w:] / adj[:-w] - 1.0
    return out


def entry_prices(market: MarketData, symbol: str, entry: str) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted close, adjusted entry price per signal bar) for one symbol.

    ``close``: enter at the signal day's close. ``next_open``: enter at the next session's
    open (for strategies that use the signal day's close), adjusted with that day's factor.
    NaN where there is no next session.
    """
    a, b = market.range(symbol)
    adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64)
    if entry == "close":
        return adj, adj
    close = np.asarray(market.columns["close"][a:b], dtype=np.float64)
    opn = np.asarray(market.columns["open"][a:b], dtype=np.float64)
    nxt = np.full(adj.shape[0], np.nan)
    nxt[:-1] = opn[1:] * (adj[1:] / close[1:])
    return adj, nxt


def window_returns(adj: np.ndarray, entry_px: np.ndarray, w: int) -> np.ndarray:
    """``adj[t+w] / entry_px[t] - 1`` for every signal bar t (NaN past the data)."""
    out = np.full(adj.shape[0], np.nan)
    if w < adj.shape[0]:
        out[:-w] = adj[w:] / entry_px[:-w] - 1.0
    return out


def _equity(market: MarketData, symbols: list[str], signals: list[tuple[str, int]], start: int, end: int,
            hold: int, entry: str) -> dict:
    """Daily equity of the stated rule, against the equal-weight universe.

    Rule: every signal opens one position at the entry price and holds it ``hold`` sessions
    of its symbol; each day the portfolio return is the equal-weight mean of the open
    positions' returns that day (0 when none is open: cash). Benchmark: the equal-weight
    mean daily return of the universe's symbols trading that day.
    """
    cal = np.asarray(market.calendar())
    lo = int(np.searchsorted(cal, start, "left"))
    hi = int(np.searchsorted(cal, end, "right"))
    days = cal[lo:min(len(cal), hi + hold)]
    if days.size == 0:
        return {}
    total = np.zeros(days.size)
    count = np.zeros(days.size)
    bench_sum = np.zeros(days.size)
    bench_n = np.zeros(days.size)
    by_symbol: dict[str, list[int]] = {}
    for s, d in signals:
        by_symbol.setdefault(s, []).append(d)
    for s in symbols:
        a, b = market.range(s)
        if b <= a:
            continue
        sd = np.asarray(market.columns["date"][a:b])
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64)
        daily = np.full(adj.shape[0], np.nan)
        daily[1:] = adj[1:] / adj[:-1] - 1.0
        j = np.minimum(np.searchsorted(days, sd), days.size - 1)
        cols = np.where(days[j] == sd, j, -1)
        ok = (cols >= 0) & np.isfinite(daily)
        # the benchmark holds the symbol from the day after the range starts
        okb = ok & (sd > start) & (sd <= end)
        np.add.at(bench_sum, cols[okb], daily[okb])
        np.add.at(bench_n, cols[okb], 1)
        if s not in by_symbol:
            continue
        close = np.asarray(market.columns["close"][a:b], dtype=np.float64)
        opn = np.asarray(market.columns["open"][a:b], dtype=np.float64)
        idx = np.searchsorted(sd, np.array(sorted(by_symbol[s])))
        for t in idx.tolist():
            for k in range(1, hold + 1):
                u = t + k
                if u >= adj.shape[0] or cols[u] < 0:
                    break
                if entry == "next_open" and k == 1:
                    r = close[u] / opn[u] - 1.0  # open-to-close of the entry day (ratio is split-free)
                else:
                    r = daily[u]
                if np.isfinite(r):
                    total[cols[u]] += r
                    count[cols[u]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        strat = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        bench = np.where(bench_n > 0, bench_sum / np.maximum(bench_n, 1), 0.0)
    # the curves start the day after `start` (the first signal can only earn from then on)
    keep = days > start
    days, strat, bench, count = days[keep], strat[keep], bench[keep], count[keep]
    eq = metrics.equity_curve(strat)
    beq = metrics.equity_curve(bench)
    return {
        "rule": (f"each signal opens one position at the {'next open' if entry == 'next_open' else 'signal-day close'} "
                 f"and holds it {hold} sessions; equal weight across open positions, cash when none is open; "
                 "benchmark: equal-weight universe, rebalanced daily"),
        "hold": hold, "dates": days_to_iso(days),
        "strategy": eq.round(8).tolist(), "benchmark": beq.round(8).tolist(),
        "total_return": metrics.total_return(strat), "cagr": metrics.cagr(strat), "sharpe": metrics.sharpe(strat),
        "max_drawdown": metrics.max_drawdown(strat), "exposure": float((count > 0).mean()) if count.size else 0.0,
        "benchmark_total_return": metrics.total_return(bench), "benchmark_cagr": metrics.cagr(bench),
        "benchmark_sharpe": metrics.sharpe(bench), "benchmark_max_drawdown": metrics.max_drawdown(bench),
    }


@dataclass
class BacktestSpec:
    """A checked backtest request: symbols with data, the range, windows, entry and hold."""

    symbols: list[str]
    start: int
    end: int
    windows: list[int]
    entry: str
    hold: int
    skipped: list[dict]
    warnings: list[str]


def prepare_backtest(market: MarketData, symbols: list[str], *, start: int | None = None, end: int | None = None,
                     windows: list[int] | None = None, entry: str = "close", hold: int | None = None) -> BacktestSpec:
    """Check the inputs against the data; raises BadInput saying what is available."""
    windows = windows or [1, 5, 10]
    if entry not in ("close", "next_open"):
        raise BadInput(f"--entry must be 'close' or 'next_open', got {entry!r}")
    known = [s for s in symbols if market.range(s)[1] > market.range(s)[0]]
    skipped = [{"symbol": s, "reason": f"no data in dataset {market.name!r}"} for s in symbols if s not in known]
    if not known:
        raise BadInput(f"none of the symbols {', '.join(symbols)} has data in dataset {market.name!r}; "
                       f"available: {', '.join(market.symbols[:20])}{' ...' if len(market.symbols) > 20 else ''}")
    first = min(int(market.dates(s)[0]) for s in known)
    last = max(int(market.dates(s)[-1]) for s in known)
    end = last if end is None else end
    start = max(first, end - 730) if start is None else start
    if start > end:
        raise BadInput(f"--start ({iso(start)}) is after --end ({iso(end)})")
    if start > last or end < first:
        raise BadInput(f"no data between {iso(start)} and {iso(end)}: the data for these symbols covers "
                       f"{iso(first)}..{iso(last)}")
    warnings: list[str] = []
    if start < first or end > last:
        warnings.append(f"the requested range {iso(start)}..{iso(end)} extends beyond the data "
                        f"({iso(first)}..{iso(last)}); only sessions with data were evaluated")
    hold = hold or (5 if 5 in windows else windows[0])
    return BacktestSpec(known, start, end, windows, entry, hold, skipped, warnings)


def run_backtest(sandbox: Sandbox, market: MarketData, source: str, symbols: list[str], *,
                 start: int | None = None, end: int | None = None, windows: list[int] | None = None,
                 entry: str = "close", hold: int | None = None, strategy_info: dict | None = None,
                 universe_label: str = "explicit symbol list", probe: int = 3,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Run ``source`` over ``symbols`` for every session in [start, end]; CONTRACT §3 JSON
    plus metrics per window, the equity curve of a stated rule, and the bias report."""
    spec = prepare_backtest(market, symbols, start=start, end=end, windows=windows, entry=entry, hold=hold)
    by_symbol = symbol_days(market, spec.symbols, spec.start, spec.end)
    total = sum(len(v) for v in by_symbol.values())
    outcome = sandbox.run(source, by_symbol, progress=(lambda n: progress(n, total)) if progress else None)
    return assemble_backtest(sandbox, market, source, spec, outcome, strategy_info=strategy_info,
                             universe_label=universe_label, probe=probe)


def assemble_backtest(sandbox: Sandbox | None, market: MarketData, source: str, spec: BacktestSpec,
                      outcome: EvalOutcome, *, strategy_info: dict | None = None,
                      universe_label: str = "explicit symbol list", probe: int = 3,
                      plan_map: dict[int, list[str]] | None = None) -> dict:
    """The result document from raw evaluations (one run, or merged shards: same numbers).
    ``plan_map`` is the evaluated plan when the caller already built it."""
    known, start, end, windows, entry, hold = spec.symbols, spec.start, spec.end, spec.windows, spec.entry, spec.hold
    skipped, warnings = spec.skipped, list(spec.warnings)

    # Forward returns per symbol on its own bars, and the equal-weight benchmark per session:
    # the mean forward return of every symbol with a bar that session (vectorised over days).
    cal = np.asarray(market.calendar())
    cal = cal[(cal >= start) & (cal <= end)]
    fwd: dict[str, dict[int, np.ndarray]] = {}
    dates_of: dict[str, np.ndarray] = {}
    b_sum = {w: np.zeros(cal.size) for w in windows}
    b_n = {w: np.zeros(cal.size) for w in windows}
    for s in known:
        adj, px = entry_prices(market, s, entry)
        fwd[s] = {w: window_returns(adj, px, w) for w in windows}
        sd = np.asarray(market.dates(s))
        dates_of[s] = sd
        j = np.minimum(np.searchsorted(cal, sd), max(cal.size - 1, 0))
        inside = (cal.size > 0) & (cal[j] == sd) if cal.size else np.zeros(sd.size, bool)
        for w in windows:
            ok = inside & np.isfinite(fwd[s][w])
            np.add.at(b_sum[w], j[ok], fwd[s][w][ok])
            np.add.at(b_n[w], j[ok], 1)

    def pos(sym: str, day: int) -> int:
        return int(np.searchsorted(dates_of[sym], day))

    def bench(day: int, w: int) -> float:
        k = int(np.searchsorted(cal, day))
        return float(b_sum[w][k] / b_n[w][k]) if k < cal.size and b_n[w][k] > 0 else float("nan")

    instances = []
    per_window: dict[int, list[float]] = {w: [] for w in windows}
    bench_window: dict[int, list[float]] = {w: [] for w in windows}
    for sym, day, score, values in outcome.signals:
        i = pos(sym, day)
        rets = {}
        for w in windows:
            r = float(fwd[sym][w][i])
            rets[str(w)] = r if np.isfinite(r) else None
            per_window[w].append(r)
            bench_window[w].append(bench(day, w))
        instances.append({"ticker": sym, "date": iso(day), "timestamp": ms(day), "classification": True,
                          "score": score, "values": values, "returns": rets})
    by_window = {}
    for w in windows:
        strat = metrics.summary(per_window[w])
        # The benchmark is measured only where the instance's own return is known, so both
        # sides of the excess cover the same days.
        mine = np.asarray(per_window[w], dtype=float)
        bvals = np.asarray(bench_window[w], dtype=float)[np.isfinite(mine)] if mine.size else np.zeros(0)
        b = metrics.summary(bvals)
        strat["benchmark"] = b
        strat["excess_mean"] = strat["mean"] - b["mean"]
        by_window[str(w)] = strat
    sig_keys = {(s, d): sc for s, d, sc, _v in outcome.signals}
    err_keys = {(s, d) for s, d, _m in outcome.errors}
    bias = {
        "lookahead_probe": (lookahead_probe(sandbox, market, source,
                                            plan_map if plan_map is not None else trading_days(market, known, start, end),
                                            sig_keys, err_keys, probe)
                            if probe > 0 and outcome.evaluated and sandbox is not None
                            and len(err_keys) * 2 <= max(1, outcome.evaluated)
                            else {"skipped": True, "reason": "disabled" if probe <= 0 else
                                  "most evaluations failed; fix the strategy's errors first"}),
        "survivorship": survivorship(market, known, universe_label),
        **data_quality(market, known, start, end),
        "skipped_symbols": skipped,
    }
    if bias["lookahead_probe"].get("identical") is False:
        warnings.append("LOOK-AHEAD: the strategy gave different signals when the future was removed from the data")
    err_examples = [{"symbol": s, "date": iso(d), "message": m} for s, d, m in outcome.errors[:MAX_ERROR_EXAMPLES]]
    result = {
        "strategy": strategy_info or {"sha256": hashlib.sha256(source.encode()).hexdigest()[:16]},
        "dataset": {"name": market.name, "version": market.version, "demo": market.demo},
        "start": iso(start), "end": iso(end), "windows": windows, "symbols": known, "entry": entry,
        "instances": instances,
        "performance_metrics": {
            "evaluated": outcome.evaluated, "signals": len(instances),
            "signal_rate": (len(instances) / outcome.evaluated) if outcome.evaluated else None,
            "by_window": by_window,
            "benchmark_rule": "equal-weight average forward return of the universe on the same signal days, same entry",
            "returns_rule": ("adj_close[t+w] / adj_close[t] - 1" if entry == "close"
                             else "adj_close[t+w] / adjusted open[t+1] - 1"),
        },
        "equity": _equity(market, known, [(s, d) for s, d, *_ in outcome.signals], start, end, hold, entry),
        "bias": bias,
        "errors": {"count": len(outcome.errors), "examples": err_examples},
        "skipped": skipped,
        "sandbox": {"worker_restarts": outcome.worker_restarts, "cpu_seconds": round(outcome.cpu_seconds, 3)},
        "demo_data": outcome.demo_data_used,
    }
    if outcome.demo_data_used:
        warnings.append(DEMO_WARNING)
    if warnings:
        result["warnings"] = warnings
    return metrics.nan_to_none(result)
