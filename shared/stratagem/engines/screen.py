"""Screening: rank a universe as of one session by the strategy's score (CONTRACT §4).

Default ranking: symbols whose signal is true, by ``score`` descending; signals without a
score rank after all scored ones, alphabetically. A strategy that defines
``run_screening(universe, limit)`` ranks for itself, in the sandbox, with the same as-of
date; its picks are checked against the universe it was given.
"""

from __future__ import annotations

import math

from ..data.store import MarketData
from ..errors import BadInput, StrategyFailed
from ..sandbox.pool import Sandbox
from . import metrics
from .backtest import DEMO_WARNING
from .common import iso, last_session


# Up to this many symbols a screen runs in one worker: a second one would cost more to load
# than it saves.
SPLIT_ABOVE = 500


def rank_signals(rows: list[dict]) -> list[dict]:
    """Highest score first; signals without a score after all scored ones, alphabetically."""
    return sorted(rows, key=_rank_key)


def _rank_key(row: dict) -> tuple:
    s = row["score"]
    return (0, -s, row["symbol"]) if s is not None else (1, 0.0, row["symbol"])


def run_screen(sandbox: Sandbox, market: MarketData, source: str, symbols: list[str], *,
               asof: int | None = None, limit: int = 20, entries: list[str] | None = None,
               strategy_info: dict | None = None, tenant: str | None = None) -> dict:
    """Rank ``symbols`` as of ``asof`` (default: the latest session); CONTRACT §4 JSON.

    ``tenant`` (the user the screen runs for) lets the sandbox keep the loaded strategy warm
    for that user's next screen of the same code (see :meth:`Sandbox.session`).
    """
    if limit <= 0:
        raise BadInput(f"--limit must be a positive integer, got {limit}")
    day = last_session(market, symbols, asof)
    if day is None:
        raise BadInput("no data on or before the as-of date for the requested symbols")
    listed = market.listed_on(symbols, day)
    errors: list[dict] = []
    # One worker loads the strategy, tells us its entry points and evaluates (its share of) the
    # universe or calls run_screening: no screen loads the strategy twice.
    with sandbox.session(source, tenant=tenant) as sess:
        if entries is None:
            sess._ensure_worker()
            entries = sess.entries
        if "run_screening" in entries:
            raw = sess.call("run_screening", [listed, limit], day)
            demo = sess.last_call_demo
            ranked = _validate_custom(raw, set(listed), errors)
            evaluated = len(listed)
        else:
            if len(listed) > SPLIT_ABOVE:
                # Big universes: a second worker takes half (forked ahead, so it is ready).
                outcome = sandbox.run(source, [(day, listed)] if listed else [], session=sess, tenant=tenant)
            else:
                outcome = sess.evaluate([(day, s) for s in listed])
            demo = outcome.demo_data_used
            ranked = [{"symbol": s, "score": score, "values": values} for s, _d, score, values in outcome.signals]
            errors = [{"symbol": s, "date": iso(d), "message": m} for s, d, m in outcome.errors]
            evaluated = outcome.evaluated
    ranked.sort(key=_rank_key)
    result = {
        "asof": iso(day), "ranked_results": ranked[:limit], "evaluated": evaluated, "errors": errors,
        "universe_size": len(symbols), "listed": len(listed),
        "strategy": strategy_info or {},
        "dataset": {"name": market.name, "version": market.version, "demo": market.demo},
        "ranking": "run_screening" if "run_screening" in entries else "score descending (unscored signals last)",
        "demo_data": demo,
    }
    if demo:
        result["warnings"] = [DEMO_WARNING]
    return metrics.nan_to_none(result)


def _validate_custom(raw: object, universe: set[str], errors: list[dict]) -> list[dict]:
    rows = raw.get("ranked_results") if isinstance(raw, dict) else raw
    if not isinstance(rows, list):
        raise StrategyFailed("run_screening must return a list of {'symbol', 'score', 'values'} "
                             f"or {{'ranked_results': [...]}}, got {type(raw).__name__}")
    out: list[dict] = []
    seen: set[str] = set()
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            errors.append({"symbol": None, "message": "run_screening returned an entry without a 'symbol' string"})
            continue
        sym = row["symbol"].strip().upper()
        if sym not in universe:
            errors.append({"symbol": sym[:20], "message": "run_screening returned a symbol outside the universe it was given; dropped"})
            continue
        if sym in seen:
            continue
        seen.add(sym)
        score = row.get("score")
        score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score) else None
        values = row.get("values") if isinstance(row.get("values"), dict) else {}
        values = {str(k)[:64]: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}
        out.append({"symbol": sym, "score": score, "values": values})
    return out
