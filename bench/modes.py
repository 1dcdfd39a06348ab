"""Backtest and screen throughput, side by side in one run: Stratagem sandboxed vs the naive
in-process loop vs vectorised numpy vs backtesting.py, on real and SYNTHETIC data.

Datasets:
* ``REAL``            - the bundled sample (AAPL, GOOG, IBM, MSFT 2000-2013, FB 2012-2013).
* ``SYNTHETIC-500``   - 500 made-up symbols x 2,520 sessions (10 years) of random walks.
* ``SYNTHETIC-5000``  - 5,000 made-up symbols x 504 sessions (2 years) of random walks.
  SYNTHETIC data comes from ``bench/synthetic.py``: deterministic, NOT real prices.

Variants (each one evaluates exactly the same (symbol, day) pairs):
* ``stratagem``   - the real path: ``Sandbox.run`` (backtest) / ``run_screen`` (screen), 2
                    workers, steady state (spare workers warm, ``wait_ready()`` before each run).
                    Also, where noted: ``stratagem-run_backtest`` (the whole ``run_backtest``)
                    and ``stratagem-symbol-order``/``-day-order`` (``Sandbox.run(order=...)``).
* ``naive``       - what the seed implies: per symbol, per day, the data function builds
                    Python lists of history with ``all_values[:t+1][-days:]`` (so O(t) per
                    call: it copies the whole history up to t), and the strategy file runs
                    in-process as plain Python (``compile`` + real builtins; unsafe, a baseline).
* ``naive-slice`` - the same loop with the cheaper ``all_values[t+1-days:t+1]`` (O(days)).
* ``numpy``       - the same rule vectorised over all (symbol, day) rows at once
                    (``bench/strategies/vectorised.py``): the practical speed limit.
* ``backtesting.py`` - gap-up only, ``Backtest(df, Strategy).run()`` per symbol on adjusted
                    data, counting the bars where the rule fires (no orders).

Every variant must give the same signals for the same rule: the bench asserts that the
(symbol, day) sets are identical (the data functions are point-in-time and bit-identical).

Run: ``python bench/modes.py`` (about 4 minutes on 2 cores) or ``--quick`` (under a minute).
Results: printed tables, a README-ready markdown table, and ``bench/results-modes.json``.
"""

from __future__ import annotations

import argparse
import builtins
import datetime as _dt
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from stratagem.data.catalog import ensure_sample
from stratagem.data.store import MarketData, day_to_iso, iso_to_day
from stratagem.engines.backtest import run_backtest
from stratagem.engines.common import trading_days
from stratagem.engines.screen import run_screen
from stratagem.sandbox.pool import Sandbox
from stratagem.settings import SandboxLimits, Settings

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from synthetic import DESCRIPTION as SYNTHETIC_DESCRIPTION
from synthetic import default_cache_dir, synthetic_market


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


vectorised = _load("bench_vectorised", BENCH / "strategies" / "vectorised.py")

# The strategy mix, shortest lookback first; names are files in bench/strategies/.
MIX = ["bollinger", "gap_up", "momentum", "rsi", "sma_cross", "high_52w"]
SOURCES = {name: (BENCH / "strategies" / f"{name}.py").read_text() for name in MIX}
BARS = {name: vectorised.RULES[name][0] for name in MIX}
SERIES = ("timestamps", "open", "high", "low", "close", "volume")

Signals = frozenset  # of (symbol, day)


# -- sizes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetPlan:
    """What to run on one dataset."""

    backtest_sessions: int | None = None       # evaluate the last N sessions (None: all of them)
    backtest_mix: tuple[str, ...] = ()
    screen_mix: tuple[str, ...] = ()
    bt_symbols: int = 0                        # gap-up vs backtesting.py on this many symbols (0: skip)
    scale_symbols: tuple[int, ...] = ()        # run_backtest sweep: symbols ...
    scale_sessions: int = 21                   # ... at this many sessions,
    scale_days: tuple[int, ...] = ()           # and sessions ...
    scale_days_symbols: int = 1000             # ... at this many symbols
    orders: tuple[str, ...] = ()               # also time Sandbox.run(order=...) forced, in the mix backtest


MIX_ALL = tuple(MIX)
PLANS: dict[str, dict[str, DatasetPlan]] = {
    "default": {
        "REAL": DatasetPlan(None, MIX_ALL, MIX_ALL, bt_symbols=5),
        "SYNTHETIC-500": DatasetPlan(63, MIX_ALL, MIX_ALL, bt_symbols=10),
        "SYNTHETIC-5000": DatasetPlan(3, MIX_ALL, MIX_ALL, scale_symbols=(100, 250, 500, 1000, 2000),
                                      scale_sessions=21, orders=("symbol",)),
    },
    "quick": {
        "REAL": DatasetPlan(504, MIX_ALL, MIX_ALL, bt_symbols=5),
        "SYNTHETIC-500": DatasetPlan(10, ("gap_up",), ("gap_up",)),
        "SYNTHETIC-5000": DatasetPlan(None, (), ("gap_up",)),
    },
    "full": {
        "REAL": DatasetPlan(None, MIX_ALL, MIX_ALL, bt_symbols=5),
        "SYNTHETIC-500": DatasetPlan(126, MIX_ALL, MIX_ALL, bt_symbols=40, orders=("symbol", "day")),
        "SYNTHETIC-5000": DatasetPlan(21, MIX_ALL, MIX_ALL, scale_symbols=(100, 250, 500, 1000, 2000, 5000),
                                      scale_sessions=42, scale_days=(21, 63, 126), scale_days_symbols=1000,
                                      orders=("symbol", "day")),
    },
}


