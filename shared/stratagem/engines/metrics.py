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
        return [nan_to_none(v) for v in obj]
    return obj
