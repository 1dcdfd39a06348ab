"""Back-translation: what a strategy's CODE does, in plain English (never what a prompt asked).

    >>> explain_code(source)["summary"]
    "signal when (today's open / yesterday's close − 1) > 0.03 and (today's volume / average
    volume of the previous 20 sessions) > 1.5"

How it works: the source is parsed (never run) and ``classify_symbol`` is executed
*symbolically*. Each path through it is followed with an environment mapping local names to
small expression trees; calls to the strategy's own helper functions are inlined with their
arguments bound; data-function calls become data requests (with their ``days`` evaluated
when the arguments are constants); slices and indexes of price series are normalised to
"bars before today", so ``closes[len(closes) - 21:len(closes) - 1]`` and
``closes[-21:-1]`` read the same. Each return that can signal yields its conditions: the
``if`` tests on the way to it (negated where the code returned "no signal") and the
expression stored under ``'signal'``. Tests that only check that data exists (``is None``,
``len(...) <`` n, prices ``<= 0``) are kept apart as data checks.

Whatever cannot be simplified is shown as code, or by its variable name with a
``where name = ...`` clause, so any valid strategy gets an answer and nothing raises.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["explain_code"]

# Data functions: parameter names (CONTRACT §2) and defaults.
_DATA_SIGNATURES: dict[str, tuple[tuple[str, Any], ...]] = {
    "get_price_data": (("symbol", None), ("timeframe", "1d"), ("days", 30)),
    "get_multiple_symbols_data": (("symbols", None), ("timeframe", "1d"), ("days", 30)),
    "get_fundamental_data": (("symbol", None),),
    "get_earnings_data": (("symbol", None), ("quarters", 8)),
    "get_sector_data": (("sector", "Technology"), ("days", 5)),
    "scan_universe": (("filters", None), ("limit", 100)),
}
_DATA_KIND = {"get_price_data": "prices", "get_multiple_symbols_data": "multi", "get_fundamental_data": "fundamentals",
              "get_earnings_data": "earnings", "get_sector_data": "multi", "scan_universe": "symbols"}
_SERIES = ("timestamps", "open", "high", "low", "close", "volume")
_PLURAL = {"timestamps": "timestamps", "open": "opens", "high": "highs", "low": "lows", "close": "closes",
           "volume": "volumes"}
_SINGULAR = {"timestamps": "timestamp"}
_FIELD_LABELS = {
    "market_cap": "market cap", "pe_ratio": "P/E ratio", "eps": "EPS", "debt_to_equity": "debt-to-equity",
    "shares_outstanding": "shares outstanding", "sector": "sector", "industry": "industry", "name": "company name",
    "eps_actual": "actual EPS", "eps_estimate": "estimated EPS", "surprise_pct": "EPS surprise %",
    "revenue": "revenue", "report_date": "report date", "fiscal_period": "fiscal period",
}
_DEFAULT_ALIASES = {"np": "numpy", "numpy": "numpy", "math": "math", "statistics": "statistics",
                    "datetime": "datetime"}
_CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_MAX_INLINE_DEPTH = 6
_MAX_STATES = 16
_MAX_STEPS = 40_000
_MAX_UNROLL = 12
_MAX_TEXT = 400
_MAX_IR_NODES = 300
_MAX_PATHS = 12  # signalling returns described
_MAX_ATOMS = 30  # conditions described per signalling return


class _TooComplex(Exception):
    pass


# ------------------------------------------------------------------------------------------
# The expression tree (immutable, compared structurally)
# ------------------------------------------------------------------------------------------
class IR:
    __slots__ = ()


@dataclass(frozen=True)
class Const(IR):
    value: Any
    soft: bool = False  # derived from an assumed window length: never used to prune a branch


@dataclass(frozen=True)
class Param(IR):
    name: str
    value: Any


@dataclass(frozen=True)
class Symbol(IR):
    pass


@dataclass(frozen=True)
class Data(IR):
    kind: str  # prices, multi, fundamentals, earnings, symbols
    req: int
    days: Any = None


@dataclass(frozen=True)
class Series(IR):
    field: str
    req: int
    days: Any = None


Idx = tuple  # ("end", k <= 0) counts from after the last bar; ("begin", i >= 0) from the first


@dataclass(frozen=True)
class Window(IR):
    base: Series
    start: Idx | None
    stop: Idx | None


@dataclass(frozen=True)
class Elem(IR):
    base: IR
    index: Idx


@dataclass(frozen=True)
class LenOf(IR):
    x: IR
    offset: int = 0


@dataclass(frozen=True)
class Field(IR):
    obj: IR
    key: str


@dataclass(frozen=True)
class Agg(IR):
    fn: str
    x: IR


@dataclass(frozen=True)
class SumSqDev(IR):
    x: IR


@dataclass(frozen=True)
class Bin(IR):
    op: str
    left: IR
    right: IR


@dataclass(frozen=True)
class Un(IR):
    op: str
    x: IR


@dataclass(frozen=True)
class Not(IR):
    x: IR


@dataclass(frozen=True)
class BoolOp(IR):
    op: str
    values: tuple


@dataclass(frozen=True)
class Cmp(IR):
    left: IR
    ops: tuple
    rights: tuple


@dataclass(frozen=True)
class IfX(IR):
    test: IR
    a: IR
    b: IR


@dataclass(frozen=True)
class Tup(IR):
    items: tuple


@dataclass(frozen=True)
class DictV(IR):
    items: tuple  # ((key, IR), ...)

    def get(self, key: Any) -> IR | None:
        for k, v in self.items:
            if k == key:
                return v
        return None

    def set(self, key: Any, value: IR) -> DictV:
        return DictV(tuple((k, v) for k, v in self.items if k != key) + ((key, value),))


@dataclass(frozen=True)
class Named(IR):
    name: str
    x: IR


@dataclass(frozen=True)
class Local(IR):
    name: str
    why: str
    line: int
    scope: int = 0


@dataclass(frozen=True)
class Call(IR):
    func: str
    args: tuple
    user: bool = False
    req: int | None = None


@dataclass(frozen=True)
class Method(IR):
    obj: IR
    name: str
    args: tuple


@dataclass(frozen=True)
class Index(IR):
    obj: IR
    key: IR


@dataclass(frozen=True)
class SliceOf(IR):
    obj: IR
    lo: IR | None
    hi: IR | None


@dataclass(frozen=True)
class Text(IR):
    text: str


@dataclass(frozen=True)
class FuncRef(IR):
    name: str


def _un(x: Any) -> Any:
    while isinstance(x, Named):
        x = x.x
    return x


def _too_big(x: Any) -> bool:
    """More than _MAX_IR_NODES nodes once expanded (shared sub-trees count each time)."""
    count = 0
    stack = [x]
    while stack:
        n = stack.pop()
        count += 1
        if count > _MAX_IR_NODES:
            return True
        if isinstance(n, tuple):
            stack.extend(n)
        elif isinstance(n, Named) and isinstance(n.x, (DictV, Tup)):
            continue  # shown by its name
        elif isinstance(n, IR):
            stack.extend(v for v in n.__dict__.values() if isinstance(v, (IR, tuple)))
    return False


def _same(a: Any, b: Any) -> bool:
    """Structural equality, ignoring the names values were stored under."""
    a, b = _un(a), _un(b)
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, IR):
        da, db = a.__dict__, b.__dict__
        return all(_same(da[k], db[k]) for k in da)
    return bool(a == b)


def _num(x: Any) -> float | int | None:
    x = _un(x)
    if isinstance(x, (Const, Param)) and isinstance(x.value, (int, float)) and not isinstance(x.value, bool):
        return x.value
    return None


def _int(x: Any) -> int | None:
    v = _num(x)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v if isinstance(v, int) else None


def _soft(*xs: Any) -> bool:
    return any(isinstance(_un(x), Const) and _un(x).soft for x in xs)


def _walk(x: Any, deep: bool = False):
    """Yield x and its sub-expressions; unless ``deep``, not inside Named (a name stands for
    its value when rendered)."""
    stack = [x]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Named) and not (deep or n is x):
            continue
        if isinstance(n, tuple):
            stack.extend(reversed(n))
        elif isinstance(n, IR):
            stack.extend(v for v in reversed(list(n.__dict__.values())) if isinstance(v, (IR, tuple)))


def _opaque(x: Any, scope: int | None = None, deep: bool = False) -> bool:
    """Holds something this module cannot put into words (an unknown local, code text, a call
    of the strategy's own function)."""
    for n in _walk(x, deep):
        if isinstance(n, Local) and (scope is None or n.scope == scope):
            return True
        if scope is None and (isinstance(n, Text) or (isinstance(n, Call) and n.user)):
            return True
    return False


def _compound(x: Any) -> bool:
    return isinstance(x, (Bin, Cmp, BoolOp, Not, IfX)) or (isinstance(x, Un) and x.op == "-")


def _known_len(x: Any, assume_days: bool = False) -> int | None:
    """The length of a window or tuple when the code fixes it. With ``assume_days`` a window
    open at the start counts the requested ``days`` (what the code asked for, and what it has
    once its length checks pass)."""
    x = _un(x)
    if isinstance(x, Window):
        start = x.start
        if start is None and assume_days and x.base.days is not None:
            start = ("end", -int(x.base.days))
        stop = x.stop or ("end", 0)
        if start is not None and start[0] == stop[0]:
            return max(0, stop[1] - start[1])
    if isinstance(x, Series) and assume_days and x.days is not None:
        return int(x.days)
    if isinstance(x, Tup):
        return len(x.items)
    if isinstance(x, Const) and isinstance(x.value, (str, tuple, list)):
        return len(x.value)
    return None


def _price_like(x: Any) -> bool:
    x = _un(x)
    if isinstance(x, (Series, Window)):
        return True
    if isinstance(x, Elem):
        return isinstance(_un(x.base), (Series, Window))
    if isinstance(x, Agg):
        return _price_like(x.x)
    return False


# ------------------------------------------------------------------------------------------
# Symbolic execution
# ------------------------------------------------------------------------------------------
@dataclass
class _State:
    env: dict
    conds: tuple  # ((IR, line), ...)


@dataclass
class _Frame:
    name: str
    scope: int
    returns: list = field(default_factory=list)  # (conds, IR, line)
    params: set = field(default_factory=set)  # argument names not reassigned (shown as their value)


@dataclass
class _Request:
    id: int
    function: str
    line: int
    args: dict
    via: tuple
    keys: list = field(default_factory=list)


class _Analyzer:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.functions: dict[str, ast.FunctionDef] = {}
        self.module_values: dict[str, tuple[Any, int, str]] = {}  # name -> (value, line, source)
        self.aliases = dict(_DEFAULT_ALIASES)
        self.requests: list[_Request] = []
        self.stack: list[str] = []
        self.steps = 0
        self.scopes = 0
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        self.module_values.pop(t.id, None)
                        value = self._module_value(node.value)
                        if value is not None:
                            self.module_values[t.id] = (value[0], node.lineno, ast.unparse(node.value))
        for name in list(self.module_values):
            if name in self.functions:
                del self.module_values[name]

    # -- module level ----------------------------------------------------------------------
    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif node.module:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def _module_value(self, node: ast.expr) -> tuple[Any] | None:
        try:
            return (ast.literal_eval(node),)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
        try:
            v = self.ev(node, {}, _Frame("<module>", 0))
        except _TooComplex:
            raise
        except Exception:  # noqa: BLE001 - an unusual constant expression is just not a value
            return None
        v = _un(v)
        if isinstance(v, (Const, Param)) and not isinstance(v.value, (list, dict, set)):
            return (v.value,)
        return None

    def tick(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _TooComplex

    # -- functions -------------------------------------------------------------------------
    def run_function(self, fn: ast.FunctionDef, bound: dict[str, IR]) -> _Frame:
        self.scopes += 1
        frame = _Frame(fn.name, self.scopes)
        self.run_block(fn.body, [_State(dict(bound), ())], frame)
        return frame

    def bind_args(self, fn: ast.FunctionDef, args: list[IR], kwargs: dict[str, IR], scope: int) -> dict[str, IR]:
        a = fn.args
        params = [p.arg for p in a.posonlyargs + a.args]
        defaults = dict(zip(params[len(params) - len(a.defaults):], a.defaults))
        env: dict[str, IR] = {}
        for name, value in zip(params, args):
            env[name] = value
        for name in params[len(args):]:
            if name in kwargs:
                env[name] = kwargs[name]
            elif name in defaults:
                env[name] = self.ev(defaults[name], {}, _Frame("<defaults>", 0))
            else:
                env[name] = Local(name, "an argument that was not given", fn.lineno, scope)
        for p, d in zip(a.kwonlyargs, a.kw_defaults):
            env[p.arg] = kwargs.get(p.arg) or (self.ev(d, {}, _Frame("<defaults>", 0)) if d is not None
                                               else Local(p.arg, "an argument that was not given", fn.lineno, scope))
        if a.vararg:
            env[a.vararg.arg] = Tup(tuple(args[len(params):]))
        if a.kwarg:
            env[a.kwarg.arg] = Local(a.kwarg.arg, "extra keyword arguments", fn.lineno, scope)
        return env

    def inline(self, name: str, args: list[IR], kwargs: dict[str, IR]) -> IR:
        fn = self.functions[name]
        shown = tuple(args) + tuple(Named(k, v) for k, v in kwargs.items())
        if len(self.stack) >= _MAX_INLINE_DEPTH or name in self.stack:
            return Call(name, shown, user=True)
        before = len(self.requests)
        self.stack.append(name)
        try:
            self.scopes += 1
            scope = self.scopes
            bound = self.bind_args(fn, args, kwargs, scope)
            frame = _Frame(fn.name, scope, params=set(bound) - _assigned_in(fn.body))
            self.run_block(fn.body, [_State(bound, ())], frame)
        finally:
            self.stack.pop()
        price_req = next((r.id for r in self.requests[before:] if _DATA_KIND[r.function] == "prices"), None)
        returns = frame.returns
        values = [_un(v) for _, v, _ in returns]
        if returns and all(isinstance(v, Const) and (v.value is None or isinstance(v.value, bool)) for v in values):
            # A predicate helper: true exactly on the paths that return True.
            paths = [_and([c for c, _ in conds]) for conds, v, _ in returns if _un(v).value is True]
            result: IR = _or(paths) if paths else Const(False)
        else:
            main = [v for _, v, _ in returns if not (isinstance(_un(v), Const) and _un(v).value is None)]
            distinct: list[IR] = []
            for v in main:
                if not any(_same(v, d) for d in distinct):
                    distinct.append(v)
            if len(distinct) != 1:
                return Call(name, shown, user=True, req=price_req)
            result = distinct[0]
        if _opaque(result, deep=True) or _too_big(result):
            return Call(name, shown, user=True, req=price_req)
        return result

    # -- statements ------------------------------------------------------------------------
    def run_block(self, stmts: list[ast.stmt], states: list[_State], frame: _Frame) -> list[_State]:
        for st in stmts:
            out: list[_State] = []
            for s in states:
                out.extend(self.exec_stmt(st, s, frame))
            states = self._cap(out)
            if not states:
                break
        return states

    def _cap(self, states: list[_State]) -> list[_State]:
        if len(states) <= _MAX_STATES:
            return states
        first = states[0]
        env = dict(first.env)
        for s in states[1:]:
            for k in set(env) | set(s.env):
                if k not in env or k not in s.env or not _same(env[k], s.env[k]):
                    env[k] = Local(k, "set differently on different paths", 0)
        prefix = []
        for i, c in enumerate(first.conds):
            if all(len(s.conds) > i and s.conds[i] == c for s in states):
                prefix.append(c)
            else:
                break
        return [_State(env, tuple(prefix))]

    def exec_stmt(self, st: ast.stmt, s: _State, frame: _Frame) -> list[_State]:
        self.tick()
        env = s.env
        if isinstance(st, ast.Return):
            value = self.ev(st.value, env, frame) if st.value is not None else Const(None)
            if _too_big(value):
                u = _un(value)
                if isinstance(u, DictV) and isinstance(st.value, ast.Dict):
                    sources = {k.value: v for k, v in zip(st.value.keys, st.value.values) if isinstance(k, ast.Constant)}
                    value = DictV(tuple((k, v if not _too_big(v) else Text(_src(sources[k]) if k in sources else "..."))
                                        for k, v in u.items))
                else:
                    value = Text(_src(st.value))
            frame.returns.append((s.conds, value, st.lineno))
            return []
        if isinstance(st, ast.If):
            test = self.ev(st.test, env, frame)
            truth = _static_truth(test)
            if truth is True:
                return self.run_block(st.body, [s], frame)
            if truth is False:
                return self.run_block(st.orelse, [s], frame)
            s1 = _State(dict(env), s.conds + ((test, st.lineno),))
            s2 = _State(dict(env), s.conds + ((_negate(test), st.lineno),))
            out1 = self.run_block(st.body, [s1], frame)
            out2 = self.run_block(st.orelse, [s2], frame) if st.orelse else [s2]
            if len(out1) == 1 and len(out2) == 1:
                return [self._merge(test, out1[0], out2[0], s, st.lineno, frame)]
            return out1 + out2
        if isinstance(st, ast.Assign):
            value = self.ev(st.value, env, frame)
            for t in st.targets:
                self.bind(t, value, env, st.lineno, frame)
            return [s]
        if isinstance(st, ast.AnnAssign):
            if st.value is not None:
                self.bind(st.target, self.ev(st.value, env, frame), env, st.lineno, frame)
            return [s]
        if isinstance(st, ast.AugAssign):
            value = self.ev(st.value, env, frame)
            t = st.target
            if isinstance(t, ast.Name):
                cur = env.get(t.id)
                if cur is None and t.id in self.module_values:
                    cur = self.lookup(t.id, env, st.lineno, frame)
                new = (self.binop(_BINOPS.get(type(st.op), "?"), cur, value) if cur is not None
                       and not _opaque(cur, frame.scope) else None)
                env[t.id] = new if new is not None and not _too_big(new) else Local(
                    t.id, "accumulated", st.lineno, frame.scope)
            else:
                self._mutated(t, env, st.lineno, frame)
            return [s]
        if isinstance(st, ast.Expr):
            v = st.value
            if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute):
                self._mutated(v.func.value, env, st.lineno, frame)
            return [s]
        if isinstance(st, ast.For):
            return self._for(st, s, frame)
        if isinstance(st, ast.While):
            return self._loop(st, s, frame, None)
        if isinstance(st, ast.Try):
            return self._try(st, s, frame)
        if isinstance(st, ast.Raise):
            return []
        if isinstance(st, ast.Assert):
            test = self.ev(st.test, env, frame)
            return [_State(env, s.conds + ((test, st.lineno),))]
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            self._import(st)
            return [s]
        if isinstance(st, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            env[st.name] = Local(st.name, "defined inside the function", st.lineno, frame.scope)
            return [s]
        if isinstance(st, (ast.Pass, ast.Global, ast.Nonlocal, ast.Break, ast.Continue, ast.Delete)):
            return [s]
        # Anything else (with, match, ...): whatever it assigns becomes unknown.
        for name in _assigned(st):
            env[name] = Local(name, "set in a block this explainer does not follow", st.lineno, frame.scope)
        return [s]

    def _merge(self, test: IR, a: _State, b: _State, base: _State, line: int, frame: _Frame) -> _State:
        env: dict[str, IR] = {}
        for k in set(a.env) | set(b.env):
            va, vb = a.env.get(k), b.env.get(k)
            if va is not None and vb is not None and _same(va, vb):
                env[k] = va
            elif va is not None and vb is not None:
                merged = IfX(test, va, vb)
                env[k] = merged if not _too_big(merged) else Local(k, "set differently on different branches", line,
                                                                  frame.scope)
            else:
                env[k] = Local(k, "set only on one branch", line, frame.scope)
        return _State(env, base.conds)

    def _mutated(self, target: ast.expr, env: dict, line: int, frame: _Frame) -> None:
        while isinstance(target, (ast.Subscript, ast.Attribute)):
            target = target.value
        if isinstance(target, ast.Name) and target.id in env:
            env[target.id] = Local(target.id, "built up item by item", line, frame.scope)

    def bind(self, t: ast.expr, value: IR, env: dict, line: int, frame: _Frame) -> None:
        if _too_big(value):
            value = Local(_target_name(t), "too complex to describe", line, frame.scope)
        if isinstance(t, ast.Name):
            env[t.id] = value
        elif isinstance(t, (ast.Tuple, ast.List)):
            items = _un(value)
            if isinstance(items, Tup) and len(items.items) == len(t.elts) and not any(
                    isinstance(e, ast.Starred) for e in t.elts):
                for e, v in zip(t.elts, items.items):
                    self.bind(e, v, env, line, frame)
            else:
                for name in _assigned(ast.Assign(targets=[t], value=ast.Constant(None))):
                    env[name] = Local(name, "unpacked from a value this explainer cannot split", line, frame.scope)
        elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
            base = env.get(t.value.id)
            key = _un(self.ev(t.slice, env, frame)) if not isinstance(t.slice, ast.Slice) else None
            if isinstance(_un(base), DictV) and isinstance(key, (Const, Param)):
                env[t.value.id] = _un(base).set(key.value, value)
            else:
                self._mutated(t, env, line, frame)
        elif isinstance(t, (ast.Subscript, ast.Attribute)):
            self._mutated(t, env, line, frame)
        elif isinstance(t, ast.Starred):
            self.bind(t.value, Local(_target_name(t.value), "a starred unpacking", line, frame.scope), env, line, frame)

    def _for(self, st: ast.For, s: _State, frame: _Frame) -> list[_State]:
        it = _un(self.ev(st.iter, s.env, frame))
        items = None
        if isinstance(it, Tup) and all(isinstance(_un(v), (Const, Param)) and isinstance(_un(v).value, str)
                                       for v in it.items):
            items = list(it.items)
        elif isinstance(it, (Const, Param)) and isinstance(it.value, (tuple, list)) and all(
                isinstance(v, str) for v in it.value):
            items = [Const(v) for v in it.value]
        jumps = any(isinstance(n, (ast.Break, ast.Continue)) for n in ast.walk(st))
        if items is not None and len(items) <= _MAX_UNROLL and not jumps and not st.orelse:
            states = [s]
            for item in items:
                for x in states:
                    self.bind(st.target, item, x.env, st.lineno, frame)
                states = self.run_block(st.body, states, frame)
            return states
        return self._loop(st, s, frame, st.target)

    def _loop(self, st: ast.For | ast.While, s: _State, frame: _Frame, target: ast.expr | None) -> list[_State]:
        env = dict(s.env)
        for name in _assigned_in(st.body) | (_assigned(ast.Assign(targets=[target], value=ast.Constant(None)))
                                             if target is not None else set()):
            env[name] = Local(name, f"changed in the loop at line {st.lineno}", st.lineno, frame.scope)
        for name in _mutated_in(st.body):
            if name in env:
                env[name] = Local(name, f"changed in the loop at line {st.lineno}", st.lineno, frame.scope)
        note = (Text(f"(inside the loop at line {st.lineno})"), st.lineno)
        # Follow the body once for the returns it holds; its fall-through states are dropped.
        self.run_block(st.body, [_State(dict(env), s.conds + (note,))], frame)
        after = _State(env, s.conds)
        if st.orelse:
            return self.run_block(st.orelse, [after], frame)
        return [after]

    def _try(self, st: ast.Try, s: _State, frame: _Frame) -> list[_State]:
        body = self.run_block(st.body, [_State(dict(s.env), s.conds)], frame)
        if st.orelse:
            body = self.run_block(st.orelse, body, frame)
        out = list(body)
        for h in st.handlers:
            env = dict(s.env)
            for name in _assigned_in(st.body):
                env[name] = Local(name, "set in a try block", st.lineno, frame.scope)
            note = (Text("an error occurred"), h.lineno)
            out.extend(self.run_block(h.body, [_State(env, s.conds + (note,))], frame))
        if st.finalbody:
            out = self.run_block(st.finalbody, out, frame)
        return self._cap(out)

    # -- expressions -----------------------------------------------------------------------
    def lookup(self, name: str, env: dict, line: int, frame: _Frame) -> IR:
        if name in env:
            v = env[name]
            if isinstance(v, Named) and v.name == name or name in frame.params:
                return v
            if _compound(_un(v)) or _opaque(v) or isinstance(_un(v), (DictV, Tup)):
                return Named(name, v)
            return v
        if name in self.module_values:
            return Param(name, self.module_values[name][0])
        if name in self.functions or name in _DATA_SIGNATURES:
            return FuncRef(name)
        if name in self.aliases:
            return FuncRef(self.aliases[name])
        if name in ("True", "False", "None"):
            return Const({"True": True, "False": False, "None": None}[name])
        if name in _BUILTIN_NAMES:
            return FuncRef(name)
        return Local(name, "not defined in this function", line, frame.scope)

    def ev(self, node: ast.expr | None, env: dict, frame: _Frame) -> IR:
        self.tick()
        if node is None:
            return Const(None)
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant):
            return Const(node.value)
        if isinstance(node, ast.Name):
            return self.lookup(node.id, env, line, frame)
        if isinstance(node, ast.Attribute):
            obj = self.ev(node.value, env, frame)
            o = _un(obj)
            if isinstance(o, FuncRef) and not isinstance(node.value, ast.Call):
                qual = f"{o.name}.{node.attr}"
                if qual in _MODULE_CONSTANTS:
                    return Const(_MODULE_CONSTANTS[qual])
                return FuncRef(qual)
            return Text(_src(node))
        if isinstance(node, ast.Subscript):
            obj = self.ev(node.value, env, frame)
            if isinstance(node.slice, ast.Slice):
                if node.slice.step is not None:
                    return Text(_src(node))
                lo = self.ev(node.slice.lower, env, frame) if node.slice.lower is not None else None
                hi = self.ev(node.slice.upper, env, frame) if node.slice.upper is not None else None
                return self.slice(obj, lo, hi)
            return self.index(obj, self.ev(node.slice, env, frame))
        if isinstance(node, ast.Call):
            return self.call(node, env, frame)
        if isinstance(node, ast.BinOp):
            return self.binop(_BINOPS.get(type(node.op), "?"), self.ev(node.left, env, frame),
                              self.ev(node.right, env, frame))
        if isinstance(node, ast.UnaryOp):
            x = self.ev(node.operand, env, frame)
            if isinstance(node.op, ast.Not):
                t = _static_truth(x, allow_soft=True)
                if t is not None:
                    return Const(not t, soft=_soft(x))
                return _negate(x) if isinstance(_un(x), (Cmp, BoolOp, Not)) else Not(x)
            if isinstance(node.op, ast.USub):
                v = _num(x)
                return Const(-v, soft=_soft(x)) if v is not None else Un("-", x)
            if isinstance(node.op, ast.UAdd):
                return x
            return Text(_src(node))
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            values = [self.ev(v, env, frame) for v in node.values]
            if op == "or" and len(values) >= 2:
                last = _un(values[-1])
                if (isinstance(last, Const) and not last.value) or (isinstance(last, (DictV, Tup)) and not (
                        last.items)):
                    values = values[:-1]  # `x or {}` / `x or ''`: the fallback for a missing value
            return _and(values) if op == "and" else _or(values)
        if isinstance(node, ast.Compare):
            left = self.ev(node.left, env, frame)
            rights = tuple(self.ev(c, env, frame) for c in node.comparators)
            ops = tuple(_CMPOPS.get(type(o), "?") for o in node.ops)
            return _fold_cmp(Cmp(left, ops, rights))
        if isinstance(node, ast.IfExp):
            test = self.ev(node.test, env, frame)
            t = _static_truth(test)
            if t is True:
                return self.ev(node.body, env, frame)
            if t is False:
                return self.ev(node.orelse, env, frame)
            return IfX(test, self.ev(node.body, env, frame), self.ev(node.orelse, env, frame))
        if isinstance(node, (ast.Tuple, ast.List)):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                return Text(_src(node))
            return Tup(tuple(self.ev(e, env, frame) for e in node.elts))
        if isinstance(node, ast.Dict):
            items = []
            for k, v in zip(node.keys, node.values):
                key = _un(self.ev(k, env, frame)) if k is not None else None
                if not isinstance(key, (Const, Param)):
                    return Text(_src(node))
                items.append((key.value, self.ev(v, env, frame)))
            return DictV(tuple(items))
        if isinstance(node, ast.NamedExpr):
            value = self.ev(node.value, env, frame)
            env[node.target.id] = value
            return value
        return Text(_src(node))

    def slice(self, obj: IR, lo: IR | None, hi: IR | None) -> IR:
        o = _un(obj)
        if isinstance(o, (Series, Window)):
            base = o if isinstance(o, Series) else o.base
            start = None if isinstance(o, Series) else o.start
            stop = None if isinstance(o, Series) else o.stop
            try:
                new_start = self._position(o, lo, start, stop) if lo is not None else start
                new_stop = self._position(o, hi, start, stop) if hi is not None else stop
            except LookupError:
                return SliceOf(obj, lo, hi)
            if new_stop == ("end", 0):
                new_stop = None
            if new_start is None and new_stop is None:
                return base
            return Window(base, new_start, new_stop)
        if isinstance(o, Tup) and (lo is None or _int(lo) is not None) and (hi is None or _int(hi) is not None):
            return Tup(o.items[slice(_int(lo) if lo is not None else None, _int(hi) if hi is not None else None)])
        return SliceOf(obj, lo, hi)

    @staticmethod
    def _position(o: IR, v: IR, start: Idx | None, stop: Idx | None) -> Idx:
        """Where position ``v`` of the (windowed) series ``o`` falls in its base series."""
        u = _un(v)
        n = _int(u)
        if n is None and isinstance(u, LenOf) and _same(u.x, o):
            n = u.offset
            if n > 0:
                raise LookupError
            rel_end = True
        elif n is None:
            raise LookupError
        else:
            rel_end = n < 0
        if rel_end:
            end = stop or ("end", 0)
            pos = (end[0], end[1] + n)
        elif start is None:
            pos = ("begin", n)
        else:
            pos = (start[0], start[1] + n)
        if pos[0] == "end" and pos[1] > 0:
            pos = ("end", 0)
        if pos[0] == "begin" and pos[1] < 0:
            raise LookupError
        return pos

    def index(self, obj: IR, key: IR) -> IR:
        o, k = _un(obj), _un(key)
        kv = k.value if isinstance(k, (Const, Param)) else None
        if isinstance(o, Data):
            if o.kind == "prices" and kv in _SERIES:
                return Series(kv, o.req, o.days)
            if o.kind == "fundamentals" and isinstance(kv, str):
                self._used(o.req, kv)
                return Field(o, kv)
            if o.kind == "multi" and kv is not None:
                return Data("prices", o.req, o.days)
            if o.kind == "earnings" and isinstance(kv, int):
                return Elem(o, ("end", kv) if kv < 0 else ("begin", kv))
        if isinstance(o, Elem) and isinstance(_un(o.base), Data) and isinstance(kv, str):
            self._used(_un(o.base).req, kv)
            return Field(o, kv)
        if isinstance(o, DictV) and kv is not None:
            got = o.get(kv)
            return got if got is not None else Index(obj, key)
        if isinstance(o, Tup) and isinstance(kv, int) and -len(o.items) <= kv < len(o.items):
            return o.items[kv]
        if isinstance(o, (Series, Window)):
            start = None if isinstance(o, Series) else o.start
            stop = None if isinstance(o, Series) else o.stop
            try:
                pos = self._position(o, key, start, stop)
            except LookupError:
                return Index(obj, key)
            if pos == ("end", 0):
                return Index(obj, key)
            return Elem(o if isinstance(o, Series) else o.base, pos)
        if isinstance(o, Call) and o.user and o.req is not None and kv in _SERIES:
            req = self.requests[o.req]
            return Series(kv, o.req, _int(req.args.get("days")))
        return Index(obj, key)

    def _used(self, req: int, key: str) -> None:
        keys = self.requests[req].keys
        if key not in keys:
            keys.append(key)

    def binop(self, op: str, left: IR, right: IR) -> IR:
        a, b = _num(left), _num(right)
        if a is not None and b is not None:
            try:
                return Const(_apply(op, a, b), soft=_soft(left, right))
            except (ArithmeticError, ValueError, TypeError):
                pass
        lu, ru = _un(left), _un(right)
        if op in ("+", "-") and isinstance(lu, LenOf) and _int(ru) is not None:
            return LenOf(lu.x, lu.offset + (_int(ru) if op == "+" else -_int(ru)))
        if op == "+" and isinstance(ru, LenOf) and _int(lu) is not None:
            return LenOf(ru.x, ru.offset + _int(lu))
        if op == "-" and isinstance(lu, LenOf) and isinstance(ru, LenOf) and _same(lu.x, ru.x):
            return Const(lu.offset - ru.offset, soft=True)
        if op == "/" and isinstance(lu, Agg) and lu.fn == "sum":
            n = _known_len(lu.x, assume_days=True)
            if (isinstance(ru, LenOf) and ru.offset == 0 and _same(ru.x, lu.x)) or (
                    n is not None and _num(ru) is not None and _num(ru) == n):
                return Agg("mean", lu.x)
        if isinstance(lu, Const) and isinstance(ru, Const) and isinstance(lu.value, str) and op == "+":
            return Const(lu.value + str(ru.value))
        return Bin(op, left, right)

    def call(self, node: ast.Call, env: dict, frame: _Frame) -> IR:
        f = node.func
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return Text(_src(node))
        if isinstance(f, ast.Attribute):
            obj = self.ev(f.value, env, frame)
            if isinstance(_un(obj), FuncRef) and not isinstance(f.value, ast.Call):
                return self.builtin(f"{_un(obj).name}.{f.attr}", node, env, frame)
            args = [self.ev(a, env, frame) for a in node.args]
            return self.method(obj, f.attr, args, node)
        if isinstance(f, ast.Name):
            callee = self.lookup(f.id, env, node.lineno, frame)
            if isinstance(callee, FuncRef):
                if callee.name in _DATA_SIGNATURES and f.id not in env:
                    return self.data_call(callee.name, node, env, frame)
                if callee.name in self.functions and f.id not in env:
                    args = [self.ev(a, env, frame) for a in node.args]
                    kwargs = {k.arg: self.ev(k.value, env, frame) for k in node.keywords}
                    return self.inline(callee.name, args, kwargs)
                return self.builtin(callee.name, node, env, frame)
        return Text(_src(node))

    def data_call(self, name: str, node: ast.Call, env: dict, frame: _Frame) -> IR:
        sig = _DATA_SIGNATURES[name]
        args: dict[str, IR] = {}
        for (pname, _), a in zip(sig, node.args):
            args[pname] = self.ev(a, env, frame)
        for k in node.keywords:
            args[k.arg] = self.ev(k.value, env, frame)
        for pname, default in sig:
            if pname not in args and default is not None:
                args[pname] = Const(default)
        for r in self.requests:
            if (r.function, r.line) == (name, node.lineno) and r.args.keys() == args.keys() and all(
                    _same(r.args[k], args[k]) for k in args):
                req = r
                break
        else:
            req = _Request(len(self.requests), name, node.lineno, args, tuple(self.stack))
            self.requests.append(req)
        kind = _DATA_KIND[name]
        days = _int(args.get("days")) if "days" in args else None
        if kind == "symbols":
            return Call(name, tuple(args.values()), req=req.id)
        return Data(kind, req.id, days)

    def method(self, obj: IR, name: str, args: list[IR], node: ast.Call) -> IR:
        o = _un(obj)
        if name == "get" and args:
            got = self.index(obj, args[0])
            if not isinstance(got, Index):
                return got
            if isinstance(o, DictV) and len(args) > 1:
                return args[1]
            return Method(obj, name, tuple(args))
        if name in ("mean", "sum", "max", "min", "std", "var") and not args and (
                _price_like(o) or isinstance(o, (Series, Window, Tup))):
            return Agg(name, obj)
        if name in ("tolist", "copy", "astype", "flatten", "ravel"):
            return obj
        if name in _STR_METHODS and not args:
            if isinstance(o, (Const, Param)):
                if isinstance(o.value, str):
                    return Const(getattr(o.value, name)())
                return Method(obj, name, ())
            return obj
        return Method(obj, name, tuple(args))

    def builtin(self, name: str, node: ast.Call, env: dict, frame: _Frame) -> IR:
        qual = name
        args = node.args
        kwargs = {k.arg: k for k in node.keywords}
        if qual in _AGG_FUNCS and len(args) == 1 and (qual not in ("max", "min") or not kwargs):
            a = args[0]
            if qual in ("sum", "numpy.sum") and isinstance(a, ast.GeneratorExp):
                ssd = self._sum_sq_dev(a, env, frame)
                if ssd is not None:
                    return ssd
            x = self.ev(a, env, frame)
            return Agg(_AGG_FUNCS[qual], x)
        ev_args = [self.ev(a, env, frame) for a in args]
        consts = [_un(v) for v in ev_args]
        if qual in _FOLDABLE and ev_args and not kwargs and all(isinstance(c, (Const, Param)) for c in consts):
            value = consts[0].value
            if isinstance(value, (int, float, str, bool)) and all(
                    isinstance(c.value, (int, float, str, bool, type(None))) for c in consts):
                try:
                    return Const(_FOLDABLE[qual](*[c.value for c in consts]), soft=_soft(*ev_args))
                except (ValueError, TypeError, OverflowError):
                    pass
            return Call(_display(qual), tuple(ev_args))
        if qual in _TRANSPARENT and ev_args:
            if isinstance(consts[0], (Const, Param)) or (qual in ("list", "tuple") and isinstance(consts[0], Text)):
                return Call(_display(qual), tuple(ev_args))
            return ev_args[0]
        if qual == "len" and len(ev_args) == 1:
            n = _known_len(ev_args[0])
            return Const(n, soft=True) if n is not None else LenOf(ev_args[0], 0)
        if qual in ("abs", "numpy.abs", "numpy.absolute", "math.fabs") and len(ev_args) == 1:
            v = _num(ev_args[0])
            return Const(abs(v), soft=_soft(ev_args[0])) if v is not None else Un("abs", ev_args[0])
        if qual in ("math.sqrt", "numpy.sqrt") and len(ev_args) == 1:
            x = _un(ev_args[0])
            if isinstance(x, Bin) and x.op == "/" and isinstance(_un(x.left), SumSqDev):
                w = _un(x.left).x
                n = _known_len(w)
                r = _un(x.right)
                if (n is not None and _num(r) == n) or (isinstance(r, LenOf) and r.offset == 0 and _same(r.x, w)):
                    return Agg("std", w)
            v = _num(x)
            if v is not None and v >= 0:
                return Const(math.sqrt(v), soft=_soft(x))
            return Un("sqrt", ev_args[0])
        if qual in ("math.log", "numpy.log") and len(ev_args) == 1:
            return Un("log", ev_args[0])
        if qual in ("math.exp", "numpy.exp") and len(ev_args) == 1:
            return Un("exp", ev_args[0])
        if qual in ("max", "min") and len(ev_args) >= 2 and not kwargs:
            values = [_num(v) for v in ev_args]
            if all(v is not None for v in values):
                return Const(max(values) if qual == "max" else min(values), soft=_soft(*ev_args))
            return Call(qual, tuple(ev_args))
        shown = tuple(ev_args) + tuple(Named(k, self.ev(v.value, env, frame)) for k, v in kwargs.items())
        return Call(_display(qual), shown)

    def _sum_sq_dev(self, gen: ast.GeneratorExp, env: dict, frame: _Frame) -> IR | None:
        """``sum((x - m) ** 2 for x in W)`` with m the mean of W."""
        if len(gen.generators) != 1:
            return None
        comp = gen.generators[0]
        if comp.ifs or not isinstance(comp.target, ast.Name):
            return None
        e = gen.elt
        if not (isinstance(e, ast.BinOp) and isinstance(e.op, ast.Pow) and isinstance(e.right, ast.Constant)
                and e.right.value == 2 and isinstance(e.left, ast.BinOp) and isinstance(e.left.op, ast.Sub)
                and isinstance(e.left.left, ast.Name) and e.left.left.id == comp.target.id):
            return None
        w = self.ev(comp.iter, env, frame)
        m = self.ev(e.left.right, env, frame)
        if _same(m, Agg("mean", w)):
            return SumSqDev(w)
        return None


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
           ast.LShift: "<<", ast.RShift: ">>"}
