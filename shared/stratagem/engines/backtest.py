"""Backtest: evaluate a strategy on every (symbol, session) in a range, as of each close.

Forward returns come from the total-return adjusted close of the signalling symbol,
counted in that symbol's own trading days: ``adj_close[t+w] / adj_close[t] - 1``, ``None``
past the end of the data. The benchmark for a window is the equal-weight average forward
return of the whole universe on the same signal days.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from ..data.store import MarketData
from ..errors import BadInput
from ..sandbox.pool import Sandbox
from . import metrics
from .common import iso, ms, trading_days

MAX_ERROR_EXAMPLES = 20
DEMO_WARNING = ("DEMO DATA: the strategy used the bundled illustrative fundamentals/earnings; "
                "results that depend on them are not real")


def forward_returns(adj: np.ndarray, w: int) -> np.ndarray:
    """``adj[t+w]/adj[t]-1`` for every t (NaN where t+w is past the data)."""
    out = np.full(adj.shape[0], np.nan)
    if w < adj.shape[0]:
        out[:-w] = adj[w:] / adj[:-w] - 1.0
    return out


def run_backtest(sandbox: Sandbox, market: MarketData, source: str, symbols: list[str], *,
                 start: int | None = None, end: int | None = None, windows: list[int] | None = None,
                 strategy_info: dict | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run ``source`` over ``symbols`` for every session in [start, end]; CONTRACT §3 JSON."""
    windows = windows or [1, 5, 10]
    known = [s for s in symbols if market.range(s)[1] > market.range(s)[0]]
    skipped = [{"symbol": s, "reason": "no data in this dataset"} for s in symbols if s not in known]
    last = max((int(market.dates(s)[-1]) for s in known), default=None)
    if last is None:
        raise BadInput(f"none of the symbols {', '.join(symbols)} has data in dataset {market.name!r}")
    end = last if end is None else end
    start = end - 730 if start is None else start
    if start > end:
        raise BadInput(f"--start ({iso(start)}) is after --end ({iso(end)})")
    plan_map = trading_days(market, known, start, end)
    total = sum(len(v) for v in plan_map.values())
    outcome = sandbox.run(source, list(plan_map.items()),
                          progress=(lambda n: progress(n, total)) if progress else None)

    # Forward returns per symbol, indexed by the symbol's own bar positions.
    fwd: dict[str, dict[int, np.ndarray]] = {}
    pos: dict[str, dict[int, int]] = {}
    for s in known:
        a, b = market.range(s)
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64)
        fwd[s] = {w: forward_returns(adj, w) for w in windows}
        pos[s] = {int(d): i for i, d in enumerate(np.asarray(market.dates(s)).tolist())}

    def bench(day: int, w: int) -> float:
        vals = [fwd[s][w][pos[s][day]] for s in known if day in pos[s]]
        vals = [v for v in vals if np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    instances = []
    per_window: dict[int, list[float]] = {w: [] for w in windows}
    bench_window: dict[int, list[float]] = {w: [] for w in windows}
    bench_cache: dict[tuple[int, int], float] = {}
    for sym, day, score, values in outcome.signals:
        i = pos[sym][day]
        rets = {}
        for w in windows:
            r = float(fwd[sym][w][i])
            rets[str(w)] = r if np.isfinite(r) else None
            per_window[w].append(r)
            key = (day, w)
            if key not in bench_cache:
                bench_cache[key] = bench(day, w)
            bench_window[w].append(bench_cache[key])
        instances.append({"ticker": sym, "date": iso(day), "timestamp": ms(day), "classification": True,
                          "score": score, "values": values, "returns": rets})
    by_window = {}
    for w in windows:
        strat = metrics.summary(per_window[w])
        # The benchmark is measured only on instances whose own return is known, so both
        # sides of the excess cover the same days.
        mask = np.isfinite(np.asarray(per_window[w], dtype=float)) if per_window[w] else np.zeros(0, bool)
        bvals = np.asarray(bench_window[w], dtype=float)[mask] if per_window[w] else np.zeros(0)
        b = metrics.summary(bvals)
        strat["benchmark"] = b
        strat["excess_mean"] = strat["mean"] - b["mean"]
        by_window[str(w)] = strat
    err_examples = [{"symbol": s, "date": iso(d), "message": m} for s, d, m in outcome.errors[:MAX_ERROR_EXAMPLES]]
    result = {
        "strategy": strategy_info or {"sha256": hashlib.sha256(source.encode()).hexdigest()[:16]},
        "dataset": {"name": market.name, "version": market.version, "demo": market.demo},
        "start": iso(start), "end": iso(end), "windows": windows, "symbols": known,
        "instances": instances,
        "performance_metrics": {
            "evaluated": outcome.evaluated, "signals": len(instances),
            "signal_rate": (len(instances) / outcome.evaluated) if outcome.evaluated else None,
            "by_window": by_window,
            "benchmark_rule": "equal-weight average forward return of the universe on the same signal days",
        },
        "errors": {"count": len(outcome.errors), "examples": err_examples},
        "skipped": skipped,
        "sandbox": {"worker_restarts": outcome.worker_restarts, "cpu_seconds": round(outcome.cpu_seconds, 3)},
        "demo_data": outcome.demo_data_used,
    }
    if outcome.demo_data_used:
        result["warnings"] = [DEMO_WARNING]
    return metrics.nan_to_none(result)