# -- timing harness ----------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    run: Callable[[], Signals]
    prepare: Callable[[], None] = lambda: None   # untimed, before every timed run


@dataclass
class Measured:
    seconds: dict[str, float]
    all_seconds: dict[str, list[float]]
    signals: Signals


def measure(variants: list[Variant], repeat: int, warmup: bool, settle: Callable[[], None]) -> Measured:
    """Median wall time of each variant, interleaved (rotated order each round) so machine
    noise hits all alike; asserts every variant and every round gives the same signals.

    ``settle`` runs (untimed) before every timed run of every variant: it waits until the
    sandbox has finished re-forking its spare workers in the background, so neither the
    sandboxed run nor a baseline shares the CPUs with that work."""
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    seen: dict[str, Signals] = {}
    if warmup:
        for v in variants:
            settle()
            v.prepare()
            seen[v.name] = v.run()
    for r in range(repeat):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            settle()
            v.prepare()
            t0 = time.perf_counter()
            out = v.run()
            times[v.name].append(time.perf_counter() - t0)
            if v.name in seen and out != seen[v.name]:
                raise AssertionError(f"{v.name} gave different signals on repeat {r}")
            seen[v.name] = out
    ref_name = variants[0].name
    ref = seen[ref_name]
    for name, got in seen.items():
        if got != ref:
            only_a = sorted(ref - got)[:5]
            only_b = sorted(got - ref)[:5]
            raise AssertionError(f"signals differ: {ref_name} {len(ref)} vs {name} {len(got)}; "
                                 f"only in {ref_name}: {only_a}; only in {name}: {only_b}")
    return Measured({k: statistics.median(v) for k, v in times.items()}, times, ref)


# -- naive in-process baseline (the seed's way) -----------------------------------------------
class NaiveData:
    """Per-symbol Python lists of the whole history; data functions slice them per call.

    Point-in-time like the engine (so signals can be compared exactly): for each
    corporate-action regime k of a symbol there is one set of lists adjusted as of k, built
    once (not timed) with the engine's formula; a call as of day t slices the lists of t's
    regime. Building the lists is set-up; only the per-call slicing is timed, as in the seed.
    """

    def __init__(self, market: MarketData, symbols: list[str]) -> None:
        self.day: int | None = None
        self.hist: dict[str, tuple[list[int], list[int], list[tuple[list, ...]]]] = {}
        c = market.columns
        for sym in symbols:
            a, b = market.range(sym)
            if b <= a:
                continue
            reg = np.asarray(c["regime"][a:b])
            starts = np.flatnonzero(np.r_[True, reg[1:] != reg[:-1]]).tolist()
            ends = starts[1:] + [b - a]
            ts = np.asarray(c["ts"][a:b]).tolist()
            raw = {k: np.asarray(c[k][a:b]) for k in ("open", "high", "low", "close", "volume")}
            f, s = np.asarray(c["factor"][a:b]), np.asarray(c["split"][a:b])
            by_regime: list[tuple[list, ...]] = []
            for k, (lo, stop) in enumerate(zip(starts, ends)):
                if k == 0:  # nothing earlier to adjust: the raw lists
                    cols = [raw[x].tolist() for x in ("open", "high", "low", "close", "volume")]
                else:       # the engine's formula: raw_s * (f_s / f_t), vol_s * (split_t / split_s)
                    ratio, vratio = f[:stop] / f[lo], s[lo] / s[:stop]
                    cols = [(raw[x][:stop] * ratio).tolist() for x in ("open", "high", "low", "close")]
                    cols.append((raw["volume"][:stop] * vratio).tolist())
                by_regime.append((ts, *cols))
            self.hist[sym] = (np.asarray(c["date"][a:b]).tolist(), reg.tolist(), by_regime)

    def _functions(self, slicing: str) -> dict[str, Callable]:
        hist, me = self.hist, self

        def empty() -> dict:
            return {k: [] for k in SERIES}

        if slicing == "seed":
            def get_price_data(symbol, timeframe="1d", days=30):
                h = hist.get(symbol)
                if h is None:
                    return empty()
                dates, regs, by_regime = h
                end = bisect_right(dates, me.day)
                if end == 0:
                    return empty()
                ts, o, hi, lo, c, v = by_regime[regs[end - 1]]
                return {"timestamps": ts[:end][-days:], "open": o[:end][-days:], "high": hi[:end][-days:],
                        "low": lo[:end][-days:], "close": c[:end][-days:], "volume": v[:end][-days:]}
        else:
            def get_price_data(symbol, timeframe="1d", days=30):
                h = hist.get(symbol)
                if h is None:
                    return empty()
                dates, regs, by_regime = h
                end = bisect_right(dates, me.day)
                if end == 0:
                    return empty()
                ts, o, hi, lo, c, v = by_regime[regs[end - 1]]
                s = end - days if end > days else 0
                return {"timestamps": ts[s:end], "open": o[s:end], "high": hi[s:end],
                        "low": lo[s:end], "close": c[s:end], "volume": v[s:end]}

        return {"get_price_data": get_price_data}

    def load(self, source: str, slicing: str) -> Callable:
        """``classify_symbol`` of ``source`` compiled as plain Python, bound to list-slicing data
        functions (``slicing``: "seed" = ``[:t+1][-days:]``, "slice" = ``[t+1-days:t+1]``)."""
        g = {"__builtins__": builtins, "math": math, "np": np, "statistics": statistics, "datetime": _dt}
        g.update(self._functions(slicing))
        exec(compile(source, "<naive>", "exec"), g)  # noqa: S102 - the unsafe baseline, by design
        return g["classify_symbol"]

    def backtest(self, fn: Callable, symbols: list[str], start: int, end: int) -> Signals:
        hits = []
        for sym in symbols:
            dates = self.hist[sym][0]
            for day in dates[bisect_left(dates, start):bisect_right(dates, end)]:
                self.day = day
                res = fn(sym)
                if res is True or (type(res) is dict and res.get("signal")):
                    hits.append((sym, day))
        return frozenset(hits)

    def screen(self, fn: Callable, symbols: list[str], day: int) -> Signals:
        self.day = day
        hits = []
        for sym in symbols:
            res = fn(sym)
            if res is True or (type(res) is dict and res.get("signal")):
                hits.append((sym, day))
        return frozenset(hits)


