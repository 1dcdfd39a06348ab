"""Property-based fuzzing of strategy programs: the validator, the compiler and the runtime agree.

Hypothesis builds random strategies from the grammar a strategy may use (assignments, arithmetic,
comparisons, if/for/while with bounded loops, helper functions, lambdas, list/dict comprehensions,
builtins, numpy/math/statistics, data functions, subscripts and slices, augmented assignment on
names, items and attributes, classes, try/except, f-strings and ``str.format``), and sometimes
drops one forbidden construct at a known line. Properties:

- a program with a forbidden construct is rejected with a finding *on that line* (line and column
  within the source), and ``compile_strategy`` raises ``StrategyRejected`` carrying the findings;
- a clean program passes the validator and then compiles under the RestrictedPython policy
  (validator and compiler agree), loads, and runs **exactly like plain Python** on the same data:
  the same sanitised result or the same exception type (so the guards change nothing a legal
  program can observe), and whatever comes back is plain JSON;
- mangled source (characters deleted, inserted or swapped) never crashes the validator or the
  compiler: it is valid, or rejected with findings;
- a sample of programs runs through the real worker processes with the same results as in-process.

CI runs ``STRATAGEM_FUZZ_EXAMPLES`` (default 200) examples per in-process property;
``STRATAGEM_FUZZ_EXAMPLES=5000`` is the long run. Counts are printed at the end of the module.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import signal
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stratagem.errors import StrategyRejected
from stratagem.sandbox.policy import compile_strategy
from stratagem.sandbox.runtime import LoadedStrategy, StrategyError, sanitize_result
from stratagem.sandbox.validator import validate

EXAMPLES = int(os.environ.get("STRATAGEM_FUZZ_EXAMPLES", "200"))
SANDBOX_EXAMPLES = max(25, EXAMPLES // 8)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("STRATAGEM_FUZZ_SEED") is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
STATS: Counter = Counter()
# Generated programs divide by zero and average empty slices; numpy's warnings are noise here.
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.filterwarnings("ignore::SyntaxWarning")]

# -- the grammar -----------------------------------------------------------------------------------
NUM, LST, DCT, STR, ARR, BOOL = "num", "list", "dict", "str", "array", "bool"


@dataclass
class Scope:
    """Variables visible at a point, by kind; helpers callable with one number."""

    vars: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in (NUM, LST, DCT, STR, ARR)})
    helpers: list[str] = field(default_factory=list)
    counter: list[int] = field(default_factory=lambda: [0])

    def child(self) -> Scope:
        return Scope({k: list(v) for k, v in self.vars.items()}, list(self.helpers), self.counter)

    def fresh(self, kind: str) -> str:
        self.counter[0] += 1
        return f"{kind[0]}{self.counter[0]}"


SMALL = st.integers(1, 5)
MAX_DEPTH = 3


# Expressions are built by plain functions that draw one choice at a time: far cheaper than
# building a one_of over every alternative at every node.
def _pick(draw: Any, options: list) -> str:
    """Draw one of ``options`` (callables returning source text) and build only that one."""
    return options[draw(st.integers(0, len(options) - 1))]()


def _small(draw: Any) -> int:
    return draw(SMALL)


def gen_num(draw: Any, sc: Scope, depth: int = 0) -> str:
    leaves = [lambda: str(draw(st.integers(-50, 50))),
              lambda: repr(round(draw(st.floats(-100, 100, allow_nan=False)), 3)), lambda: "price"]
    if sc.vars[NUM]:
        leaves.append(lambda: draw(st.sampled_from(sc.vars[NUM])))
    if depth >= MAX_DEPTH:
        return _pick(draw, leaves)
    d = depth + 1
    sub = lambda: gen_num(draw, sc, d)
    options = leaves + [
        lambda: f"({sub()} {draw(st.sampled_from(['+', '-', '*', '/', '//', '%']))} {sub()})",
        lambda: f"(float({sub()}) ** {draw(st.integers(0, 3))})",
        lambda: f"abs({sub()})", lambda: f"-{sub()}", lambda: f"min({sub()}, {sub()})", lambda: f"max({sub()}, {sub()})",
        lambda: f"round({sub()}, 2)", lambda: f"float({sub()})", lambda: f"int({sub()})",
        lambda: f"math.sqrt(abs({sub()}))", lambda: f"math.log(abs({sub()}) + 1)",
        lambda: f"({sub()} if {gen_bool(draw, sc, d)} else {sub()})",
        lambda: f"len({gen_list(draw, sc, d)})", lambda: f"sum({gen_list(draw, sc, d)})",
        lambda: f"float(np.mean({gen_arr(draw, sc, d)}))", lambda: f"{gen_arr(draw, sc, d)}.sum()",
        lambda: f"float(np.std({gen_arr(draw, sc, d)}))",
        lambda: f"{gen_list(draw, sc, d)}[{draw(st.integers(-4, 4))}]",
        lambda: f"get_price_data(symbol, days={_small(draw)})['close'][-1]",
        lambda: f"len(get_price_data(symbol, days={_small(draw)})['volume'])",
        lambda: "(get_fundamental_data(symbol).get('pe_ratio') or 0)", lambda: "len(get_earnings_data(symbol))",
        lambda: f"statistics.mean({gen_list(draw, sc, d)} + [1])", lambda: f"{gen_dict(draw, sc, d)}.get('a', 0)",
        lambda: f"len({gen_str(draw, sc, d)})",
    ]
    if sc.helpers:
        options.append(lambda: f"{draw(st.sampled_from(sc.helpers))}({sub()})")
    return _pick(draw, options)


def gen_bool(draw: Any, sc: Scope, depth: int = 0) -> str:
    d = depth + 1
    options = [lambda: draw(st.sampled_from(["True", "False"])),
               lambda: f"({gen_num(draw, sc, d)} {draw(st.sampled_from(['<', '>', '<=', '>=', '==', '!=']))} "
                       f"{gen_num(draw, sc, d)})"]
    if depth < MAX_DEPTH:
        options += [lambda: f"({gen_bool(draw, sc, d)} {draw(st.sampled_from(['and', 'or']))} {gen_bool(draw, sc, d)})",
                    lambda: f"(not {gen_bool(draw, sc, d)})",
                    lambda: f"({gen_num(draw, sc, d)} in {gen_list(draw, sc, d)})",
                    lambda: f"isinstance({gen_num(draw, sc, d)}, int)",
                    lambda: "(not get_price_data(symbol, days=3)['close'])"]
    return _pick(draw, options)


def gen_list(draw: Any, sc: Scope, depth: int = 0) -> str:
    d = depth + 1
    options = [lambda: "[" + ", ".join(str(x) for x in draw(st.lists(st.integers(-9, 9), max_size=5))) + "]",
               lambda: f"list(range({_small(draw)}))",
               lambda: f"list(get_price_data(symbol, days={_small(draw)})['close'])"]
    if sc.vars[LST]:
        options.append(lambda: draw(st.sampled_from(sc.vars[LST])))
    if depth < MAX_DEPTH:
        inner = sc.child()
        inner.vars[NUM].append("i")
        options += [
            lambda: f"[{gen_num(draw, inner, d)} for i in range({_small(draw)})]",
            lambda: f"[{gen_num(draw, inner, d)} for i in range({_small(draw)}) if {gen_bool(draw, inner, d)}]",
            lambda: f"sorted({gen_list(draw, sc, d)})",
            lambda: f"{gen_list(draw, sc, d)}[{draw(st.integers(-3, 3))}:{draw(st.integers(-3, 3))}]",
            lambda: f"{gen_list(draw, sc, d)}[::-1]", lambda: f"{gen_arr(draw, sc, d)}.tolist()",
        ]
    return _pick(draw, options)


def gen_dict(draw: Any, sc: Scope, depth: int = 0) -> str:
    d = depth + 1
    options = [lambda: "{}", lambda: f"{{'a': {gen_num(draw, sc, d)}, 'b': {gen_num(draw, sc, d)}}}",
               lambda: "dict(get_fundamental_data(symbol))"]
    if sc.vars[DCT]:
        options.append(lambda: draw(st.sampled_from(sc.vars[DCT])))
    if depth < MAX_DEPTH:
        inner = sc.child()
        inner.vars[NUM].append("i")
        options.append(lambda: f"{{str(i): {gen_num(draw, inner, d)} for i in range({_small(draw)})}}")
    return _pick(draw, options)


def gen_str(draw: Any, sc: Scope, depth: int = 0) -> str:
    d = depth + 1
    options = [lambda: draw(st.sampled_from(["'abc'", "symbol", "''", "'x-y'"]))]
    if sc.vars[STR]:
        options.append(lambda: draw(st.sampled_from(sc.vars[STR])))
    if depth < MAX_DEPTH:
        s_ = lambda: gen_str(draw, sc, d)
        options += [lambda: f"str({gen_num(draw, sc, d)})", lambda: f"{s_()}.upper()", lambda: f"{s_()}.strip()",
                    lambda: f"({s_()} + {s_()})",
                    # f-strings wrap a name only: nested quotes inside f-strings need Python 3.12
                    lambda: f"f'{{{draw(st.sampled_from(['price'] + sc.vars[NUM]))}:.2f}}'",
                    lambda: f"'{{:.1f}}'.format({gen_num(draw, sc, d)})", lambda: f"('%s' % ({gen_num(draw, sc, d)},))",
                    lambda: f"getattr({s_()}, 'lower')()", lambda: f"{s_()}[:2]"]
    return _pick(draw, options)


def gen_arr(draw: Any, sc: Scope, depth: int = 0) -> str:
    d = depth + 1
    options = [lambda: f"np.arange({_small(draw)}, dtype=float)",
               lambda: f"np.array(get_price_data(symbol, days={_small(draw)})['close'], dtype=float)"]
    if sc.vars[ARR]:
        options.append(lambda: draw(st.sampled_from(sc.vars[ARR])))
    if depth < MAX_DEPTH:
        a = lambda: gen_arr(draw, sc, d)
        options += [lambda: f"({a()} * {gen_num(draw, sc, d)})", lambda: f"np.cumsum({a()})",
                    lambda: f"np.diff({a()})", lambda: f"{a()}[-3:]", lambda: f"np.sort({a()})",
                    lambda: f"np.array({gen_list(draw, sc, d)}, dtype=float)",
                    lambda: f"np.where({a()} > 0, {a()}, 0.0)"]
    return _pick(draw, options)


def _wrap(gen: Any) -> Any:
    return st.composite(lambda draw, sc, depth=0: gen(draw, sc, depth))


num_expr, bool_expr, list_expr, dict_expr, str_expr, arr_expr = (
    _wrap(g) for g in (gen_num, gen_bool, gen_list, gen_dict, gen_str, gen_arr))


EXPR_OF = {NUM: num_expr, LST: list_expr, DCT: dict_expr, STR: str_expr, ARR: arr_expr}


@st.composite
def block(draw: Any, sc: Scope, indent: int, depth: int = 0, size: int = 4) -> list[str]:
    """Statements at one indentation; names bound here are visible to later statements."""
    pad = "    " * indent
    lines: list[str] = []
    for _ in range(draw(st.integers(1, size))):
        kind = draw(st.sampled_from(["assign"] * 4 + ["aug", "item", "append", "if", "for", "while", "try", "attr"]
                                    if depth < 2 else ["assign", "aug", "item", "append"]))
        if kind == "assign" or (kind == "aug" and not sc.vars[NUM]):
            vk = draw(st.sampled_from([NUM, NUM, LST, DCT, STR, ARR]))
            expr = draw(EXPR_OF[vk](sc))
            name = sc.fresh(vk)
            lines.append(f"{pad}{name} = {expr}")
            sc.vars[vk].append(name)
        elif kind == "aug":
            name = draw(st.sampled_from(sc.vars[NUM]))
            op = draw(st.sampled_from(["+=", "-=", "*="]))
            # '*=' by a constant: multiplying a variable by itself inside nested loops would
            # square an int 125 times (a number with 10^37 digits), in this very process.
            # Other updates add a float: an int feeding on itself in a loop (n += n * n) grows
            # doubly exponentially.
            rhs = draw(st.sampled_from(["2", "-1", "0.5", "3"]) if op == "*=" else num_expr(sc, 2).map(lambda e: f"float({e})"))
            lines.append(f"{pad}{name} {op} {rhs}")
        elif kind == "item":
            if sc.vars[DCT] and draw(st.booleans()):
                d = draw(st.sampled_from(sc.vars[DCT]))
                op = draw(st.sampled_from(["=", "+="]))
                lines.append(f"{pad}{d}[{draw(st.sampled_from(['a', 'b', 'k']))!r}] {op} float({draw(num_expr(sc, 2))})")
            elif sc.vars[LST]:
                lst = draw(st.sampled_from(sc.vars[LST]))
                op = draw(st.sampled_from(["=", "+="]))
                lines.append(f"{pad}{lst}[{draw(st.integers(-3, 3))}] {op} float({draw(num_expr(sc, 2))})")
            else:
                lines.append(f"{pad}pass")
        elif kind == "append":
            if sc.vars[LST]:
                lines.append(f"{pad}{draw(st.sampled_from(sc.vars[LST]))}.append({draw(num_expr(sc, 2))})")
            else:
                lines.append(f"{pad}pass")
        elif kind == "attr":
            name = sc.fresh("obj")
            lines += [f"{pad}{name} = Box({draw(num_expr(sc, 2))})", f"{pad}{name}.n += float({draw(num_expr(sc, 2))})"]
            v = sc.fresh(NUM)
            lines.append(f"{pad}{v} = {name}.n + {name}.twice()")
            sc.vars[NUM].append(v)
        elif kind == "if":
            lines.append(f"{pad}if {draw(bool_expr(sc))}:")
            lines += draw(block(sc.child(), indent + 1, depth + 1, 3))
            if draw(st.booleans()):
                lines.append(f"{pad}else:")
                lines += draw(block(sc.child(), indent + 1, depth + 1, 3))
        elif kind == "for":
            inner = sc.child()
            var = inner.fresh(NUM)
            inner.vars[NUM].append(var)
            # Iterate over a bounded copy: the body may append to the very list being iterated.
            src = draw(st.one_of(SMALL.map(lambda n: f"range({n})"), list_expr(sc, 2).map(lambda e: f"{e}[:5]")))
            lines.append(f"{pad}for {var} in {src}:")
            lines += draw(block(inner, indent + 1, depth + 1, 3))
            if draw(st.integers(0, 4)) == 0:
                lines.append(f"{pad}    if {var} > 2:\n{pad}        break")
        elif kind == "while":
            w = sc.fresh(NUM)
            # The counter stays out of scope: a body that reassigned it could loop forever.
            lines += [f"{pad}{w} = 0", f"{pad}while {w} < {draw(SMALL)}:", f"{pad}    {w} += 1"]
            lines += draw(block(sc.child(), indent + 1, depth + 1, 2))
        elif kind == "try":
            lines.append(f"{pad}try:")
            lines += draw(block(sc.child(), indent + 1, depth + 1, 2))
            exc = draw(st.sampled_from(["ZeroDivisionError", "(IndexError, KeyError)", "Exception as err"]))
            lines.append(f"{pad}except {exc}:")
            lines.append(f"{pad}    {sc.fresh(STR)} = " + ("str(err)" if "err" in exc else "'caught'"))
    return lines


HEADER = """import math
import statistics
import numpy as np
from statistics import median