_CMPOPS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "==", "in": "not in",
            "not in": "in", "is": "is not", "is not": "is"}
_AGG_FUNCS = {
    "sum": "sum", "numpy.sum": "sum", "numpy.nansum": "sum",
    "numpy.mean": "mean", "numpy.average": "mean", "numpy.nanmean": "mean", "statistics.mean": "mean",
    "statistics.fmean": "mean",
    "max": "max", "numpy.max": "max", "numpy.amax": "max", "numpy.nanmax": "max",
    "min": "min", "numpy.min": "min", "numpy.amin": "min", "numpy.nanmin": "min",
    "numpy.std": "std", "numpy.nanstd": "std", "statistics.pstdev": "std", "statistics.stdev": "sample std",
    "numpy.median": "median", "numpy.nanmedian": "median", "statistics.median": "median",
    "numpy.var": "var", "statistics.pvariance": "var", "statistics.variance": "sample var",
}
_TRANSPARENT = frozenset({"list", "tuple", "float", "int", "bool", "round", "str", "numpy.array", "numpy.asarray",
                          "numpy.float64", "numpy.float32", "numpy.round", "numpy.around"})
# Builtins evaluated for real on constant arguments (pure, cheap, exact).
_FOLDABLE = {"int": int, "float": float, "bool": bool, "str": str, "round": round, "abs": abs,
             "numpy.float64": float, "numpy.float32": float}
