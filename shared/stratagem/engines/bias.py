"""The bias report that comes with every backtest.

* **Look-ahead probe**: re-run a sample of days against a copy of the data physically cut
  at each day's close, and confirm the signals (and scores) are identical. Whatever path a
  strategy uses (prices, other symbols, sectors, scans), it cannot see what is not there.
* **Survivorship**: a universe chosen today and applied to the past leaves out companies
  that were delisted; say so.
* **Data gaps and zero-volume days** met in the range, and **symbols skipped** and why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..data.store import MarketData, build_store
from ..sandbox.pool import Sandbox
from .common import iso, row_bounds, trading_days

MAX_EXAMPLES = 10
PROBE_DAYS = 3
PROBE_MAX_BARS = 3_000_000  # above this, probe a single day (the copy costs O(dataset))


def probe_days(signal_days: list[int], all_days: list[int], n: int = PROBE_DAYS) -> list[int]:
    """Days to probe: signal days spread over the range first (they matter most), then others."""
    picks: list[int] = []
    for pool in (sorted(set(signal_days)), sorted(set(all_days))):
        if len(picks) >= n or not pool:
            continue
        idx = np.linspace(0, len(pool) - 1, num=min(n - len(picks), len(pool))).round().astype(int)
        for i in idx.tolist():
            if pool[i] not in picks:
                picks.append(pool[i])
    return sorted(picks[:n])


class DayPlan(Mapping[int, list[str]]):
    """The plan of a backtest (session day -> symbols with a bar that day), built per day on
    demand: the probe reads two or three days of it, and the whole map of a long backtest
    over many symbols costs about 0.1 s to build. Iterating builds it whole."""

    def __init__(self, market: MarketData, symbols: list[str], start: int, end: int) -> None:
        self.market, self.symbols, self.start, self.end = market, symbols, start, end
        self._whole: dict[int, list[str]] | None = None

    def _all(self) -> dict[int, list[str]]:
        if self._whole is None:
            self._whole = trading_days(self.market, self.symbols, self.start, self.end)
        return self._whole

    def __getitem__(self, day: int) -> list[str]:
        if self._whole is None and self.start <= day <= self.end:
            got = trading_days(self.market, self.symbols, day, day)
            if day in got:
                return got[day]
            raise KeyError(day)
        return self._all()[day]

    def __iter__(self) -> Iterator[int]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _scratch_dir() -> Path:
    """Where the probe's cut copies go: memory (/dev/shm) where there is one, so writing a
    copy of a large dataset does not wait on a disk; else the usual temporary directory."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    return Path(tempfile.mkdtemp(prefix="stratagem-probe-", dir=base))


def lookahead_probe(sandbox: Sandbox, market: MarketData, source: str, plan: Mapping[int, list[str]],
                    signals: dict[tuple[str, int], float | None], errors: set[tuple[str, int]],
                    n: int = PROBE_DAYS) -> dict:
    """Re-run sampled days on truncated copies of the data; compare with the main run."""
    if market.meta.get("bars", 0) > PROBE_MAX_BARS:
        n = 1
    signal_days = sorted({d for (_s, d) in signals})
    # Every plan day is needed only when there are fewer signal days than days to probe.
    days = probe_days(signal_days, list(plan) if len(signal_days) < n else [], n)
    tmp = _scratch_dir()

    def probe(day: int) -> list[dict]:
        bars = {s: market.bars(s, until_day=day) for s in market.symbols}
        bars = {s: b for s, b in bars.items() if len(b)}
        path = build_store(bars, tmp / f"cut-{day}", source=f"probe:{market.name}@{iso(day)}")
        try:
            out = sandbox.run(source, [(day, plan[day])], dataset=path, workers=1)
        finally:
            shutil.rmtree(path, ignore_errors=True)
        cut = {s: sc for s, d, sc, _v in out.signals}
        cut_err = {s for s, _d, _m in out.errors}
        mismatches: list[dict] = []
        for sym in plan[day]:
            if (sym, day) in errors or sym in cut_err:
                if ((sym, day) in errors) != (sym in cut_err):
                    mismatches.append({"symbol": sym, "date": iso(day), "full": "error" if (sym, day) in errors else "ok",
                                       "truncated": "error" if sym in cut_err else "ok"})
                continue
            full_sig = (sym, day) in signals
            if full_sig != (sym in cut) or (full_sig and signals[(sym, day)] != cut[sym]):
                mismatches.append({"symbol": sym, "date": iso(day),
                                   "full": {"signal": full_sig, "score": signals.get((sym, day))},
                                   "truncated": {"signal": sym in cut, "score": cut.get(sym)}})
        return mismatches

    try:
        # The days are independent (each its own cut copy and worker): probe them side by side.
        with ThreadPoolExecutor(max_workers=max(1, min(len(days), sandbox.workers))) as pool:
            found = list(pool.map(probe, days))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    checked = [{"date": iso(day), "symbols": len(plan[day])} for day in days]
    mismatches = [m for ms in found for m in ms]
    return {
        "method": "re-ran these days on a copy of the data cut at each day's close; signals and scores must match",
        "days": checked, "identical": not mismatches, "mismatches": mismatches[:MAX_EXAMPLES],
    }


