"""Alerts: evaluate a strategy on newly closed bars and fire each alert once.

The same :class:`AlertEngine` serves the real-time tick (fed by arriving bars) and
``stratagem alerts replay`` (fed from history, day by day as if live). A strategy fires at
most once per symbol per bar: the dedup key ``strategy:version:symbol:bar`` is claimed in a
:class:`Deduper` before anything is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ..data.store import MarketData
from ..sandbox.pool import EvalOutcome, Sandbox, Session
from . import metrics
from .common import iso, ms, trading_days


class Deduper(Protocol):
    def claim(self, key: str) -> bool:
        """True exactly once per key (atomically, across processes for real adapters)."""
        ...


class MemoryDeduper:
    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def alert_message(name: str, symbol: str, date: str, close: float | None, score: float | None, values: dict) -> str:
    """Short text for a phone screen: what fired, when, at what price, and why."""
    lines = [f"🔔 {name}: {symbol} signalled at the close of {date}"]
    if close is not None:
        lines[0] += f" (close {close:,.2f})"
    if score is not None:
        lines.append(f"score {_fmt(score)}")
    why = [f"{k} {_fmt(v)}" for k, v in list(values.items())[:6] if v is not None]
    if why:
        lines.append(", ".join(why))
    return "\n".join(lines)


class AlertEngine:
    """Evaluates one strategy tick by tick in one sandbox session and emits deduplicated alerts."""

    def __init__(self, sandbox: Sandbox, market: MarketData, source: str, *, strategy_id: str | int,
                 name: str, version: int = 1, deduper: Deduper | None = None) -> None:
        self.market = market
        self.source = source
        self.session: Session = sandbox.session(source)
        self.strategy_id = strategy_id
        self.name = name
        self.version = version
        self.deduper = deduper or MemoryDeduper()
        self.errors: list[dict] = []
        self.demo_data_used = False

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "AlertEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_price(self, symbol: str, day: int, overlay: dict | None = None) -> float | None:
        a, b = self.market.range(symbol)
        dates = np.asarray(self.market.columns["date"])  # a plain array: memmap slicing is slow
        if b > a and day <= dates[b - 1]:  # the dataset is authoritative up to its last bar
            i = a + int(dates[a:b].searchsorted(day))
            return float(self.market.columns["close"][i]) if i < b and int(dates[i]) == day else None
        for bar in reversed((overlay or {}).get(symbol, ())):  # newest first: the live bar is last
            if bar.day == day:
                return float(bar.close)
            if bar.day < day:
                break
        return None

    def tick(self, day: int, symbols: list[str], overlay: dict | None = None) -> list[dict]:
        """Evaluate ``symbols`` as of the close of ``day``; return the alerts that fired now."""
        return self.tick_items([(day, s) for s in symbols], overlay)

    def tick_items(self, items: list[tuple[int, str]], overlay: dict | None = None,
                   rows: dict[str, list[list]] | None = None) -> list[dict]:
        """Evaluate each (day, symbol) as of that day's close, in one sandbox call, oldest first;
        return the alerts that fired now.

        ``overlay``: live bars beyond the dataset per symbol (``stratagem.live.Bar`` lists,
        oldest first) that the strategy sees from their date on; ``rows``, when given, is the
        same overlay in wire form (``Bar.row()`` lists, built once for many engines). A late bar (a date before
        the previous call's) makes the worker re-run the module body first, so no state from a
        later date reaches an earlier one.
        """
        from ..sandbox.pool import MAX_RESTARTS

        sess = self.session
        w = sess.worker
        # A warm session lives for many ticks: start a fresh worker before the per-worker CPU
        # budget runs out (or after repeated crashes), instead of failing mid-tick.
        if (w is not None and getattr(w, "cpu", 0.0) > sess.sandbox.limits.cpu_seconds * 0.5) or \
                sess.restarts >= MAX_RESTARTS:
            sess.close()
            sess.restarts = 0
        if rows is None and overlay is not None:
            rows = {s: [b.row() for b in bars] for s, bars in overlay.items()}
        return self.fired(sess.evaluate(sorted(set(items)), overlay=rows), overlay)

    def fired(self, out: EvalOutcome, overlay: dict | None = None) -> list[dict]:
        """The alerts that fired now from an evaluation of this strategy (however it was run:
        its own session, or a :class:`~stratagem.sandbox.pool.Batch` slot): errors recorded,
        each signal claimed once, messages formatted."""
        for s, d, m in out.errors:
            self.errors.append({"symbol": s, "date": iso(d), "message": m})
        fired = []
        for s, d, score, values in out.signals:
            key = f"{self.strategy_id}:{self.version}:{s}:{d}"
            if not self.deduper.claim(key):
                continue
            close = self._close_price(s, d, overlay)
            date = iso(d)
            message = alert_message(self.name, s, date, close, score, values)
            if out.demo_data_used:
                message += "\n(DEMO DATA: based on illustrative fundamentals, not real ones)"
            fired.append({"strategy_id": self.strategy_id, "strategy_version": self.version, "strategy_name": self.name,
                          "symbol": s, "date": date, "timestamp": ms(d), "close": close, "score": score,
                          "values": values, "dedup_key": key, "demo_data": out.demo_data_used,
                          "message": message})
        self.demo_data_used = self.demo_data_used or out.demo_data_used
        return fired


def replay_alerts(sandbox: Sandbox, market: MarketData, source: str, symbols: list[str], start: int, end: int, *,
                  strategy_id: str | int = "local", name: str = "strategy", version: int = 1,
                  deduper: Deduper | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Walk [start, end] day by day as if live; CONTRACT §5 ``{"alerts": [...]}`` in time order."""
    plan = trading_days(market, symbols, start, end)
    alerts: list[dict] = []
    with AlertEngine(sandbox, market, source, strategy_id=strategy_id, name=name, version=version,
                     deduper=deduper) as engine:
        for k, (day, syms) in enumerate(plan.items(), 1):
            alerts.extend(engine.tick(day, syms))
            if progress:
                progress(k, len(plan))
        errors = engine.errors
        demo = engine.demo_data_used
    return metrics.nan_to_none({"demo_data": demo, "strategy": {"id": strategy_id, "name": name, "version": version},
                                "start": iso(start), "end": iso(end), "symbols": symbols,
                                "sessions": len(plan), "alerts": alerts,
                                "errors": {"count": len(errors), "examples": errors[:20]},
                                "dataset": {"name": market.name, "version": market.version}})
