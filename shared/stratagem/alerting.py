"""Real-time alert evaluation: warm sandbox sessions per active strategy, fed by live bars.

Two entry points, both used by :mod:`stratagem.service` (design: docs/decisions/0003):

* :func:`on_bars` - the event-driven path (``alert_bars`` on the bars topic): validate,
  ingest into the live bar store, evaluate the new and corrected bars at once.
* :func:`sweep` - the scheduled path (``alert_tick``, fired once a minute by Cloud Scheduler):
  loop for ``sweep_seconds``, once a second, evaluating whatever the live store received
  since a durable cursor. It catches bars written to the store by other means, and bars
  whose event-driven evaluation failed after they were stored (a retried delivery finds
  them ``duplicate`` and does not evaluate them again).

Every alert is claimed under ``strategy:version:symbol:bar`` before it is published
(``jobs.mark_event``: Redis ``SET NX`` / Firestore ``create``), which is what makes the
effect exactly-once across duplicate deliveries, the two paths, concurrent instances and
restarts; evaluating a bar twice costs CPU, never a second alert.

Workers stay warm: a function instance keeps its globals between invocations, so the
:class:`AlertRunner` on the :class:`~stratagem.service.Services` object keeps one
:class:`~stratagem.engines.alerts.AlertEngine` per (strategy id, version, code sha256) for
dedup claims and messages, and batches the evaluation: a tenant's active strategies share
a forked worker, up to :data:`BATCH_STRATEGIES` each (decision 0006). Batches of deactivated
or changed strategies are closed. Each tick evaluates only active strategies, only on
symbols with new bars (and in each strategy's alert universe), one pipelined exchange per
batch, every batch in flight at once; each strategy's alerts are claimed and published as
soon as its evaluation lands (decision 0008).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import live, messages
from .errors import InfraUnavailable, StratagemError

log = logging.getLogger("stratagem.alerting")

#: Name of the sweep's cursor in the live bar store.
SWEEP_CURSOR = "alert_tick"
#: Longest sweep one invocation may ask for (the function's timeout is declared in infra/).
MAX_SWEEP_SECONDS = 540


def live_store(svc: Any) -> live.LiveBarStore:
    """The services' live bar store (an in-memory one when none was configured)."""
    if getattr(svc, "live_bars", None) is None:
        svc.live_bars = live.MemoryLiveBars()
    return svc.live_bars


def runner(svc: Any) -> AlertRunner:
    """The services' warm :class:`AlertRunner` (created on first use, kept for the instance's life)."""
    if getattr(svc, "alert_runner", None) is None:
        svc.alert_runner = AlertRunner()
    return svc.alert_runner


class _Deduper:
    """Claims alert keys through the job store's event records (a Firestore create / SET NX)."""

    def __init__(self, jobs: Any) -> None:
        self.jobs = jobs

    def claim(self, key: str) -> bool:
        return self.jobs.mark_event("alert:" + key)


def _key(rec: Any) -> tuple[int, int, str]:
    return (rec.id, rec.version, hashlib.sha256(rec.code.encode()).hexdigest())


#: Most strategies of one tenant evaluated together in one worker (decision 0006).
BATCH_STRATEGIES = 32
#: Most batches evaluated at once (one thread of this process feeds each batch's worker).
MAX_PARALLEL_BATCHES = 32


