"""Loading and calling a compiled strategy inside a worker, and turning results into plain data.

Everything a strategy returns crosses the process boundary as JSON types only: the signal
becomes a bool, the score a finite float or ``None``, extra values finite numbers, bools or
short strings; anything else is dropped. Non-finite numbers (NaN, ±inf) become ``None``, so
the output is always valid JSON.
"""

from __future__ import annotations

import datetime as _datetime
import dis
import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .guards import Namespace, curated_modules, make_globals
from .policy import FILENAME, compile_strategy

MAX_VALUES = 32
MAX_KEY_LEN = 64
MAX_STR_LEN = 200
MAX_ERROR_LEN = 400


class StrategyError(Exception):
    """The strategy's own code failed (message is safe to show the user)."""


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def _scalar(v: Any) -> Any:
    t = type(v)
    if t is bool or isinstance(v, np.bool_):
        return bool(v)
    if t is int or t is float or isinstance(v, (int, float, np.integer, np.floating)):
        return _finite(v)
    if isinstance(v, str):
        return v[:MAX_STR_LEN]
    if v is None:
        return None
    return _MISSING


_MISSING = object()


def sanitize_result(res: Any) -> tuple[bool, float | None, dict]:
    """(signal, score, values) from what ``classify_symbol`` returned; raises StrategyError."""
    if res is None:
        return False, None, {}
    t = type(res)
    if t is bool or isinstance(res, (np.bool_, int, np.integer)) and not isinstance(res, dict):
        return bool(res), None, {}
    if isinstance(res, dict):
        if "signal" not in res:
            raise StrategyError("classify_symbol returned a dict without a 'signal' key; "
                                "expected {'signal': bool, 'score': float, ...}")
        sig = res["signal"]
        if not isinstance(sig, (bool, np.bool_, int, np.integer)) and sig is not None:
            raise StrategyError(f"'signal' must be a bool, got {type(sig).__name__}")
        score = _finite(res["score"]) if res.get("score") is not None else None
        values: dict[str, Any] = {}
        for k, v in res.items():
            if k in ("signal", "score") or not isinstance(k, str):
                continue
            if len(values) >= MAX_VALUES:
                break
            s = _scalar(v)
            if s is not _MISSING:
                values[k[:MAX_KEY_LEN]] = s
        return bool(sig), score, values
    if isinstance(res, (float, np.floating)):
        return bool(res), None, {}
    raise StrategyError(f"classify_symbol must return a bool or a dict with 'signal', got {t.__name__}")


def describe_exception(exc: BaseException) -> str:
    """``TypeError: ... (line 12)`` with the strategy's own line, bounded in length."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not break reporting
        text = "<unprintable>"
    msg = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if line is not None:
        msg += f" (line {line})"
    return msg[:MAX_ERROR_LEN]


# Values that cannot change once made. datetime objects are immutable; numpy scalars too (a
# structured np.void is not, so it is not listed).
_ATOMS = (type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis),
          _datetime.date, _datetime.time, _datetime.timedelta, _datetime.timezone,
          np.number, np.bool_)
_STATE_OPS = frozenset({"STORE_GLOBAL", "DELETE_GLOBAL"})
_MAX_FROZEN_ITEMS = 10_000


def _rebinds_globals(code: types.CodeType) -> bool:
    """True if ``code`` or any function in it rebinds a module global (a ``global`` statement)."""
    if any(ins.opname in _STATE_OPS for ins in dis.get_instructions(code)):
        return True
    return any(_rebinds_globals(c) for c in code.co_consts if isinstance(c, types.CodeType))


def _frozen(value: Any, shared: set[int], module_globals: dict, budget: list[int], depth: int = 0) -> bool:
    """True if nothing reachable from ``value`` can be changed by strategy code.

    ``shared`` holds the ids of the engine's own objects (curated modules, builtins, data
    functions): those are the same before and after a module re-run, so they are not state the
    re-run would clear. Strategy functions count as frozen when their defaults, keyword
    defaults and closure cells are (their attributes cannot be written: see guarded_write).
    Conservative: anything unknown is state.
    """
    budget[0] -= 1
    if budget[0] < 0 or depth > 20:
        return False
    if id(value) in shared or isinstance(value, _ATOMS):
        return True
    t = type(value)
    if t is tuple or t is frozenset:
        return all(_frozen(v, shared, module_globals, budget, depth + 1) for v in value)
    if t is types.FunctionType:
        if value.__globals__ is not module_globals or value.__dict__:
            return False
        parts = list(value.__defaults__ or ()) + list((value.__kwdefaults__ or {}).values())
        parts += [cell.cell_contents for cell in value.__closure__ or () if _cell_filled(cell)]
        return all(_frozen(v, shared, module_globals, budget, depth + 1) for v in parts)
    return False


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def module_is_stateless(code: types.CodeType, module_globals: dict, baseline: dict,
                        modules: dict[str, Namespace]) -> bool:
    """True if running the strategy's module body again could not change what any call returns.

    That holds when no function rebinds a global and every value the module body bound is
    frozen (:func:`_frozen`). The engine then keeps the module across dates instead of
    re-running it (the re-run is what stops state carrying a later date into an earlier
    one, and a stateless module has no state to carry).
    """
    if _rebinds_globals(code):
        return False
    shared = {id(v) for v in baseline.values()}
    shared.update(id(v) for v in baseline["__builtins__"].values())
    for ns in modules.values():
        shared.add(id(ns))
        shared.update(id(v) for v in vars(ns).values())
    budget = [_MAX_FROZEN_ITEMS]
    for name, value in module_globals.items():
        if name in baseline and value is baseline[name]:
            continue
        if not _frozen(value, shared, module_globals, budget):
            return False
    return True


class LoadedStrategy:
    """A compiled strategy bound to a fresh module namespace and a set of data functions.

    ``stateless`` says whether the module keeps no state a call could change (see
    :func:`module_is_stateless`); the worker then skips the module re-runs that keep later
    dates from leaking into earlier ones, since there is nothing to leak.
    """

    def __init__(self, source: str, data_functions: dict[str, Callable]) -> None:
        self.source = source
        self.code = compile_strategy(source)
        self._data_functions = data_functions
        self._modules = curated_modules()
        self.reset()
        self.stateless = module_is_stateless(self.code, self.globals, self._baseline, self._modules)

    def reset(self) -> None:
        """Fresh module globals (run the module body again); the read-only curated modules
        are reused, everything the strategy can write is new."""
        g = make_globals(self._data_functions, self._modules)
        self._baseline = dict(g)  # what the engine put there, before the module body ran
        try:
            exec(self.code, g)  # noqa: S102 - RestrictedPython-compiled code with guarded globals
        except Exception as exc:  # noqa: BLE001
            raise StrategyError(f"the strategy failed while loading: {describe_exception(exc)}") from None
        self.globals = g
        fn = g.get("classify_symbol")
        if not callable(fn):
            raise StrategyError("the strategy must define classify_symbol(symbol)")
        self.classify = fn

    def entry(self, name: str) -> Callable | None:
        fn = self.globals.get(name)
        return fn if callable(fn) else None
