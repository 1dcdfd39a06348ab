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
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InfraUnavailable, StrategyFailed, StrategyRejected
from ..settings import SandboxLimits
from .worker import recv_msg, send_msg

MAX_RESTARTS = 5


@dataclass
class EvalOutcome:
    """Results of evaluating one strategy over a plan of (day, symbols)."""

    signals: list[tuple[str, int, float | None, dict]] = field(default_factory=list)
    errors: list[tuple[str, int, str]] = field(default_factory=list)
    evaluated: int = 0
    worker_restarts: int = 0
    cpu_seconds: float = 0.0
    demo_data_used: bool = False


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

    def _recv(self, timeout: float) -> Any:
        self.sock.settimeout(timeout)
        return recv_msg(self.sock, max_frame=max(self.limits.max_output_bytes * 64, 4 << 20))

    def handshake(self) -> None:
        msg = self._recv(30)
        self.seccomp = bool(msg.get("seccomp"))

    def load(self, source: str) -> list[str]:
        try:
            send_msg(self.sock, {"op": "load", "source": source})
            msg = self._recv(self.limits.call_seconds * 2 + 10)
        except (EOFError, OSError, ValueError) as exc:
            self.kill()
            why = "it stopped responding" if isinstance(exc, socket.timeout) else "its process died"
            raise StrategyFailed(f"the strategy could not be loaded in the sandbox: {why} "
                                 "(a memory, CPU or time limit, or a crash)") from None
        if msg.get("op") == "loaded":
            return list(msg["entries"])
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

    def spawn(self) -> Worker:
        """A fresh, never-used worker: a pre-forked spare when there is one, else a new fork.

        No worker ever serves two runs. Spares are forked (and warmed) after a run ends, in
        the background, so the next run neither waits for a fork nor competes with one.
        """
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
        """End a worker's run (the process exits) and top the spares up in the background."""
        w.close()
        if not self.prefork or self._ctrl is None:
            return
        with self._lock:
            if len(self._spares) >= self.workers or (self._spare_thread is not None and self._spare_thread.is_alive()):
                return
            self._spare_thread = threading.Thread(target=self._refill, daemon=True)
            self._spare_thread.start()

    def _refill(self) -> None:
        while True:
            with self._lock:
                if len(self._spares) >= self.workers or self._ctrl is None:
                    return
            try:
                w = self._fork()
            except Exception:  # noqa: BLE001 - the next spawn() forks synchronously and reports
                return
            with self._lock:
                if self._ctrl is None:
                    w.kill()
                    return
                self._spares.append(w)

    def _fork(self) -> Worker:
        with self._lock:
            self._start_locked()
            assert self._ctrl is not None
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                req = {"dataset": self.dataset_path, "limits": {
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

    def run(self, source: str, plan: Iterable[tuple[int, list[str]]], *, workers: int | None = None,
            progress: Callable[[int], None] | None = None) -> EvalOutcome:
        """Evaluate ``classify_symbol`` for every (day, symbol) in ``plan``.

        Raises :class:`StrategyRejected`/:class:`StrategyFailed` when the strategy cannot be
        loaded at all; per-call failures are returned in ``EvalOutcome.errors``.
        """
        plan = [(int(d), list(s)) for d, s in plan]
        symbols = sorted({s for _, syms in plan for s in syms})
        n_workers = max(1, min(workers or self.workers, len(symbols) or 1))
        shards: list[list[tuple[int, list[str]]]] = []
        for k in range(n_workers):
            mine = set(symbols[k::n_workers])
            shard = [(d, [s for s in syms if s in mine]) for d, syms in plan]
            shards.append([(d, syms) for d, syms in shard if syms])
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
                outcomes[k] = self._run_shard(source, shards[k], tick)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcomes[k] = exc

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
            total.signals.extend(o.signals)
            total.errors.extend(o.errors)
            total.evaluated += o.evaluated
            total.worker_restarts += o.worker_restarts
            total.cpu_seconds += o.cpu_seconds
            total.demo_data_used = total.demo_data_used or o.demo_data_used
        total.signals.sort(key=lambda r: (r[1], r[0]))
        total.errors.sort(key=lambda r: (r[1], r[0]))
        return total

    def _run_shard(self, source: str, shard: list[tuple[int, list[str]]], tick: Callable[[int], None]) -> EvalOutcome:
        out = EvalOutcome()
        items: list[tuple[int, str]] = [(d, s) for d, syms in shard for s in syms]
        pos = 0
        restarts = 0
        while pos < len(items):
            w = self.spawn()
            try:
                w.load(source)
                remaining = items[pos:]
                if pos == 0:
                    sub_plan: list = shard
                else:
                    sub_plan = []
                    for d, s in remaining:
                        if sub_plan and sub_plan[-1][0] == d:
                            sub_plan[-1][1].append(s)
                        else:
                            sub_plan.append([d, [s]])
                send_msg(w.sock, {"op": "eval", "plan": sub_plan})
                reported = 0
                silence = self.limits.call_seconds + 5.0
                while True:
                    try:
                        msg = w._recv(silence)
                    except socket.timeout:
                        self._record_death(out, items, pos + reported,
                                           f"time limit: the sandbox stopped responding for {silence:g} s")
                        break
                    except (EOFError, OSError, ValueError) as exc:
                        reason = ("output limit: the strategy's results were too large" if isinstance(exc, ValueError)
                                  else "the sandbox process crashed (memory or CPU limit, or a fatal error)")
                        self._record_death(out, items, pos + reported, reason)
                        break
                    op = msg.get("op")
                    if op == "res":
                        for i, score, values in msg["sig"]:
                            d, s = items[pos + i]
                            out.signals.append((s, d, score, values))
                        for i, message in msg["err"]:
                            d, s = items[pos + i]
                            out.errors.append((s, d, message))
                        tick(msg["n"] - reported)
                        reported = msg["n"]
                        if msg.get("done"):
                            out.cpu_seconds += float(msg.get("cpu", 0.0))
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
                        tick(stop - reported)
                        reported = stop
                        break
                    else:
                        raise StrategyFailed(f"unexpected message from the sandbox: {op!r}")
                if reported >= len(remaining):
                    out.evaluated += reported
                    pos = len(items)
                    break
                out.evaluated += reported
                pos += reported
                restarts += 1
                out.worker_restarts += 1
                if restarts > MAX_RESTARTS:
                    for d, s in items[pos:]:
                        out.errors.append((s, d, f"skipped: the strategy broke the sandbox limits {restarts} times"))
                    pos = len(items)
            finally:
                self.release(w)
        return out

    @staticmethod
    def _record_death(out: EvalOutcome, items: list, index: int, reason: str) -> None:
        if index < len(items):
            d, s = items[index]
            out.errors.append((s, d, reason))

    def call(self, source: str, fn: str, args: list, day: int | None, seconds: float | None = None) -> Any:
        """Call an optional entry point (``run_screening``...) once in a fresh worker."""
        w = self.spawn()
        try:
            entries = w.load(source)
            if fn not in entries:
                raise StrategyFailed(f"the strategy defines no {fn}")
            send_msg(w.sock, {"op": "call", "fn": fn, "args": args, "day": day,
                              "seconds": seconds or self.limits.call_seconds * 4})
            try:
                msg = w._recv((seconds or self.limits.call_seconds * 4) + 5)
            except (EOFError, OSError, ValueError, socket.timeout):
                raise StrategyFailed(f"{fn} broke the sandbox limits (memory, CPU or time)") from None
            if msg.get("op") == "value":
                self.last_call_demo = bool(msg.get("demo"))
                return msg["value"]
            if msg.get("op") == "fatal":
                raise StrategyFailed(msg.get("message", f"{fn} stopped"))
            raise StrategyFailed(msg.get("message", f"{fn} failed"))
        finally:
            self.release(w)