_STR_METHODS = frozenset({"upper", "lower", "strip", "title", "casefold", "lstrip", "rstrip"})
_BUILTIN_NAMES = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format", "int", "isinstance",
    "iter", "len", "list", "map", "max", "min", "next", "pow", "range", "repr", "reversed", "round", "set",
    "sorted", "str", "sum", "tuple", "zip", "getattr", "hasattr", "type", "print",
})
_MODULE_CONSTANTS = {"numpy.nan": math.nan, "numpy.inf": math.inf, "numpy.pi": math.pi, "numpy.e": math.e,
                     "math.nan": math.nan, "math.inf": math.inf, "math.pi": math.pi, "math.e": math.e}


def _apply(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "//":
        return a // b
    if op == "%":
        return a % b
    if op == "**":
        if abs(b) > 64:
            raise ValueError
        return a ** b
    raise ValueError(op)


def _display(qual: str) -> str:
    return "np." + qual[len("numpy."):] if qual.startswith("numpy.") else qual


def _fold_cmp(c: Cmp) -> IR:
    values = [_un(c.left)] + [_un(r) for r in c.rights]
    if all(isinstance(v, (Const, Param)) for v in values):
        try:
            ok = True
            for op, a, b in zip(c.ops, values, values[1:]):
                ok = ok and _compare(op, a.value, b.value)
            return Const(bool(ok), soft=_soft(*values))
        except Exception:  # noqa: BLE001 - incomparable constants stay symbolic
            return c
    if (len(c.ops) == 1 and c.ops[0] in ("is", "is not") and isinstance(values[1], Const) and values[1].value is None
            and isinstance(values[0], (Const, Param))):
        return Const((values[0].value is None) == (c.ops[0] == "is"))
    return c


def _compare(op: str, a: Any, b: Any) -> bool:
    return {">": lambda: a > b, ">=": lambda: a >= b, "<": lambda: a < b, "<=": lambda: a <= b,
            "==": lambda: a == b, "!=": lambda: a != b, "in": lambda: a in b, "not in": lambda: a not in b,
            "is": lambda: a is b, "is not": lambda: a is not b}[op]()


def _static_truth(x: IR, allow_soft: bool = False) -> bool | None:
    x = _un(x)
    if isinstance(x, (Const, Param)) and (allow_soft or not (isinstance(x, Const) and x.soft)):
        v = x.value
        if isinstance(v, (bool, int, float, str, type(None), tuple, list)):
            return bool(v)
    if isinstance(x, (Tup, DictV)) and not isinstance(x, Named):
        return bool(x.items) if isinstance(x, Tup) and not x.items else None
    return None


def _and(values: list[IR]) -> IR:
    flat: list[IR] = []
    for v in values:
        u = _un(v)
        if isinstance(u, Const) and u.value is True and not u.soft:
            continue
        if isinstance(u, BoolOp) and u.op == "and" and not isinstance(v, Named):
            flat.extend(u.values)
        else:
            flat.append(v)
    if not flat:
        return Const(True)
    return flat[0] if len(flat) == 1 else BoolOp("and", tuple(flat))


def _or(values: list[IR]) -> IR:
    flat: list[IR] = []
    for v in values:
        u = _un(v)
        if isinstance(u, BoolOp) and u.op == "or" and not isinstance(v, Named):
            flat.extend(u.values)
        else:
            flat.append(v)
    if not flat:
        return Const(False)
    return flat[0] if len(flat) == 1 else BoolOp("or", tuple(flat))


def _negate(x: IR) -> IR:
    u = _un(x)
    if isinstance(u, Not):
        return u.x
    if isinstance(u, Const):
        return Const(not u.value, soft=u.soft)
    if isinstance(u, Cmp):
        if len(u.ops) == 1:
            return Cmp(u.left, (_NEGATED[u.ops[0]],), u.rights)
        operands = (u.left,) + u.rights
        return _or([Cmp(a, (_NEGATED[op],), (b,)) for op, a, b in zip(u.ops, operands, operands[1:])])
    if isinstance(u, BoolOp):
        parts = [_negate(v) for v in u.values]
        return _or(parts) if u.op == "and" else _and(parts)
    return Not(x)


def _split_and(x: IR) -> list[IR]:
    u = _un(x)
    if isinstance(u, BoolOp) and u.op == "and":
        out: list[IR] = []
        for v in u.values:
            out.extend(_split_and(v))
        return out
    return [x]


def _src(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001
        text = "<expression>"
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def _target_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else _src(node)


def _assigned(node: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            names.add(n.name)
    return names


def _assigned_in(stmts: list[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for st in stmts:
        out |= _assigned(st)
    return out


def _mutated_in(stmts: list[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for st in stmts:
        for n in ast.walk(st):
            target = None
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    if isinstance(t, (ast.Subscript, ast.Attribute)):
                        target = t
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                target = n.func
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
            if isinstance(target, ast.Name):
                out.add(target.id)
    return out


# ------------------------------------------------------------------------------------------
# Rendering to English
# ------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, int):
        return (f"{v:,}" if abs(v) >= 10_000 else str(v)).replace("-", "−")
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v.is_integer() and abs(v) < 1e15:
            return _fmt(int(v))
        return f"{v:.10g}".replace("-", "−")
    if isinstance(v, str):
        return repr(v)
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "@": 6,
         "unary": 7, "**": 8}
_OPS_TEXT = {"+": "+", "-": "−", "*": "×", "/": "/", "//": "//", "%": "mod", "**": "^", "@": "@"}
_CMP_TEXT = {">": ">", ">=": "≥", "<": "<", "<=": "≤", "==": "=", "!=": "≠"}
_ATOM = 9


class _Renderer:
    def __init__(self, analyzer: _Analyzer) -> None:
        self.a = analyzer
        self.wheres: list[tuple[str, str]] = []

    def text(self, x: IR) -> str:
        return self.r(x)[0]

    def top(self, x: IR) -> str:
        """Render a whole condition: a name standing for a simple comparison is shown expanded,
        and a bare series or data structure reads as 'is not empty'."""
        u = x
        while isinstance(u, Named) and not _opaque(u.x) and not isinstance(u.x, (DictV, Tup)):
            u = u.x
        if isinstance(_un(u), (Series, Window)):
            return f"{self.text(u)} are not empty"
        if isinstance(_un(u), (Data, DictV, Tup)):
            inner = _un(u)
            verb = "are" if isinstance(inner, Data) and inner.kind == "earnings" else "is"
            return f"{self.text(u)} {verb} not empty"
        return self.r(u)[0]

    def wrap(self, x: IR, need: int) -> str:
        t, p = self.r(x)
        return f"({t})" if p < need else t

    def where(self, name: str, text: str) -> None:
        if not any(n == name for n, _ in self.wheres):
            if len(text) > _MAX_TEXT:
                text = text[:_MAX_TEXT] + "..."
            self.wheres.append((name, text))

    def r(self, x: IR) -> tuple[str, int]:
        if isinstance(x, Named):
            if isinstance(x.x, (DictV, Tup)):
                return x.name, _ATOM
            if _opaque(x.x):
                inner = x.x
                if isinstance(inner, Local) and inner.name == x.name:
                    return self.r(inner)
                self.where(x.name, f"{x.name} = {self.text(inner)}")
                return x.name, _ATOM
            if _compound(x.x):
                return f"({self.text(x.x)})", _ATOM
            return self.r(x.x)
        if isinstance(x, Const):
            return _fmt(x.value), _ATOM
        if isinstance(x, Param):
            if isinstance(x.value, (int, float, str, bool)) or x.value is None:
                return _fmt(x.value), _ATOM
            return x.name, _ATOM
        if isinstance(x, Symbol):
            return "the symbol", _ATOM
        if isinstance(x, Data):
            return {"prices": "the price data", "multi": "the price data", "fundamentals": "the fundamentals",
                    "earnings": "the earnings reports"}.get(x.kind, "the data"), _ATOM
        if isinstance(x, Series):
            plural = _PLURAL.get(x.field, x.field)
            return (f"the last {_fmt(x.days)} {plural}" if x.days is not None else f"the {plural}"), _ATOM
        if isinstance(x, Window):
            return self.window(x), _ATOM
        if isinstance(x, Elem):
            return self.elem(x), _ATOM
        if isinstance(x, LenOf):
            base = f"the number of {self.noun(x.x)}"
            if x.offset:
                return f"{base} {'+' if x.offset > 0 else '−'} {abs(x.offset)}", _PREC["+"]
            return base, _ATOM
        if isinstance(x, Field):
            label = _FIELD_LABELS.get(x.key, x.key.replace("_", " "))
            if isinstance(_un(x.obj), Elem):
                return f"{self.text(x.obj)}'s {label}", _ATOM
            return label, _ATOM
        if isinstance(x, Agg):
            text = self.agg(x)
            return text, (_ATOM if not text.startswith("the ") else _PREC["cmp"])
        if isinstance(x, SumSqDev):
            return f"the sum of squared deviations of {self.noun(x.x)}", _ATOM
        if isinstance(x, Bin):
            p = _PREC.get(x.op, 6)
            left = self.wrap(x.left, p)
            right = self.wrap(x.right, p + (1 if x.op in ("-", "/", "//", "%", "**") else 0))
            return f"{left} {_OPS_TEXT.get(x.op, x.op)} {right}", p
        if isinstance(x, Un):
            if x.op == "-":
                return f"−{self.wrap(x.x, _PREC['unary'])}", _PREC["unary"]
            if x.op == "abs":
                return f"|{self.text(x.x)}|", _ATOM
            if x.op == "sqrt":
                return f"√({self.text(x.x)})", _ATOM
            if x.op == "log":
                return f"ln({self.text(x.x)})", _ATOM
            return f"{x.op}({self.text(x.x)})", _ATOM
        if isinstance(x, Not):
            inner = _un(x.x)
            if isinstance(inner, (Series, Window)):
                return f"{self.text(x.x)} are empty", _PREC["cmp"]
            if isinstance(inner, (Data, DictV, Tup)):
                verb = "are" if isinstance(inner, Data) and inner.kind == "earnings" else "is"
                return f"{self.text(x.x)} {verb} empty", _PREC["cmp"]
            return f"not {self.wrap(x.x, _PREC['not'])}", _PREC["not"]
        if isinstance(x, BoolOp):
            p = _PREC[x.op]
            return f" {x.op} ".join(self.wrap(v, p + 1) for v in x.values), p
        if isinstance(x, Cmp):
            return self.cmp(x), _PREC["cmp"]
        if isinstance(x, IfX):
            return f"{self.wrap(x.a, 1)} if {self.wrap(x.test, 1)}, else {self.wrap(x.b, 1)}", 0
        if isinstance(x, Tup):
            return "(" + ", ".join(self.text(v) for v in x.items) + ")", _ATOM
        if isinstance(x, DictV):
            return "{" + ", ".join(f"{_fmt(k)}: {self.text(v)}" for k, v in x.items) + "}", _ATOM
        if isinstance(x, Local):
            self.where(x.name, f"{x.name} is {x.why}" + (f" (line {x.line})" if x.line and "line" not in x.why
                                                           else ""))
            return x.name, _ATOM
        if isinstance(x, Call):
            args = ", ".join(self.arg(v) for v in x.args)
            if x.func in ("max", "min") and len(x.args) == 2 and not any(isinstance(v, Named) for v in x.args):
                word = "larger" if x.func == "max" else "smaller"
                return f"the {word} of {self.text(x.args[0])} and {self.text(x.args[1])}", _ATOM
            return f"{x.func}({args})", _ATOM
        if isinstance(x, Method):
            return f"{self.wrap(x.obj, _ATOM)}.{x.name}({', '.join(self.arg(v) for v in x.args)})", _ATOM
        if isinstance(x, Index):
            k = _int(x.key)
            if k == -1:
                return f"the last value of {self.text(x.obj)}", _ATOM
            return f"{self.wrap(x.obj, _ATOM)}[{self.text(x.key)}]", _ATOM
        if isinstance(x, SliceOf):
            lo = self.text(x.lo) if x.lo is not None else ""
            hi = self.text(x.hi) if x.hi is not None else ""
            return f"{self.wrap(x.obj, _ATOM)}[{lo}:{hi}]", _ATOM
        if isinstance(x, Text):
            return x.text, _ATOM
        if isinstance(x, FuncRef):
            return _display(x.name), _ATOM
        return "<?>", _ATOM

    def arg(self, v: IR) -> str:
        if isinstance(v, Named) and not _opaque(v.x) and not _compound(v.x) and isinstance(v.x, IR):
            return f"{v.name}={self.text(v.x)}" if v.name not in self.a.functions else self.text(v.x)
        return self.text(v)

    def noun(self, x: IR) -> str:
        u = _un(x)
        if isinstance(u, Window):
            return self.window(u)
        if isinstance(u, Series):
            return _PLURAL.get(u.field, u.field)
        return self.text(x)

    # -- price-series phrases ---------------------------------------------------------------
    @staticmethod
    def _bounds(w: Window) -> tuple[Idx | None, Idx]:
        start, stop = w.start, w.stop or ("end", 0)
        if start is None and w.base.days is not None:
            start = ("end", -int(w.base.days))
        return start, stop

    def span(self, w: Window | Series) -> str | None:
        """'the last 20 sessions', 'the previous 20 sessions', ... or None."""
        if isinstance(w, Series):
            return f"the last {_fmt(w.days)} sessions" if w.days is not None else "the fetched sessions"
        start, stop = self._bounds(w)
        if stop[0] != "end":
            return None
        if start is None:
            return "the sessions before today" if stop[1] == -1 else (
                "the fetched sessions" if stop[1] == 0 else f"the fetched sessions up to {-stop[1]} sessions ago")
        if start[0] != "end":
            return None
        n = stop[1] - start[1]
        if n <= 0:
            return None
        if stop[1] == 0:
            return "today's session" if n == 1 else f"the last {n} sessions"
        if stop[1] == -1:
            return "the previous session" if n == 1 else f"the previous {n} sessions"
        return f"the {n} sessions ending {-stop[1]} sessions ago"

    def window(self, w: Window) -> str:
        f = w.base.field
        plural = _PLURAL.get(f, f)
        start, stop = self._bounds(w)
        if stop[0] == "end" and (start is None or start[0] == "end"):
            if start is None:
                return f"the {plural} before today" if stop[1] == -1 else f"the {plural} up to {-stop[1]} sessions ago"
            n = stop[1] - start[1]
            if stop[1] == 0:
                return f"the last {n} {plural}"
            if stop[1] == -1:
                return f"the {n} {plural} before today"
            return f"the {n} {plural} ending {-stop[1]} sessions ago"
        if start is not None and start[0] == "begin" and (w.stop is None or stop[0] == "begin"):
            if w.stop is None:
                return f"the {plural} from bar {start[1] + 1} of the window on"
            return f"bars {start[1] + 1} to {stop[1]} of the {plural} window"
        return f"a slice of the {plural}"

    def elem(self, e: Elem) -> str:
        base = _un(e.base)
        kind, k = e.index
        if isinstance(base, Data):  # earnings reports
            if kind == "end":
                return {-1: "the latest earnings report", -2: "the previous earnings report"}.get(
                    k, f"the earnings report {-k - 1} before the latest")
            return "the oldest earnings report fetched" if k == 0 else f"earnings report #{k + 1}"
        f = base.field if isinstance(base, Series) else "value"
        name = _SINGULAR.get(f, f)
        if kind == "end":
            if k == -1:
                return f"today's {name}"
            if k == -2:
                return f"yesterday's {name}"
            return f"the {name} {-k - 1} sessions ago"
        if isinstance(base, Series) and base.days is not None and k < base.days:
            return f"the {name} {base.days - 1 - k} sessions ago"
        return f"the oldest {name} in the window" if k == 0 else f"the {name} at bar {k + 1} of the window"

    def agg(self, a: Agg) -> str:
        x = _un(a.x)
        if isinstance(x, (Window, Series)):
            f = (x.base if isinstance(x, Window) else x).field
            f = _SINGULAR.get(f, f)
            span = self.span(x)
            if span is not None:
                if a.fn in ("std", "var", "sample std", "sample var"):
                    word = {"std": "standard deviation", "var": "variance", "sample std": "sample standard deviation",
                            "sample var": "sample variance"}[a.fn]
                    return f"{word} of {f} over {span}"
                word = {"mean": "average", "sum": "total", "max": "highest", "min": "lowest",
                        "median": "median"}.get(a.fn, a.fn)
                return f"{word} {f} of {span}"
        word = {"mean": "the average", "sum": "the sum", "max": "the highest", "min": "the lowest",
                "median": "the median", "std": "the standard deviation", "var": "the variance",
                "sample std": "the sample standard deviation", "sample var": "the sample variance"}.get(a.fn, a.fn)
        return f"{word} of {self.noun(a.x)}"

    def cmp(self, c: Cmp) -> str:
        operands = (c.left,) + c.rights
        parts = [self.wrap(c.left, _PREC["+"])]
        for op, left, right in zip(c.ops, operands, operands[1:]):
            lu, ru = _un(left), _un(right)
            if op in ("is", "is not") and isinstance(ru, Const) and ru.value is None:
                parts.append("is missing" if op == "is" else "is known")
                continue
            if op in ("in", "not in"):
                if isinstance(ru, Tup) or (isinstance(ru, (Const, Param)) and isinstance(ru.value, (tuple, list, set))):
                    parts.append(("is one of " if op == "in" else "is not one of ") + self.wrap(right, _PREC["+"]))
                    continue
                # containment in a string or a collection: read right to left
                return (f"{self.wrap(right, _PREC['+'])} {'contains' if op == 'in' else 'does not contain'} "
                        f"{self.wrap(left, _PREC['+'])}")
            word = _CMP_TEXT.get(op, op)
            if op in ("==", "!=") and any(isinstance(v, (Const, Param)) and isinstance(v.value, str) for v in (lu, ru)):
                word = "is" if op == "==" else "is not"
            parts.append(f"{word} {self.wrap(right, _PREC['+'])}")
        return " ".join(parts)


# ------------------------------------------------------------------------------------------
# Putting it together
# ------------------------------------------------------------------------------------------
def _is_data_check(atom: IR) -> bool:
    a = _un(atom)
    if isinstance(a, Not):
        a = _un(a.x)
        return not isinstance(a, (Cmp, BoolOp))
    if isinstance(a, (Data, Series, Window)):
        return True
    if isinstance(a, Text):
        return a.text.startswith("(inside the loop")
    if isinstance(a, BoolOp):
        return all(_is_data_check(v) for v in a.values)
    if isinstance(a, Call):
        return any(w in a.func for w in ("isnan", "isfinite", "isinf", "isinstance"))
    if isinstance(a, Cmp):
        operands = [_un(a.left)] + [_un(r) for r in a.rights]
        if any(op in ("is", "is not") for op in a.ops) and any(
                isinstance(o, Const) and o.value is None for o in operands):
            return True
        for o in operands:
            for n in _walk(o):
                if isinstance(n, LenOf) or (isinstance(n, Const) and n.soft):
                    return True
        if len(a.ops) == 1 and a.ops[0] in (">", ">=", "<", "<=", "!=", "=="):
            zero = [o for o in operands if _num(o) == 0]
            other = [o for o in operands if _num(o) != 0]
            if zero and other and _price_like(other[0]):
                return True
        if any(isinstance(o, Call) and any(w in o.func for w in ("isnan", "isfinite", "isinf")) for o in operands):
            return True
    return False


def _signal_of(value: IR) -> tuple[IR | None, IR | None]:
    """(signal expression, score expression) of a returned value."""
    v = _un(value)
    if isinstance(v, DictV):
        sig = v.get("signal")
        return (sig if sig is not None else Const(False)), v.get("score")
    return value, None


def explain_code(source: str) -> dict:
    """Explain strategy source in plain English, from the code alone.

    Returns ``{"summary": str, "parameters": [{"name", "value", "line"}], "data": [{"function",
    "line", "arguments", "via", "text"}], "conditions": [{"kind", "text", "line"}], "score": str |
    None}``. ``kind`` is ``"filter"`` (a test on the way to the signal), ``"signal"`` (part of the
    expression returned as the signal) or ``"data_check"`` (only checks that data exists).
    Never raises for any input.
    """
    if isinstance(source, bytes):
        source = source.decode("utf-8", "replace")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", None) or type(exc).__name__
        return {"summary": f"the code does not parse ({msg}" + (f", line {line}" if line else "") + ")",
                "parameters": [], "data": [], "conditions": [], "score": None}
    parameters = _parameters(tree)
    try:
        return _explain(tree, parameters)
    except (_TooComplex, RecursionError):
        return _fallback(tree, parameters, "the code is too complex to simplify")
    except Exception as exc:  # noqa: BLE001 - never fail: fall back to listing the code's conditions
        return _fallback(tree, parameters, f"simplification failed ({type(exc).__name__})")


def _parameters(tree: ast.Module) -> list[dict]:
    out = []
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Name) and _CONSTANT_NAME.match(t.id):
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    value = _src(node.value)
                out = [p for p in out if p["name"] != t.id]
                out.append({"name": t.id, "value": _jsonable(value), "line": node.lineno})
    return out


def _jsonable(v: Any) -> Any:
    """Literal values as JSON types (tuples and sets become lists, the rest their repr)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted((_jsonable(x) for x in v), key=repr)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)


def _explain(tree: ast.Module, parameters: list[dict]) -> dict:
    an = _Analyzer(tree)
    # Non-literal constants (LOOKBACK = 2 * WEEK) get their folded value when there is one.
    for p in parameters:
        if isinstance(p["value"], str) and p["name"] in an.module_values:
            source = an.module_values[p["name"]]
            if source[2] == p["value"]:
                p["value"] = _jsonable(source[0])
    fn = an.functions.get("classify_symbol")
    if fn is None:
        data = _data_entries(an, tree)
        return {"summary": "the code defines no classify_symbol(symbol) function, so it never signals",
                "parameters": parameters, "data": data, "conditions": [], "score": None}
    an.scopes += 1
    params = [p.arg for p in fn.args.posonlyargs + fn.args.args]
    bound: dict[str, IR] = {}
    if params:
        bound[params[0]] = Symbol()
    for extra in params[1:]:
        bound[extra] = Local(extra, "an extra argument", fn.lineno, an.scopes)
    frame = _Frame("classify_symbol", an.scopes)
    an.stack.append("classify_symbol")
    an.run_block(fn.body, [_State(bound, ())], frame)
    an.stack.pop()

    render = _Renderer(an)
    conditions: list[dict] = []
    sentences: list[str] = []
    scores: list[str] = []
    seen: set[tuple] = set()
    skipped = 0
    for conds, value, line in frame.returns:
        sig, score = _signal_of(value)
        truth = _static_truth(sig, allow_soft=True) if sig is not None else False
        if truth is False:
            continue  # a "no signal" exit: its test is already a (negated) condition of later paths
        if len(sentences) >= _MAX_PATHS:
            skipped += 1
            continue
        atoms: list[tuple[str, IR, int]] = []
        for cond, cline in conds:
            for atom in _split_and(cond):
                ua = _un(atom)
                if isinstance(ua, Const) and ua.value and ua.soft:
                    continue
                atoms.append(("data_check" if _is_data_check(atom) else "filter", atom, cline))
        if truth is None:
            for atom in _split_and(sig):
                atoms.append(("signal", atom, line))
        texts = []
        extra = max(0, len(atoms) - _MAX_ATOMS)
        if extra:
            atoms = atoms[:_MAX_ATOMS // 2] + atoms[-(_MAX_ATOMS // 2):]
        for kind, atom, aline in atoms:
            text = render.top(atom)
            key = (kind, text, aline)
            if key not in seen:
                seen.add(key)
                conditions.append({"kind": kind, "text": text, "line": aline})
            if kind != "data_check":
                texts.append(text)
        sentence = " and ".join(dict.fromkeys(texts)) if texts else ""
        if extra:
            sentence += f" (and {extra} more conditions)"
        sentences.append(sentence)
        if score is not None:
            s = render.top(score)
            if s not in scores:
                scores.append(s)
    summary = _summary(sentences)
    if skipped:
        summary += f"; or in {skipped} more ways"
    if render.wheres:
        summary += ", where " + "; ".join(text for _, text in render.wheres)
    return {"summary": summary, "parameters": parameters, "data": _data_entries(an, tree), "conditions": conditions,
            "score": "; ".join(scores) if scores else None}


def _summary(sentences: list[str]) -> str:
    unique = list(dict.fromkeys(sentences))
    if not unique:
        return "never signals: every path returns no signal"
    if unique == [""]:
        return "signals for every symbol whose data checks pass"
    if len(unique) == 1:
        return f"signal when {unique[0]}"
    parts = [u if u else "the data checks pass" for u in unique]
    return "signal when " + "; or when ".join(parts)


def _data_entries(an: _Analyzer, tree: ast.Module) -> list[dict]:
    render = _Renderer(an)
    out = []
    covered = set()
    for r in an.requests:
        covered.add(r.line)
        args = {k: render.text(v) for k, v in r.args.items()}
        out.append({"function": r.function, "line": r.line, "arguments": args, "via": list(r.via[1:]),
                    "text": _request_text(r.function, r.args, render, r.keys)})
    # Data calls the symbolic run did not reach (other entry points, unused helpers).
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DATA_SIGNATURES
                and node.lineno not in covered):
            covered.add(node.lineno)
            sig = _DATA_SIGNATURES[node.func.id]
            args: dict[str, IR] = {}
            for (pname, _), a in zip(sig, node.args):
                args[pname] = Text(_src(a))
            for k in node.keywords:
                if k.arg:
                    args[k.arg] = Text(_src(k.value))
            for pname, default in sig:
                if pname not in args and default is not None:
                    args[pname] = Const(default)
            for k, v in list(args.items()):
                if isinstance(v, Text):
                    try:
                        folded = _un(an.ev(ast.parse(v.text, mode="eval").body, {}, _Frame("<data>", -1)))
                    except Exception:  # noqa: BLE001
                        folded = v
                    if isinstance(folded, (Const, Param)):
                        args[k] = folded
            out.append({"function": node.func.id, "line": node.lineno,
                        "arguments": {k: render.text(v) for k, v in args.items()}, "via": [],
                        "text": _request_text(node.func.id, args, render, [])})
    out.sort(key=lambda d: d["line"])
    return out


def _who(x: IR, render: _Renderer) -> str:
    u = _un(x)
    if isinstance(u, Symbol):
        return "the symbol"
    if isinstance(u, (Const, Param)) and isinstance(u.value, str):
        return u.value
    return render.text(x)


def _request_text(function: str, args: dict, render: _Renderer, keys: list) -> str:
    def count(name: str, unit: str) -> str:
        v = args.get(name)
        n = _int(v) if v is not None else None
        text = _fmt(n) if n is not None else (render.text(v) if v is not None else "")
        return f"{text} {unit}".strip()

    tf = args.get("timeframe")
    tfv = _un(tf).value if isinstance(_un(tf), (Const, Param)) else None
    bars = "daily bars" if tfv in (None, "1d", "d", "day", "daily", "1day", "1D", "D") else (
        f"{render.text(tf)} bars (only daily bars exist)")
    if function == "get_price_data":
        return f"{bars} of {_who(args.get('symbol', Symbol()), render)}: the last {count('days', 'sessions')}"
    if function == "get_multiple_symbols_data":
        return f"{bars} of {render.text(args.get('symbols', Text('?')))}: the last {count('days', 'sessions')}"
    if function == "get_fundamental_data":
        used = f" ({', '.join(keys)})" if keys else ""
        return f"fundamentals of {_who(args.get('symbol', Symbol()), render)} as of the evaluation date{used}"
    if function == "get_earnings_data":
        return (f"the last {count('quarters', 'earnings reports')} of {_who(args.get('symbol', Symbol()), render)} "
                "released by the evaluation date")
    if function == "get_sector_data":
        return f"{bars} of the {_who(args.get('sector', Const('Technology')), render)} sector's members: " \
               f"the last {count('days', 'sessions')}"
    if function == "scan_universe":
        return f"symbols matching {render.text(args.get('filters', Const(None)))} (at most {count('limit', '')})"
    return function


def _fallback(tree: ast.Module, parameters: list[dict], why: str) -> dict:
    """List the code's own conditions (as code) when simplification is not possible."""
    conditions: list[dict] = []
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "classify_symbol"), None)
    signals: list[str] = []
    data = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DATA_SIGNATURES:
            data.append({"function": node.func.id, "line": node.lineno,
                         "arguments": {k.arg or "**": _src(k.value) for k in node.keywords} | {
                             _DATA_SIGNATURES[node.func.id][i][0]: _src(a) for i, a in enumerate(node.args[:3])},
                         "via": [], "text": _src(node)})
    if fn is not None:
        for node in ast.walk(fn):
            if isinstance(node, (ast.If, ast.While)):
                conditions.append({"kind": "filter", "text": _src(node.test), "line": node.lineno})
            elif isinstance(node, ast.Return) and node.value is not None:
                v = node.value
                if isinstance(v, ast.Dict):
                    for k, val in zip(v.keys, v.values):
                        if isinstance(k, ast.Constant) and k.value == "signal":
                            v = val
                            break
                    else:
                        continue
                if isinstance(v, ast.Constant) and not v.value:
                    continue
                text = _src(v)
                signals.append(text)
                conditions.append({"kind": "signal", "text": text, "line": node.lineno})
    summary = f"{why}; the signal is " + (" or ".join(dict.fromkeys(signals)) if signals else "never set")
    return {"summary": summary, "parameters": parameters, "data": sorted(data, key=lambda d: d["line"]),
            "conditions": sorted(conditions, key=lambda c: c["line"]), "score": None}
