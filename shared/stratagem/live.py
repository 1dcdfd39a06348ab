"""Live market data: bars arriving from other systems, stored, and laid over the dataset.

Bars arrive as ``stratagem.bars.v1`` messages (validated in :mod:`stratagem.messages`; the
schema is documented in ``docs/bars.md``). A bar is identified by **symbol + timeframe + bar
date**. :meth:`LiveBarStore.put` reports, per bar:

``new``        first time this bar arrived: stored, and evaluated by the alert path;
``corrected``  the bar was stored before with other values: replaced, evaluated again (alerts
               cannot fire twice: their dedup key ``strategy:version:symbol:bar`` is claimed once);
``duplicate``  identical to the stored bar: nothing happens.

:func:`ingest` applies the dataset rule before the store sees a bar. A bar dated on or before
the dataset's last bar of its symbol is *history*: when it equals the dataset's bar it is a
duplicate of history (recorded as an arrival, evaluated at its date, but adding no data: the
dataset already holds it); when it differs, or the dataset has no bar that day, it is
``conflict``: rejected and reported, because the dataset is authoritative for its range (a
correction of history is a dataset re-import, which re-derives the corporate-action columns).

**Late and out-of-order bars** are stored like any other and evaluated at their own as-of
date: a strategy evaluating a late bar for Monday sees data up to Monday only (including
Tuesday's bar, already here, would be look-ahead). The warm sandbox session re-runs the
strategy's module body when a date goes backwards, so no module state carries Tuesday into
Monday. Ordering inside one evaluation is by date, then symbol.

**The overlay.** Stored bars beyond the dataset's last bar of their symbol extend the
point-in-time view strategies read (:meth:`PointInTime.apply_overlay`): they are taken as
being in the same corporate-action regime as the dataset's last bar (factor and split ratio
1 against it), so a split or dividend going ex after the dataset's end is only reflected once
the dataset is refreshed. ``adj_close`` of live bars is stored but not used for adjustment.
At most :data:`MAX_OVERLAY_BARS` bars per symbol are laid over (refresh the dataset long
before that).

Adapters: :class:`MemoryLiveBars` (tests, in-process), :class:`SQLiteLiveBars` (its own file
under the Stratagem home), and ``live_firestore.FirestoreLiveBars``. Every adapter also keeps
an **arrival sequence**: each new or corrected bar gets a sequence number larger than every
earlier one, so a sweep can ask :meth:`LiveBarStore.since` for what arrived after its cursor.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import messages
from .errors import BadInput
from .sqlite_wal import enable_wal

NEW, CORRECTED, DUPLICATE, CONFLICT = "new", "corrected", "duplicate", "conflict"
#: Live bars laid over one symbol's dataset history at most (about a year of sessions).
MAX_OVERLAY_BARS = 260
_EPOCH = _dt.date(1970, 1, 1)


def _iso(day: int) -> str:
    return (_EPOCH + _dt.timedelta(days=int(day))).isoformat()


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar (raw prices, as traded). ``day`` is days since 1970-01-01."""

    symbol: str
    day: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    adj_close: float | None = None
    timeframe: str = "1d"

    @property
    def key(self) -> tuple[str, str, int]:
        """The bar's identity: symbol, timeframe, bar date."""
        return (self.symbol, self.timeframe, self.day)

    @property
    def values(self) -> tuple:
        """What a correction can change (compared exactly: JSON round-trips float64 exactly)."""
        return (self.open, self.high, self.low, self.close, self.volume, self.adj_close)

    @property
    def time(self) -> str:
        return _iso(self.day)

    def row(self) -> list:
        """Wire form inside a sandbox eval message: ``[day, open, high, low, close, volume]``."""
        return [self.day, self.open, self.high, self.low, self.close, self.volume]

    def to_message(self) -> dict:
        """The bar as a ``stratagem.bars.v1`` entry."""
        out = {"symbol": self.symbol, "timeframe": self.timeframe, "time": self.time, "open": self.open,
               "high": self.high, "low": self.low, "close": self.close, "volume": self.volume}
        if self.adj_close is not None:
            out["adj_close"] = self.adj_close
        return out

    @classmethod
    def from_message(cls, d: dict) -> Bar:
        """A bar from a validated ``stratagem.bars.v1`` entry (``time`` or legacy ``day``)."""
        adj = d.get("adj_close")
        return cls(symbol=d["symbol"].strip().upper(), day=messages.bar_day(d), open=float(d["open"]),
                   high=float(d["high"]), low=float(d["low"]), close=float(d["close"]), volume=float(d["volume"]),
                   adj_close=None if adj is None else float(adj), timeframe=d.get("timeframe", "1d"))