def data_quality(market: MarketData, symbols: list[str], start: int, end: int) -> dict:
    """Missing sessions (vs the dataset calendar, inside each symbol's own history) and
    zero-volume days met in [start, end]."""
    cal = np.asarray(market.calendar())
    cal = cal[(cal >= start) & (cal <= end)]
    dates = np.asarray(market.columns["date"])
    volume = np.asarray(market.columns["volume"])
    a, b, lo, hi = row_bounds(market, symbols, start, end)
    has = b > a
    # Sessions of the calendar inside each symbol's own first..last date, minus the symbol's
    # sessions among them (its dates all belong to the calendar, the union of every symbol's).
    first = np.where(has, dates[np.minimum(a, dates.size - 1)], 0) if dates.size else a
    last = np.where(has, dates[np.maximum(b - 1, 0)], -1) if dates.size else a
    expected = np.searchsorted(cal, last, "right") - np.searchsorted(cal, first, "left")
    missing_n = np.where(has, np.maximum(expected - (hi - lo), 0), 0)
    gaps: list[dict] = []
    for i in np.flatnonzero(missing_n).tolist():
        if len(gaps) >= MAX_EXAMPLES:
            break
        d = dates[a[i]:b[i]]
        inside = cal[(cal >= d[0]) & (cal <= d[-1])]
        missing = np.setdiff1d(inside, d, assume_unique=True)
        gaps.extend({"symbol": symbols[i], "date": iso(x)} for x in missing[:MAX_EXAMPLES].tolist())
    # Zero-volume days in range, in symbol order.
    lens = hi - lo
    rows = np.arange(int(lens.sum())) + np.repeat(lo - (np.cumsum(lens) - lens), lens)
    zero_rows = rows[volume[rows] == 0]
    owner = np.repeat(np.arange(len(symbols)), lens)[volume[rows] == 0]
    zero = [{"symbol": symbols[k], "date": iso(x)}
            for k, x in zip(owner[:MAX_EXAMPLES].tolist(), dates[zero_rows[:MAX_EXAMPLES]].tolist())]
    return {"missing_sessions": {"count": int(missing_n.sum()), "examples": gaps[:MAX_EXAMPLES]},
            "zero_volume_days": {"count": int(zero_rows.size), "examples": zero}}


def survivorship(market: MarketData, symbols: list[str], universe_label: str) -> dict:
    """Warn when the universe is a list chosen today and applied to the past."""
    a, b, _, _ = row_bounds(market, symbols, 0, 0)
    has = b > a
    ends = np.asarray(market.columns["date"])[b[has] - 1]
    last = int(ends.max()) if ends.size else None
    stopped = [s for s, e in zip([s for s, h in zip(symbols, has.tolist()) if h], ends.tolist()) if e < last]
    warn = (f"the universe ({universe_label}) is a fixed list applied to the whole period: companies that were "
            "delisted or dropped before the end of the data are missing, which flatters results (survivorship bias)")
    if stopped:
        warn += f"; {len(stopped)} of its symbols stop trading before the end of the data and are kept"
    return {"warning": warn, "universe": universe_label, "symbols_ending_early": stopped}
