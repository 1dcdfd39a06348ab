"""Engine side of the sandbox: the zygote, per-run workers, and fault-tolerant evaluation.

:class:`Sandbox` owns one zygote process (clean environment, warm imports, data mapped
read-only). :meth:`Sandbox.run` forks fresh workers for one strategy, splits the
evaluation plan across them by symbol (each worker sees its dates in increasing order, so
no state can carry a later date into an earlier one), and collects plain-JSON results.
A worker that dies (memory, CPU, time limit, crash) costs only the call that killed it:
that call is reported with the limit it broke and the rest is resubmitted to a new worker.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InfraUnavailable, StrategyFailed, StrategyRejected
from ..settings import SandboxLimits
from .worker import recv_msg, send_msg

MAX_RESTARTS = 3


@dataclass
class EvalOutcome:
    """Results of evaluating one strategy over a plan of (day, symbols)."""

    signals: list[tuple[str, int, float | None, dict]] = field(default_factory=list)
    errors: list[tuple[str, int, str]] = field(default_factory=list)
    evaluated: int = 0
    worker_restarts: int = 0
    cpu_seconds: float = 0.0
    demo_data_used: bool = False

    def merge(self, o: "EvalOutcome") -> None:
        self.signals.extend(o.signals)
        self.errors.extend(o.errors)
        self.evaluated += o.evaluated
        self.worker_restarts += o.worker_restarts
        self.cpu_seconds += o.cpu_seconds
        self.demo_data_used = self.demo_data_used or o.demo_data_used


def _clean_env() -> dict[str, str]:
    # No secrets cross into the sandbox: only what Python and numpy need to start.
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


class Worker:
    """One forked worker process serving one strategy run."""

    def __init__(self, sock: socket.socket, pid: int, limits: SandboxLimits) -> None:
        self.sock = sock
        self.pid = pid
        self.limits = limits
        self.alive = True
        self.seccomp = False
        self.cpu = 0.0  # the process's CPU seconds so far (as last reported)
        self.entries: list[str] = []  # of the loaded strategy
        self.reset_pending = False  # a "reset" (or "load") was sent and its reply not read yet
        self.load_pending = False  # ... and it was a first "load" (see send_load)

    def _recv(self, timeout: float) -> Any:
        self.sock.settimeout(timeout)
        return recv_msg(self.sock, max_frame=max(self.limits.max_output_bytes * 64, 4 << 20))

    def handshake(self) -> None:
        msg = self._recv(30)
        self.seccomp = bool(msg.get("seccomp"))

    def reset(self) -> list[str]:
        """Re-create the loaded strategy's module state (a warm worker's next run); entry points."""
        return self.load(None)

    def send_reset(self) -> None:
        """Ask for a reset without waiting: the reply is read by :meth:`finish_reset` just
        before the next request's, which saves one round trip on short runs."""
        send_msg(self.sock, {"op": "reset"})
        self.reset_pending = True

    def send_load(self, source: str) -> None:
        """Send ``load`` without waiting, like :meth:`send_reset`: the worker compiles the
        strategy while the engine encodes and sends the first evaluation."""
        try:
            send_msg(self.sock, {"op": "load", "source": source})
        except OSError:
            self.kill()
            raise StrategyFailed("the strategy could not be loaded in the sandbox: its process died") from None
        self.reset_pending = self.load_pending = True

    def finish_reset(self) -> None:
        if self.reset_pending:
            self.reset_pending = self.load_pending = False
            self._loaded_reply()

    def load(self, source: str | None, slot: int = 0) -> list[str]:
        """Load ``source`` into ``slot`` (a worker can hold several strategies of one tenant,
        see :class:`Batch`); ``None`` re-creates the slot's module state. Returns entry points."""
        msg: dict[str, Any] = {"op": "load", "source": source} if source is not None else {"op": "reset"}
        if slot:
            msg["slot"] = slot
        try:
            send_msg(self.sock, msg)
        except OSError:
            self.kill()
            raise StrategyFailed("the strategy could not be loaded in the sandbox: its process died") from None
        return self._loaded_reply()

    def _loaded_reply(self) -> list[str]:
        try:
            msg = self._recv(self.limits.call_seconds * 2 + 10)
        except (EOFError, OSError, ValueError) as exc:
            self.kill()
            why = "it stopped responding" if isinstance(exc, socket.timeout) else "its process died"
            raise StrategyFailed(f"the strategy could not be loaded in the sandbox: {why} "
                                 "(a memory, CPU or time limit, or a crash)") from None
        if msg.get("op") == "loaded":
            self.entries = list(msg["entries"])
            return self.entries
        if msg.get("kind") == "rejected":
            raise StrategyRejected(msg["message"], details=msg.get("details"))
        raise StrategyFailed(msg.get("message", "the strategy failed to load"))

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.sock.close()

    def close(self) -> None:
        if self.alive:
            try:
                send_msg(self.sock, {"op": "exit"})
            except OSError:
                pass
            self.kill()