def bars_from_message(msg: dict) -> list[Bar]:
    """The bars of a ``stratagem.bars.v1`` message (validated here again: cheap, and safe)."""
    messages.validate(msg)
    if msg.get("schema") != "stratagem.bars.v1":
        raise messages.MalformedMessage(f"expected a stratagem.bars.v1 message, got {msg.get('schema')!r}")
    return [Bar.from_message(b) for b in msg["bars"]]


def bars_message(bars: Sequence[Bar], source: str | None = None) -> dict:
    """A validated ``stratagem.bars.v1`` message carrying ``bars``."""
    return messages.make("stratagem.bars.v1", bars=[b.to_message() for b in bars],
                         **({"source": source} if source else {}))


class LiveBarStore(Protocol):
    """Where live bars are kept (see the module docstring for the semantics)."""

    def put(self, bars: Sequence[Bar]) -> list[str]:
        """Store ``bars`` in order; per bar ``new``, ``corrected`` or ``duplicate``."""
        ...

    def bars_after(self, after: dict[str, int], timeframe: str = "1d") -> dict[str, list[Bar]]:
        """For each symbol of ``after``, its stored bars dated after ``after[symbol]``, oldest first."""
        ...

    def since(self, cursor: int, limit: int = 10_000, *, pending_only: bool = False) -> tuple[list[Bar], int]:
        """Bars stored or corrected after arrival sequence ``cursor``, and the new cursor.
        ``pending_only``: leave out bars :meth:`mark_evaluated` recorded (the cursor still moves
        past them)."""
        ...

    def mark_evaluated(self, bars: Sequence[Bar]) -> None:
        """Record that ``bars``, with exactly these values, were evaluated and what fired was
        published (the event path), so the sweep need not evaluate them again. A later
        correction of a bar is pending again. Best effort: a bar not marked is evaluated by the
        sweep, and its alerts are claimed away."""
        ...

    def get_cursor(self, name: str) -> int:
        """A named sweep cursor (0 when never set)."""
        ...

    def set_cursor(self, name: str, value: int) -> None:
        """Move a named cursor forward (never backwards: concurrent sweeps may race)."""
        ...


