"""Columnar, memory-mapped store of daily bars with derived corporate-action columns.

Layout of a dataset directory (one ``.npy`` file per column, all symbols concatenated,
sorted by symbol then date, so a symbol is a contiguous ``[start, stop)`` slice)::

    meta.json     format, content version, symbols -> [start, stop), source, actions
    date.npy      int64 session date, days since 1970-01-01
    ts.npy        int64 session date at 00:00 UTC in milliseconds (CONTRACT §2 timestamps)
    open/high/low/close/volume/adj_close.npy   float64, raw (unadjusted) as imported
    factor.npy    float64 f = adj_close / close, made piecewise constant per regime
    split.npy     float64 cumulative split multiple (volume adjustment, splits only)
    regime.npy    int32 corporate-action regime of each bar (changes on every ex-date)
    sregime.npy   int32 split regime (changes on split ex-dates only)

Files are written to a temporary directory and renamed into place, so a reader never sees
a half-written dataset; readers map them read-only (``mmap_mode='r'``).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import BadInput, NotFound

# Bump when the derived columns change: the data version (and every cache key) changes with it.
FORMAT = 2
MS_PER_DAY = 86_400_000
_EPOCH = _dt.date(1970, 1, 1)
PRICE_COLUMNS = ("open", "high", "low", "close")
RAW_COLUMNS = ("date", "open", "high", "low", "close", "volume", "adj_close")
ALL_COLUMNS = RAW_COLUMNS + ("ts", "factor", "split", "regime", "sregime")

# f = adj_close / close carries vendor rounding noise (~1e-13 relative in the bundled data);
# anything above this is a real corporate action (the smallest real dividends are ~1e-4).
FACTOR_BREAK_TOL = 1e-7
# A factor jump is a split only if it is at least this large *and* close to a small
# fraction; MSFT's 2004 special dividend moved f by 11.2%, which must stay a dividend.
SPLIT_MIN_RATIO = 1.24
SPLIT_SNAP_TOL = 0.015


def iso_to_day(text: str) -> int:
    """ISO date string -> days since 1970-01-01 (raises ``ValueError`` when unparsable)."""
    return (_dt.date.fromisoformat(text) - _EPOCH).days


# day -> ISO date, for day_to_iso and days_to_iso: alerts, reports and results convert the same
# calendar over and over, and a lookup is a tenth of the conversion.
_ISO: dict[int, str] = {}
_ISO_MAX = 500_000


def day_to_iso(day: int) -> str:
    """Days since 1970-01-01 -> ISO date (cached)."""
    d = int(day)
    text = _ISO.get(d)
    if text is None:
        text = (_EPOCH + _dt.timedelta(days=d)).isoformat()
        if len(_ISO) < _ISO_MAX:
            _ISO[d] = text
    return text


def days_to_iso(days) -> list[str]:
    """``day_to_iso`` over a sequence of days at once (vectorised, same cache)."""
    arr = np.asarray(days, dtype=np.int64)
    keys = arr.tolist()
    try:
        return [_ISO[d] for d in keys]
    except KeyError:
        out = np.datetime_as_string(arr.astype("datetime64[D]"), unit="D").tolist()
        if len(_ISO) < _ISO_MAX:
            _ISO.update(zip(keys, out))
        return out


@dataclass
class SymbolBars:
    """Daily bars of one symbol as plain arrays, validated by the importer.

    ``dates`` are int64 days since 1970-01-01, strictly increasing. Prices are raw
    (unadjusted). ``adj_close`` is the vendor's total-return adjusted close or ``None``
    when the source has none (then no corporate actions are known).
    """

    symbol: str
    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    adj_close: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.dates.shape[0])


@dataclass(frozen=True)
class CorporateAction:
    symbol: str
    date: str
    kind: str  # "split" or "dividend" (any non-split factor change)
    ratio: float  # factor jump f_new / f_old; for splits the snapped split multiple


def _snap_split(ratio: float) -> Fraction | None:
    """Return the split multiple when ``ratio`` looks like one (2:1, 3:2, 7:1, 1:10...)."""
    r = ratio if ratio >= 1 else 1 / ratio
    if r < SPLIT_MIN_RATIO:
        return None
    frac = Fraction(r).limit_denominator(10)
    if frac.numerator > 100 or abs(float(frac) / r - 1) > SPLIT_SNAP_TOL:
        return None
    return frac if ratio >= 1 else 1 / frac


def derive_actions(symbol: str, dates: np.ndarray, close: np.ndarray,
                   adj_close: np.ndarray | None) -> tuple[dict[str, np.ndarray], list[CorporateAction]]:
    """Derive factor, split and regime columns for one symbol.

    ``f = adj_close / close`` is constant between corporate actions (up to vendor noise)
    and jumps on ex-dates. Each run of constant f is a regime with one canonical factor
    (its first bar's), so bars inside one regime are shown exactly as traded. Large jumps that sit
    on a small fraction are splits; they also scale volume.
    """
    n = len(dates)
    if adj_close is None or n == 0:
        ones = np.ones(n)
        zeros = np.zeros(n, dtype=np.int32)
        return {"factor": ones, "split": ones.copy(), "regime": zeros, "sregime": zeros.copy()}, []
    f = adj_close / close
    jump = np.zeros(n, dtype=bool)
    if n > 1:
        jump[1:] = np.abs(f[1:] / f[:-1] - 1.0) > FACTOR_BREAK_TOL
    regime = np.cumsum(jump).astype(np.int32)
    starts = np.flatnonzero(np.r_[True, jump[1:]] if n > 1 else np.array([True]))
    bounds = list(starts) + [n]
    # The canonical factor of a regime is its first bar's: known on the ex-date itself, so
    # adjusting as of any day never depends on a later bar (a mean over the regime would, by
    # a few ulps - and a copy of the data cut at that day would then disagree).
    canon = f[starts].astype(np.float64)
    factor = canon[regime]
    split_mult = np.ones(len(starts))
    actions: list[CorporateAction] = []
    for k in range(1, len(starts)):
        i = bounds[k]
        ratio = canon[k] / canon[k - 1]
        snapped = _snap_split(ratio)
        # A split also shows in the raw prices: the previous close is ~ratio times today's open.
        if snapped is not None and close[i - 1] > 0:
            price_ratio = close[i - 1] / close[i]
            if not (1 / 1.6 < price_ratio / float(snapped) < 1.6):
                snapped = None
        if snapped is not None:
            split_mult[k] = float(snapped)
            actions.append(CorporateAction(symbol, day_to_iso(dates[i]), "split", float(snapped)))
        else:
            actions.append(CorporateAction(symbol, day_to_iso(dates[i]), "dividend", float(ratio)))
    cum_split = np.cumprod(split_mult)
    sregime_of_regime = np.cumsum(split_mult != 1.0).astype(np.int32)
    return {
        "factor": factor,
        "split": cum_split[regime],
        "regime": regime,
        "sregime": sregime_of_regime[regime],
    }, actions


def build_store(bars: dict[str, SymbolBars], dest: Path, *, source: str, demo: bool = False,
                description: str = "") -> Path:
    """Write ``bars`` as a dataset at ``dest`` atomically; returns ``dest``.

    The content version is a hash of the raw columns, so the same input always yields the
    same version and any change to a single price yields a new one.
    """
    if not bars:
        raise BadInput("nothing to import: no symbols with bars were found")
    symbols = sorted(bars)
    cols: dict[str, list[np.ndarray]] = {c: [] for c in ALL_COLUMNS}
    ranges: dict[str, list[int]] = {}
    actions: list[CorporateAction] = []
    digest = hashlib.sha256(f"format:{FORMAT}".encode())
    pos = 0
    for sym in symbols:
        b = bars[sym]
        n = len(b)
        ranges[sym] = [pos, pos + n]
        pos += n
        adj = b.adj_close
        raw = {
            "date": np.asarray(b.dates, dtype=np.int64),
            "open": np.asarray(b.open, dtype=np.float64),
            "high": np.asarray(b.high, dtype=np.float64),
            "low": np.asarray(b.low, dtype=np.float64),
            "close": np.asarray(b.close, dtype=np.float64),
            "volume": np.asarray(b.volume, dtype=np.float64),
            "adj_close": (np.asarray(adj, dtype=np.float64) if adj is not None
                          else np.asarray(b.close, dtype=np.float64).copy()),
        }
        digest.update(sym.encode() + b"\0" + str(n).encode() + (b"A" if adj is not None else b"-"))
        for c in RAW_COLUMNS:
            digest.update(np.ascontiguousarray(raw[c]).tobytes())
            cols[c].append(raw[c])
        derived, acts = derive_actions(sym, raw["date"], raw["close"], raw["adj_close"] if adj is not None else None)
        actions.extend(acts)
        cols["ts"].append(raw["date"] * MS_PER_DAY)
        for c in ("factor", "split", "regime", "sregime"):
            cols[c].append(derived[c])
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
    try:
        for c in ALL_COLUMNS:
            arr = np.concatenate(cols[c]) if cols[c] else np.zeros(0)
            np.save(tmp / f"{c}.npy", arr, allow_pickle=False)
        all_dates = np.concatenate(cols["date"])
        meta = {
            "format": FORMAT,
            "version": digest.hexdigest()[:16],
            "source": source,
            "demo": bool(demo),
            "description": description,
            "symbols": ranges,
            "has_adj_close": {s: bars[s].adj_close is not None for s in symbols},
            "first_date": day_to_iso(int(all_dates.min())),
            "last_date": day_to_iso(int(all_dates.max())),
            "bars": int(pos),
            "actions": [a.__dict__ for a in actions],
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        if dest.is_symlink():
            dest.unlink()
        if dest.exists():
            old = dest.with_name(f".old-{dest.name}-{os.getpid()}")
            os.rename(dest, old)
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


class MarketData:
    """A read-only dataset: memory-mapped columns plus the symbol index from ``meta.json``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            raise NotFound(f"no dataset at {self.path} (expected {meta_file})")
        self.meta = json.loads(meta_file.read_text())
        if self.meta.get("format") != FORMAT:
            raise BadInput(f"dataset {self.path} has format {self.meta.get('format')}, expected {FORMAT}; "
                           "re-import it")
        self.columns: dict[str, np.ndarray] = {
            c: np.load(self.path / f"{c}.npy", mmap_mode="r", allow_pickle=False) for c in ALL_COLUMNS
        }
        self.ranges: dict[str, tuple[int, int]] = {s: (int(a), int(b)) for s, (a, b) in self.meta["symbols"].items()}

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def demo(self) -> bool:
        return bool(self.meta.get("demo", False))

    @property
    def symbols(self) -> list[str]:
        return sorted(self.ranges)

    def range(self, symbol: str) -> tuple[int, int]:
        return self.ranges.get(symbol, (0, 0))

    def dates(self, symbol: str) -> np.ndarray:
        a, b = self.range(symbol)
        return self.columns["date"][a:b]

    def bars(self, symbol: str, until_day: int | None = None) -> SymbolBars:
        """The raw bars of ``symbol`` (optionally only those on or before ``until_day``)."""
        a, b = self.range(symbol)
        if until_day is not None:
            b = a + int(np.searchsorted(self.columns["date"][a:b], until_day, side="right"))
        c = self.columns
        has_adj = self.meta.get("has_adj_close", {}).get(symbol, True)
        return SymbolBars(symbol, np.array(c["date"][a:b]), np.array(c["open"][a:b]), np.array(c["high"][a:b]),
                          np.array(c["low"][a:b]), np.array(c["close"][a:b]), np.array(c["volume"][a:b]),
                          np.array(c["adj_close"][a:b]) if has_adj else None)

    def _bounds(self) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """(symbol -> row, first date, last date, row start) per symbol with bars (computed once)."""
        b = getattr(self, "_bounds_cache", None)
        if b is None:
            syms = [s for s, (a, e) in self.ranges.items() if e > a]
            starts = np.array([self.ranges[s][0] for s in syms], dtype=np.int64)
            ends = np.array([self.ranges[s][1] for s in syms], dtype=np.int64)
            d = self.columns["date"]
            b = ({s: i for i, s in enumerate(syms)}, np.asarray(d[starts]) if syms else np.zeros(0, np.int64),
                 np.asarray(d[ends - 1]) if syms else np.zeros(0, np.int64), starts)
            self._bounds_cache = b
            self._len = (ends - starts).tolist()
            # The same as Python lists, for small symbol lists (numpy costs more than it saves).
            self._bounds_lists = (b[1].tolist(), b[2].tolist(), starts.tolist())
        return b

    def listed_on(self, symbols: list[str], day: int) -> list[str]:
        """The symbols (in the given order) with data whose first bar is on or before ``day``."""
        index, first, _last, _ = self._bounds()
        rows = [index.get(s, -1) for s in symbols]
        return [s for s, r in zip(symbols, rows) if r >= 0 and first[r] <= day]

    def last_session(self, symbols: list[str], asof: int | None = None) -> int | None:
        """The latest session on or before ``asof`` (default: the last in the data) among ``symbols``."""
        index, first, last, starts = self._bounds()
        if len(symbols) <= 64:
            return self._last_session_small(index, symbols, asof)
        rows = np.array([r for r in (index.get(s, -1) for s in symbols) if r >= 0], dtype=np.int64)
        if rows.size == 0:
            return None
        if asof is None:
            return int(last[rows].max())
        done = last[rows] <= asof
        best = int(last[rows][done].max()) if done.any() else None
        # Only symbols whose history runs past ``asof`` need a search, and then only while
        # they could beat the best so far.
        d = self.columns["date"]
        for r in rows[~done & (first[rows] <= asof)].tolist():
            if best is not None and best >= asof:
                break
            a = int(starts[r])
            n = int(np.searchsorted(d[a:a + self._len[r]], asof, "right"))
            if n > 0:
                best = int(d[a + n - 1]) if best is None else max(best, int(d[a + n - 1]))
        return best

    def _last_session_small(self, index: dict[str, int], symbols: list[str], asof: int | None) -> int | None:
        # last_session for a few symbols (a small screen asks on every request): plain Python.
        first, last, starts = self._bounds_lists
        d = self.columns["date"]
        best = None
        for s in symbols:
            r = index.get(s, -1)
            if r < 0:
                continue
            cand = last[r]
            if asof is not None and cand > asof:
                if first[r] > asof:
                    continue
                a = starts[r]
                cand = int(d[bisect.bisect_right(d, asof, a, a + self._len[r]) - 1])  # first[r] <= asof
            if best is None or cand > best:
                best = cand
        return best

    def calendar(self) -> np.ndarray:
        """Union of all session dates (days since epoch), sorted (computed once)."""
        cal = getattr(self, "_calendar", None)
        if cal is None:
            cal = np.unique(self.columns["date"])
            cal.flags.writeable = False
            self._calendar = cal
        return cal

    def info(self) -> dict:
        out = {k: self.meta[k] for k in ("version", "source", "demo", "description", "first_date", "last_date", "bars")}
        out["name"] = self.name
        out["symbols"] = {
            s: {"bars": b - a, "first": day_to_iso(self.columns["date"][a]), "last": day_to_iso(self.columns["date"][b - 1])}
            for s, (a, b) in sorted(self.ranges.items()) if b > a
        }
        out["actions"] = self.meta.get("actions", [])
        return out