class _GcPause:
    """No cyclic garbage collection while a tick is evaluated; it runs after.

    A tick allocates tens of thousands of short-lived objects (results, alerts, messages), all
    freed by reference counting, yet their count triggers collections, and those that reach
    the oldest generation scan every long-lived object of the instance (its alert engines, the
    embedded stores): bench/alerts.py measured 1.5 s of collections in 15 ticks of 100 x 500.
    Paused, the collector runs between ticks at a fraction of the cost. Nested and concurrent
    pauses are counted; the last one out restores the collector as the first one found it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._was_enabled:
                    gc.enable()


_gc_paused = _GcPause()


def release_claims(svc: Any, alerts: Iterable[dict]) -> None:
    """Give back the fire-once claims of alerts that were not published, so that the next
    evaluation (a retried delivery, the sweep) fires them: delayed, never lost."""
    for a in alerts:
        try:
            svc.jobs.release_event("alert:" + a["dedup_key"])
        except StratagemError:  # the store is down too: this alert stays claimed (logged)
            log.error("alert %s could not be published nor released", a["dedup_key"])


class _Stream:
    """Publishes each strategy's fired alerts as its evaluation lands (called from the runner's
    threads, one publish at a time).

    ``publish(fired)`` must either publish every alert of ``fired`` or raise
    :class:`~stratagem.errors.InfraUnavailable` having released the claims of those it did not
    publish (``service._publish_alerts``). After a failure nothing more is published this
    evaluation (Pub/Sub is likely down): the claims of later alerts are released instead and
    :meth:`AlertRunner.evaluate` raises the failure once the workers are done, so the delivery
    is retried and the re-evaluation fires exactly the alerts that were not published."""

    def __init__(self, svc: Any, publish: Callable[[Any], Any]) -> None:
        self.svc = svc
        self.publish = publish
        self.error: InfraUnavailable | None = None
        self._lock = threading.Lock()

    def __call__(self, fired: list[tuple[Any, dict]]) -> None:
        with self._lock:
            if self.error is None:
                try:
                    self.publish(sorted(fired, key=lambda ra: (ra[1]["timestamp"], ra[1]["symbol"])))
                    return
                except InfraUnavailable as exc:
                    self.error = exc
                    return
            release_claims(self.svc, [a for _, a in fired])


class AlertRunner:
    """Warm alert engines for the active strategies of one function instance.

    Each strategy keeps an :class:`~stratagem.engines.alerts.AlertEngine` (its dedup claims and
    messages); the evaluation itself is batched: the active strategies of one tenant share a
    worker, up to :data:`BATCH_STRATEGIES` per worker (:class:`~stratagem.sandbox.pool.Batch`),
    so a tick sends its live bars to a few workers instead of one per strategy.
    """

    def __init__(self) -> None:
        self.engines: dict[tuple[int, int, str], Any] = {}
        self.batches: dict[tuple, Any] = {}  # (user, engine keys) -> Batch
        self._lock = threading.Lock()
        self.evaluations = 0  # strategy evaluations made (for tests and the benchmark)
        self.skipped: list[dict] = []  # strategies that failed to load, most recent last (bounded)
        # Batches evaluated at once (each in its own worker process); None: all of them, up
        # to MAX_PARALLEL_BATCHES.
        self.parallel: int | None = None

    def close(self) -> None:
        with self._lock:
            engines, self.engines = self.engines, {}
            batches, self.batches = self.batches, {}
        for e in engines.values():
            e.close()
        for b in batches.values():
            b.close()

    def _sync(self, svc: Any, recs: list[Any]) -> dict[tuple[int, int, str], Any]:
        """Engines for ``recs``, made on demand; engines of inactive or changed strategies closed."""
        from .engines.alerts import AlertEngine

        want = {_key(r): r for r in recs}
        for k in [k for k in self.engines if k not in want]:
            self.engines.pop(k).close()
        for k, r in want.items():
            if k not in self.engines:
                self.engines[k] = AlertEngine(svc.sandbox, svc.market, r.code, strategy_id=r.id, name=r.name,
                                              version=r.version, deduper=_Deduper(svc.jobs))
        return {k: self.engines[k] for k in want}

    def _wire_rows(self, overlay: dict[str, list[Any]]) -> dict[str, list[list]]:
        """Each symbol's live bars in wire form (``Bar.row()``), as new lists (the sessions tell
        changes by identity), reusing last tick's rows for the bars that did not change: at one
        bar a second a symbol carries up to ``live.MAX_OVERLAY_BARS`` bars, one of them new."""
        cache = getattr(self, "_rows_cache", None)
        if cache is None:
            cache = self._rows_cache = {}
        out = {}
        for sym, bars in overlay.items():
            old = cache.get(sym)
            if old is not None:
                old_bars, old_rows = old
                k = len(old_bars)
                if k <= len(bars) and bars[:k] == old_bars:
                    rows = old_rows + [b.row() for b in bars[k:]]
                else:
                    # A correction or the window moving on: rows up to the first change are reused.
                    keep = 0
                    while keep < k and keep < len(bars) and bars[keep] == old_bars[keep]:
                        keep += 1
                    rows = old_rows[:keep] + [b.row() for b in bars[keep:]]
            else:
                rows = [b.row() for b in bars]
            cache[sym] = (bars, rows)
            out[sym] = rows
        if len(cache) > 2 * max(len(overlay), 1000):
            for sym in [s for s in cache if s not in overlay]:
                del cache[sym]
        return out

    def _batches(self, svc: Any, recs: list[Any]) -> list[tuple[Any, list[Any]]]:
        """(batch, its records in slot order) for ``recs``: per tenant, in chunks; batches of a
        changed set of strategies are closed and rebuilt."""
        from .sandbox.pool import Batch

        by_user: dict[str, list[Any]] = {}
        for r in sorted(recs, key=lambda r: (r.user_id, str(r.id))):
            by_user.setdefault(r.user_id, []).append(r)
        want: dict[tuple, list[Any]] = {}
        for user, rs in by_user.items():
            # Even chunks (100 strategies: 4 x 25, not 32+32+32+4), so batches finish together.
            n = -(-len(rs) // BATCH_STRATEGIES)
            size = -(-len(rs) // n)
            for i in range(0, len(rs), size):
                chunk = rs[i:i + size]
                want[(user, tuple(_key(r) for r in chunk))] = chunk
        for k in [k for k in self.batches if k not in want]:
            self.batches.pop(k).close()
        out = []
        for k, chunk in want.items():
            if k not in self.batches:
                self.batches[k] = Batch(svc.sandbox, [r.code for r in chunk])
            out.append((self.batches[k], chunk))
        return out

    def evaluate(self, svc: Any, items: Iterable[tuple[int, str]],
                 publish: Callable[["Fired"], Any] | None = None) -> list[tuple[Any, dict]]:
        """Evaluate every active strategy on the (day, symbol) ``items`` (each as of its own
        date); return the ``(strategy record, alert)`` pairs that fired now, in (date, symbol,
        strategy) order.

        With ``publish``, each strategy's alerts are handed to it as soon as that strategy's
        evaluation is read, while the workers go on with the others: users hear of the first
        signals before the whole tick is evaluated, and this process's share of the work
        (claims, messages, publishing) runs beside the workers' instead of after them. See
        :class:`_Stream` for what happens when publishing fails.
        """
        items = sorted(set(items))
        if not items:
            return []
        with _gc_paused():
            return self._evaluate(svc, items, publish)

    def _evaluate(self, svc: Any, items: list[tuple[int, str]],
                  publish: Callable[["Fired"], Any] | None) -> list[tuple[Any, dict]]:
        symbols = sorted({s for _, s in items})
        with self._lock:
            recs = list(svc.store.active_alerts())
            engines = self._sync(svc, recs)
            overlay = live.overlay_for(live_store(svc), svc.market, symbols)
            wire = self._wire_rows(overlay)  # once, for every batch
            work: list[tuple[Any, list[tuple[int, Any, list[tuple[int, str]]]]]] = []
            for batch, chunk in self._batches(svc, recs):
                jobs = []
                for slot, rec in enumerate(chunk):
                    universe = set(rec.alert_universe) if rec.alert_universe else None
                    mine = items if universe is None else [(d, s) for d, s in items if s in universe]
                    if mine:
                        jobs.append((slot, rec, mine))
                if jobs:
                    work.append((batch, jobs))
            if not work:
                return []

            stream = _Stream(svc, publish) if publish is not None else None
            # Alerts are claimed, formatted and published on one thread of their own, so the
            # threads that feed the workers never wait for that work (a worker that finished
            # its job while its thread was publishing would sit idle until the next arrived).
            handling = ThreadPoolExecutor(max_workers=1)
            handled: list[Any] = []

            def handle(rec: Any, out: Any) -> list[tuple[Any, dict]]:
                mine = [(rec, a) for a in engines[_key(rec)].fired(out, overlay)]
                if stream is not None and mine:
                    stream(mine)
                return mine

            def run(unit: tuple[Any, list[tuple[int, Any, list[tuple[int, str]]]]]) -> None:
                batch, jobs = unit
                syms = {s for _, _, mine in jobs for _, s in mine}
                recs_by_slot = {slot: rec for slot, rec, _ in jobs}

                def on_done(slot: int, out: Any) -> None:
                    # Each strategy's alerts as soon as its results land, while the worker is
                    # already evaluating the next strategy.
                    handled.append(handling.submit(handle, recs_by_slot[slot], out))

                batch.evaluate([(slot, mine) for slot, _, mine in jobs],
                               {s: r for s, r in wire.items() if s in syms}, on_done)
                for slot, rec, mine in jobs:
                    err = batch.load_errors.get(slot)
                    if err is not None:
                        # One strategy that cannot load must not hold back anyone else's alerts.
                        log.warning("strategy %s v%s skipped this tick: %s", rec.id, rec.version, err.message)
                        self.skipped.append({"strategy_id": rec.id, "version": rec.version, "error": err.message})
                if batch.load_errors:
                    # Retry the failed loads on the next tick (a fresh worker, all slots reloaded).
                    batch.load_errors.clear()
                    batch.close()

            # Every batch in flight at once (each has its own warm worker process already): the
            # OS shares the CPUs among them and they finish together. In waves of the sandbox's
            # workers + 1, the last wave ran alone while a CPU idled (bench/alerts.py, 100 x 500
            # in 4 batches: the fourth ran by itself for a third of each tick).
            width = max(1, min(len(work), self.parallel or MAX_PARALLEL_BATCHES))
            try:
                if width == 1:
                    for u in work:
                        run(u)
                else:
                    with ThreadPoolExecutor(max_workers=width) as pool:
                        list(pool.map(run, work))
            finally:
                handling.shutdown(wait=True)  # every strategy's alerts handled, even on error
            self.evaluations += sum(len(jobs) for _, jobs in work)
            del self.skipped[:-100]
            results = [f.result() for f in handled]  # raises the first claim failure, if any
        if stream is not None and stream.error is not None:
            raise stream.error
        fired = [pair for res in results for pair in res]
        fired.sort(key=lambda ra: (ra[1]["timestamp"], ra[1]["symbol"], str(ra[0].id)))
        return fired


Fired = list[tuple[Any, dict]]  # (strategy record, alert) pairs, in time order


def evaluate_bars(svc: Any, bars: Sequence[live.Bar], publish: Callable[[Fired], Any] | None = None) -> Fired:
    """Evaluate active strategies on ``bars``; the alerts that fired for the first time (each
    strategy's handed to ``publish`` as soon as they fire, see :meth:`AlertRunner.evaluate`)."""
    return runner(svc).evaluate(svc, [(b.day, b.symbol) for b in bars], publish)


def evaluate_items(svc: Any, items: Iterable[tuple[int, str]], publish: Callable[[Fired], Any] | None = None) -> Fired:
    """Like :func:`evaluate_bars`, for (day, symbol) pairs whose bars are already stored."""
    return runner(svc).evaluate(svc, items, publish)


def mark_evaluated(svc: Any, bars: Sequence[live.Bar]) -> None:
    """After the event path published what ``bars`` fired: spare the sweep evaluating them
    again (best effort: when the store cannot record it, the sweep evaluates them and the
    alert claims keep anything from firing twice)."""
    try:
        live_store(svc).mark_evaluated(bars)
    except StratagemError as exc:
        log.warning("live bars not marked evaluated (%s); the sweep will evaluate them again", exc)


def on_bars(svc: Any, msg: dict, publish: Callable[[Fired], Any] | None = None) -> dict:
    """The event-driven path: a ``stratagem.bars.v1`` message -> stored bars -> fired alerts,
    each strategy's handed to ``publish`` as they fire (see :meth:`AlertRunner.evaluate`).

    Returns per-status counts, the conflicts, and ``fired`` (all of them, in time order).
    Idempotent under duplicate delivery: duplicate bars are not evaluated again, and alerts
    are deduplicated anyway.
    """
    bars = live.bars_from_message(msg)
    report = live.ingest(live_store(svc), svc.market, bars)
    for why in report.conflicts[:5]:
        log.warning("bar rejected: %s", why)
    return {"counts": report.counts(), "conflicts": report.conflicts,
            "fired": evaluate_bars(svc, report.to_evaluate, publish), "evaluated": report.to_evaluate}


def sweep(svc: Any, seconds: float = 0, publish: Callable[[Fired], Any] | None = None, *,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
          cursor: str = SWEEP_CURSOR) -> dict:
    """The scheduled path: every second for ``seconds`` (one pass when 0), evaluate the bars the
    live store received since the durable ``cursor``, hand what fired to ``publish`` as it
    fires, then move the cursor past those bars.

    The cursor moves only after evaluation and publishing succeeded, so a crash re-evaluates
    (and the alert dedup claims away what already fired) rather than skipping.
    """
    if seconds < 0 or seconds > MAX_SWEEP_SECONDS:
        raise messages.MalformedMessage(f"sweep_seconds must be between 0 and {MAX_SWEEP_SECONDS}, got {seconds}")
    store = live_store(svc)
    t0 = clock()
    passes = evaluated = 0
    alerts: list[dict] = []
    while True:
        passes += 1
        pos = store.get_cursor(cursor)
        while True:
            # Bars the event path evaluated and published are left out (mark_evaluated).
            bars, new_pos = store.since(pos, pending_only=True)
            if new_pos == pos:
                break
            if bars:
                fired = evaluate_bars(svc, bars, publish)
                alerts.extend(a for _, a in fired)
                evaluated += len(bars)
            store.set_cursor(cursor, new_pos)
            pos = new_pos
        # Next pass on the next whole second since the start (no drift, no busy loop).
        nxt = t0 + passes
        if nxt > t0 + seconds:
            break
        wait = nxt - clock()
        if wait > 0:
            sleep(wait)
    return {"passes": passes, "bars": evaluated, "alerts": alerts}