class MemoryLiveBars:
    """Thread-safe in-memory live bars (embedded default and tests)."""

    def __init__(self) -> None:
        self._bars: dict[tuple[str, str, int], tuple[Bar, int]] = {}
        self._by_symbol: dict[tuple[str, str], set[int]] = {}
        self._seq = 0
        self._cursors: dict[str, int] = {}
        self._evaluated: dict[tuple[str, str, int], int] = {}  # key -> seq of the evaluated version
        self._lock = threading.Lock()

    def put(self, bars: Sequence[Bar]) -> list[str]:
        out = []
        with self._lock:
            for b in bars:
                old = self._bars.get(b.key)
                if old is not None and old[0].values == b.values:
                    out.append(DUPLICATE)
                    continue
                self._seq += 1
                self._bars[b.key] = (b, self._seq)
                self._by_symbol.setdefault((b.symbol, b.timeframe), set()).add(b.day)
                out.append(NEW if old is None else CORRECTED)
        return out

    def bars_after(self, after: dict[str, int], timeframe: str = "1d") -> dict[str, list[Bar]]:
        with self._lock:
            out = {}
            for sym, last in after.items():
                days = sorted(d for d in self._by_symbol.get((sym, timeframe), ()) if d > last)
                out[sym] = [self._bars[(sym, timeframe, d)][0] for d in days]
            return out

    def since(self, cursor: int, limit: int = 10_000, *, pending_only: bool = False) -> tuple[list[Bar], int]:
        with self._lock:
            got = sorted((seq, b) for b, seq in self._bars.values() if seq > cursor)[:limit]
            done = self._evaluated if pending_only else {}
            bars = [b for seq, b in got if done.get(b.key) != seq]
        return bars, (got[-1][0] if got else cursor)

    def mark_evaluated(self, bars: Sequence[Bar]) -> None:
        with self._lock:
            for b in bars:
                stored = self._bars.get(b.key)
                if stored is not None and stored[0].values == b.values:
                    self._evaluated[b.key] = stored[1]

    def get_cursor(self, name: str) -> int:
        with self._lock:
            return self._cursors.get(name, 0)

    def set_cursor(self, name: str, value: int) -> None:
        with self._lock:
            self._cursors[name] = max(self._cursors.get(name, 0), int(value))


class SQLiteLiveBars:
    """Live bars in their own SQLite file (``live_bars.sqlite3`` under the Stratagem home).

    Safe across threads and processes: each call uses its own connection, and ``put`` runs in
    one ``BEGIN IMMEDIATE`` transaction, so arrival sequence numbers are handed out in commit
    order (a sweep never skips a bar committed after it read).
    """

    FILE = "live_bars.sqlite3"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            enable_wal(con, 30)
            con.executescript("""
                CREATE TABLE IF NOT EXISTS bars (
                    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, day INTEGER NOT NULL,
                    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
                    volume REAL NOT NULL, adj_close REAL, seq INTEGER NOT NULL, received_at REAL NOT NULL,
                    PRIMARY KEY (symbol, timeframe, day));
                CREATE INDEX IF NOT EXISTS bars_seq ON bars (seq);
                CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """)
            # The seq of the version mark_evaluated recorded (0: none). Added after the first
            # release: files written before get the column here.
            if "evaluated_seq" not in {r[1] for r in con.execute("PRAGMA table_info(bars)")}:
                con.execute("ALTER TABLE bars ADD COLUMN evaluated_seq INTEGER NOT NULL DEFAULT 0")

    @classmethod
    def in_home(cls, home: Path | str) -> SQLiteLiveBars:
        return cls(Path(home) / cls.FILE)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        return con

    @staticmethod
    def _bar(row: tuple) -> Bar:
        sym, tf, day, o, h, lo, c, v, adj = row[:9]
        return Bar(sym, int(day), o, h, lo, c, v, adj, tf)

    def put(self, bars: Sequence[Bar]) -> list[str]:
        out = []
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            seq = (con.execute("SELECT value FROM counters WHERE name='seq'").fetchone() or (0,))[0]
            now = time.time()
            for b in bars:
                row = con.execute("SELECT symbol,timeframe,day,open,high,low,close,volume,adj_close FROM bars "
                                  "WHERE symbol=? AND timeframe=? AND day=?", b.key).fetchone()
                if row is not None and self._bar(row).values == b.values:
                    out.append(DUPLICATE)
                    continue
                seq += 1
                con.execute("INSERT OR REPLACE INTO bars (symbol,timeframe,day,open,high,low,close,volume,adj_close,"
                            "seq,received_at,evaluated_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,0)",
                            (b.symbol, b.timeframe, b.day, b.open, b.high, b.low, b.close, b.volume, b.adj_close,
                             seq, now))
                out.append(NEW if row is None else CORRECTED)
            con.execute("INSERT OR REPLACE INTO counters VALUES ('seq', ?)", (seq,))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return out

    def bars_after(self, after: dict[str, int], timeframe: str = "1d") -> dict[str, list[Bar]]:
        out: dict[str, list[Bar]] = {s: [] for s in after}
        if not after:
            return out
        con = self._connect()
        try:
            syms = sorted(after)
            for i in range(0, len(syms), 500):  # SQLite's bound-parameter limit
                part = syms[i:i + 500]
                rows = con.execute(
                    "SELECT symbol,timeframe,day,open,high,low,close,volume,adj_close FROM bars WHERE timeframe=? "
                    f"AND symbol IN ({','.join('?' * len(part))}) ORDER BY symbol, day", [timeframe, *part])
                for row in rows:
                    if row[2] > after[row[0]]:
                        out[row[0]].append(self._bar(row))
        finally:
            con.close()
        return out

    def since(self, cursor: int, limit: int = 10_000, *, pending_only: bool = False) -> tuple[list[Bar], int]:
        con = self._connect()
        try:
            rows = con.execute("SELECT symbol,timeframe,day,open,high,low,close,volume,adj_close,seq,evaluated_seq "
                               "FROM bars WHERE seq > ? ORDER BY seq LIMIT ?", (int(cursor), int(limit))).fetchall()
        finally:
            con.close()
        return ([self._bar(r) for r in rows if not (pending_only and r[10] == r[9])],
                (rows[-1][9] if rows else cursor))

    def mark_evaluated(self, bars: Sequence[Bar]) -> None:
        if not bars:
            return
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            # only the version evaluated: a correction stored meanwhile has other values
            con.executemany("UPDATE bars SET evaluated_seq=seq WHERE symbol=? AND timeframe=? AND day=? AND open=? "
                            "AND high=? AND low=? AND close=? AND volume=? AND adj_close IS ?",
                            [(*b.key, *b.values) for b in bars])
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def get_cursor(self, name: str) -> int:
        con = self._connect()
        try:
            row = con.execute("SELECT value FROM counters WHERE name=?", ("cursor:" + name,)).fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0

    def set_cursor(self, name: str, value: int) -> None:
        con = self._connect()
        try:
            con.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                        "value=max(value, excluded.value)", ("cursor:" + name, int(value)))
        finally:
            con.close()


