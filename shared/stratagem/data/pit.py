"""Point-in-time view of a dataset: the data functions strategies call (CONTRACT §2).

Everything here is evaluated *as of* a session date that the engine sets with
:meth:`PointInTime.set_asof`; the strategy never sees that setter. Prices seen on day t are
``raw_s * (f_s / f_t)`` with ``f`` the piecewise-constant ``adj_close / close`` factor, so
bars inside the current corporate-action regime are exactly what traded, and earlier bars
are adjusted only for actions that went ex on or before t. Volume is scaled by splits only.

Sequences handed to strategies are read-only ``memoryview`` slices (see ``docs/decisions``
and ``bench/sequences.py`` for the measurement behind the choice): O(1) to build whatever
``days`` is, C-speed indexing that returns Python floats, truthiness and ``len`` like a
list, and no way to write. The sandbox's attribute guard exposes only ``tolist`` on them,
so ``.obj`` (the underlying array) is unreachable.

**Live overlay.** Bars that arrive live (``stratagem.live``) extend a symbol's history beyond
its last dataset bar: :meth:`PointInTime.apply_overlay` lays them over the dataset, and every
data function sees an overlay bar once the as-of date reaches it, never before (no
look-ahead). Overlay bars are taken as being in the corporate-action regime of the symbol's
last dataset bar: they are shown raw, and a window reaching back into the dataset shows the
dataset as adjusted as of its last bar.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from .store import MarketData

DAILY_ALIASES = frozenset({"1d", "d", "day", "daily", "1day", "1D", "D", "Day", "Daily"})
SERIES_KEYS = ("timestamps", "open", "high", "low", "close", "volume")
MAX_SYMBOLS_PER_CALL = 1000
_PRICE_COLS = ("open", "high", "low", "close")
# Dataset bars kept joined to a symbol's live overlay (longer windows are built per call).
OVERLAY_HISTORY = 300


class ReferenceProvider(Protocol):
    """Point-in-time fundamentals/earnings/classification port (see ``data.reference``).

    Every value carries the date it became known; nothing known after ``asof_day`` is
    returned. Implementations flag illustrative values with ``'demo': True``.
    """

    demo_fields: frozenset[str]

    def fundamentals(self, symbol: str, asof_day: int) -> dict: ...

    def earnings(self, symbol: str, asof_day: int, quarters: int = 8) -> list[dict]: ...

    def sector_members(self, sector: str, symbols: Iterable[str]) -> list[str]: ...

    def scan(self, filters: dict, symbols: Iterable[str], asof_day: int,
             price_lookup: Callable[[str], tuple[float | None, float | None]], limit: int = 100) -> list[str]: ...


class DataError(ValueError):
    """A data function was called with arguments it cannot honour; the message says why."""


def _days_arg(days: Any) -> int:
    if type(days) is int and days >= 0:
        return days  # the common case, checked first: this runs on every data call
    if isinstance(days, bool) or not isinstance(days, (int, float, np.integer, np.floating)):
        raise DataError(f"days must be a number of bars (an int >= 0), got {type(days).__name__}")
    if isinstance(days, (float, np.floating)):
        if not math.isfinite(days):
            raise DataError(f"days must be a finite number of bars, got {days}")
        days = int(days)
    days = int(days)
    if days < 0:
        raise DataError(f"days must be >= 0, got {days}")
    return days


def _timeframe_arg(timeframe: Any) -> None:
    if timeframe in DAILY_ALIASES:
        return
    raise DataError(
        f"unsupported timeframe {timeframe!r}: this dataset has daily bars only; use timeframe='1d' "
        "(intraday and weekly bars are not available)")


class PointInTime:
    """The data functions of CONTRACT §2 over one :class:`MarketData`, as of a settable date."""

    def __init__(self, market: MarketData, reference: ReferenceProvider | None = None, *,
                 cache_bytes: int = 64 << 20) -> None:
        self.market = market
        self.reference = reference
        c = market.columns
        self._ranges = market.ranges
        self._dates = memoryview(np.ascontiguousarray(c["date"]))
        self._raw = {k: memoryview(c[k]) for k in _PRICE_COLS + ("volume",)}
        raw = self._raw
        self._open, self._high, self._low, self._close, self._volume = (
            raw["open"], raw["high"], raw["low"], raw["close"], raw["volume"])
        self._names: dict[str, str] = {}  # symbol as written -> normalised (strip, upper)
        self._ts = memoryview(c["ts"])
        self._regime = memoryview(c["regime"])
        self._factor = c["factor"]
        self._split = c["split"]
        self._regime_np = c["regime"]
        self._cache: OrderedDict[tuple[str, int], dict[str, memoryview]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cache_used = 0
        self._empty = memoryview(np.zeros(0, dtype=np.float64))
        self._empty_ts = memoryview(np.zeros(0, dtype=np.int64))
        self.asof: int | None = None
        # symbol -> (as-of date, start, end) of its last lookup. Dates only ever change by the
        # engine's set_asof, and runs mostly step one session forward per symbol, so the next
        # lookup is a step or two from the last one instead of a fresh binary search.
        # The 4th member is the symbol's end, for price_data's one-bar-forward step.
        self._idx: dict[str, tuple[int, int, int, int]] = {}
        # (symbol, regime, arrays) of the last re-adjusted window: consecutive calls of a
        # symbol-major run mostly share them, and this skips the LRU lookup.
        self._last_adj: tuple[str, int, dict[str, memoryview]] | None = None
        # Live windows by (symbol, bars, as-of date): the strategies of an alert batch read the
        # same symbols on the same tick. Handed out as copies (a strategy may change its dict;
        # the read-only views in it are shared safely), cleared with any change of date or live
        # bars. get_price_data answers from it before any other work (see functions()).
        self._ov_memo: dict[tuple[str, int, int], dict] = {}
        self._ov_memo_asof: int | None = None
        # Live bars beyond each symbol's last dataset bar (see apply_overlay).
        self._overlay: dict[str, _Overlay] = {}
        # Set when a data function handed out illustrative (demo) values, so every output
        # built on them can say so.
        self.demo_used = False

    # -- engine side ---------------------------------------------------------------------
    def set_asof(self, day: int | None) -> None:
        """Set the as-of session (days since epoch); ``None`` disables all data access."""
        if day != self.asof:
            self.asof = None if day is None else int(day)

    def apply_overlay(self, delta: dict | None, *, reset: bool = False) -> None:
        """Update the live overlay: ``{symbol: {"keep": k, "bars": [[day, o, h, l, c, v], ...]}}``
        keeps the first ``k`` overlay bars of ``symbol`` and appends ``bars`` (dates increasing);
        ``reset`` drops every overlay bar first.

        Bars dated on or before the symbol's last dataset bar are ignored (the dataset is
        authoritative there). Raises :class:`DataError` on a malformed delta.
        """
        if reset and self._overlay:
            self._overlay = {}
            self._idx = {}
            self._ov_memo = {}
        if not delta:
            return
        for sym, part in delta.items():
            try:
                keep = int(part.get("keep", 0))
                rows = [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
                        for r in part.get("bars", [])]
            except (AttributeError, TypeError, ValueError, IndexError):
                raise DataError(f"malformed overlay for {sym!r}: expected {{'keep': int, 'bars': "
                                "[[day, open, high, low, close, volume], ...]}") from None
            old = self._overlay.get(sym)
            a, b = self._ranges.get(sym, (0, 0))
            last = int(self._dates[b - 1]) if b > a else None
            rows = [r for r in rows if last is None or r[0] > last]
            kept = (old.rows if keep == len(old.rows) else old.rows[:keep]) if old is not None else []
            # Only the new rows and their seam need checking: the kept ones were checked before.
            prev = kept[-1][0] if kept else None
            for r in rows:
                if prev is not None and r[0] <= prev:
                    raise DataError(f"overlay bars of {sym} must have strictly increasing dates")
                prev = r[0]
            if old is not None and keep == len(old.rows) and old.append(rows):
                continue  # the common live case: new bars after the old ones, written in place
            merged = kept + rows
            if merged:
                self._overlay[sym] = _Overlay(merged)
            else:
                self._overlay.pop(sym, None)
        self._idx = {}
        self._ov_memo = {}

    def overlay_rows(self, symbol: str) -> list[tuple]:
        """The overlay bars of ``symbol`` (engine side, for tests and checks)."""
        ov = self._overlay.get(symbol)
        return list(ov.rows) if ov is not None else []

    def index_asof(self, symbol: str) -> tuple[int, int]:
        """(start, end) global indices of ``symbol``'s bars visible as of the date; end exclusive."""
        asof = self.asof
        hit = self._idx.get(symbol)
        if hit is not None and hit[0] == asof:
            return hit[1], hit[2]
        if asof is None:
            raise DataError("data functions are only available while the strategy is being evaluated "
                            "(not at module level): call them inside classify_symbol")
        a, b = self._ranges.get(symbol, (0, 0))
        dates = self._dates
        if hit is not None and hit[0] < asof:
            # Later than the last lookup: walk forward a few rows, then search the rest.
            e = hit[2]
            for _ in range(4):
                if e >= b or dates[e] > asof:
                    break
                e += 1
            else:
                e = bisect_right(dates, asof, e, b)
        else:
            e = bisect_right(dates, asof, a, b) if b > a else a
        self._idx[symbol] = (asof, a, e, b)
        return a, e

    # -- strategy side -------------------------------------------------------------------
    def price_data(self, symbol: Any, timeframe: Any = "1d", days: Any = 30) -> dict:
        # The hottest function of every run (one call per strategy call, often the whole cost
        # of a simple rule): the common cases are checked inline, the general ones delegated.
        if timeframe not in DAILY_ALIASES:
            _timeframe_arg(timeframe)
        n = days if type(days) is int and days >= 0 else _days_arg(days)
        if type(symbol) is str:
            sym = self._names.get(symbol)
            if sym is None:
                sym = symbol.strip().upper()
                if len(self._names) < 100_000:
                    self._names[symbol] = sym
        elif isinstance(symbol, str):
            sym = symbol.strip().upper()
        else:
            raise DataError(f"symbol must be a string like 'AAPL', got {type(symbol).__name__}")
        hit = self._idx.get(sym)
        asof = self.asof
        if hit is not None and hit[0] == asof:
            a, end = hit[1], hit[2]
        elif (hit is not None and asof is not None and hit[0] < asof and hit[2] < hit[3]
              and self._dates[hit[2]] <= asof and (hit[2] + 1 == hit[3] or self._dates[hit[2] + 1] > asof)):
            # Exactly one more bar visible: the next session of a symbol-major run.
            a, end = hit[1], hit[2] + 1
            self._idx[sym] = (asof, a, end, hit[3])
        else:
            a, end = self.index_asof(sym)
        if self._overlay:
            ov = self._overlay.get(sym)
            if ov is not None and n and self.asof >= ov.rows[0][0]:
                return self._with_overlay(sym, ov, a, end, n)
        if end <= a or n == 0:
            return self._empty_result()
        lo = end - n if end - n > a else a
        reg = self._regime
        k = reg[end - 1]
        if reg[lo] == k:
            # The whole window lies in the as-of regime: ratios are exactly 1, show raw bars.
            return {"timestamps": self._ts[lo:end], "open": self._open[lo:end], "high": self._high[lo:end],
                    "low": self._low[lo:end], "close": self._close[lo:end], "volume": self._volume[lo:end]}
        last = self._last_adj
        if last is not None and last[1] == k and last[0] == sym:
            adj = last[2]
        else:
            adj = self._adjusted(sym, a, end - 1)
            self._last_adj = (sym, k, adj)
        i, j = lo - a, end - a
        return {"timestamps": self._ts[lo:end], "open": adj["open"][i:j], "high": adj["high"][i:j],
                "low": adj["low"][i:j], "close": adj["close"][i:j], "volume": adj["volume"][i:j]}

    def multiple(self, symbols: Any, timeframe: Any = "1d", days: Any = 30) -> dict:
        syms = self._symbol_list(symbols)
        return {s: self.price_data(s, timeframe, days) for s in syms}

    def fundamentals(self, symbol: Any) -> dict:
        if self.reference is None or not isinstance(symbol, str):
            return {}
        self._require_asof()
        out = self.reference.fundamentals(symbol.strip().upper(), self.asof)
        if out.get("demo"):
            self.demo_used = True
        return out

    def earnings(self, symbol: Any, quarters: Any = 8) -> list:
        if self.reference is None or not isinstance(symbol, str):
            return []
        self._require_asof()
        rows = self.reference.earnings(symbol.strip().upper(), self.asof, _days_arg(quarters))
        if any(r.get("demo") for r in rows):
            self.demo_used = True
        return rows

    def sector(self, sector: Any = "Technology", days: Any = 5) -> dict:
        if self.reference is None:
            return {}
        self._require_asof()
        members = self.reference.sector_members(str(sector), self.listed())
        return {s: self.price_data(s, "1d", days) for s in members}

    def scan(self, filters: Any = None, limit: Any = 100) -> list:
        self._require_asof()
        if filters is None:
            filters = {}
        if not isinstance(filters, dict):
            raise DataError(f"filters must be a dict like {{'min_price': 10}}, got {type(filters).__name__}")
        lim = _days_arg(limit)
        if self.reference is None:
            from .reference import ReferenceData  # noqa: PLC0415 - optional dependency of the view

            self.reference = ReferenceData.load_default()
        if any(k in filters for k in ("min_market_cap", "max_market_cap")) and self.reference.demo_fields:
            self.demo_used = True  # market caps come from the illustrative demo fundamentals
        return self.reference.scan(filters, self.listed(), self.asof, self._price_lookup, lim)

    def listed(self) -> list[str]:
        """Symbols with at least one bar on or before the as-of date (no survivorship of the future)."""
        out = []
        for s in sorted(self._ranges):
            a, end = self.index_asof(s)
            if end > a:
                out.append(s)
        if self._overlay:
            extra = [s for s, ov in self._overlay.items() if s not in self._ranges and ov.rows[0][0] <= self.asof]
            out = sorted(out + extra)
        return out

    # -- internals -----------------------------------------------------------------------
    def _require_asof(self) -> None:
        if self.asof is None:
            raise DataError("data functions are only available while the strategy is being evaluated "
                            "(not at module level): call them inside classify_symbol")

    def _symbol_list(self, symbols: Any) -> list[str]:
        if isinstance(symbols, str):
            symbols = [symbols]
        try:
            syms = list(symbols)
        except TypeError:
            raise DataError("symbols must be a list of strings like ['AAPL', 'MSFT']") from None
        if len(syms) > MAX_SYMBOLS_PER_CALL:
            raise DataError(f"at most {MAX_SYMBOLS_PER_CALL} symbols per call, got {len(syms)}")
        out = []
        for s in syms:
            if not isinstance(s, str):
                raise DataError(f"symbols must be strings, got {type(s).__name__}")
            out.append(s.strip().upper())
        return out

    def _price_lookup(self, symbol: str) -> tuple[float | None, float | None]:
        d = self.price_data(symbol, "1d", 20)
        closes, vols = d["close"], d["volume"]
        if not closes:
            return None, None
        return closes[-1], sum(vols) / len(vols)

    def _with_overlay(self, sym: str, ov: "_Overlay", a: int, end: int, n: int) -> dict:
        """The last ``n`` bars as of the date when it lies in the overlay: dataset bars (adjusted
        as of the last dataset bar, whose regime the overlay shares), then overlay bars raw."""
        asof = self.asof
        if self._ov_memo_asof != asof:
            self._ov_memo = {}
            self._ov_memo_asof = asof
        key = (sym, n, asof)
        hit = self._ov_memo.get(key)
        if hit is None:
            hit = self._overlay_window(sym, ov, a, end, n)
            if len(self._ov_memo) < 100_000:
                self._ov_memo[key] = hit
        return hit.copy()

    def _overlay_window(self, sym: str, ov: "_Overlay", a: int, end: int, n: int) -> dict:
        k = bisect_right(ov.days, self.asof)
        if ov.views is None:
            # Once per symbol and worker: the dataset's last OVERLAY_HISTORY bars (adjusted as of
            # its last bar) joined to the overlay in one buffer, so a call is a slice, as on the
            # dataset path, and a new live bar is one row written after them.
            ov.build(self._dataset_window(sym, a, end, OVERLAY_HISTORY) if end > a else None, end - a)
        stop = ov.n_hist + k
        if n <= stop or ov.n_hist == ov.n_all:
            lo = max(0, stop - n)
            v = ov.views
            return {"timestamps": v["timestamps"][lo:stop], "open": v["open"][lo:stop], "high": v["high"][lo:stop],
                    "low": v["low"][lo:stop], "close": v["close"][lo:stop], "volume": v["volume"][lo:stop]}
        # A window longer than the joined history: build it for this call.
        hist = self._dataset_window(sym, a, end, n - k)
        out = {}
        for key, mv in ov.views.items():
            arr = np.concatenate((np.asarray(hist[key]), np.asarray(mv[ov.n_hist:stop])))
            arr.flags.writeable = False  # a fresh array: strategies get a read-only view of it
            out[key] = memoryview(arr)
        return out

    def _dataset_window(self, sym: str, a: int, end: int, n: int) -> dict:
        """The last ``n`` dataset bars before global index ``end``, adjusted as of ``end - 1``."""
        lo = max(a, end - n)
        t = end - 1
        if self._regime[lo] == self._regime[t]:
            raw = self._raw
            return {"timestamps": self._ts[lo:end], **{k: raw[k][lo:end] for k in _PRICE_COLS + ("volume",)}}
        adj = self._adjusted(sym, a, t)
        i, j = lo - a, end - a
        return {"timestamps": self._ts[lo:end], **{k: adj[k][i:j] for k in _PRICE_COLS + ("volume",)}}

    def _empty_result(self) -> dict:
        e = self._empty
        return {"timestamps": self._empty_ts, "open": e, "high": e, "low": e, "close": e, "volume": e}

    def _adjusted(self, sym: str, a: int, t: int) -> dict[str, memoryview]:
        """Bars ``[a, end of t's regime)`` re-adjusted as of regime(t); cached per regime (LRU)."""
        k = int(self._regime[t])
        key = (sym, k)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        _, b = self._ranges[sym]
        stop = a + int(np.searchsorted(self._regime_np[a:b], k, side="right"))
        f = np.asarray(self._factor[a:stop])
        s = np.asarray(self._split[a:stop])
        ratio = f / f[t - a]          # exactly 1.0 inside regime k
        vratio = s[t - a] / s         # exactly 1.0 inside the split regime
        out: dict[str, memoryview] = {}
        for col in _PRICE_COLS:
            arr = np.asarray(self.market.columns[col][a:stop]) * ratio
            arr.flags.writeable = False
            out[col] = memoryview(arr)
        vol = np.asarray(self.market.columns["volume"][a:stop]) * vratio
        vol.flags.writeable = False
        out["volume"] = memoryview(vol)
        size = 5 * 8 * (stop - a)
        self._cache[key] = out
        self._cache_used += size
        while self._cache_used > self._cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_used -= 5 * 8 * len(old["close"])
        return out

    def prewarm(self, budget_bytes: int = 256 << 20) -> int:
        """Compute the re-adjusted arrays of every (symbol, regime) up to ``budget_bytes``.

        Done once in the sandbox zygote, the arrays are then shared read-only by every forked
        worker, so no run pays for them. Returns the number of regimes prepared.
        """
        self._cache_bytes = max(self._cache_bytes, budget_bytes)
        done = 0
        for sym, (a, b) in sorted(self._ranges.items()):
            if b <= a:
                continue
            regimes = np.asarray(self._regime_np[a:b])
            # Regime 0 never needs re-adjusting (no earlier action); later regimes do when a
            # window reaches back across an ex-date.
            starts = np.flatnonzero(regimes[1:] != regimes[:-1]) + 1
            for i in starts.tolist():
                need = 5 * 8 * (b - a)
                if self._cache_used + need > budget_bytes:
                    return done
                self._adjusted(sym, a, a + i)
                done += 1
        return done

    def functions(self) -> dict[str, Callable]:
        """The strategy-facing data functions, bound to this view (names from CONTRACT §2)."""

        def get_price_data(symbol, timeframe="1d", days=30):
            """Daily bars of ``symbol`` as of today, oldest first; empty sequences when unknown."""
            # A live window this tick already built (the usual call of an alert batch) is
            # answered before any argument handling: halves the call. Only plain str/int
            # arguments qualify, so every other call gets price_data's checks and messages.
            if type(symbol) is str and type(days) is int and type(timeframe) is str:
                hit = self._ov_memo.get((symbol, days, self.asof))
                if hit is not None and timeframe in DAILY_ALIASES:
                    return hit.copy()
            return self.price_data(symbol, timeframe, days)

        def get_multiple_symbols_data(symbols, timeframe="1d", days=30):
            return self.multiple(symbols, timeframe, days)

        def get_fundamental_data(symbol):
            return self.fundamentals(symbol)

        def get_earnings_data(symbol, quarters=8):
            return self.earnings(symbol, quarters)

        def get_sector_data(sector="Technology", days=5):
            return self.sector(sector, days)

        def scan_universe(filters=None, limit=100):
            return self.scan(filters, limit)

        return {f.__name__: f for f in (get_price_data, get_multiple_symbols_data, get_fundamental_data,
                                         get_earnings_data, get_sector_data, scan_universe)}