# -- vectorised numpy --------------------------------------------------------------------------
class NumpyData:
    """The store's columns in memory plus a (symbol id, day) key to find rows without loops."""

    SHIFT = 1 << 20

    def __init__(self, market: MarketData) -> None:
        c = market.columns
        self.cols = {k: np.array(c[k]) for k in ("open", "high", "low", "close", "volume", "factor", "split")}
        self.dates = np.array(c["date"])
        syms = sorted(market.ranges)
        self.sid = {s: i for i, s in enumerate(syms)}
        self.names = np.array(syms, dtype=object)
        self.start = np.array([market.ranges[s][0] for s in syms], dtype=np.int64)
        ids = np.zeros(self.dates.shape[0], dtype=np.int64)
        for i, s in enumerate(syms):
            a, b = market.ranges[s]
            ids[a:b] = i
        self.d0 = int(self.dates.min()) if self.dates.size else 0
        self.key = ids * self.SHIFT + (self.dates - self.d0)

    def _key(self, ids: np.ndarray, day: int) -> np.ndarray:
        return ids * self.SHIFT + min(max(day - self.d0, 0), self.SHIFT - 1)

    def backtest(self, name: str, symbols: list[str], start: int, end: int) -> Signals:
        ids = np.array([self.sid[s] for s in symbols], dtype=np.int64)
        lo = np.searchsorted(self.key, self._key(ids, start), "left")
        hi = np.searchsorted(self.key, self._key(ids, end), "right")
        n = hi - lo
        first = np.repeat(lo - (np.cumsum(n) - n), n)
        pos = np.arange(int(n.sum())) + first           # global index of each row's as-of bar
        row_ids = np.repeat(ids, n)
        sig = vectorised.evaluate(name, self.cols, self.start[row_ids], pos + 1)
        return frozenset(zip(self.names[row_ids[sig]].tolist(), self.dates[pos[sig]].tolist()))

    def screen(self, name: str, symbols: list[str], day: int) -> Signals:
        ids = np.array([self.sid[s] for s in symbols], dtype=np.int64)
        end = np.searchsorted(self.key, self._key(ids, day), "right")
        listed = end > self.start[ids]
        ids, end = ids[listed], end[listed]
        sig = vectorised.evaluate(name, self.cols, self.start[ids], end)
        return frozenset((s, day) for s in self.names[ids[sig]].tolist())