# -- the dataset rule, the overlay ------------------------------------------------------------
def dataset_last_day(market: Any, symbol: str) -> int:
    """The date of ``symbol``'s last dataset bar (-1 when the dataset does not have it)."""
    a, b = market.range(symbol)
    return int(market.columns["date"][b - 1]) if b > a else -1


def history_conflict(market: Any, bar: Bar) -> str | None:
    """Why ``bar`` contradicts the dataset (None when it is beyond it or equals its bar)."""
    a, b = market.range(bar.symbol)
    if b <= a or bar.day > int(market.columns["date"][b - 1]):
        return None
    c = market.columns
    i = a + int(np.searchsorted(c["date"][a:b], bar.day))
    if i >= b or int(c["date"][i]) != bar.day:
        return (f"{bar.symbol} {bar.time}: the dataset ({getattr(market, 'name', '?')}) has no bar that day but "
                "covers it; history is corrected by re-importing the dataset")
    ours = (float(c["open"][i]), float(c["high"][i]), float(c["low"][i]), float(c["close"][i]), float(c["volume"][i]))
    theirs = (bar.open, bar.high, bar.low, bar.close, bar.volume)
    if ours != theirs or (bar.adj_close is not None and bar.adj_close != float(c["adj_close"][i])):
        return (f"{bar.symbol} {bar.time}: differs from the dataset's bar (open/high/low/close/volume "
                f"{list(ours)}); history is corrected by re-importing the dataset")
    return None


@dataclass
class IngestReport:
    """What :func:`ingest` did with each bar, and which bars need evaluating."""

    statuses: list[str]
    to_evaluate: list[Bar]
    conflicts: list[str]

    def counts(self) -> dict[str, int]:
        out = {NEW: 0, CORRECTED: 0, DUPLICATE: 0, CONFLICT: 0}
        for s in self.statuses:
            out[s] += 1
        return out


