"""The sandbox processes: a clean, warm zygote and the per-run workers it forks.

``python -I -m stratagem.sandbox.worker --zygote FD`` starts the zygote with an empty
environment. It imports numpy, RestrictedPython and the runtime, warms them up with a
trusted strategy (so later lazy imports never need the filesystem), then forks one worker
per strategy run on request. A worker is never reused for another strategy: whatever a
strategy does to its process dies with it. Before touching untrusted code a worker
applies rlimits (memory, CPU, file size, processes) and a seccomp filter (no open, no
sockets, no exec or fork, no signals to others) - see :mod:`.oslimits`.

Wire format on every channel: 4-byte big-endian length, then one JSON document.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
from itertools import chain, repeat
from typing import Any

MAX_FRAME = 32 << 20
FLUSH_SECONDS = 0.2


# -- framing ---------------------------------------------------------------------------------
def send_msg(sock: socket.socket, obj: Any, raw: dict[str, str] | None = None) -> None:
    """Send ``obj`` as one JSON frame; ``raw`` adds members already encoded as JSON text."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    if raw:
        more = ",".join(json.dumps(k) + ":" + v for k, v in raw.items())
        text = text[:-1] + ("," if len(text) > 2 else "") + more + "}"
    data = text.encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("channel closed")
        buf += chunk
    return bytes(buf)


def recv_msg(sock: socket.socket, max_frame: int = MAX_FRAME) -> Any:
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > max_frame:
        raise ValueError(f"frame of {n} bytes exceeds the {max_frame}-byte output limit")
    return json.loads(_recv_exact(sock, n))


# -- worker ----------------------------------------------------------------------------------
class CallTimeout(BaseException):
    """Raised in the strategy when one call exceeds its wall-clock limit (not an Exception,
    so ``except Exception`` in a strategy cannot swallow it)."""


class _State:
    in_strategy = False
    fired = 0
    cpu_exceeded = False
    item = -1
    # The call the alarm last saw running (``item``) and when it first saw it: the eval loop
    # only counts items, so a call costs one attribute write instead of a clock read; the
    # limit then holds to within one tick.
    seen = -1
    t0 = 0.0
    limit = 5.0

    def timing(self, limit: float) -> None:
        """Start timing a load, reset or call (not an eval item) now."""
        self.limit, self.fired, self.t0, self.seen = limit, 0, time.monotonic(), self.item


TICK_SECONDS = 0.05
_FALSE = (False, None, {})
_TRUE = (True, None, {})


def _jsonable(obj: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Plain JSON data from a strategy's return value (dicts, lists, finite numbers, strings)."""
    from .runtime import _finite

    if budget is None:
        # [nodes, characters of text]: 500k characters stay under the engine's 4 MB frame limit
        # even when every one is escaped as \uXXXX, so a big result is refused here, by name.
        budget = [20_000, 500_000]
    budget[0] -= 1
    if budget[0] < 0 or depth > 8:
        raise ValueError("returned value is too large or too deeply nested")
    if obj is None or isinstance(obj, bool):
        return obj
    import numpy as np

    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, float, np.integer, np.floating)):
        return _finite(obj)
    if isinstance(obj, str):
        return _text(obj[:1000], budget)
    if isinstance(obj, dict):
        return {_text(str(k)[:100], budget): _jsonable(v, depth + 1, budget) for k, v in list(obj.items())[:1000]}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, depth + 1, budget) for v in list(obj)[:5000]]
    raise ValueError(f"returned value contains a {type(obj).__name__}; only dicts, lists, numbers and strings")


def _text(s: str, budget: list[int]) -> str:
    budget[1] -= len(s)
    if budget[1] < 0:
        raise ValueError("returned value is too large (more than 500,000 characters of text)")
    return str(s)  # an exact str, never a subclass