class Sandbox:
    """Runs strategies in isolated worker processes forked from one warm zygote."""

    def __init__(self, dataset_path: Path | str, limits: SandboxLimits | None = None, workers: int = 2) -> None:
        self.dataset_path = str(Path(dataset_path).resolve())
        self.limits = limits or SandboxLimits()
        self.workers = max(1, workers)
        self._proc: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._lock = threading.Lock()
        self._tmp = tempfile.mkdtemp(prefix="stratagem-sbx-")
        self.startup_seconds: float | None = None
        self._spares: list[Worker] = []
        self._spare_thread: threading.Thread | None = None
        self.prefork = True
        self.last_call_demo = False
        # Loaded workers kept for the next run of the same strategy by the same tenant
        # (key -> workers), least recently used first; see Session(tenant=...).
        self._warm: OrderedDict[str, list[Worker]] = OrderedDict()
        self.warm_limit = 4
        # Runs in progress (see _running): spare workers are not forked and warmed while a
        # run's other shards are still evaluating, since that would take a CPU from them.
        self._busy = 0
        self._refill_deferred = False
        atexit.register(self.close)

    # -- zygote --------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        t0 = time.perf_counter()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "stratagem.sandbox.worker", "--zygote", str(child.fileno()),
                 self.dataset_path],
                env=_clean_env(), pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._tmp, start_new_session=True)
        except OSError as exc:
            parent.close()
            raise InfraUnavailable(f"cannot start the sandbox process: {exc}") from exc
        finally:
            child.close()
        parent.settimeout(120)
        try:
            ready = parent.recv(1 << 16)
        except (socket.timeout, OSError):
            ready = b""
        if not ready:
            self._proc.kill()
            raise InfraUnavailable("the sandbox zygote did not start (run 'python -m stratagem.sandbox.worker' to debug)")
        self._ctrl = parent
        self.startup_seconds = time.perf_counter() - t0

    def spawn(self, dataset: str | None = None) -> Worker:
        """A fresh, never-used worker: a pre-forked spare when there is one, else a new fork.

        No worker ever serves two runs. Spares are forked (and warmed) after a run ends, in
        the background, so the next run neither waits for a fork nor competes with one.
        """
        if dataset is not None and str(Path(dataset).resolve()) != self.dataset_path:
            return self._fork(str(Path(dataset).resolve()))  # spares serve the default dataset only
        with self._lock:
            w = self._spares.pop() if self._spares else None
        if w is None:
            # No spare ready: wait for a refill in progress rather than forking a second time.
            t = self._spare_thread
            if t is not None:
                t.join()
            with self._lock:
                w = self._spares.pop() if self._spares else None
        if w is None or not w.alive:
            w = self._fork()
        return w

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the background refill of spare workers has finished."""
        t = self._spare_thread
        if t is not None:
            t.join(timeout)

    def release(self, w: Worker) -> None:
        """End a worker's run (the process exits) and top the spares up in the background
        (once no :meth:`run` is in progress)."""
        w.close()
        self._start_refill()

    def _start_refill(self) -> None:
        if not self.prefork or self._ctrl is None:
            return
        with self._lock:
            if self._busy:
                self._refill_deferred = True
                return
            if len(self._spares) >= self.workers or (self._spare_thread is not None and self._spare_thread.is_alive()):
                return
            self._spare_thread = threading.Thread(target=self._refill, daemon=True)
            self._spare_thread.start()

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """Mark a run in progress: refills wait until the last one ends (a shard that ends
        early would otherwise fork and warm a spare on the CPU its sibling shards are using;
        a run that finds no spare still forks one at once, see :meth:`spawn`)."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                go = self._busy == 0 and self._refill_deferred
                if go:
                    self._refill_deferred = False
            if go:
                self._start_refill()

    def _refill(self) -> None:
        while True:
            with self._lock:
                if len(self._spares) >= self.workers or self._ctrl is None:
                    return
            try:
                w = self._fork(warm=True)
            except Exception:  # noqa: BLE001 - the next spawn() forks synchronously and reports
                return
            with self._lock:
                if self._ctrl is None:
                    w.kill()
                    return
                self._spares.append(w)

    def _fork(self, dataset: str | None = None, warm: bool = False) -> Worker:
        """A new worker. ``warm``: it walks the data before it is ready (spares: that happens in
        the background); a fork that a run waits for skips the walk (about 50 ms)."""
        with self._lock:
            self._start_locked()
            assert self._ctrl is not None
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                req = {"dataset": dataset or self.dataset_path, "warm": warm, "limits": {
                    "memory_mb": self.limits.memory_mb, "cpu_seconds": self.limits.cpu_seconds,
                    "call_seconds": self.limits.call_seconds}}
                socket.send_fds(self._ctrl, [json.dumps(req).encode()], [theirs.fileno()])
                reply = json.loads(self._ctrl.recv(1 << 16) or b"{}")
            except (OSError, ValueError) as exc:
                ours.close()
                self._proc = None
                raise InfraUnavailable(f"the sandbox zygote failed: {exc}") from exc
            finally:
                theirs.close()
        if reply.get("op") != "forked":
            ours.close()
            raise InfraUnavailable(f"the sandbox could not start a worker: {reply.get('message', reply)}")
        w = Worker(ours, int(reply["pid"]), self.limits)
        try:
            w.handshake()
        except (EOFError, OSError, ValueError) as exc:
            w.kill()
            raise InfraUnavailable(f"a sandbox worker died while starting: {exc}") from exc
        return w

    def close(self) -> None:
        t = self._spare_thread
        if t is not None:
            t.join(timeout=10)
        with self._lock:
            spares, self._spares = self._spares, []
            spares += [w for ws in self._warm.values() for w in ws]
            self._warm.clear()
        for w in spares:
            w.kill()
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait(timeout=5)
            self._proc = None

    # -- runs ----------------------------------------------------------------------------
    def check(self, source: str) -> list[str]:
        """Load ``source`` in a worker (validation + module body) and return its entry points."""
        w = self.spawn()
        try:
            return w.load(source)
        finally:
            self.release(w)

    def session(self, source: str, tenant: str | None = None) -> "Session":
        """A strategy loaded in a worker for several evaluations in increasing date order
        (the alert path: one tick after another). Close it (or use ``with``) when done.

        With ``tenant`` (the user the run is for), the loaded worker is kept warm after
        ``close`` and the next session of the same source for the same tenant takes it, with
        the strategy's module state re-created (so runs stay independent) instead of forking
        and loading again. A worker only ever serves one strategy of one tenant; it is retired
        once it has used a tenth of the per-run CPU limit, so every run keeps at least 90 % of it.
        """
        return Session(self, source, tenant=tenant)

    def _take_warm(self, key: str) -> Worker | None:
        with self._lock:
            ws = self._warm.get(key)
            while ws:
                w = ws.pop()
                if not ws:
                    del self._warm[key]
                if w.alive:
                    return w
                ws = self._warm.get(key)
        return None

    def _put_warm(self, key: str, w: Worker) -> None:
        evicted: list[Worker] = []
        with self._lock:
            if self._ctrl is None:
                evicted.append(w)
            else:
                self._warm.setdefault(key, []).append(w)
                self._warm.move_to_end(key)
                while sum(len(v) for v in self._warm.values()) > self.warm_limit:
                    k, ws = next(iter(self._warm.items()))
                    evicted.append(ws.pop(0))
                    if not ws:
                        del self._warm[k]
        for old in evicted:
            self.release(old)

    def run(self, source: str, plan: Iterable[tuple[int, list[str]]] | Mapping[str, Sequence[int]], *,
            workers: int | None = None,
            progress: Callable[[int], None] | None = None, order: str = "auto",
            dataset: str | Path | None = None, session: "Session | None" = None,
            tenant: str | None = None) -> EvalOutcome:
        """Evaluate ``classify_symbol`` for every (day, symbol) in ``plan``: (day, symbols)
        pairs, or a mapping symbol -> its days (the cheaper form for long backtests).

        Symbols are split across ``workers`` processes. ``order="symbol"`` evaluates each
        worker's symbols one after another, each over its days in increasing order (cache
        friendly; the module is re-run between symbols so no state crosses from a later
        date to an earlier one); ``order="day"`` evaluates day by day across symbols;
        ``order="auto"`` (default) picks symbol order when there are many days per symbol.

        ``session``: a :class:`Session` of the same ``source`` the caller already loaded (to read
        its entry points, say); it evaluates the first shard instead of a fresh worker, so that
        load is not paid twice. The caller still owns (and closes) it. ``tenant``: keep the
        workers warm for that tenant's next run of ``source`` (see :meth:`session`).

        Raises :class:`StrategyRejected`/:class:`StrategyFailed` when the strategy cannot be
        loaded at all; per-call failures are returned in ``EvalOutcome.errors``.
        """
        if session is not None and session.source != source:
            raise ValueError("session was loaded with a different strategy source")
        if order not in ("symbol", "day", "auto"):
            raise ValueError("order must be 'symbol', 'day' or 'auto'")
        by_sym: dict[str, list[int]] | None = None
        if isinstance(plan, Mapping):
            by_sym = {}
            for s, days in plan.items():
                arr = np.asarray(days, dtype=np.int64)
                if arr.size > 1 and not (arr[1:] > arr[:-1]).all():
                    arr = np.unique(arr)  # sorted, each day once
                if arr.size:
                    by_sym[s] = arr.tolist()
            symbols = sorted(by_sym)
            n_items = sum(len(v) for v in by_sym.values())
        else:
            plan = sorted((int(d), list(s)) for d, s in plan)
            symbols = sorted({s for _, syms in plan for s in syms})
            n_items = sum(len(syms) for _, syms in plan)
        if order == "auto":
            # Symbol-major is cache friendly but re-runs the module per symbol; with few days per
            # symbol (screens, short ranges over big universes) day-major is cheaper.
            order = "symbol" if symbols and n_items / len(symbols) >= 32 else "day"
        if by_sym is not None and order == "day":
            days_of: dict[int, list[str]] = {}
            for sym in symbols:
                for d in by_sym[sym]:
                    days_of.setdefault(d, []).append(sym)
            plan = sorted(days_of.items())
        n_workers = max(1, min(workers or self.workers, len(symbols) or 1))
        shards: list[Sequence[tuple[int, str]]] = []
        wire: list[dict | None] = [None] * n_workers
        if order == "day":
            for k in range(n_workers):
                mine = set(symbols[k::n_workers])
                shards.append([(d, s) for d, syms in plan for s in syms if s in mine])
        else:
            # Symbol-major: cut the (symbol, day) sequence into equal contiguous pieces, so a
            # few long histories (AAPL 2000-2013 next to FB 2012-2013) do not leave a worker
            # idle. A symbol cut in two continues in the next worker with fresh module state,
            # exactly as after any other symbol boundary (dates only ever increase per worker).
            if by_sym is None:
                by_sym = {}
                for d, syms in plan:
                    for s in syms:
                        by_sym.setdefault(s, []).append(d)
            shards, wire = _symbol_shards(symbols, by_sym, n_workers)
        shards = [sh for sh in shards if sh]
        outcomes: list[EvalOutcome | BaseException] = [EvalOutcome() for _ in shards]
        lock = threading.Lock()
        done_total = [0]

        def tick(n: int) -> None:
            if progress is not None:
                with lock:
                    done_total[0] += n
                    progress(done_total[0])

        def work(k: int) -> None:
            try:
                if k == 0 and session is not None:
                    outcomes[k] = session.evaluate(shards[k], tick, wire=wire[k])
                    return
                with Session(self, source, dataset=str(dataset) if dataset else None, tenant=tenant) as sess:
                    outcomes[k] = sess.evaluate(shards[k], tick, wire=wire[k])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcomes[k] = exc

        with self._running():
            if len(shards) == 1:
                work(0)
            else:
                threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(len(shards))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        total = EvalOutcome()
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o
            total.merge(o)
        total.signals.sort(key=lambda r: (r[1], r[0]))
        total.errors.sort(key=lambda r: (r[1], r[0]))
        return total

    def call(self, source: str, fn: str, args: list, day: int | None, seconds: float | None = None) -> Any:
        """Call an optional entry point (``run_screening``...) once in a fresh worker."""
        with Session(self, source) as sess:
            value = sess.call(fn, args, day, seconds)
            self.last_call_demo = sess.last_call_demo
            return value