# -- backtesting.py (gap-up only) --------------------------------------------------------------
def backtesting_runner(market: MarketData, symbols: list[str]) -> Callable[[], Signals] | None:
    try:
        import pandas as pd
        from backtesting import Backtest, Strategy
    except ImportError:
        return None

    class GapUp(Strategy):
        """bench/strategies/gap_up.py in backtesting.py's API; records the bars it fires on."""

        def init(self) -> None:
            self.hits: list[int] = []

        def next(self) -> None:
            d = self.data
            n = len(d)
            if n < 21:
                return
            prev_close = d.Close[-2]
            volumes = d.Volume
            avg_volume = volumes[-21:-1].sum() / 20
            if prev_close <= 0 or avg_volume <= 0:
                return
            gap = d.Open[-1] / prev_close - 1.0
            if gap > 0.03 and volumes[-1] / avg_volume > 1.5:
                self.hits.append(n - 1)

    # backtesting.py wants one frame per symbol with adjusted prices (it has no point-in-time
    # view): total-return adjusted OHLC (raw * f) and split-adjusted volume. Built once, untimed.
    frames = {}
    c = market.columns
    for sym in symbols:
        a, b = market.range(sym)
        f, s = np.asarray(c["factor"][a:b]), np.asarray(c["split"][a:b])
        cols = {k.capitalize(): np.asarray(c[k][a:b]) * f for k in ("open", "high", "low", "close")}
        cols["Volume"] = np.asarray(c["volume"][a:b]) * (s[-1] / s)
        idx = pd.to_datetime(np.asarray(c["date"][a:b]), unit="D")
        frames[sym] = (pd.DataFrame(cols, index=idx), np.asarray(c["date"][a:b]).tolist())

    def run() -> Signals:
        hits = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for sym, (df, dates) in frames.items():
                stats = Backtest(df, GapUp, cash=1_000_000).run()
                hits.extend((sym, dates[i]) for i in stats._strategy.hits)
        return frozenset(hits)

    return run


# -- the sections ------------------------------------------------------------------------------
@dataclass
class Dataset:
    label: str
    market: MarketData
    kind: str                       # "REAL" or "SYNTHETIC"
    symbols: list[str]
    first: int
    last: int
    notes: dict = field(default_factory=dict)


def session_days(market: MarketData, symbols: list[str]) -> np.ndarray:
    days = np.unique(np.concatenate([np.asarray(market.dates(s)) for s in symbols]))
    return days


def backtest_rows(ds: Dataset, sbx: Sandbox, naive: NaiveData, npd: NumpyData, names: tuple[str, ...],
                  start: int, end: int, repeat: int, log: Callable[[str], None],
                  orders: tuple[str, ...] = ()) -> list[dict]:
    """The mix over [start, end]. ``stratagem`` uses the engine's default evaluation order;
    each of ``orders`` ("symbol", "day") adds a ``stratagem-<order>-order`` variant forcing it
    (symbol-major re-runs the strategy module between symbols; day-major never does)."""
    plan = list(trading_days(ds.market, ds.symbols, start, end).items())
    n = sum(len(s) for _, s in plan)
    rows = []
    for name in names:
        src = SOURCES[name]
        fn_seed, fn_slice = naive.load(src, "seed"), naive.load(src, "slice")

        def stratagem(src=src, order=None) -> Signals:
            out = sbx.run(src, plan, workers=2, **({"order": order} if order else {}))
            assert not out.errors, out.errors[:3]
            return frozenset((s, d) for s, d, *_ in out.signals)

        variants = [
            Variant("stratagem", stratagem),
            Variant("naive", lambda fn=fn_seed: naive.backtest(fn, ds.symbols, start, end)),
            Variant("naive-slice", lambda fn=fn_slice: naive.backtest(fn, ds.symbols, start, end)),
            Variant("numpy", lambda name=name: npd.backtest(name, ds.symbols, start, end)),
        ]
        for order in orders:
            variants.append(Variant(f"stratagem-{order}-order", lambda src=src, order=order: stratagem(src, order)))
        m = measure(variants, repeat, warmup=False, settle=sbx.wait_ready)
        rows.append(_row(ds, "backtest", name, n, m, f"{day_to_iso(start)}..{day_to_iso(end)}"))
        log(_fmt_row(rows[-1]))
    return rows


def screen_rows(ds: Dataset, sbx: Sandbox, naive: NaiveData, npd: NumpyData, names: tuple[str, ...],
                day: int, repeat: int, log: Callable[[str], None]) -> list[dict]:
    """run_screen as of ``day`` over the whole universe; every variant gets one untimed
    warm-up call first (for Stratagem: compiling the strategy, the first fork after start-up)."""
    listed = [s for s in ds.symbols if int(ds.market.dates(s)[0]) <= day]
    rows = []
    for name in names:
        src = SOURCES[name]
        fn_seed, fn_slice = naive.load(src, "seed"), naive.load(src, "slice")

        def stratagem(src=src) -> Signals:
            # tenant= as the CLI and the screen function pass it (the user's warm worker).
            res = run_screen(sbx, ds.market, src, ds.symbols, asof=day, limit=len(ds.symbols), tenant="bench")
            assert not res["errors"], res["errors"][:3]
            return frozenset((r["symbol"], day) for r in res["ranked_results"])

        variants = [
            Variant("stratagem", stratagem),
            Variant("naive", lambda fn=fn_seed: naive.screen(fn, listed, day)),
            Variant("naive-slice", lambda fn=fn_slice: naive.screen(fn, listed, day)),
            Variant("numpy", lambda name=name: npd.screen(name, listed, day)),
        ]
        m = measure(variants, repeat, warmup=True, settle=sbx.wait_ready)
        rows.append(_row(ds, "screen", name, len(listed), m, day_to_iso(day)))
        log(_fmt_row(rows[-1]))
    return rows


