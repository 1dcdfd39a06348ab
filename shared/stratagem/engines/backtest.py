"""Backtest: evaluate a strategy on every (symbol, session) in a range, as of each close.

Forward returns come from the total-return adjusted close of the signalling symbol,
counted in that symbol's own trading days: ``adj_close[t+w] / adj_close[t] - 1``, ``None``
past the end of the data. The benchmark for a window is the equal-weight average forward
return of the whole universe on the same signal days.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..data.store import MarketData, days_to_iso
from ..errors import BadInput
from ..sandbox.pool import EvalOutcome, Sandbox
from . import metrics
from .bias import DayPlan, data_quality, lookahead_probe, survivorship
from .common import iso, row_bounds, symbol_days

MAX_ERROR_EXAMPLES = 20
DEMO_WARNING = ("DEMO DATA: the strategy used the bundled illustrative fundamentals/earnings; "
                "results that depend on them are not real")


def _background(fn: Callable[..., dict], *args: object) -> Future:
    """``fn(*args)`` on a thread of its own; ``.result()`` returns its value or raises its error."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stratagem-probe")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)  # the submitted call still runs; the thread ends with it


def _clean_instance_values(instances: list[dict]) -> list[dict]:
    """Scores and values come out of the sandbox as JSON-safe data with non-finite numbers
    already turned into None (``sandbox.runtime``); a recursive pass over every instance of a
    long backtest cost 0.3 s of the assembly for nothing. Check them at C speed and clean only
    if something slipped through (an outcome built elsewhere)."""
    try:
        json.dumps([(i["score"], i["values"]) for i in instances], allow_nan=False)
    except (TypeError, ValueError):
        return metrics.nan_to_none(instances)
    return instances


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


@dataclass
class Panel:
    """The bars a backtest needs, for all its symbols at once: one row per (symbol, session),
    symbols in the backtest's order, each symbol's rows consecutive and in date order.

    Each symbol contributes the rows dated in [start, end], one row before (for the first
    day's return) and ``ahead`` rows after (forward windows and held positions), clipped to
    its data. Working on these rows at once, instead of symbol by symbol, keeps the result
    assembly vectorised (it was three times the cost of evaluating a 1,000-symbol backtest).
    Sums over rows run in row order, the order the per-symbol loops used, so every figure is
    bit-identical to theirs (tests/unit/test_backtest_assembly.py keeps those loops as the oracle).
    """

    symbols: list[str]
    rank: dict[str, int]
    date: np.ndarray
    adj: np.ndarray
    close: np.ndarray
    open: np.ndarray
    row_start: np.ndarray      # per row: its symbol's first row
    row_end: np.ndarray        # per row: one past its symbol's last row
    in_range: np.ndarray       # per row: dated in [start, end]
    seg_start: np.ndarray      # per symbol: its first row

    @classmethod
    def build(cls, market: MarketData, symbols: list[str], start: int, end: int, ahead: int) -> Panel:
        a, b, lo, hi = row_bounds(market, symbols, start, end)
        first = np.where(lo > a, lo - 1, lo)
        last = np.minimum(b, hi + ahead)
        lens = np.maximum(last - first, 0)
        seg_end = np.cumsum(lens)
        seg_start = seg_end - lens
        idx = np.arange(int(seg_end[-1]) if lens.size else 0) + np.repeat(first - seg_start, lens)
        c = market.columns
        rel_lo = np.repeat(lo - first + seg_start, lens)
        rel_hi = np.repeat(hi - first + seg_start, lens)
        rows = np.arange(idx.size)
        return cls(symbols, {s: i for i, s in enumerate(symbols)}, np.asarray(c["date"])[idx],
                   np.asarray(c["adj_close"], dtype=np.float64)[idx], np.asarray(c["close"], dtype=np.float64)[idx],
                   np.asarray(c["open"], dtype=np.float64)[idx], np.repeat(seg_start, lens), np.repeat(seg_end, lens),
                   (rows >= rel_lo) & (rows < rel_hi), seg_start)

    def entry_prices(self, entry: str) -> np.ndarray:
        """Adjusted entry price per row (see :func:`entry_prices`); NaN without a next session."""
        if entry == "close":
            return self.adj
        nxt = np.full(self.adj.shape[0], np.nan)
        has = np.arange(self.adj.shape[0]) + 1 < self.row_end
        j = np.flatnonzero(has) + 1
        nxt[has] = self.open[j] * (self.adj[j] / self.close[j])
        return nxt

    def forward(self, px: np.ndarray, w: int) -> np.ndarray:
        """``adj[t+w] / px[t] - 1`` per row (NaN where t+w is past its symbol's data)."""
        out = np.full(px.shape[0], np.nan)
        has = np.arange(px.shape[0]) + w < self.row_end
        t = np.flatnonzero(has)
        out[t] = self.adj[t + w] / px[t] - 1.0
        return out

    def daily(self) -> np.ndarray:
        """Close-to-close return per row (NaN on a symbol's first row here)."""
        out = np.full(self.adj.shape[0], np.nan)
        has = np.arange(self.adj.shape[0]) > self.row_start
        t = np.flatnonzero(has)
        out[t] = self.adj[t] / self.adj[t - 1] - 1.0
        return out

    def rows_of(self, symbols: list[str], days: np.ndarray) -> np.ndarray:
        """The row of each (symbol, day) (days must be sessions of their symbol)."""
        if not len(symbols):
            return np.zeros(0, dtype=np.int64)
        # One search over (rank, date) keys: rows are sorted by symbol rank, then date.
        key = np.repeat(np.arange(len(self.symbols), dtype=np.int64),
                        np.diff(np.append(self.seg_start, self.date.size))) * 1_000_000 + self.date
        want = np.array([self.rank[s] for s in symbols], dtype=np.int64) * 1_000_000 + days
        return np.searchsorted(key, want)


