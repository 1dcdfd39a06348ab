"""SYNTHETIC benchmark universes: deterministic random walks, NOT real prices.

``synthetic_market(n_symbols, n_sessions)`` returns a :class:`MarketData` for a universe of
``n_symbols`` made-up tickers (``SYN0000``, ``SYN0001``...) over ``n_sessions`` weekday
sessions ending 2023-12-29, built once into a cache directory and reused afterwards (the
directory name carries the generator version, the size and the seed, so a change to any of
them builds a new dataset). The dataset is written with ``demo=True`` and a description
that says it is synthetic, so every report built on it is flagged as such.

How a symbol is generated (seeded numpy, vectorised across symbols; same inputs -> same bytes):

* close-to-close moves are a geometric random walk: per-symbol drift and volatility
  (1-2.5% a day), split into an overnight part (close -> next open) and an intraday part
  (open -> close); about 1% of sessions get an overnight jump (a gap, mostly up) with a
  volume spike, so gap-up and breakout rules fire at realistic rates;
* ``high >= max(open, close)`` and ``low <= min(open, close)`` by construction, prices
  rounded to cents and never below 0.01, volumes whole shares;
* corporate actions, encoded the way vendors do it (raw OHLCV plus an ``adj_close``):
  about 3% of symbols have one split (2:1, 3:1 or 3:2; raw prices drop by the ratio, volume
  rises by it), about 6% pay a dividend every 126 sessions; ``adj_close = close * f`` with
  ``f`` the product of the adjustments of every later action (``f = 1`` after the last one).
  Symbols without actions have ``adj_close = close``.

Run ``python bench/synthetic.py 500 2520`` to build (or find) a dataset and print its path.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
from pathlib import Path

import numpy as np
from stratagem.data.store import MarketData, SymbolBars, build_store, iso_to_day

GENERATOR_VERSION = 1
SEED = 20240601
LAST_SESSION = "2023-12-29"
LABEL = "SYNTHETIC"
DESCRIPTION = "SYNTHETIC random-walk data for benchmarks, not real prices"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "stratagem-bench"


def weekday_sessions(n: int, last: str = LAST_SESSION) -> np.ndarray:
    """The last ``n`` Monday-Friday dates up to ``last`` (days since 1970-01-01), oldest first."""
    end = iso_to_day(last)
    # 1970-01-01 was a Thursday: weekday = (day + 3) % 7, Monday = 0.
    days = np.arange(end - 2 * n - 14, end + 1, dtype=np.int64)
    days = days[(days + 3) % 7 < 5]
    return days[-n:]


def symbol_name(i: int, n: int) -> str:
    return f"SYN{i:0{max(4, len(str(n - 1)))}d}"


def generate(n_symbols: int, n_sessions: int, seed: int = SEED) -> dict[str, SymbolBars]:
    """The SYNTHETIC universe as raw bars (see the module docstring for the model)."""
    if n_symbols <= 0 or n_sessions < 2:
        raise ValueError("need at least one symbol and two sessions")
    rng = np.random.default_rng([seed, n_symbols, n_sessions])
    n, d = n_symbols, n_sessions
    dates = weekday_sessions(d)
    vol = rng.uniform(0.010, 0.025, (n, 1))
    drift = rng.normal(0.0003, 0.0003, (n, 1))
    start = np.exp(rng.uniform(np.log(10.0), np.log(300.0), (n, 1)))
    jump = (rng.random((n, d)) < 0.01) * rng.normal(0.03, 0.04, (n, d))
    overnight = rng.normal(0.0, 0.35, (n, d)) * vol + jump
    intraday = rng.normal(0.0, 0.9, (n, d)) * vol + drift
    log_open = np.log(start) + np.cumsum(overnight + intraday, axis=1) - intraday
    log_close = log_open + intraday
    opn, close = np.exp(log_open), np.exp(log_close)
    wick_hi = np.abs(rng.normal(0.0, 0.5, (n, d))) * vol
    wick_lo = np.abs(rng.normal(0.0, 0.5, (n, d))) * vol
    high = np.maximum(opn, close) * np.exp(wick_hi)
    low = np.minimum(opn, close) * np.exp(-wick_lo)
    base_volume = np.exp(rng.uniform(np.log(2e5), np.log(2e7), (n, 1)))
    volume = base_volume * np.exp(rng.normal(0.0, 0.3, (n, d))) * (1.0 + 40.0 * np.abs(jump))

    # Corporate actions (ex-date index e: the first session that trades after the action).
    factor = np.ones((n, d))         # f = adj_close / close, before rounding
    split_at = np.full(n, -1)
    split_ratio = np.ones(n)
    has_split = rng.random(n) < 0.03
    pays = rng.random(n) < 0.06
    for i in np.flatnonzero(has_split):
        e = int(rng.integers(d // 5, d - d // 5)) if d >= 10 else 1
        r = float(rng.choice([2.0, 3.0, 1.5]))
        split_at[i], split_ratio[i] = e, r
    div_yield = rng.uniform(0.003, 0.01, n)
    div_phase = rng.integers(0, 126, n)

    out: dict[str, SymbolBars] = {}
    for i in range(n):
        o, h, lo, c, v = opn[i].copy(), high[i].copy(), low[i].copy(), close[i].copy(), volume[i].copy()
        f = factor[i]
        if has_split[i]:
            e, r = split_at[i], split_ratio[i]
            # The walk is in post-split units: before the ex-date raw prices were r times higher.
            for a in (o, h, lo, c):
                a[:e] *= r
            v[:e] /= r
        o, h, lo, c = (np.maximum(np.round(a, 2), 0.01) for a in (o, h, lo, c))
        h = np.maximum(h, np.maximum(o, c))
        lo = np.minimum(lo, np.minimum(o, c))
        v = np.maximum(np.rint(v), 100.0)
        adj = None
        if has_split[i] or pays[i]:
            if has_split[i]:
                f[:split_at[i]] /= split_ratio[i]
            if pays[i]:
                for e in range(int(div_phase[i]) + 1, d, 126):
                    # A dividend of y * previous close: earlier prices scale by (1 - y).
                    f[:e] *= 1.0 - div_yield[i]
            adj = c * f
        out[symbol_name(i, n)] = SymbolBars(symbol_name(i, n), dates.copy(), o, h, lo, c, v, adj)
    return out


def synthetic_market(n_symbols: int, n_sessions: int, cache_dir: Path | None = None,
                     seed: int = SEED) -> MarketData:
    """The SYNTHETIC dataset of that size, built on first use and reused from the cache."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    dest = root / f"synthetic-v{GENERATOR_VERSION}-{n_symbols}x{n_sessions}-s{seed}"
    if (dest / "meta.json").exists():
        try:
            market: MarketData | None = MarketData(dest)
        except Exception:  # noqa: BLE001 - a stale or damaged cache is rebuilt below
            market = None
        if market is not None and market.meta.get("source") == "synthetic" and len(market.ranges) == n_symbols:
            return market
    build_store(generate(n_symbols, n_sessions, seed), dest, source="synthetic", demo=True,
                description=DESCRIPTION)
    return MarketData(dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("symbols", type=int)
    ap.add_argument("sessions", type=int)
    ap.add_argument("--cache-dir", type=Path)
    args = ap.parse_args()
    m = synthetic_market(args.symbols, args.sessions, args.cache_dir)
    info = m.info()
    first = _dt.date.fromisoformat(info["first_date"])
    print(f"{LABEL}: {m.path} ({len(m.ranges)} symbols, {info['bars']} bars, {first}..{info['last_date']}, "
          f"{len(info['actions'])} corporate actions) - {DESCRIPTION}")


if __name__ == "__main__":
    main()