class _Overlay:
    """One symbol's overlay bars, joined to the end of its dataset history in one buffer per
    column. Strategies get read-only views of it; live bars that come after the stored ones are
    written into spare capacity (views already handed out end before them, so they never see a
    bar beyond their as-of date); anything else (a correction, a late bar) builds a new buffer."""

    __slots__ = ("rows", "days", "bufs", "views", "n_hist", "n_all")
    _KEYS = ("timestamps", "open", "high", "low", "close", "volume")

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = list(rows)
        self.days = [r[0] for r in rows]
        self.bufs: dict[str, np.ndarray] | None = None
        self.views: dict[str, memoryview] | None = None
        self.n_hist = 0
        self.n_all = 0

    def build(self, hist: dict | None, n_all: int) -> None:
        """Allocate the buffer: ``hist`` (the dataset's last bars, or None) then the rows."""
        n_hist = len(hist["close"]) if hist is not None else 0
        cap = n_hist + max(2 * len(self.rows), len(self.rows) + 64)
        # Two allocations (timestamps, and the five price/volume rows of one block), not six: a
        # worker builds this for every symbol of its first live tick (the cold start of alerts).
        ts = np.empty(cap, dtype=np.int64)
        block = np.empty((5, cap), dtype=np.float64)
        if hist is not None:
            ts[:n_hist] = hist["timestamps"]
            for j, key in enumerate(self._KEYS[1:]):
                block[j, :n_hist] = hist[key]
        ro_ts, ro_block = ts.view(), block.view()
        ro_ts.flags.writeable = False
        ro_block.flags.writeable = False
        bufs = {"timestamps": ts}
        views = {"timestamps": memoryview(ro_ts)}
        for j, key in enumerate(self._KEYS[1:]):
            bufs[key] = block[j]
            views[key] = memoryview(ro_block[j])
        self.bufs, self.views, self.n_hist, self.n_all = bufs, views, n_hist, n_all
        self._write(0, self.rows)

    def _write(self, at: int, rows: list[tuple]) -> None:
        if not rows or self.bufs is None:
            return
        if len(rows) <= 4:  # the live case, one new bar: scalar stores beat building arrays
            b = self.bufs
            ts, o, h, lo, c, v = b["timestamps"], b["open"], b["high"], b["low"], b["close"], b["volume"]
            for i, r in enumerate(rows, start=self.n_hist + at):
                ts[i] = r[0] * 86_400_000
                o[i], h[i], lo[i], c[i], v[i] = r[1], r[2], r[3], r[4], r[5]
            return
        arr = np.array(rows, dtype=np.float64).reshape(len(rows), 6)
        i, j = self.n_hist + at, self.n_hist + at + len(rows)
        self.bufs["timestamps"][i:j] = np.array([r[0] for r in rows], dtype=np.int64) * 86_400_000
        for c, key in enumerate(self._KEYS[1:], start=1):
            self.bufs[key][i:j] = arr[:, c]

    def append(self, rows: list[tuple]) -> bool:
        """Add bars after the stored ones in place; False when the buffer must be rebuilt."""
        if not rows:
            return True
        if self.rows and rows[0][0] <= self.rows[-1][0]:
            return False
        if self.bufs is not None and self.n_hist + len(self.rows) + len(rows) > len(self.bufs["close"]):
            return False
        at = len(self.rows)
        self.rows.extend(rows)
        self.days.extend(r[0] for r in rows)
        self._write(at, rows)
        return True


def reference_truth(market: MarketData, symbol: str, asof_day: int, days: int) -> dict[str, np.ndarray]:
    """Slow, obviously-correct reference for tests: the full history cut at the as-of date and
    re-adjusted with the literal contract formula ``raw_s * f_s / f_t`` (per-bar f)."""
    a, b = market.range(symbol)
    dates = np.asarray(market.columns["date"][a:b])
    end = int(np.searchsorted(dates, asof_day, side="right"))
    lo = max(0, end - days)
    out: dict[str, np.ndarray] = {}
    if end == 0 or days <= 0:
        return {k: np.zeros(0) for k in SERIES_KEYS}
    adj = np.asarray(market.columns["adj_close"][a:b])
    close = np.asarray(market.columns["close"][a:b])
    f = adj / close
    split = np.asarray(market.columns["split"][a:b])
    t = end - 1
    for col in _PRICE_COLS:
        raw = np.asarray(market.columns[col][a:b])
        out[col] = raw[lo:end] * f[lo:end] / f[t]
    out["volume"] = np.asarray(market.columns["volume"][a:b])[lo:end] * split[t] / split[lo:end]
    out["timestamps"] = np.asarray(market.columns["ts"][a:b])[lo:end]
    return out