# symbol -> (rows list, bars kept, the JSON of that overlay change): see Session._overlay_delta.
_FRAGMENTS: dict[str, tuple[list, int, str]] = {}


def _symbol_shards(symbols: list[str], by_sym: Mapping[str, Sequence[int]],
                   n: int) -> tuple[list[Sequence[tuple[int, str]]], list[dict | None]]:
    """Cut the symbol-major sequence of (day, symbol) items into ``n`` equal contiguous pieces;
    each piece and its wire plan (what :func:`_encode_plan` gives for it).

    The wire plans come straight from the per-symbol day lists, which json encodes at C speed:
    ``_encode_plan`` walks every item in Python, one shard after another under the GIL, while
    the workers wait for their plans (5 ms of a 70 ms backtest of the bundled data).
    """
    bounds = []
    total = 0
    for s in symbols:
        days = by_sym[s]
        if len(days):
            bounds.append((s, total, days))
            total += len(days)
    step = max(1, -(-total // n))
    shards: list[Sequence[tuple[int, str]]] = []
    wire: list[dict | None] = []
    for i in range(0, total, step):
        j = min(i + step, total)
        # [symbol, days] runs: the wire plan's own form, shared by the shard (never mutated)
        runs = [[s, list(days[max(i - o, 0):j - o])] for s, o, days in bounds if o < j and o + len(days) > i]
        shards.append(_Runs(runs))
        wire.append({"splan": runs})
    return shards, wire


class _Runs(Sequence):
    """The (day, symbol) items of a symbol-major plan, held as runs of one symbol: a million
    items of a long backtest are a few hundred lists of ints here, not a million tuples. The
    evaluation only looks up the items that signalled or failed."""

    def __init__(self, runs: list[list]) -> None:
        self._runs = runs
        self._starts = []
        n = 0
        for _, days in runs:
            self._starts.append(n)
            n += len(days)
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        r = bisect.bisect_right(self._starts, i) - 1
        s, days = self._runs[r]
        return days[i - self._starts[r]], s


def _encode_plan(items: Sequence[tuple[int, str]]) -> dict:
    """Compact wire form: runs of one day (``plan``) or of one symbol (``splan``)."""
    day_runs = 1 + sum(1 for i in range(1, len(items)) if items[i][0] != items[i - 1][0])
    sym_runs = 1 + sum(1 for i in range(1, len(items)) if items[i][1] != items[i - 1][1])
    out: list[list] = []
    if sym_runs < day_runs:
        for d, s in items:
            if out and out[-1][0] == s:
                out[-1][1].append(d)
            else:
                out.append([s, [d]])
        return {"splan": out}
    for d, s in items:
        if out and out[-1][0] == d:
            out[-1][1].append(s)
        else:
            out.append([d, [s]])
    return {"plan": out}


def _read_results(w: Worker, items: Sequence[tuple[int, str]], pos: int, out: EvalOutcome,
                  tick: Callable[[int], None] | None, silence: float) -> tuple[int, bool]:
    """Read the replies to one ``eval`` of ``items[pos:]`` into ``out``; (items reported, died).

    When the worker died or stopped itself, the call that broke a limit is recorded as an
    error of its item; the caller replaces the worker and continues after the reported items.
    """
    reported = 0
    died = None
    while True:
        try:
            msg = w._recv(silence)
        except socket.timeout:
            died = (reported, f"time limit: the sandbox stopped responding for {silence:g} s")
            break
        except (EOFError, OSError, ValueError) as exc:
            died = (reported, "output limit: the strategy's results were too large" if isinstance(exc, ValueError)
                    else "the sandbox process crashed (memory or CPU limit, or a fatal error)")
            break
        op = msg.get("op")
        if op == "res":
            for i, score, values in msg["sig"]:
                d, s = items[pos + i]
                out.signals.append((s, d, score, values))
            for i, message in msg["err"]:
                d, s = items[pos + i]
                out.errors.append((s, d, message))
            if tick is not None:
                tick(msg["n"] - reported)
            reported = msg["n"]
            if msg.get("done"):
                w.cpu = float(msg.get("cpu", 0.0))
                out.cpu_seconds += w.cpu
                out.demo_data_used = out.demo_data_used or bool(msg.get("demo"))
                break
        elif op == "fatal":
            # The worker stopped itself. "item" is the call that broke a limit (None when
            # the culprit was already reported); sig/err are results since the last flush.
            culprit = msg.get("item")
            stop = reported if culprit is None or culprit < reported else culprit
            for i, score, values in msg.get("sig", []):
                if reported <= i < stop:
                    d, s = items[pos + i]
                    out.signals.append((s, d, score, values))
            for i, message in msg.get("err", []):
                if reported <= i < stop:
                    d, s = items[pos + i]
                    out.errors.append((s, d, message))
            if culprit is not None and culprit >= reported and pos + culprit < len(items):
                d, s = items[pos + culprit]
                out.errors.append((s, d, msg.get("message", "the sandbox stopped")))
                stop = culprit + 1
            if tick is not None:
                tick(stop - reported)
            reported = stop
            died = (None, "")
            break
        else:
            raise StrategyFailed(f"unexpected message from the sandbox: {op!r}")
    if died is not None:
        index, reason = died
        if index is not None and pos + index < len(items):
            d, s = items[pos + index]
            out.errors.append((s, d, reason))
            reported = index + 1
            if tick is not None:
                tick(1)
    return reported, died is not None


class _OverlaySender:
    """Tracks which live bars a worker already holds, so only changes are sent to it."""

    _ov_worker: Worker | None = None
    _ov_sent: dict[str, list[list]]

    def _overlay_delta(self, w: Worker, overlay: dict[str, list[list]]) -> tuple[bool, str | None]:
        """What ``w`` needs to hold ``overlay`` (live bars per symbol, ``[day, o, h, l, c, v]`` rows):
        only the bars it lacks, since it keeps what earlier evaluations sent (a new worker gets all).

        Returns (reset, the delta's JSON or None when nothing changed). Each symbol's part is
        encoded once per (rows list, bars kept) and reused by every session that sends the same
        change: the alert path sends one tick's bars to every active strategy's worker, and
        encoding them per strategy was a fifth of its main-process time."""
        if self._ov_worker is not w:
            self._ov_worker, self._ov_sent = w, {}
            reset = True
        else:
            reset = False
        sent: dict[str, list[list]] = self._ov_sent
        parts = []
        for sym, rows in overlay.items():
            have = sent.get(sym, [])
            if have is rows:
                continue
            if len(have) <= len(rows) and rows[:len(have)] == have:
                keep = len(have)  # the common case: new bars after the ones sent (one C-level compare)
            else:
                keep = 0
                while keep < len(have) and keep < len(rows) and have[keep] == rows[keep]:
                    keep += 1
            if keep < len(have) or keep < len(rows):
                hit = _FRAGMENTS.get(sym)
                if hit is not None and hit[0] is rows and hit[1] == keep:
                    parts.append(hit[2])
                else:
                    frag = json.dumps(sym) + ":" + json.dumps({"keep": keep, "bars": rows[keep:]},
                                                              separators=(",", ":"), allow_nan=False)
                    if len(_FRAGMENTS) > 200_000:
                        _FRAGMENTS.clear()
                    _FRAGMENTS[sym] = (rows, keep, frag)  # holding rows keeps its id from being reused
                    parts.append(frag)
            sent[sym] = rows  # callers hand over new lists, never mutate ones they passed
        if not reset and not parts:
            return False, None
        return reset, '{"reset":' + ("true" if reset else "false") + ',"symbols":{' + ",".join(parts) + "}}"


class Session(_OverlaySender):
    """One strategy loaded in one worker, evaluated in increasing date order.

    A worker that dies (memory, CPU or time limit, crash) costs the call that killed it:
    that call is reported with the limit it broke and the remaining calls continue in a fresh
    worker (at most ``MAX_RESTARTS`` times).
    """

    def __init__(self, sandbox: Sandbox, source: str, dataset: str | None = None, tenant: str | None = None) -> None:
        self.sandbox = sandbox
        self.source = source
        self.dataset = dataset
        # Warm reuse only on the default dataset (spares and warm workers map that one).
        self.warm_key = (f"{tenant}\0{hashlib.sha256(source.encode()).hexdigest()}"
                         if tenant is not None and dataset is None else None)
        self.worker: Worker | None = None
        self.restarts = 0
        self.entries: list[str] = []
        self.last_call_demo = False

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.worker is not None:
            w, self.worker = self.worker, None
            if w.reset_pending and w.alive:
                try:
                    w.finish_reset()
                except (StrategyFailed, StrategyRejected):
                    w.kill()
            if (self.warm_key is not None and w.alive and self.restarts == 0
                    and w.cpu < self.sandbox.limits.cpu_seconds * 0.1):
                self.sandbox._put_warm(self.warm_key, w)
            else:
                self.sandbox.release(w)

    def call(self, fn: str, args: list, day: int | None, seconds: float | None = None) -> Any:
        """Call the optional entry point ``fn`` (``run_screening``...) once, as of ``day``.

        Raises :class:`StrategyFailed` when the strategy has no such function, it fails, or it
        breaks a sandbox limit (the worker is then replaced for later calls).
        """
        w = self._ensure_worker()
        if fn not in self.entries:
            raise StrategyFailed(f"the strategy defines no {fn}")
        limit = seconds or self.sandbox.limits.call_seconds * 4
        send_msg(w.sock, {"op": "call", "fn": fn, "args": args, "day": day, "seconds": limit})
        if not self._finish_reset(w):
            return self.call(fn, args, day, seconds)
        try:
            msg = w._recv(limit + 5)
        except (EOFError, OSError, ValueError, socket.timeout):
            w.kill()
            self.sandbox.release(w)
            self.worker = None
            raise StrategyFailed(f"{fn} broke the sandbox limits (memory, CPU or time)") from None
        if msg.get("op") == "value":
            self.last_call_demo = bool(msg.get("demo"))
            w.cpu = float(msg.get("cpu", w.cpu))
            return msg["value"]
        if msg.get("op") == "fatal":
            w.kill()
            self.sandbox.release(w)
            self.worker = None
            raise StrategyFailed(msg.get("message", f"{fn} stopped"))
        raise StrategyFailed(msg.get("message", f"{fn} failed"))

    def _finish_reset(self, w: Worker) -> bool:
        """Read a worker's pending reset (or load) reply. A warm worker that fails its reset is
        dropped (False: start over with a fresh worker, which loads the strategy normally); a
        fresh worker's failed load is the strategy's own failure and is raised."""
        fresh = w.load_pending
        try:
            w.finish_reset()
        except (StrategyFailed, StrategyRejected):
            w.kill()
            self.sandbox.release(w)
            self.worker = None
            if fresh:
                raise
            self.warm_key = None  # this session now loads normally
            return False
        self.entries = w.entries
        return True

    def _ensure_worker(self, pipelined: bool = False) -> Worker:
        """The session's worker with the strategy loaded (or its load sent, when
        ``pipelined``: the caller sends its request and reads the reply through
        :meth:`_finish_reset` first)."""
        if self.worker is None and self.warm_key is not None and self.restarts == 0:
            w = self.sandbox._take_warm(self.warm_key)
            if w is not None:
                try:
                    w.send_reset()
                    self.entries = w.entries
                    self.worker = w
                    return w
                except OSError:
                    w.kill()
                    self.sandbox.release(w)  # fall through to a fresh worker
        if self.worker is None or not self.worker.alive:
            w = self.sandbox.spawn(self.dataset)
            try:
                if pipelined:
                    w.send_load(self.source)
                else:
                    self.entries = w.load(self.source)
            except BaseException:
                self.sandbox.release(w)
                raise
            self.worker = w
        return self.worker

    def evaluate(self, items: Sequence[tuple[int, str]], tick: Callable[[int], None] | None = None,
                 overlay: dict[str, list[list]] | None = None, wire: dict | None = None) -> EvalOutcome:
        """Evaluate ``classify_symbol`` for each (day, symbol) of ``items``, in that order.

        ``wire``: ``items`` already in the worker's plan form (``{"splan": ...}``, see
        :func:`_encode_plan`), when the caller built it more cheaply.

        ``overlay``: live bars beyond the dataset per symbol (``[[day, open, high, low, close,
        volume], ...]``, dates increasing), visible to the strategy from their date on. The
        worker keeps them between calls, so only changes travel after the first call.
        """
        out = EvalOutcome()
        limits = self.sandbox.limits
        pos = 0
        while pos < len(items):
            w = self._ensure_worker(pipelined=True)
            delta = self._overlay_delta(w, overlay)[1] if overlay is not None else None
            plan = wire if pos == 0 and wire is not None else _encode_plan(items[pos:])
            send_msg(w.sock, {"op": "eval", **plan}, raw={"overlay": delta} if delta else None)
            if not self._finish_reset(w):
                continue
            reported, dead = _read_results(w, items, pos, out, tick, limits.call_seconds + 5.0)
            if dead:
                w.kill()
                self.sandbox.release(w)
                self.worker = None
            out.evaluated += reported
            pos += reported
            if dead and pos < len(items):
                self.restarts += 1
                out.worker_restarts += 1
                if self.restarts > MAX_RESTARTS:
                    for d, s in items[pos:]:
                        out.errors.append((s, d, f"skipped: the strategy broke the sandbox limits {self.restarts} times"))
                    out.evaluated += len(items) - pos
                    break
        return out


class Batch(_OverlaySender):
    """Several strategies of one tenant loaded side by side in one worker, one slot each, and
    evaluated together (decision 0006): one live-bar overlay update per worker instead of one
    per strategy, and one pipelined exchange per tick.

    Slots share the process, not their state: each has its own module globals and its own last
    date (the worker re-runs a stateful module when *its* dates go backwards). A strategy that
    cannot load is left out (``load_errors``) without holding back the others; one that breaks
    a limit costs its call, and the worker is replaced (all slots reloaded) for what is left.
    Only ever give a batch the strategies of one tenant: a strategy that exhausts the worker's
    memory or CPU stops its neighbours' evaluations too.
    """

    #: Fraction of the per-process CPU budget at which a batch's worker is replaced (before the
    #: budget runs out mid-tick), and at which its successor starts loading in the background.
    RETIRE_AT = 0.5
    PREPARE_AT = 0.4

    def __init__(self, sandbox: Sandbox, sources: Sequence[str]) -> None:
        self.sandbox = sandbox
        self.sources = list(sources)
        self.worker: Worker | None = None
        self.load_errors: dict[int, StrategyFailed | StrategyRejected] = {}
        self.restarts = 0
        self.successors_used = 0  # workers taken over ready-loaded from the background (tests, bench)
        self._successor: Future | None = None

    def close(self) -> None:
        if self.worker is not None:
            w, self.worker = self.worker, None
            self.sandbox.release(w)
        nxt, self._successor = self._successor, None
        if nxt is not None:
            nxt.add_done_callback(self._discard)

    def _discard(self, fut: Future) -> None:
        w = None if fut.cancelled() or fut.exception() is not None else fut.result()
        if w is not None:
            self.sandbox.release(w)

    def _load_all(self, errors: dict[int, StrategyFailed | StrategyRejected]) -> Worker:
        """A new worker with every slot loaded; slots that fail go to ``errors``."""
        while True:
            w = self.sandbox.spawn()
            died = False
            for k, src in enumerate(self.sources):
                if k in errors:
                    continue
                try:
                    w.load(src, slot=k)
                except (StrategyFailed, StrategyRejected) as exc:
                    errors[k] = exc
                    if not w.alive:  # its load killed the worker: the others load again without it
                        died = True
                        break
            if not died:
                return w
            self.sandbox.release(w)

    def _ensure_worker(self) -> Worker:
        if self.worker is not None and self.worker.alive:
            return self.worker
        self.worker = self._load_all(self.load_errors)
        return self.worker

    def _prepare_successor(self) -> None:
        """Start loading this batch's next worker in the background: loading every slot takes a
        few ms per strategy, which the tick that retires the current worker would otherwise
        wait for (the last batch of that tick ran a quarter second behind the others)."""
        if self._successor is not None:
            return
        errors = dict(self.load_errors)

        def build() -> Worker | None:
            w = self._load_all(errors)
            if errors != self.load_errors:  # a slot failed only now: let the normal path report it
                self.sandbox.release(w)
                return None
            return w

        self._successor = _successor_pool().submit(build)

    def _take_successor(self) -> Worker | None:
        nxt, self._successor = self._successor, None
        if nxt is None:
            return None
        try:
            w = nxt.result()
        except Exception:  # noqa: BLE001 - the sandbox could not start one: the normal path retries
            return None
        if w is not None and not w.alive:
            self.sandbox.release(w)
            return None
        return w

    def evaluate(self, jobs: Sequence[tuple[int, list[tuple[int, str]]]],
                 overlay: dict[str, list[list]] | None = None,
                 on_done: Callable[[int, EvalOutcome], None] | None = None) -> dict[int, EvalOutcome]:
        """Evaluate each ``(slot, items)`` job like :meth:`Session.evaluate`; outcomes by slot.

        Slots in ``load_errors`` get no outcome. Messages are pipelined two deep: the worker
        starts the next job while this side reads the previous one's results.

        ``on_done(slot, outcome)`` is called as each job's outcome is complete, while the worker
        goes on with the next job (the alert path claims and publishes one strategy's alerts
        meanwhile). An exception it raises does not break the exchange with the worker: the
        remaining jobs are read (and handed to ``on_done``) and the first exception is raised
        at the end.
        """
        limits = self.sandbox.limits
        w = self.worker
        if w is not None and (not w.alive or w.cpu > limits.cpu_seconds * self.RETIRE_AT):
            # Retire before the per-process CPU budget runs out mid-tick, for the successor
            # loaded in the background when there is one.
            nxt = self._take_successor()
            self.close()
            if nxt is not None:
                self.worker = nxt
                self.successors_used += 1
        self.restarts = 0
        outs: dict[int, EvalOutcome] = {}
        failure: list[BaseException] = []

        def done(slot: int) -> None:
            if on_done is None:
                return
            try:
                on_done(slot, outs[slot])
            except Exception as exc:  # noqa: BLE001 - raised once every job is read (see above)
                if not failure:
                    failure.append(exc)

        pending: list[list] = [[k, items, 0] for k, items in jobs if items]
        while pending:
            w = self._ensure_worker()
            pending = [job for job in pending if job[0] not in self.load_errors]
            if not pending:
                break
            for job in pending:
                outs.setdefault(job[0], EvalOutcome())
            delta = self._overlay_delta(w, overlay)[1] if overlay is not None else None
            plans: dict[int, dict] = {}  # jobs usually share one list of items: encode it once

            def send(j: int) -> None:
                k, items, pos = pending[j]
                if pos:
                    plan = _encode_plan(items[pos:])
                else:
                    plan = plans.get(id(items))
                    if plan is None:
                        plan = plans[id(items)] = _encode_plan(items)
                try:
                    send_msg(w.sock, {"op": "eval", "slot": k, **plan},
                             raw={"overlay": delta} if delta and j == 0 else None)
                except OSError:
                    pass  # the worker died: reading the current job's results says how

            send(0)
            dead_at = None
            for j, job in enumerate(pending):
                if j + 1 < len(pending):
                    send(j + 1)
                k, items, pos = job
                reported, dead = _read_results(w, items, pos, outs[k], None, limits.call_seconds + 5.0)
                outs[k].evaluated += reported
                job[2] = pos + reported
                if dead:
                    dead_at = j
                    break
                done(k)
            if dead_at is None:
                break
            w.kill()
            self.sandbox.release(w)
            self.worker = None
            self.restarts += 1
            outs[pending[dead_at][0]].worker_restarts += 1
            rest = pending[dead_at:]
            for job in rest:
                if job[2] >= len(job[1]):
                    done(job[0])  # the worker died after the job's last call: nothing to redo
            pending = [job for job in rest if job[2] < len(job[1])]
            if self.restarts > MAX_RESTARTS:
                for k, items, pos in pending:
                    for d, sym in items[pos:]:
                        outs[k].errors.append((sym, d, f"skipped: the strategies broke the sandbox limits "
                                                       f"{self.restarts} times"))
                    outs[k].evaluated += len(items) - pos
                    done(k)
                break
        w = self.worker
        if w is not None and w.alive and w.cpu > limits.cpu_seconds * self.PREPARE_AT:
            self._prepare_successor()
        if failure:
            raise failure[0]
        return outs


_SUCCESSORS: list[ThreadPoolExecutor] = []


def _successor_pool() -> ThreadPoolExecutor:
    """One background thread that loads batches' next workers (created on first use)."""
    if not _SUCCESSORS:
        with _SUCCESSOR_LOCK:
            if not _SUCCESSORS:
                _SUCCESSORS.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="stratagem-successor"))
    return _SUCCESSORS[0]


_SUCCESSOR_LOCK = threading.Lock()