def _equity(market: MarketData, panel: Panel, signals: list[tuple[str, int]], start: int, end: int,
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
    sd = panel.date
    daily = panel.daily()
    j = np.minimum(np.searchsorted(days, sd), days.size - 1)
    cols = np.where(days[j] == sd, j, -1)
    ok = (cols >= 0) & np.isfinite(daily)
    # the benchmark holds the symbol from the day after the range starts
    okb = ok & (sd > start) & (sd <= end)
    bench_sum = np.bincount(cols[okb], weights=daily[okb], minlength=days.size)
    bench_n = np.bincount(cols[okb], minlength=days.size).astype(np.float64)
    total = np.zeros(days.size)
    count = np.zeros(days.size)
    if signals:
        # positions in the order the rule books them: symbol by symbol, signal days ascending
        order = sorted(signals, key=lambda x: (panel.rank[x[0]], x[1]))
        t = panel.rows_of([x[0] for x in order], np.array([x[1] for x in order], dtype=np.int64))
        u = t[:, None] + np.arange(1, hold + 1)[None, :]
        inside = u < panel.row_end[t][:, None]
        uc = np.where(inside, u, 0)
        c = np.where(inside, cols[uc], -1)
        held = np.logical_and.accumulate(c >= 0, axis=1)  # the rule's 'break': held until the axis ends
        r = daily[uc]
        if entry == "next_open":
            with np.errstate(invalid="ignore", divide="ignore"):
                r[:, 0] = panel.close[uc[:, 0]] / panel.open[uc[:, 0]] - 1.0  # open-to-close of the entry day
        take = held & np.isfinite(r)
        total = np.bincount(c[take], weights=r[take], minlength=days.size)
        count = np.bincount(c[take], minlength=days.size).astype(np.float64)
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
    a, b, _, _ = row_bounds(market, symbols, 0, 0)
    has = b > a
    known = [s for s, h in zip(symbols, has.tolist()) if h]
    skipped = [{"symbol": s, "reason": f"no data in dataset {market.name!r}"} for s in symbols if s not in known]
    if not known:
        raise BadInput(f"none of the symbols {', '.join(symbols)} has data in dataset {market.name!r}; "
                       f"available: {', '.join(market.symbols[:20])}{' ...' if len(market.symbols) > 20 else ''}")
    dates = np.asarray(market.columns["date"])
    first = int(dates[a[has]].min())
    last = int(dates[b[has] - 1].max())
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
                 progress: Callable[[int, int], None] | None = None, tenant: str | None = None) -> dict:
    """Run ``source`` over ``symbols`` for every session in [start, end]; CONTRACT §3 JSON
    plus metrics per window, the equity curve of a stated rule, and the bias report.

    ``tenant`` (the user the backtest runs for) lets the sandbox keep the loaded strategy warm
    for that user's next run of the same code (see :meth:`Sandbox.session`)."""
    spec = prepare_backtest(market, symbols, start=start, end=end, windows=windows, entry=entry, hold=hold)
    by_symbol = symbol_days(market, spec.symbols, spec.start, spec.end)
    total = sum(len(v) for v in by_symbol.values())
    outcome = sandbox.run(source, by_symbol, progress=(lambda n: progress(n, total)) if progress else None,
                          tenant=tenant)
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

    # The look-ahead probe needs only the raw evaluations. It spends its time writing cut
    # copies of the data and waiting on sandbox workers, so it runs on a thread beside the
    # assembly below (the merge of a sharded job used to do the two one after the other).
    sig_keys = {(s, d): sc for s, d, sc, _v in outcome.signals}
    err_keys = {(s, d) for s, d, _m in outcome.errors}
    probing = None
    if probe <= 0:
        probe_skip = "disabled"
    elif not outcome.evaluated or sandbox is None:
        probe_skip = "nothing was evaluated" if not outcome.evaluated else "no sandbox to re-run the strategy in"
    elif len(err_keys) * 2 > max(1, outcome.evaluated):
        probe_skip = "most evaluations failed; fix the strategy's errors first"
    else:
        probe_skip = ""
        plan = plan_map if plan_map is not None else DayPlan(market, known, start, end)
        probing = _background(lookahead_probe, sandbox, market, source, plan, sig_keys, err_keys, probe)

    # Forward returns per row, and the equal-weight benchmark per session: the mean forward
    # return of every symbol with a bar that session. All symbols at once (see Panel).
    panel = Panel.build(market, known, start, end, max(max(windows), hold) + 1)
    cal = np.asarray(market.calendar())
    cal = cal[(cal >= start) & (cal <= end)]
    px = panel.entry_prices(entry)
    fwd = {w: panel.forward(px, w) for w in windows}
    j = np.minimum(np.searchsorted(cal, panel.date), max(cal.size - 1, 0))
    inside = panel.in_range & (cal[j] == panel.date) if cal.size else np.zeros(panel.date.size, bool)
    bench_mean = {}
    for w in windows:
        ok = inside & np.isfinite(fwd[w])
        b_sum = np.bincount(j[ok], weights=fwd[w][ok], minlength=cal.size)
        b_n = np.bincount(j[ok], minlength=cal.size).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            bench_mean[w] = np.append(np.where(b_n > 0, b_sum / b_n, np.nan), np.nan)  # [cal.size]: no session

    sig_syms = [sig[0] for sig in outcome.signals]
    sig_days = np.array([sig[1] for sig in outcome.signals], dtype=np.int64)
    rows = panel.rows_of(sig_syms, sig_days)
    k_cal = np.minimum(np.searchsorted(cal, sig_days), cal.size)
    per_window = {w: fwd[w][rows] for w in windows}
    bench_window = {w: bench_mean[w][k_cal] for w in windows}
    rets_of = [per_window[w].tolist() for w in windows]
    keys = [str(w) for w in windows]
    isfinite = math.isfinite
    instances = []
    for n, ((sym, _day, score, values), date, stamp) in enumerate(
            zip(outcome.signals, days_to_iso(sig_days), (sig_days * 86_400_000).tolist())):
        rets = {}
        for key, col in zip(keys, rets_of):
            r = col[n]
            rets[key] = r if isfinite(r) else None
        instances.append({"ticker": sym, "date": date, "timestamp": stamp, "classification": True,
                          "score": score, "values": values, "returns": rets})
    by_window = {}
    for w in windows:
        strat = metrics.summary(per_window[w].tolist())
        # The benchmark is measured only where the instance's own return is known, so both
        # sides of the excess cover the same days.
        mine = per_window[w]
        bvals = bench_window[w][np.isfinite(mine)] if mine.size else np.zeros(0)
        b = metrics.summary(bvals)
        strat["benchmark"] = b
        strat["excess_mean"] = strat["mean"] - b["mean"]
        by_window[str(w)] = strat
    bias = {
        "lookahead_probe": {"skipped": True, "reason": probe_skip},
        "survivorship": survivorship(market, known, universe_label),
        **data_quality(market, known, start, end),
        "skipped_symbols": skipped,
    }
    equity = _equity(market, panel, [(s, d) for s, d, *_ in outcome.signals], start, end, hold, entry)
    if probing is not None:
        bias["lookahead_probe"] = probing.result()  # the probe's own failure is raised here
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
        "equity": equity,
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
    # The instances' returns are cleaned as they are built (isfinite above); the rest is small.
    result["instances"] = []
    result = metrics.nan_to_none(result)
    result["instances"] = _clean_instance_values(instances)
    return result
