"""Pure metric functions over arrays of returns (NaN-aware, no state, no I/O).

In the manner of empyrical: each function takes a 1-D array and returns a float; too
little data gives ``nan`` (reported as ``null``), never an exception.
"""

from __future__ import annotations

import math

import numpy as np


def _clean(x: np.ndarray | list) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a[np.isfinite(a)]


def count(x) -> int:
    return int(_clean(x).size)


def mean(x) -> float:
    a = _clean(x)
    return float(a.mean()) if a.size else math.nan


def median(x) -> float:
    a = _clean(x)
    return float(np.median(a)) if a.size else math.nan


def std(x) -> float:
    """Sample standard deviation (ddof=1); nan below two observations."""
    a = _clean(x)
    return float(a.std(ddof=1)) if a.size >= 2 else math.nan


def hit_rate(x) -> float:
    """Fraction of strictly positive returns."""
    a = _clean(x)
    return float((a > 0).mean()) if a.size else math.nan


def t_stat(x) -> float:
    """One-sample t statistic of the mean against zero: mean / (std / sqrt(n))."""
    a = _clean(x)
    if a.size < 2:
        return math.nan
    s = a.std(ddof=1)
    if s == 0:
        return math.nan
    return float(a.mean() / (s / math.sqrt(a.size)))


def best(x) -> float:
    a = _clean(x)
    return float(a.max()) if a.size else math.nan


def worst(x) -> float:
    a = _clean(x)
    return float(a.min()) if a.size else math.nan


def summary(x) -> dict:
    """The per-window statistics reported with every backtest."""
    return {"count": count(x), "mean": mean(x), "median": median(x), "std": std(x), "hit_rate": hit_rate(x),
            "t_stat": t_stat(x), "best": best(x), "worst": worst(x)}


def nan_to_none(obj):
    """Recursively replace non-finite floats by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        if len(obj) > 64:
            # Long homogeneous series (equity curves, their dates): one pass, not a call per item.
            kinds = set(map(type, obj))  # C-level passes: these lists are thousands long
            if kinds == {str}:
                return list(obj)
            if kinds == {float}:
                if np.isfinite(np.fromiter(obj, dtype=np.float64, count=len(obj))).all():
                    return list(obj)
                return [v if math.isfinite(v) else None for v in obj]
        return [nan_to_none(v) for v in obj]
    return obj


# -- equity-curve metrics (daily simple returns) ------------------------------------------------
TRADING_DAYS = 252


def total_return(daily) -> float:
    """Compounded return of a series of daily simple returns; 0.0 for an empty series."""
    a = _clean(daily)
    return float(np.prod(1.0 + a) - 1.0) if a.size else 0.0


def cagr(daily, periods_per_year: int = TRADING_DAYS) -> float:
    """Compound annual growth rate, years = number of daily returns / 252."""
    a = _clean(daily)
    if a.size == 0:
        return math.nan
    growth = float(np.prod(1.0 + a))
    if growth <= 0:
        return -1.0
    return growth ** (periods_per_year / a.size) - 1.0


def sharpe(daily, periods_per_year: int = TRADING_DAYS) -> float:
    """Annualised Sharpe ratio with a zero risk-free rate: mean / std (ddof=1) * sqrt(252)."""
    a = _clean(daily)
    if a.size < 2:
        return math.nan
    s = a.std(ddof=1)
    if s == 0:
        return math.nan
    return float(a.mean() / s * math.sqrt(periods_per_year))


def equity_curve(daily) -> np.ndarray:
    """Growth of 1 unit: cumulative product of (1 + r); NaN returns count as 0 (in cash)."""
    a = np.nan_to_num(np.asarray(daily, dtype=np.float64), nan=0.0)
    return np.cumprod(1.0 + a)


def max_drawdown(daily) -> float:
    """Largest peak-to-trough fall of the equity curve, as a negative fraction (0.0 if none)."""
    eq = equity_curve(daily)
    if eq.size == 0:
        return 0.0
    peak = np.maximum.accumulate(np.r_[1.0, eq])[1:]
    return float(min(0.0, (eq / peak - 1.0).min()))
