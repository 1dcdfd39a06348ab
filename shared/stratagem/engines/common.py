"""Shared pieces of the engines: date ranges, windows, evaluation plans, JSON rows."""

from __future__ import annotations

import numpy as np

from ..data.store import MarketData, day_to_iso, iso_to_day
from ..errors import BadInput


def parse_date(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return iso_to_day(text)
    except ValueError:
        raise BadInput(f"{flag} must be an ISO date like 2012-03-01, got {text!r}") from None


def parse_windows(text: str | list[int] | None) -> list[int]:
    if text is None:
        return [1, 5, 10]
    items = text if isinstance(text, list) else [t for t in str(text).split(",") if t.strip()]
    out = []
    for t in items:
        try:
            w = int(t)
        except (TypeError, ValueError):
            raise BadInput(f"--windows must be positive integers like 1,5,10; got {t!r}") from None
        if w <= 0 or w > 2520:
            raise BadInput(f"--windows must be between 1 and 2520 trading days; got {w}")
        out.append(w)
    if not out:
        raise BadInput("--windows is empty; expected e.g. 1,5,10")
    return sorted(set(out))


def row_bounds(market: MarketData, symbols: list[str], start: int, end: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per symbol (in the given order): its rows ``[a, b)`` in the dataset's columns and the
    rows ``[lo, hi)`` among them dated in [start, end] (``lo == hi`` when none; ``a == b``
    for a symbol without data)."""
    dates = np.asarray(market.columns["date"])  # a plain ndarray: memmap slicing costs ~2 µs a time
    n = len(symbols)
    a, b, lo, hi = (np.zeros(n, dtype=np.int64) for _ in range(4))
    for i, sym in enumerate(symbols):
        x, y = market.range(sym)
        d = dates[x:y]
        a[i], b[i] = x, y
        lo[i] = x + int(d.searchsorted(start, "left"))
        hi[i] = x + int(d.searchsorted(end, "right"))
    return a, b, lo, hi


def trading_days(market: MarketData, symbols: list[str], start: int, end: int) -> dict[int, list[str]]:
    """Map each session day in [start, end] to the symbols that have a bar that day."""
    by_day: dict[int, list[str]] = {}
    dates = np.asarray(market.columns["date"])
    _, _, lo, hi = row_bounds(market, symbols, start, end)
    for sym, x, y in zip(symbols, lo.tolist(), hi.tolist()):
        for day in dates[x:y].tolist():
            by_day.setdefault(day, []).append(sym)
    return dict(sorted(by_day.items()))


def symbol_days(market: MarketData, symbols: list[str], start: int, end: int) -> dict[str, list[int]]:
    """Each symbol's session days in [start, end] (symbols without any are left out)."""
    out: dict[str, list[int]] = {}
    dates = np.asarray(market.columns["date"])
    _, _, lo, hi = row_bounds(market, symbols, start, end)
    for sym, x, y in zip(symbols, lo.tolist(), hi.tolist()):
        if y > x:
            out[sym] = dates[x:y].tolist()
    return out


def last_session(market: MarketData, symbols: list[str], asof: int | None) -> int | None:
    """The latest session on or before ``asof`` (default: the last in the data) among ``symbols``."""
    return market.last_session(symbols, asof)


def iso(day: int) -> str:
    return day_to_iso(day)


def ms(day: int) -> int:
    return int(day) * 86_400_000
