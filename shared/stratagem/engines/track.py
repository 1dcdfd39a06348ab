"""Live track record: how fired alerts performed, next to the strategy's backtest.

Pure functions, no I/O. Prices come through a :data:`CloseLookup` (symbol -> its session
days and total-return adjusted closes, oldest first), so the bundled history, an imported
dataset or the live bar store can feed the same computation.

* :func:`forward_returns`: for an alert on the bar of day t, ``adj_close[t+w] / adj_close[t] - 1``
  for each window w, counting trading days of that symbol (CONTRACT §3, the backtest's own
  rule); ``None`` until bar t+w exists (and when bar t itself is unknown).
* :func:`live_window_stats`: per window, the alerts whose return is known: count, hit rate,
  mean, median, std (:mod:`stratagem.engines.metrics`), plus how many are still pending.
* :func:`compare`: live vs backtest per window: both sides, the differences, and Welch's t of
  the means from the two summaries; ``drift`` is flagged when |t| >= 2 with at least
  :data:`MIN_LIVE_FOR_DRIFT` live returns (too few alerts say nothing either way).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import metrics

DEFAULT_WINDOWS = (1, 5, 10)
MIN_LIVE_FOR_DRIFT = 5
DRIFT_T = 2.0
DAY_MS = 86_400_000

# symbol -> (session days since 1970-01-01 ascending, adjusted closes); empty sequences if unknown
CloseLookup = Callable[[str], tuple[Sequence[int], Sequence[float]]]


def alert_day(alert: dict) -> int:
    """The bar's session day (days since 1970-01-01) from the alert's UTC-ms ``timestamp``."""
    return int(alert["timestamp"]) // DAY_MS


def forward_returns(days: Sequence[int], closes: Sequence[float], day: int,
                    windows: Iterable[int] = DEFAULT_WINDOWS) -> dict[str, float | None]:
    """``{str(w): adj_close[t+w] / adj_close[t] - 1 or None}`` for the bar of ``day``."""
    windows = list(windows)
    t = bisect_left(days, day)
    if t >= len(days) or int(days[t]) != day:
        return {str(w): None for w in windows}  # the alert's own bar is not (yet) in the series
    base = float(closes[t])
    out: dict[str, float | None] = {}
    for w in windows:
        u = t + w
        if u >= len(days) or not math.isfinite(base) or base == 0:
            out[str(w)] = None
            continue
        r = float(closes[u]) / base - 1.0
        out[str(w)] = r if math.isfinite(r) else None
    return out


def with_returns(alerts: Iterable[dict], lookup: CloseLookup,
                 windows: Iterable[int] = DEFAULT_WINDOWS) -> list[dict]:
    """Each alert with ``returns`` (per window, None until known); one lookup per symbol."""
    windows = list(windows)
    cache: dict[str, tuple[Sequence[int], Sequence[float]]] = {}
    out = []
    for a in alerts:
        sym = a["symbol"]
        if sym not in cache:
            cache[sym] = lookup(sym)
        days, closes = cache[sym]
        out.append({**a, "returns": forward_returns(days, closes, alert_day(a), windows)})
    return out


def live_window_stats(alerts: Sequence[dict], windows: Iterable[int] = DEFAULT_WINDOWS) -> dict[str, dict]:
    """Per window: ``count`` (known returns), ``pending`` (not yet known), hit rate, mean,
    median, std, best, worst; NaN where there is nothing to measure."""
    out = {}
    for w in windows:
        vals = [a["returns"].get(str(w)) for a in alerts]
        known = [v for v in vals if v is not None]
        s = metrics.summary(known)
        out[str(w)] = {"count": s["count"], "pending": len(vals) - len(known), "hit_rate": s["hit_rate"],
                       "mean": s["mean"], "median": s["median"], "std": s["std"], "best": s["best"],
                       "worst": s["worst"]}
    return out


def welch_t(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float:
    """Welch's t of two means from their summaries; NaN when either side cannot give it."""
    if n1 < 2 or n2 < 2 or not all(math.isfinite(x) for x in (m1, s1, m2, s2)):
        return math.nan
    se = math.sqrt(s1 * s1 / n1 + s2 * s2 / n2)
    return (m1 - m2) / se if se > 0 else math.nan


def _num(d: dict | None, key: str) -> float:
    v = (d or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def compare(live: dict[str, dict], backtest: dict[str, Any] | None,
            windows: Iterable[int] = DEFAULT_WINDOWS) -> dict[str, dict]:
    """Live vs backtest per window (``backtest`` is ``performance_metrics.by_window`` of a
    backtest, or None): each side's count, hit rate and mean, their differences (live minus
    backtest), Welch's t of the means and the drift flag."""
    out = {}
    for w in windows:
        k = str(w)
        lv = live.get(k) or {}
        bt = (backtest or {}).get(k)
        row: dict[str, Any] = {
            "live": {"count": int(lv.get("count", 0)), "pending": int(lv.get("pending", 0)),
                     "hit_rate": _num(lv, "hit_rate"), "mean": _num(lv, "mean")},
            "backtest": None if bt is None else {"count": int(_num(bt, "count")) if math.isfinite(_num(bt, "count"))
                                                 else 0, "hit_rate": _num(bt, "hit_rate"), "mean": _num(bt, "mean")},
        }
        if bt is None:
            row.update(hit_rate_diff=math.nan, mean_diff=math.nan, welch_t=math.nan, drift=None)
        else:
            t = welch_t(_num(lv, "mean"), _num(lv, "std"), int(lv.get("count", 0)),
                        _num(bt, "mean"), _num(bt, "std"), int(_num(bt, "count")) if math.isfinite(_num(bt, "count")) else 0)
            enough = int(lv.get("count", 0)) >= MIN_LIVE_FOR_DRIFT and math.isfinite(t)
            row.update(hit_rate_diff=_num(lv, "hit_rate") - _num(bt, "hit_rate"),
                       mean_diff=_num(lv, "mean") - _num(bt, "mean"), welch_t=t,
                       drift=(abs(t) >= DRIFT_T) if enough else None)
        out[k] = row
    return out


def baseline_period(alerts: Sequence[dict], years: float = 2.0) -> tuple[int, int] | None:
    """The backtest period a live record is compared with: the ``years`` of sessions ending
    the day before the first alert (the history the trader saw before going live, so the two
    samples never overlap). None without alerts."""
    if not alerts:
        return None
    first = min(alert_day(a) for a in alerts)
    return first - round(365.25 * years), first - 1


def track_record(alerts: Sequence[dict], lookup: CloseLookup, backtest_by_window: dict | None = None,
                 windows: Iterable[int] = DEFAULT_WINDOWS) -> dict:
    """The whole record: alerts with returns (oldest first), live stats, comparison (JSON-safe)."""
    windows = list(windows)
    rows = sorted(with_returns(alerts, lookup, windows), key=lambda a: (a["timestamp"], a["symbol"]))
    live = live_window_stats(rows, windows)
    return metrics.nan_to_none({"windows": windows, "alerts": rows, "live": live,
                                "comparison": compare(live, backtest_by_window, windows)})