def worker_main(chan: socket.socket, pit: Any, limits: dict, warm: bool = True) -> None:
    """Serve one strategy run on ``chan``; never returns (exits the process). ``warm``: walk
    the data first (spares, forked ahead of need, do; a worker forked while a run waits for it
    does not, since the walk would cost that run more than it saves)."""
    from . import oslimits
    from .runtime import LoadedStrategy, StrategyError, describe_exception, sanitize_result
    from ..errors import StrategyRejected

    oslimits.set_parent_death_signal(signal.SIGKILL)
    state = _State()
    call_seconds = float(limits.get("call_seconds", 5.0))
    memory_mb = int(limits.get("memory_mb", 128))
    cpu_seconds = float(limits.get("cpu_seconds", 30.0))
    cache_bytes = 32 << 20
    data_functions = pit.functions()
    # Trusted warm-up in this very process, before any untrusted code: it takes the copy-on-write
    # faults and first-use costs now (workers are forked ahead of need), not during the run.
    if warm:
        _warm_up_run(pit.market, pit.reference, pit)
        _touch_data(pit)
    pit.set_asof(None)
    pit.demo_used = False

    def fatal(kind: str, message: str, pending: dict | None = None, culprit: bool = True) -> None:
        try:
            send_msg(chan, {"op": "fatal", "kind": kind, "message": message,
                            "item": state.item if culprit else None,
                            "sig": (pending or {}).get("sig", []), "err": (pending or {}).get("err", [])})
        finally:
            os._exit(3)

    # Results not yet flushed to the engine; a fatal stop sends them along with its reason.
    buffers: dict[str, list] = {"sig": [], "err": []}

    def on_alarm(signum: int, frame: Any) -> None:
        # A periodic tick (no syscall per call): stop the strategy once its call is over time.
        if not state.in_strategy:
            return
        now = time.monotonic()
        if state.item != state.seen:
            state.seen, state.t0 = state.item, now  # a new call since the last tick
            return
        if now - state.t0 <= state.limit:
            return
        state.fired += 1
        if state.fired >= 4:
            # The strategy swallowed the stop three times (bare except): end the process.
            fatal("time", f"time limit: one call ran longer than {state.limit:g} s and ignored the stop",
                  buffers)
        raise CallTimeout()

    def on_xcpu(signum: int, frame: Any) -> None:
        state.cpu_exceeded = True
        if state.in_strategy:
            fatal("cpu", f"CPU limit: the run used more than {cpu_seconds:g} s of CPU", buffers)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGXCPU, on_xcpu)
    base = oslimits.current_vm_data_bytes()
    oslimits.apply_rlimits(data_bytes=base + (memory_mb << 20) + cache_bytes + (16 << 20),
                           cpu_seconds=cpu_seconds, fsize=0, nofile=64, core=0, nproc=0)
    seccomp = oslimits.install_seccomp()

    strategy: LoadedStrategy | None = None
    last_day = -(1 << 62)
    # A worker may hold several strategies of one tenant (the alert path batches them, see
    # pool.Batch): each in a slot with its own module and its own last date. The engine
    # addresses a slot per message; the locals above are the current slot's.
    slots: dict[int, tuple[LoadedStrategy | None, int]] = {}
    cur_slot = 0
    send_msg(chan, {"op": "ready", "pid": os.getpid(), "seccomp": seccomp})
    while True:
        try:
            msg = recv_msg(chan)
        except (EOFError, OSError, ValueError):
            os._exit(0)
        op = msg.get("op")
        if op == "exit":
            os._exit(0)
        slot = msg.get("slot", 0)
        if slot != cur_slot:
            slots[cur_slot] = (strategy, last_day)
            strategy, last_day = slots.pop(slot, (None, -(1 << 62)))
            cur_slot = slot
        if op == "load" or (op == "reset" and strategy is not None):
            try:
                state.timing(call_seconds * 2)
                state.in_strategy = True
                signal.setitimer(signal.ITIMER_REAL, TICK_SECONDS, TICK_SECONDS)
                if op == "reset":
                    # A warm worker's next run of the same strategy: fresh module state, any
                    # date allowed again, no demo flag carried over. A stateless module has no
                    # state to refresh (LoadedStrategy.stateless).
                    if not strategy.stateless:
                        strategy.reset()
                    last_day = -(1 << 62)
                    pit.set_asof(None)
                    pit.demo_used = False
                else:
                    strategy = LoadedStrategy(msg["source"], data_functions)
                state.in_strategy = False
                entries = [n for n in ("classify_symbol", "run_screening", "run_batch_backtest", "run_realtime_scan")
                           if strategy.entry(n)]
                send_msg(chan, {"op": "loaded", "entries": entries})
            except StrategyRejected as exc:
                send_msg(chan, {"op": "error", "kind": "rejected", "message": exc.message, "details": exc.details})
            except StrategyError as exc:
                send_msg(chan, {"op": "error", "kind": "failed", "message": str(exc)})
            except CallTimeout:
                send_msg(chan, {"op": "error", "kind": "failed",
                                "message": f"time limit: loading the strategy took longer than {call_seconds * 2:g} s"})
            except MemoryError:
                fatal("memory", f"memory limit: loading the strategy needed more than {memory_mb} MB")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                state.in_strategy = False
            continue
        if strategy is None:
            send_msg(chan, {"op": "error", "kind": "failed", "message": "no strategy loaded"})
            continue
        if op == "eval":
            if msg.get("overlay"):
                # Live bars beyond the dataset (engine-built, trusted): visible from their date on.
                try:
                    ov = msg["overlay"]
                    pit.apply_overlay(ov.get("symbols"), reset=bool(ov.get("reset")))
                except ValueError as exc:
                    fatal("failed", f"the engine sent a malformed live-bar overlay: {exc}", culprit=False)
            sig: list = []
            err: list = []
            buffers["sig"], buffers["err"] = sig, err
            pit.demo_used = False  # reported per evaluation (the engine ORs them)
            n = 0
            tainted = None
            last_flush = time.monotonic()
            classify = strategy.classify
            state.timing(call_seconds)
            state.seen = state.item = -1
            signal.setitimer(signal.ITIMER_REAL, TICK_SECONDS, TICK_SECONDS)
            plan = msg.get("plan")
            # (day, symbol) pairs at C speed: zip hands the loop one reused tuple.
            if plan is None:  # symbol-major runs: [[symbol, [day, ...]], ...]
                sp = msg["splan"]
                items = zip(chain.from_iterable(days for _, days in sp),
                            chain.from_iterable(repeat(sym, len(days)) for sym, days in sp))
            else:
                items = zip(chain.from_iterable(repeat(d, len(syms)) for d, syms in plan),
                            chain.from_iterable(syms for _, syms in plan))
            stateless = strategy.stateless
            for day, sym in items:
                if day != last_day:
                    if day < last_day and not stateless:
                        # Never let module state carry information from a later date to an earlier
                        # one. (A stateless module has none: re-running it would change nothing.)
                        state.timing(call_seconds * 2)
                        state.in_strategy = True
                        try:
                            strategy.reset()
                        except BaseException as exc:  # noqa: BLE001 - the module body is strategy code
                            fatal("failed", f"the strategy failed while reloading: {describe_exception(exc)}",
                                  buffers, culprit=False)
                        finally:
                            state.in_strategy = False
                            state.limit = call_seconds
                        classify = strategy.classify
                    last_day = day
                    pit.asof = day  # set_asof without the call: plan days are ints
                state.item = n
                error = None
                state.in_strategy = True
                try:
                    res = classify(sym)
                    # Plain bools are the common case: skip the general sanitiser.
                    if res is False or (type(res) is dict and res.get("signal") is False):
                        res = _FALSE  # the common case: no signal, nothing to report
                    else:
                        res = _TRUE if res is True else sanitize_result(res)
                except CallTimeout:
                    error = f"time limit: classify_symbol ran longer than {call_seconds:g} s"
                except MemoryError:
                    error = f"memory limit: the strategy tried to use more than {memory_mb} MB"
                    tainted = ("memory", error)
                except StrategyError as exc:
                    error = str(exc)
                except BaseException as exc:  # noqa: BLE001 - report every strategy failure
                    error = describe_exception(exc)
                finally:
                    state.in_strategy = False
                if state.fired:
                    state.fired = 0
                    if error is None:
                        error = f"time limit: classify_symbol ran longer than {call_seconds:g} s"
                if error is not None:
                    err.append([n, error])
                elif res[0]:
                    sig.append([n, res[1], res[2]])
                n += 1
                if tainted or state.cpu_exceeded:
                    send_msg(chan, {"op": "res", "n": n, "sig": sig, "err": err})
                    if tainted:
                        fatal(tainted[0], tainted[1], culprit=False)
                    fatal("cpu", f"CPU limit: the run used more than {cpu_seconds:g} s of CPU", culprit=False)
                if n % 256 == 0 and time.monotonic() - last_flush > FLUSH_SECONDS:
                    send_msg(chan, {"op": "res", "n": n, "sig": sig, "err": err})
                    sig, err = [], []
                    buffers["sig"], buffers["err"] = sig, err
                    last_flush = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, 0)
            send_msg(chan, {"op": "res", "n": n, "sig": sig, "err": err, "done": True,
                            "cpu": time.process_time(), "demo": pit.demo_used})
            buffers["sig"], buffers["err"] = [], []
            continue
        if op == "call":
            fn = strategy.entry(msg["fn"])
            if fn is None:
                send_msg(chan, {"op": "error", "kind": "failed", "message": f"the strategy defines no {msg['fn']}"})
                continue
            day = msg.get("day")
            if day is not None and day < last_day and not strategy.stateless:
                try:
                    strategy.reset()
                except BaseException as exc:  # noqa: BLE001
                    send_msg(chan, {"op": "error", "kind": "failed", "message": describe_exception(exc)})
                    continue
                fn = strategy.entry(msg["fn"])
            if day is not None:
                last_day = day
            pit.set_asof(day)
            pit.demo_used = False
            state.timing(float(msg.get("seconds", call_seconds)))
            state.in_strategy = True
            signal.setitimer(signal.ITIMER_REAL, TICK_SECONDS, TICK_SECONDS)
            try:
                value = _jsonable(fn(*msg.get("args", [])))
                reply = {"op": "value", "value": value, "demo": pit.demo_used, "cpu": time.process_time()}
            except CallTimeout:
                reply = {"op": "error", "kind": "failed", "message": f"time limit: {msg['fn']} ran too long"}
            except MemoryError:
                fatal("memory", f"memory limit: the strategy tried to use more than {memory_mb} MB")
            except BaseException as exc:  # noqa: BLE001
                reply = {"op": "error", "kind": "failed", "message": f"{msg['fn']} failed: {describe_exception(exc)}"}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                state.in_strategy = False
            if state.fired and reply.get("op") == "value":
                reply = {"op": "error", "kind": "failed", "message": f"time limit: {msg['fn']} ran too long"}
            send_msg(chan, reply)
            continue
        send_msg(chan, {"op": "error", "kind": "failed", "message": f"unknown op {op!r}"})