def ingest(store: LiveBarStore, market: Any, bars: Sequence[Bar]) -> IngestReport:
    """Apply the dataset rule, store the rest; new and corrected bars are to be evaluated."""
    statuses: list[str | None] = [None] * len(bars)
    conflicts: list[str] = []
    keep: list[int] = []
    for i, b in enumerate(bars):
        why = history_conflict(market, b)
        if why is None:
            keep.append(i)
        else:
            statuses[i] = CONFLICT
            conflicts.append(why)
    put = store.put([bars[i] for i in keep]) if keep else []
    evaluate = []
    for i, st in zip(keep, put):
        statuses[i] = st
        if st in (NEW, CORRECTED):
            evaluate.append(bars[i])
    return IngestReport([s or CONFLICT for s in statuses], evaluate, conflicts)


def overlay_for(store: LiveBarStore, market: Any, symbols: Iterable[str]) -> dict[str, list[Bar]]:
    """Live bars beyond each symbol's last dataset bar (at most :data:`MAX_OVERLAY_BARS`, the
    latest), oldest first; symbols without any are left out."""
    dates = np.asarray(market.columns["date"])  # a plain array: memmap indexing costs µs a time
    after = {}
    for s in symbols:
        a, b = market.range(s)
        after[s] = int(dates[b - 1]) if b > a else -1
    got = store.bars_after(after) if after else {}
    return {s: bs[-MAX_OVERLAY_BARS:] for s, bs in got.items() if bs}


# -- the market replayer ----------------------------------------------------------------------
def history_bars(market: Any, symbols: Sequence[str], start: int, end: int) -> list[list[Bar]]:
    """The dataset's bars of ``symbols`` in [start, end], grouped by session, oldest first."""
    c = market.columns
    by_day: dict[int, list[Bar]] = {}
    for sym in sorted(set(symbols)):
        a, b = market.range(sym)
        if b <= a:
            continue
        d = np.asarray(c["date"][a:b])
        lo, hi = a + int(np.searchsorted(d, start, "left")), a + int(np.searchsorted(d, end, "right"))
        for i in range(lo, hi):
            by_day.setdefault(int(c["date"][i]), []).append(Bar(
                sym, int(c["date"][i]), float(c["open"][i]), float(c["high"][i]), float(c["low"][i]),
                float(c["close"][i]), float(c["volume"][i]), float(c["adj_close"][i])))
    return [by_day[d] for d in sorted(by_day)]


def replay_bars(market: Any, symbols: Sequence[str], start: int, end: int, publish: Callable[[dict], Any], *,
                speed: float | None = None, source: str = "replay", sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> dict:
    """Publish the dataset's bars of ``symbols`` in [start, end] as ``stratagem.bars.v1`` events.

    One message per session (split at :data:`messages.MAX_BARS_PER_MESSAGE`). ``speed`` is in
    bars per second *per symbol*: 1 sends one session of bars every second, like a live
    feed of one-second bars; ``None`` or 0 sends as fast as ``publish`` returns.
    Returns counts: sessions, bars, messages and the seconds it took.
    """
    if speed is not None and speed < 0:
        raise BadInput(f"--speed must be >= 0 bars per second, got {speed}")
    sessions = history_bars(market, symbols, start, end)
    t0 = clock()
    n_bars = n_msgs = 0
    cap = messages.MAX_BARS_PER_MESSAGE
    for k, day_bars in enumerate(sessions):
        if speed:
            wait = t0 + k / speed - clock()
            if wait > 0:
                sleep(wait)
        for i in range(0, len(day_bars), cap):
            publish(bars_message(day_bars[i:i + cap], source))
            n_msgs += 1
        n_bars += len(day_bars)
    return {"sessions": len(sessions), "bars": n_bars, "messages": n_msgs, "seconds": round(clock() - t0, 3)}