def backtesting_py_rows(ds: Dataset, sbx: Sandbox, symbols: list[str], repeat: int,
                        log: Callable[[str], None]) -> dict | None:
    """Gap-up over every session of ``symbols``, including backtesting.py and run_backtest."""
    bt = backtesting_runner(ds.market, symbols)
    if bt is None:
        log("backtesting.py is not installed (pip install backtesting): skipped")
        return None
    days = session_days(ds.market, symbols)
    start, end = int(days[0]), int(days[-1])
    plan = list(trading_days(ds.market, symbols, start, end).items())
    n = sum(len(s) for _, s in plan)
    src = SOURCES["gap_up"]
    naive = NaiveData(ds.market, symbols)
    npd = NumpyData(ds.market)
    fn_seed, fn_slice = naive.load(src, "seed"), naive.load(src, "slice")

    def stratagem() -> Signals:
        out = sbx.run(src, plan, workers=2)
        assert not out.errors, out.errors[:3]
        return frozenset((s, d) for s, d, *_ in out.signals)

    def stratagem_full() -> Signals:
        # tenant= as the CLI and the backtest function pass it (the user's warm worker).
        res = run_backtest(sbx, ds.market, src, symbols, start=start, end=end, windows=[1, 5, 10], probe=0,
                           tenant="bench")
        return frozenset((r["ticker"], iso_to_day(r["date"])) for r in res["instances"])

    variants = [
        Variant("stratagem", stratagem),
        Variant("stratagem-run_backtest", stratagem_full),
        Variant("naive", lambda: naive.backtest(fn_seed, symbols, start, end)),
        Variant("naive-slice", lambda: naive.backtest(fn_slice, symbols, start, end)),
        Variant("numpy", lambda: npd.backtest("gap_up", symbols, start, end)),
        Variant("backtesting.py", bt),
    ]
    m = measure(variants, repeat, warmup=False, settle=sbx.wait_ready)
    row = _row(ds, "backtest (all sessions)", "gap_up", n, m,
               f"{day_to_iso(start)}..{day_to_iso(end)}, {len(symbols)} symbols")
    log(_fmt_row(row))
    return row