# -- zygote ----------------------------------------------------------------------------------
_WARMUP = '''
import math, statistics, datetime
from datetime import datetime as dt, timedelta
def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=300)
    c = np.array(d['close'], dtype=float)
    if len(c) < 30:
        return False
    x = [1, 2]
    x[0] += 1
    s = '{:.2f} {}'.format(c[-1], symbol) + f"{c[-1]:,.1f}" + '%.1f' % c[-1]
    v = (np.mean(c), np.std(c), np.percentile(c, 50), np.median(c), np.polyfit(np.arange(5), c[-5:], 1),
         np.convolve(c, np.ones(5) / 5, mode='valid'), np.linalg.norm(c[-5:]), np.corrcoef(c[-10:], c[-20:-10]),
         statistics.mean(c[-5:]), statistics.stdev(c[-5:]), statistics.median(c[-5:]), math.log(c[-1]),
         dt.strptime('2012-01-05', '%Y-%m-%d') + timedelta(days=1), datetime.date(2012, 1, 1).isoformat(),
         sorted(c[-5:].tolist()), np.nanmean(c), np.diff(c).cumsum()[-1], np.where(c > c.mean(), 1, 0).sum(),
         np.histogram(c[-20:], bins=4), np.unique(np.round(c[-20:])), np.quantile(c, 0.9))
    get_fundamental_data(symbol); get_earnings_data(symbol); scan_universe({'min_price': 1})
    get_sector_data('Technology', 5); get_multiple_symbols_data([symbol], '1d', 5)
    try:
        get_price_data(symbol, '1h')
    except Exception as e:
        str(e)
    return {"signal": True, "score": float(c[-1]), "s": s}
'''


