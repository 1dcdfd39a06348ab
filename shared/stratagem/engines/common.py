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


def trading_days(market: MarketData, symbols: list[str], start: int, end: int) -> dict[int, list[str]]:
    """Map each session day in [start, end] to the symbols that have a bar that day."""
    by_day: dict[int, list[str]] = {}
    for sym in symbols:
        d = np.asarray(market.dates(sym))
        lo, hi = np.searchsorted(d, start, "left"), np.searchsorted(d, end, "right")
        for day in d[lo:hi].tolist():
            by_day.setdefault(day, []).append(sym)
    return dict(sorted(by_day.items()))


def symbol_days(market: MarketData, symbols: list[str], start: int, end: int) -> dict[str, list[int]]:
    """Each symbol's session days in [start, end] (symbols without any are left out)."""
    out: dict[str, list[int]] = {}
    for sym in symbols:
        d = market.dates(sym)
        lo, hi = np.searchsorted(d, start, "left"), np.searchsorted(d, end, "right")
        if hi > lo:
            out[sym] = d[lo:hi].tolist()
    return out


def last_session(market: MarketData, symbols: list[str], asof: int | None) -> int | None:
    """The latest session on or before ``asof`` (default: the last in the data) among ``symbols``."""
    return market.last_session(symbols, asof)


def iso(day: int) -> str:
    return day_to_iso(day)


def ms(day: int) -> int:
    return int(day) * 86_400_000