def scaling_rows(ds: Dataset, sbx: Sandbox, plan: DatasetPlan, repeat: int, log: Callable[[str], None]) -> dict:
    """run_backtest (the whole engine path, gap-up) at several symbols x sessions sizes."""
    days = session_days(ds.market, ds.symbols)
    src = SOURCES["gap_up"]
    points = []
    sizes = [(k, plan.scale_sessions) for k in plan.scale_symbols]
    sizes += [(plan.scale_days_symbols, d) for d in plan.scale_days if (plan.scale_days_symbols, d) not in sizes]
    for k, d in sizes:
        syms = ds.symbols[:k]
        start, end = int(days[-d]), int(days[-1])
        n = sum(len(v) for v in trading_days(ds.market, syms, start, end).values())
        times = []
        for _ in range(repeat):
            sbx.wait_ready()
            t0 = time.perf_counter()
            res = run_backtest(sbx, ds.market, src, syms, start=start, end=end, windows=[1, 5, 10], probe=0)
            times.append(time.perf_counter() - t0)
            assert res["errors"]["count"] == 0
        sec = statistics.median(times)
        points.append({"symbols": k, "sessions": d, "symbol_days": n, "seconds": sec,
                       "symbol_days_per_second": n / sec, "signals": len(res["instances"])})
        log(f"  run_backtest {k:>5} symbols x {d:>4} sessions = {n:>7,} symbol-days: "
            f"{sec:7.3f} s ({n / sec:>9,.0f} symbol-days/s)")
    x = np.array([p["symbol_days"] for p in points], dtype=float)
    y = np.array([p["seconds"] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    r2 = 1.0 - float(((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    fit = {"seconds_per_symbol_day": float(slope), "intercept_seconds": float(intercept), "r2": r2,
           "marginal_symbol_days_per_second": float(1.0 / slope) if slope > 0 else None}
    log(f"  linear fit: seconds = {intercept:.4f} + {slope * 1e6:.3f} us x symbol-days, R^2 = {r2:.4f}")
    return {"dataset": ds.label, "kind": ds.kind, "strategy": "gap_up", "points": points, "fit": fit}


def module_reset_ms(market: MarketData, repeat: int = 200) -> float:
    """In-process cost of re-running a strategy's module body (``LoadedStrategy.reset``): a
    worker does it whenever its plan goes back in time, i.e. once per symbol in the default
    symbol-major order. (In a forked worker it was measured several times slower.)"""
    from stratagem.data.pit import PointInTime
    from stratagem.sandbox.runtime import LoadedStrategy

    strat = LoadedStrategy(SOURCES["gap_up"], PointInTime(market).functions())
    t0 = time.perf_counter()
    for _ in range(repeat):
        strat.reset()
    return (time.perf_counter() - t0) / repeat * 1000


def _row(ds: Dataset, mode: str, strategy: str, n: int, m: Measured, span: str) -> dict:
    return {
        "dataset": ds.label, "kind": ds.kind, "mode": mode, "strategy": strategy, "bars": BARS[strategy],
        "span": span, "symbol_days": n, "signals": len(m.signals),
        "seconds_median": m.seconds, "seconds_all": m.all_seconds,
        "symbol_days_per_second": {k: n / v for k, v in m.seconds.items()},
    }


def _fmt_row(r: dict) -> str:
    sps = r["symbol_days_per_second"]
    parts = "  ".join(f"{k} {v:>11,.0f}" for k, v in sps.items())
    return (f"  {r['dataset']:<14} {r['mode']:<8} {r['strategy']:<10} {r['symbol_days']:>8,} sd "
            f"{r['signals']:>5} sig | {parts} | x naive {sps['stratagem'] / sps['naive']:.2f}")


def mix_summary(rows: list[dict]) -> list[dict]:
    """Throughput over the whole strategy mix: total symbol-days / total median seconds."""
    out = []
    keys = list(dict.fromkeys((r["dataset"], r["kind"], r["mode"]) for r in rows))
    for ds, kind, mode in keys:
        sel = [r for r in rows if r["dataset"] == ds and r["mode"] == mode]
        n = sum(r["symbol_days"] for r in sel)
        variants = list(sel[0]["seconds_median"])
        secs = {v: sum(r["seconds_median"][v] for r in sel) for v in variants}
        out.append({"dataset": ds, "kind": kind, "mode": mode, "strategies": [r["strategy"] for r in sel],
                    "symbol_days": n, "seconds": secs, "symbol_days_per_second": {v: n / s for v, s in secs.items()},
                    "stratagem_x_naive": secs["naive"] / secs["stratagem"],
                    "stratagem_x_naive_slice": secs["naive-slice"] / secs["stratagem"],
                    **{f"{v}_x_naive": secs["naive"] / secs[v] for v in variants if v.endswith("-order")}})
    return out


# -- report ------------------------------------------------------------------------------------
def _n(x: float) -> str:
    return f"{x:,.0f}"


def markdown(rows: list[dict], mix: list[dict], bt_rows: list[dict], scaling: dict | None, targets: list[dict]) -> str:
    lines = ["Throughput in symbol-days per second (median); x naive = stratagem / naive throughput.",
             "", "| dataset | mode | strategy (bars) | symbol-days | signals | stratagem | naive | naive-slice | numpy | x naive |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["symbol_days_per_second"]
        lines.append(f"| {r['dataset']} | {r['mode']} | {r['strategy']} ({r['bars']}) | {_n(r['symbol_days'])} | "
                     f"{r['signals']} | {_n(s['stratagem'])} | {_n(s['naive'])} | {_n(s['naive-slice'])} | "
                     f"{_n(s['numpy'])} | {s['stratagem'] / s['naive']:.2f} |")
    lines += ["", "Whole mix (total symbol-days / total seconds):", "",
              "| dataset | mode | symbol-days | stratagem | naive | naive-slice | numpy | x naive | x naive-slice |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in mix:
        s = m["symbol_days_per_second"]
        lines.append(f"| {m['dataset']} | {m['mode']} | {_n(m['symbol_days'])} | {_n(s['stratagem'])} | {_n(s['naive'])} | "
                     f"{_n(s['naive-slice'])} | {_n(s['numpy'])} | {m['stratagem_x_naive']:.2f} | "
                     f"{m['stratagem_x_naive_slice']:.2f} |")
    if bt_rows:
        lines += ["", "Gap-up over every session, with backtesting.py (symbol-days per second, median; seconds in brackets):", "",
                  "| dataset | symbol-days | signals | stratagem | stratagem run_backtest | naive | naive-slice | numpy | backtesting.py |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in bt_rows:
            s, t = r["symbol_days_per_second"], r["seconds_median"]
            cells = " | ".join(f"{_n(s[k])} ({t[k]:.2f} s)" for k in
                               ("stratagem", "stratagem-run_backtest", "naive", "naive-slice", "numpy", "backtesting.py"))
            lines.append(f"| {r['dataset']} ({r['span']}) | {_n(r['symbol_days'])} | {r['signals']} | {cells} |")
    if scaling:
        lines += ["", f"run_backtest (gap-up) cost vs size, {scaling['dataset']}:", "",
                  "| symbols | sessions | symbol-days | seconds | symbol-days/s |", "|---:|---:|---:|---:|---:|"]
        for p in scaling["points"]:
            lines.append(f"| {p['symbols']} | {p['sessions']} | {_n(p['symbol_days'])} | {p['seconds']:.3f} | "
                         f"{_n(p['symbol_days_per_second'])} |")
        f = scaling["fit"]
        lines += ["", (f"Linear fit: seconds = {f['intercept_seconds']:.3f} + {f['seconds_per_symbol_day'] * 1e6:.2f} us "
                       f"x symbol-days, R² = {f['r2']:.4f}.")]
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for t in targets:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def evaluate_targets(mix: list[dict], bt_rows: list[dict], rows: list[dict], scaling: dict | None) -> list[dict]:
    out = []
    for m in mix:
        if m["mode"] != "backtest":
            continue
        out.append({"target": f"stratagem >= 1.5x naive over the mix, backtest, {m['dataset']}",
                    "value": m["stratagem_x_naive"],
                    "measured": f"{m['stratagem_x_naive']:.2f}x (vs naive-slice {m['stratagem_x_naive_slice']:.2f}x)",
                    "met": m["stratagem_x_naive"] >= 1.5})
    for m in mix:
        if m["mode"] != "screen":
            continue
        out.append({"target": f"stratagem >= 1.5x naive over the mix, screen, {m['dataset']}",
                    "value": m["stratagem_x_naive"],
                    "measured": f"{m['stratagem_x_naive']:.2f}x (vs naive-slice {m['stratagem_x_naive_slice']:.2f}x)",
                    "met": m["stratagem_x_naive"] >= 1.5})
    for r in bt_rows:
        t = r["seconds_median"]
        x_eval = t["backtesting.py"] / t["stratagem"]
        x_full = t["backtesting.py"] / t["stratagem-run_backtest"]
        out.append({"target": f">= 10x faster than backtesting.py, gap-up, {r['dataset']}", "value": x_full,
                    "measured": f"run_backtest {x_full:.1f}x, Sandbox.run {x_eval:.1f}x", "met": x_full >= 10})
    big = [r for r in rows if r["mode"] == "screen" and r["symbol_days"] >= 5000]
    secs = {r["strategy"]: r["seconds_median"]["stratagem"] for r in big}
    if "gap_up" in secs:
        out.append({"target": "5,000-symbol run_screen warm well under 1 s (< 0.5 s), gap-up", "value": secs["gap_up"],
                    "measured": f"{secs['gap_up']:.3f} s", "met": secs["gap_up"] < 0.5})
    if len(secs) > 1:
        worst = max(secs, key=secs.__getitem__)
        out.append({"target": "the same for every strategy of the mix", "value": secs[worst],
                    "measured": ", ".join(f"{k} {v:.3f} s" for k, v in secs.items()), "met": secs[worst] < 0.5})
    if scaling:
        f = scaling["fit"]
        out.append({"target": "run_backtest cost linear in symbols x sessions", "value": f["r2"],
                    "measured": f"R² {f['r2']:.4f}, {f['seconds_per_symbol_day'] * 1e6:.2f} us/symbol-day + "
                                f"{f['intercept_seconds']:.3f} s", "met": f["r2"] >= 0.98})
    return out


# -- main --------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description="Stratagem vs naive vs numpy vs backtesting.py throughput")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller run (under a minute; no SYNTHETIC-5000)")
    size.add_argument("--full", action="store_true",
                      help="bigger sizes everywhere (several minutes more, see bench/README.md)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median); default 3")
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="where SYNTHETIC datasets are kept")
    ap.add_argument("--json", type=Path, default=BENCH / "results-modes.json", help="results file")
    ap.add_argument("--only", choices=["REAL", "SYNTHETIC-500", "SYNTHETIC-5000"], action="append",
                    help="run only these datasets (repeatable)")
    args = ap.parse_args()
    size_name = "quick" if args.quick else "full" if args.full else "default"
    plans = PLANS[size_name]
    repeat = args.repeat
    t_start = time.perf_counter()
    load_before = os.getloadavg()

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(f"Stratagem modes bench ({size_name}), median of {repeat}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}, load average {load_before[0]:.2f}")
    home = args.cache_dir / "home"
    datasets: list[Dataset] = []
    want = [k for k in plans if not args.only or k in args.only]
    for label in want:
        t0 = time.perf_counter()
        if label == "REAL":
            m = ensure_sample(Settings(home=home))
        else:
            n, d = {"SYNTHETIC-500": (500, 2520), "SYNTHETIC-5000": (5000, 504)}[label]
            m = synthetic_market(n, d, args.cache_dir)
        ds = Dataset(label, m, "REAL" if label == "REAL" else "SYNTHETIC", m.symbols, *_span(m))
        ds.notes["load_or_build_seconds"] = time.perf_counter() - t0
        datasets.append(ds)
        log(f"{ds.label}: {len(ds.symbols)} symbols, {day_to_iso(ds.first)}..{day_to_iso(ds.last)}, "
            f"{ds.market.meta['bars']:,} bars, {len(ds.market.meta.get('actions', []))} corporate actions"
            + (f" - {SYNTHETIC_DESCRIPTION}" if ds.kind == "SYNTHETIC" else " (real prices)"))

    rows: list[dict] = []
    bt_rows: list[dict] = []
    scaling = None
    sandbox_info: dict[str, dict] = {}
    for ds in datasets:
        p = plans[ds.label]
        log(f"\n== {ds.label} ==")
        t_section = t0 = time.perf_counter()
        sbx = Sandbox(ds.market.path, SandboxLimits(), workers=2)
        sbx.start()
        info = {"zygote_startup_seconds": time.perf_counter() - t0}
        t0 = time.perf_counter()
        sbx.check(SOURCES["gap_up"])  # no spare yet: a cold fork, warm-up and load, in the caller's time
        info["cold_worker_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sbx.wait_ready(600)           # the background refill of the spare workers
        info["spare_refill_seconds"] = time.perf_counter() - t0
        waited = [0.0]

        def ready(wait: Callable = sbx.wait_ready, waited: list[float] = waited) -> None:
            t = time.perf_counter()
            wait(600)
            waited[0] += time.perf_counter() - t

        log(f"  sandbox: zygote start-up {info['zygote_startup_seconds']:.2f} s; first run's cold worker "
            f"{info['cold_worker_seconds']:.2f} s; refilling the 2 spare workers {info['spare_refill_seconds']:.2f} s")
        sbx.wait_ready = ready  # type: ignore[method-assign] - the variants' untimed prepare step, timed here
        try:
            t0 = time.perf_counter()
            naive = NaiveData(ds.market, ds.symbols)
            npd = NumpyData(ds.market)
            ds.notes["baseline_setup_seconds"] = time.perf_counter() - t0
            days = session_days(ds.market, ds.symbols)
            start = int(days[-p.backtest_sessions]) if p.backtest_sessions else int(days[0])
            if p.backtest_mix:
                rows += backtest_rows(ds, sbx, naive, npd, p.backtest_mix, start, int(days[-1]), repeat, log,
                                      orders=p.orders)
            if p.screen_mix:
                rows += screen_rows(ds, sbx, naive, npd, p.screen_mix, int(days[-1]), repeat, log)
            del naive, npd
            if p.bt_symbols:
                # at least 7 rounds: these rows are short, and backtesting.py alone varies by 2x
                r = backtesting_py_rows(ds, sbx, ds.symbols[:p.bt_symbols], max(repeat, 7), log)
                bt_rows += [r] if r else []
            if p.scale_symbols:
                scaling = scaling_rows(ds, sbx, p, repeat, log)
        finally:
            sbx.close()
        info["module_reset_ms_in_process"] = module_reset_ms(ds.market)
        log(f"  re-running a strategy module (once per symbol in a symbol-major run): "
            f"{info['module_reset_ms_in_process']:.2f} ms in-process")
        info["waiting_for_spares_seconds"] = waited[0]
        info["section_seconds"] = time.perf_counter() - t_section
        sandbox_info[ds.label] = info
        log(f"  {ds.label} took {info['section_seconds']:.0f} s, of which {waited[0]:.0f} s (untimed) waiting for "
            "spare workers to be re-forked and warmed between sandboxed runs")

    mix = mix_summary(rows)
    targets = evaluate_targets(mix, bt_rows, rows, scaling)
    md = markdown(rows, mix, bt_rows, scaling, targets)
    log("\n" + md)
    elapsed = time.perf_counter() - t_start
    load_after = os.getloadavg()
    log(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"(other processes on this machine compete for its {os.cpu_count()} CPUs)")
    result = {
        "bench": "bench/modes.py", "size": size_name, "repeat": repeat, "elapsed_seconds": elapsed,
        "when": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform(), "backtesting": _version("backtesting"),
                    "load_average_before": load_before, "load_average_after": load_after},
        "plan": {k: v.__dict__ for k, v in plans.items()},
        "datasets": {ds.label: {"kind": ds.kind, "symbols": len(ds.symbols), "first": day_to_iso(ds.first),
                                "last": day_to_iso(ds.last), "bars": ds.market.meta["bars"],
                                "description": ds.market.meta.get("description"), "demo": ds.market.demo,
                                "path": str(ds.market.path), **ds.notes} for ds in datasets},
        "sandbox": sandbox_info,
        "rows": rows, "mix": mix, "backtesting_py": bt_rows, "scaling": scaling, "targets": targets,
        "markdown": md,
    }
    args.json.write_text(json.dumps(result, indent=1))
    log(f"wrote {args.json} ({elapsed:.0f} s in all)")


def _span(m: MarketData) -> tuple[int, int]:
    return int(m.columns["date"].min()), int(m.columns["date"].max())


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    main()
