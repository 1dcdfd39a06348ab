"""Live bars in Cloud Firestore (or its emulator): the :class:`~stratagem.live.LiveBarStore` port.

Same semantics as :class:`~stratagem.live.MemoryLiveBars` and ``SQLiteLiveBars`` (checked by
the same behaviour tests, ``tests/integration/test_firestore_live.py``). Documents, under an
optional collection-name ``prefix``::

    liveBars/{symbol}:{timeframe}:{day}   symbol, timeframe, day, open, high, low, close, volume,
                                          adjClose, seq, receivedAt
    liveMeta/seq                          {value}: the last arrival sequence number handed out
    liveMeta/cursor-{name}                {value}: a sweep's cursor

**Arrival sequence.** A ``put`` reads the ``seq`` counter and the bars it writes, then commits
one batch whose counter update is conditional on the counter being unchanged (a ``create``
when it does not exist yet). Concurrent writers therefore commit one after the other, each
with larger sequence numbers than every batch committed before it, so a sweep reading
``seq > cursor`` never skips a bar that commits later with a smaller number. A batch that
loses the race is re-read and re-applied (``_optimistic``), so its statuses are always
computed against what is really stored. At most :data:`BARS_PER_COMMIT` bars go in one commit.

Reads need no composite index: ``bars_after`` filters on ``symbol`` with ``in`` (30 symbols per
query) and ``since`` on ``seq`` (single-field indexes); the rest is done in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .live import CORRECTED, DUPLICATE, NEW, Bar
from .store.firestore import DEFAULT_TIMEOUT_S, FirestoreBackend, doc_id

log = logging.getLogger("stratagem.live")

BARS_PER_COMMIT = 400  # Firestore allows 500 writes per commit; one goes to the counter
_IN_LIMIT = 30  # values per Firestore "in" filter


def _doc(b: Bar, seq: int) -> dict[str, Any]:
    from google.cloud import firestore

    return {"symbol": b.symbol, "timeframe": b.timeframe, "day": b.day, "open": b.open, "high": b.high,
            "low": b.low, "close": b.close, "volume": b.volume, "adjClose": b.adj_close, "seq": seq,
            "receivedAt": firestore.SERVER_TIMESTAMP}


def _bar(d: dict[str, Any]) -> Bar:
    return Bar(d["symbol"], int(d["day"]), float(d["open"]), float(d["high"]), float(d["low"]), float(d["close"]),
               float(d["volume"]), None if d.get("adjClose") is None else float(d["adjClose"]), d["timeframe"])


class FirestoreLiveBars(FirestoreBackend):
    """A :class:`~stratagem.live.LiveBarStore` in Firestore (see the module docstring).

    >>> bars = FirestoreLiveBars(project="my-project")                # doctest: +SKIP
    >>> bars = FirestoreLiveBars(client=emulator.client(), prefix="t1_")  # doctest: +SKIP
    """

    def __init__(self, client: Any = None, project: str | None = None, prefix: str = "", *,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(client, project, prefix, timeout_s=timeout_s)

    def _bar_ref(self, key: tuple[str, str, int]) -> Any:
        sym, tf, day = key
        return self.collection("liveBars").document(doc_id(f"{sym}:{tf}:{day}"))

    def _meta_ref(self, name: str) -> Any:
        return self.collection("liveMeta").document(doc_id(name))

    def put(self, bars: Sequence[Bar]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(bars), BARS_PER_COMMIT):
            chunk = list(bars[i:i + BARS_PER_COMMIT])
            with self._errors("storing live bars"):
                out.extend(self._optimistic("storing live bars", lambda chunk=chunk: self._put_chunk(chunk)))
        return out

    def _put_chunk(self, chunk: list[Bar]) -> list[str]:
        counter_ref = self._meta_ref("seq")
        counter = self._get(counter_ref)
        seq = int(counter.get("value")) if counter.exists else 0
        refs = {b.key: self._bar_ref(b.key) for b in chunk}
        snaps = self._get_all(refs.values())
        stored: dict[tuple[str, str, int], Bar] = {}
        for key, ref in refs.items():
            snap = snaps.get(ref.path)
            if snap is not None and snap.exists:
                stored[key] = _bar(snap.to_dict())
        statuses, writes = [], {}
        for b in chunk:
            old = stored.get(b.key)
            if old is not None and old.values == b.values:
                statuses.append(DUPLICATE)
                continue
            seq += 1
            statuses.append(NEW if old is None else CORRECTED)
            stored[b.key] = b
            writes[b.key] = _doc(b, seq)
        if not writes:
            return statuses
        batch = self._batch()
        if counter.exists:
            batch.update(counter_ref, {"value": seq}, option=self._if_unchanged(counter))
        else:
            batch.create(counter_ref, {"value": seq})
        for key, doc in writes.items():
            batch.set(refs[key], doc)
        self._commit(batch)
        return statuses

    def bars_after(self, after: dict[str, int], timeframe: str = "1d") -> dict[str, list[Bar]]:
        out: dict[str, list[Bar]] = {s: [] for s in after}
        syms = sorted(after)
        with self._errors("reading live bars"):
            for i in range(0, len(syms), _IN_LIMIT):
                for snap in self._stream(self._where("liveBars", "symbol", "in", syms[i:i + _IN_LIMIT])):
                    d = snap.to_dict()
                    if d["timeframe"] == timeframe and int(d["day"]) > after[d["symbol"]]:
                        out[d["symbol"]].append(_bar(d))
        for bars in out.values():
            bars.sort(key=lambda b: b.day)
        return out

    def since(self, cursor: int, limit: int = 10_000, *, pending_only: bool = False) -> tuple[list[Bar], int]:
        with self._errors("reading live bars"):
            q = self._where("liveBars", "seq", ">", int(cursor)).order_by("seq").limit(int(limit))
            docs = [s.to_dict() for s in self._stream(q)]
        return ([_bar(d) for d in docs if not (pending_only and d.get("evaluatedSeq") == d["seq"])],
                (int(docs[-1]["seq"]) if docs else cursor))

    def mark_evaluated(self, bars: Sequence[Bar]) -> None:
        for i in range(0, len(bars), BARS_PER_COMMIT):
            chunk = list(bars[i:i + BARS_PER_COMMIT])
            refs = [self._bar_ref(b.key) for b in chunk]
            with self._errors("marking live bars evaluated"):
                snaps = self._get_all(refs)
                batch = self._batch()
                n = 0
                for b, ref in zip(chunk, refs):
                    snap = snaps.get(ref.path)
                    if snap is None or not snap.exists:
                        continue
                    d = snap.to_dict()
                    if _bar(d).values == b.values and d.get("evaluatedSeq") != d["seq"]:
                        # only if still this version: a correction meanwhile fails the batch
                        batch.update(ref, {"evaluatedSeq": d["seq"]}, option=self._if_unchanged(snap))
                        n += 1
                if n:
                    try:
                        self._commit(batch)
                    except Exception:  # noqa: BLE001 - best effort: the sweep evaluates unmarked bars
                        log.warning("live bars not marked evaluated (changed meanwhile); the sweep evaluates them")

    def get_cursor(self, name: str) -> int:
        with self._errors("reading a sweep cursor"):
            snap = self._get(self._meta_ref("cursor-" + name))
        return int(snap.get("value")) if snap.exists else 0

    def set_cursor(self, name: str, value: int) -> None:
        ref = self._meta_ref("cursor-" + name)

        def attempt() -> None:
            snap = self._get(ref)
            if snap.exists and int(snap.get("value")) >= int(value):
                return  # never move a cursor backwards (a slower concurrent sweep)
            batch = self._batch()
            if snap.exists:
                batch.update(ref, {"value": int(value)}, option=self._if_unchanged(snap))
            else:
                batch.create(ref, {"value": int(value)})
            self._commit(batch)

        with self._errors("moving a sweep cursor"):
            self._optimistic("moving a sweep cursor", attempt)