def _warm_up(market: Any, reference: Any) -> None:
    """Run a trusted strategy once so every lazy import happens before any seccomp filter."""
    from ..data.pit import PointInTime
    from . import guards
    from .runtime import LoadedStrategy, sanitize_result

    guards.WARMING_UP[0] = True
    try:
        _warm_up_run(market, reference)
    finally:
        guards.WARMING_UP[0] = False


def _touch_data(pit: Any, stride: int = 5) -> None:
    """Walk the data the way a backtest does (dates, bars, regime arrays), in this process.

    After a fork the page tables for the mapped data and the copy-on-write state of the
    shared objects start cold; paying for that here, in a spare worker, keeps it out of runs.
    """
    import numpy as np

    market = pit.market
    cal = np.asarray(market.calendar())
    symbols = market.symbols
    # Bounded whatever the dataset's size: a few thousand calls warm the paths; more would
    # only delay the spare (for big universes the per-symbol touch is spread thin).
    budget = 4000
    stride = max(stride, (len(cal) * len(symbols)) // budget + 1)
    if len(symbols) > budget:
        symbols = symbols[:: len(symbols) // budget + 1]
    for day in cal[::stride].tolist():
        pit.set_asof(day)
        for sym in symbols:
            d = pit.price_data(sym, "1d", 30)
            if d["close"]:
                d["close"][-1]


def _warm_up_run(market: Any, reference: Any, pit: Any = None) -> None:
    from ..data.pit import PointInTime
    from .runtime import LoadedStrategy, sanitize_result

    pit = pit or PointInTime(market, reference)
    strat = LoadedStrategy(_WARMUP, pit.functions())
    syms = market.symbols
    if syms:
        a, b = market.range(syms[0])
        pit.set_asof(int(market.columns["date"][b - 1]))
        sanitize_result(strat.classify(syms[0]))
    for bad in ("import os\ndef classify_symbol(s):\n    return False\n",
                "\u00e9t\u00e9 = 1\nb = __\uff42uiltins__\ndef classify_symbol(s):\n    return False\n",
                "def classify_symbol(s):\n    return (\n"):
        try:
            LoadedStrategy(bad, {})
        except Exception:  # noqa: BLE001 - exercising the rejection paths is the point
            pass
    try:
        raise ValueError("warm")
    except ValueError as exc:
        from .runtime import describe_exception

        describe_exception(exc)


# Modules the interpreter or the curated libraries import lazily (the parser imports
# unicodedata to normalise non-ASCII identifiers; strptime imports _strptime...). Workers
# cannot open files, so everything is imported here, before any fork.
PRELOAD = ("unicodedata", "_strptime", "encodings.idna", "encodings.latin_1", "encodings.ascii", "fractions",
           "decimal", "re", "json", "string", "_string", "numpy.linalg", "numpy.fft", "numpy.polynomial",
           "numpy.random", "numpy.ma")


MAX_OTHER_DATASETS = 4


def zygote_main(ctrl_fd: int, warm_dataset: str | None = None) -> None:
    import importlib

    import numpy  # noqa: F401 - preload before any fork
    import RestrictedPython  # noqa: F401

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass

    from ..data.store import MarketData
    from . import oslimits, runtime  # noqa: F401
    try:
        from ..data.reference import ReferenceData

        reference = ReferenceData.load_default()
    except Exception:  # noqa: BLE001 - reference data is optional
        reference = None

    # Children are reaped by the kernel; the engine learns of deaths from their channels.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    ctrl = socket.socket(fileno=ctrl_fd)
    from ..data.pit import PointInTime

    pits: dict[str, Any] = {}  # dataset path -> its view, oldest first
    warmed = False

    def open_pit(path: str) -> Any:
        # One point-in-time view per dataset. The warm dataset's re-adjusted regime arrays are
        # computed once here and shared copy-on-write (never written) by every worker forked
        # afterwards; other datasets (the probe's one-shot cut copies, mostly) compute the few
        # their run needs in the worker.
        pit = PointInTime(MarketData(path), reference, cache_bytes=32 << 20)
        if path == warm_dataset:
            pit.prewarm()
        pits[path] = pit
        return pit

    if warm_dataset:
        try:
            _warm_up(open_pit(warm_dataset).market, reference)
            warmed = True
        except Exception:  # noqa: BLE001 - warming is an optimisation; requests report real errors
            pass
    # Objects that exist now are never collected: keeping the GC off them avoids copy-on-write
    # page faults in every forked worker.
    import gc

    gc.freeze()
    ctrl.send(b'{"op":"ready"}')
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(ctrl, 1 << 16, 4)
        except OSError:
            break
        if not data:
            break
        req = json.loads(data)
        try:
            path = req["dataset"]
            pit = pits.get(path)
            if pit is None:
                pit = open_pit(path)
                # Other datasets (the look-ahead probe's cut copies, one per probed day; imports)
                # are kept a few at a time: a long-lived service would otherwise hold every one.
                others = [p for p in pits if p != warm_dataset]
                for old in others[:-MAX_OTHER_DATASETS]:
                    del pits[old]
            if not warmed:
                _warm_up(pit.market, reference)
                warmed = True
        except Exception as exc:  # noqa: BLE001
            for fd in fds:
                os.close(fd)
            ctrl.send(json.dumps({"op": "error", "message": f"{type(exc).__name__}: {exc}"}).encode())
            continue
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                chan = socket.socket(fileno=fds[0])
                for fd in fds[1:]:
                    os.close(fd)
                worker_main(chan, pit, req.get("limits", {}), warm=bool(req.get("warm", True)))
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        ctrl.send(json.dumps({"op": "forked", "pid": pid}).encode())
    # The engine went away: take every worker with us.
    try:
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--zygote":
        zygote_main(int(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else None)
    else:
        print("usage: python -m stratagem.sandbox.worker --zygote FD", file=sys.stderr)
        sys.exit(2)
