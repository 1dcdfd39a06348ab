"""Vectorised numpy versions of the bench strategies (the practical speed limit).

Not strategy source: this module runs in the bench process. Each rule takes a
:class:`Windows` batch - many (symbol, as-of day) rows at once - and returns one bool per row.
The windows are built from the store's columns with exactly the point-in-time formula the
engine uses (CONTRACT §2: ``raw_s * (f_s / f_t)`` for prices, ``vol_s * (split_t / split_s)``
for volume), and every sum is a sequential ``cumsum`` (the order Python's ``sum`` adds in on
3.11), so the inputs and the arithmetic are bit-identical to the strategy files in this
folder: signals agree exactly, even on ties, and the bench can assert equality.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def seqsum(m: np.ndarray) -> np.ndarray:
    """Row sums added left to right (numpy's ``sum`` is pairwise, so it can differ by an ulp)."""
    return np.cumsum(m, axis=1)[:, -1]


class Windows:
    """The last ``k`` point-in-time bars of each row, as (rows, k) matrices, oldest first.

    ``cols`` holds the store's columns as in-memory arrays (all symbols concatenated);
    ``end`` is each row's as-of position + 1 (global index, exclusive). Rows must have at
    least as many bars as the widest window asked for (callers filter with the symbol start).
    """

    def __init__(self, cols: dict[str, np.ndarray], end: np.ndarray) -> None:
        self.cols = cols
        self.t = end - 1
        self._ft = cols["factor"][self.t][:, None]
        self._st = cols["split"][self.t][:, None]

    def _idx(self, k: int) -> np.ndarray:
        return self.t[:, None] + np.arange(1 - k, 1)

    def price(self, col: str, k: int) -> np.ndarray:
        idx = self._idx(k)
        return self.cols[col][idx] * (self.cols["factor"][idx] / self._ft)

    def volume(self, k: int) -> np.ndarray:
        idx = self._idx(k)
        return self.cols["volume"][idx] * (self._st / self.cols["split"][idx])


def gap_up(w: Windows) -> np.ndarray:
    opens = w.price("open", 1)[:, 0]
    prev_close = w.price("close", 2)[:, 0]
    vol = w.volume(21)
    avg = seqsum(vol[:, :-1]) / 20
    ok = (prev_close > 0) & (avg > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = opens / prev_close - 1.0
        rel = vol[:, -1] / avg
    return ok & (gap > 0.03) & (rel > 1.5)


def momentum(w: Windows) -> np.ndarray:
    c = w.price("close", 21)
    ok = c[:, 0] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        change = c[:, -1] / c[:, 0] - 1.0
    return ok & (change > 0.10)


def rsi(w: Windows, period: int = 14, bars: int = 100) -> np.ndarray:
    c = w.price("close", bars)
    ch = np.diff(c, axis=1)  # ch[:, i-1] == closes[i] - closes[i-1]
    first = ch[:, :period]
    gains = seqsum(np.where(first > 0, first, 0.0))
    losses = -seqsum(np.where(first > 0, 0.0, first))  # 0 - x0 - x1 ... like `losses -= change`
    avg_gain, avg_loss = gains / period, losses / period
    for i in range(period, bars - 1):
        x = ch[:, i]
        avg_gain = (avg_gain * (period - 1) + np.maximum(x, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + np.maximum(-x, 0.0)) / period
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(avg_loss == 0, 100.0, 100.0 - 100.0 / (1.0 + avg_gain / avg_loss))
    return value < 30.0


def sma_cross(w: Windows, fast: int = 50, slow: int = 200) -> np.ndarray:
    bars = slow + 1
    c = w.price("close", bars)
    fast_now = seqsum(c[:, bars - fast:]) / fast
    slow_now = seqsum(c[:, 1:]) / slow
    fast_prev = seqsum(c[:, bars - fast - 1:bars - 1]) / fast
    slow_prev = seqsum(c[:, :slow]) / slow
    return (fast_now > slow_now) & (fast_prev <= slow_prev)


def high_52w(w: Windows) -> np.ndarray:
    highs = w.price("high", 252)
    close = w.price("close", 1)[:, 0]
    return close > highs[:, :-1].max(axis=1)


def bollinger(w: Windows, bars: int = 20) -> np.ndarray:
    c = w.price("close", bars)
    mean = seqsum(c) / bars
    d = c - mean[:, None]
    var = seqsum(d * d) / bars
    lower = mean - 2.0 * np.sqrt(var)
    return c[:, -1] < lower


# name -> (bars of history the rule needs, rule); names match the strategy files here.
RULES: dict[str, tuple[int, Callable[[Windows], np.ndarray]]] = {
    "gap_up": (21, gap_up),
    "momentum": (21, momentum),
    "rsi": (100, rsi),
    "sma_cross": (201, sma_cross),
    "high_52w": (252, high_52w),
    "bollinger": (20, bollinger),
}


def evaluate(name: str, cols: dict[str, np.ndarray], start: np.ndarray, end: np.ndarray,
             chunk_cells: int = 4_000_000) -> np.ndarray:
    """Signal (bool) of rule ``name`` for every row (symbol start ``start``, as-of ``end``).

    Rows with fewer than the rule's bars are False, as in the strategy files. Rows are
    processed in chunks so that no window matrix exceeds ``chunk_cells`` cells.
    """
    bars, rule = RULES[name]
    out = np.zeros(end.shape[0], dtype=bool)
    ok = np.flatnonzero(end - start >= bars)
    step = max(1, chunk_cells // bars)
    for i in range(0, ok.shape[0], step):
        rows = ok[i:i + step]
        out[rows] = rule(Windows(cols, end[rows]))
    return out