class Box:
    def __init__(self, n):
        self.n = n

    def twice(self):
        return self.n * 2
"""


@st.composite
def clean_program(draw: Any) -> str:
    """A strategy made only of allowed constructs."""
    top = Scope()
    lines = [HEADER]
    for k in range(draw(st.integers(0, 2))):
        name = f"helper{k}"
        inner = top.child()
        inner.vars[NUM].append("a")
        body = draw(block(inner, 1, 1, 3))
        lines.append(f"def {name}(a, b=1):\n    price = a\n    symbol = 'AAPL'\n" + "\n".join(body)
                     + f"\n    return {draw(num_expr(inner, 1))}\n")
        top.helpers.append(name)
    if draw(st.booleans()):
        lines.append(f"scale = lambda x: x * {draw(st.integers(1, 3))}")
        top.helpers.append("scale")
    sc = top.child()
    body = draw(block(sc, 1, 0, 6))
    ret = draw(st.one_of(
        bool_expr(sc),
        st.tuples(bool_expr(sc), num_expr(sc), num_expr(sc), str_expr(sc)).map(
            lambda t: f"{{'signal': {t[0]}, 'score': {t[1]}, 'v': {t[2]}, 's': {t[3]}}}")))
    lines.append("def classify_symbol(symbol):\n    d = get_price_data(symbol, days=10)\n"
                 "    price = d['close'][-1] if d['close'] else 0.0\n" + "\n".join(body) + f"\n    return {ret}\n")
    return "\n".join(lines)


# Forbidden constructs, each on a single line of its own (indented for a function body).
FORBIDDEN = [
    "x = d.__class__", "x = symbol.__class__.__mro__", "import os", "import subprocess as sp", "from os import path",
    "exec('x = 1')", "x = eval('1')", "x = open('f')", "x = __import__('os')", "x = (i for i in [1]).gi_frame",
    "x = (lambda: 0).__code__", "x = compile('1', 'f', 'exec')", "x = globals()", "x = vars()", "x = dir()",
    "global _hidden", "_private = 1", "x = getattr(d, 'cl' + 'ose')", "x = getattr(d, '__dict__')",
    "x = type('K', (), {})", "yield 1", "x = builtins", "x = ｅｖａｌ('1')", "x = d.__ｇｌｏｂａｌｓ__",
    "x = printed", "del d.__dict__", "x = setattr", "x = (lambda: 1).__globals__", "x = super()",
    "import numpy.lib.npyio as io", "from math import *", "raise SystemExit(0)", "x = breakpoint",
    "x = [1][0].__class__", "x = f'{d.__class__}'", "x = hasattr(d, '_x')", "x = memoryview(b'')",
]
# Statements that are whole blocks (module level only).
FORBIDDEN_BLOCKS = [
    "async def sneaky():\n    return 1", "with open('f') as fh:\n    pass", "class K(metaclass=type):\n    pass",
    "@property\ndef deco():\n    return 1", "def _hidden():\n    return 1",
    "try:\n    pass\nexcept* ValueError:\n    pass", "match 1:\n    case 1:\n        pass",
    "class K:\n    def __getattr__(self, n):\n        return n",
]


@st.composite
def forbidden_program(draw: Any) -> tuple[str, int]:
    """A clean program with one forbidden construct at a known (1-based) line."""
    src = draw(clean_program())
    lines = src.split("\n")
    if draw(st.booleans()):
        snippet = draw(st.sampled_from(FORBIDDEN_BLOCKS))
        pos = len(HEADER.split("\n"))  # module level, after the header
        lines[pos:pos] = snippet.split("\n")
        # The finding may be on any line of the block: encoded as -(first line * 1000 + size).
        return "\n".join(lines), -(pos + 1) * 1000 - len(snippet.split("\n"))
    starts = [i for i, ln in enumerate(lines) if ln.startswith("    return ")]
    pos = starts[-1]  # just before classify_symbol's return
    lines.insert(pos, "    " + draw(st.sampled_from(FORBIDDEN)))
    return "\n".join(lines), pos + 1


# -- running both ways -------------------------------------------------------------------------------
class Hang(BaseException):
    """A generated program ran too long in-process (a generator bug: loops are meant to be bounded)."""


@contextlib.contextmanager
def time_limit(seconds: float = 20.0) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"a generated program ran longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _plain_globals(functions: dict) -> dict:
    return {"__builtins__": builtins, "__name__": "plain", "np": np, "math": math, "statistics": statistics,
            **functions}


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        res = call()
    except StrategyError as exc:  # a result that is not a bool/dict with signal
        return "strategy_error", str(exc).split(",")[0]
    except Exception as exc:  # noqa: BLE001 - the strategy's own failure
        return "raises", type(exc).__name__
    try:
        return "value", sanitize_result(res)
    except StrategyError as exc:
        return "strategy_error", str(exc).split(",")[0]


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    return json.dumps(a, default=repr, sort_keys=True) == json.dumps(b, default=repr, sort_keys=True)


@pytest.fixture(scope="module")
def pit(market):
    from stratagem.data.pit import PointInTime
    from stratagem.data.reference import ReferenceData

    view = PointInTime(market, ReferenceData.load_default())
    view.set_asof(int(market.calendar()[-1]))
    return view


@FUZZ
@given(src=clean_program())
def test_clean_programs_run_in_the_sandbox_exactly_as_in_plain_python(src: str, pit) -> None:
    with time_limit():
        _check_clean(src, pit)


def _check_clean(src: str, pit: Any) -> None:
    STATS["clean"] += 1
    findings = validate(src)
    assert not findings, f"the validator rejected a clean program: {findings}\n{src}"
    compile_strategy(src)  # the RestrictedPython policy accepts what the validator accepts
    functions = pit.functions()
    try:
        strat = LoadedStrategy(src, functions)
    except StrategyError as exc:
        # the module body failed: plain Python must fail too
        with pytest.raises(Exception):  # noqa: B017 - any failure of the same module body
            exec(compile(src, "<plain>", "exec"), _plain_globals(functions))  # noqa: S102 - clean by construction
        STATS["clean_load_failed"] += 1
        assert "failed while loading" in str(exc)
        return
    g = _plain_globals(functions)
    exec(compile(src, "<plain>", "exec"), g)  # noqa: S102 - clean by construction (no forbidden construct)
    for sym in ("AAPL", "NOPE"):
        sandboxed = _outcome(lambda sym=sym: strat.classify(sym))
        plain = _outcome(lambda sym=sym: g["classify_symbol"](sym))
        STATS["clean_" + sandboxed[0]] += 1
        assert _same(sandboxed, plain), f"sandbox {sandboxed} != plain {plain} for {sym}\n{src}"
        if sandboxed[0] == "value":
            json.dumps(sandboxed[1], allow_nan=False)


@FUZZ
@given(case=forbidden_program())
def test_forbidden_constructs_are_rejected_with_their_line(case: tuple[str, int]) -> None:
    src, line = case
    STATS["forbidden"] += 1
    n_lines = src.count("\n") + 1
    findings = validate(src)
    assert findings, f"accepted a forbidden construct:\n{src}"
    for f in findings:
        assert 1 <= f.line <= n_lines and f.col >= 1 and f.message
    if line > 0:
        assert any(f.line == line for f in findings), (line, findings)
    else:  # a block at module level: some finding inside the block's lines
        first = -line // 1000
        size = -line % 1000
        assert any(first <= f.line < first + size for f in findings), (first, size, findings, src)
    with pytest.raises(StrategyRejected) as info:
        compile_strategy(src)
    assert info.value.details and all(d["line"] >= 1 for d in info.value.details)


@FUZZ
@given(src=clean_program(), data=st.data())
def test_mangled_source_never_crashes_the_validator_or_compiler(src: str, data: Any, pit) -> None:
    with time_limit():
        _check_mangled(src, data, pit)


def _check_mangled(src: str, data: Any, pit: Any) -> None:
    STATS["mangled"] += 1
    chars = list(src)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(0, len(chars) - 1)))
        op = data.draw(st.sampled_from(["del", "ins", "dup"]))
        if op == "del" and chars:
            del chars[i]
        elif op == "ins":
            chars.insert(i, data.draw(st.sampled_from(list("()[]{}:_.'\"\\\n #=+*\t\x00\u200bｅ_"))))
        elif chars:
            chars.insert(i, chars[i])
    mangled = "".join(chars)
    findings = validate(mangled)
    if findings:
        STATS["mangled_rejected"] += 1
        assert all(f.line >= 1 and f.col >= 1 for f in findings)
        with pytest.raises(StrategyRejected):
            compile_strategy(mangled)
        return
    STATS["mangled_valid"] += 1
    compile_strategy(mangled)
    try:
        strat = LoadedStrategy(mangled, pit.functions())
    except StrategyError:
        return
    kind, value = _outcome(lambda: strat.classify("AAPL"))
    if kind == "value":
        json.dumps(value, allow_nan=False)


@settings(max_examples=SANDBOX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(src=clean_program())
def test_worker_processes_agree_with_the_in_process_runtime(src: str, sandbox, market, pit) -> None:
    """A sample through the real sandbox (forked workers, rlimits, seccomp, JSON wire)."""
    STATS["sandbox"] += 1
    last = int(market.calendar()[-1])
    try:
        strat = LoadedStrategy(src, pit.functions())
    except StrategyError:
        from stratagem.errors import StrategyFailed

        with pytest.raises(StrategyFailed):
            sandbox.run(src, [(last, ["AAPL"])])
        return
    pit.set_asof(last)
    expected = _outcome(lambda: strat.classify("AAPL"))
    out = sandbox.run(src, [(last, ["AAPL"])])
    assert out.evaluated == 1
    if expected[0] == "value":
        sig, score, values = expected[1]
        assert not out.errors, out.errors
        if sig:
            assert [(s, sc, v) for s, _d, sc, v in out.signals] == [("AAPL", score, values)]
        else:
            assert not out.signals
    else:
        assert not out.signals and len(out.errors) == 1 and out.errors[0][2]
        if expected[0] == "raises":
            assert out.errors[0][2].startswith(expected[1]), (out.errors, expected)
    json.dumps([list(x) for x in out.signals], allow_nan=False)


def teardown_module(module: object) -> None:
    if STATS:
        print("\nfuzz cases run: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items())))
        path = os.environ.get("STRATAGEM_FUZZ_REPORT")
        if path:
            with open(path, "w") as fh:
                json.dump({"examples_setting": EXAMPLES, **STATS}, fh, indent=1, sort_keys=True)
