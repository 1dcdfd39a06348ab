"""LoadedStrategy.stateless: the worker keeps a module across dates only when it holds no state.

Skipping the module re-run is safe only if nothing a call does can survive into the next
call. Each stateful case below is a way a strategy could carry a value from one call (a
later date) into another (an earlier one); each must be classified stateful. The process
test at the end runs the same carriers through a real worker on dates in reverse order.
"""

from __future__ import annotations

import pytest

from stratagem.data.store import iso_to_day
from stratagem.sandbox.pool import Sandbox
from stratagem.sandbox.runtime import LoadedStrategy

CALL = "\ndef classify_symbol(symbol):\n    return {body}\n"

STATELESS = {
    "constants and a function": "GAP = 0.03\nBARS = 21\nNAME = 'gap'\n" + CALL.format(body="GAP > 0"),
    "tuples and frozensets": "P = (1, (2.0, 'x'), frozenset({3}))\n" + CALL.format(body="len(P) > 0"),
    "helper functions with immutable defaults": (
        "def helper(x, k=2, *, scale=(1.0, 2.0)):\n    return x * k * scale[0]\n" + CALL.format(body="helper(1) > 0")),
    "imports and names from curated modules": (
        "import math\nimport itertools\nfrom statistics import mean\nfrom math import sqrt\nfrom collections import deque\n"
        + CALL.format(body="sqrt(mean([1, 2])) > 0")),
    "numpy scalars, dates and ranges": (
        "import datetime\nT = np.float64(2.5)\nD = datetime.date(2012, 1, 3)\nR = range(5)\n" + CALL.format(body="T > 0")),
    "a builtin bound to a name": "LEN = len\n" + CALL.format(body="LEN('ab') == 2"),
    "a lambda over constants": "f = lambda x: x * 2\n" + CALL.format(body="f(1) == 2"),
}

STATEFUL = {
    "a module-level dict": "SEEN = {}\n" + CALL.format(body="len(SEEN) > 0"),
    "a module-level list": "X = [1, 2]\n" + CALL.format(body="X.append(1) or True"),
    "a list inside a tuple": "X = (1, [2])\n" + CALL.format(body="True"),
    "a global statement": "N = 0\ndef classify_symbol(symbol):\n    global N\n    N += 1\n    return N > 1\n",
    "a global statement in a helper": (
        "N = 0\ndef bump():\n    global N\n    N = N + 1\n" + CALL.format(body="bump() or True")),
    "a mutable default argument": "def classify_symbol(symbol, seen=[]):\n    seen.append(1)\n    return len(seen) > 1\n",
    "a mutable keyword-only default": "def classify_symbol(symbol, *, seen={}):\n    return True\n",
    "a closure over a list": (
        "def make():\n    seen = []\n    def f(symbol):\n        seen.append(symbol)\n        return len(seen) > 1\n    return f\n"
        "f = make()\n" + CALL.format(body="f(symbol)")),
    "a numpy array": "W = np.zeros(3)\n" + CALL.format(body="True"),
    "a class": "class Box:\n    n = 0\n" + CALL.format(body="True"),
    "an instance": "class Box:\n    pass\nB = Box()\n" + CALL.format(body="True"),
    "an iterator": "import itertools\nC = itertools.count()\n" + CALL.format(body="next(C) > 0"),
    "a deque": "from collections import deque\nQ = deque(maxlen=3)\n" + CALL.format(body="True"),
    "print at module level": "print('loading')\n" + CALL.format(body="True"),
    "a bound method of a list": "L = []\nadd = L.append\n" + CALL.format(body="add(1) or True"),
}


@pytest.mark.parametrize("name", list(STATELESS))
def test_stateless_modules(name: str) -> None:
    assert LoadedStrategy(STATELESS[name], {}).stateless is True


@pytest.mark.parametrize("name", list(STATEFUL))
def test_stateful_modules(name: str) -> None:
    assert LoadedStrategy(STATEFUL[name], {}).stateless is False


def test_attributes_cannot_be_written_on_strategy_functions() -> None:
    # The stateless check trusts that a function's attributes and defaults cannot be changed
    # from strategy code; if this ever stops holding, the check must change with it.
    src = CALL.format(body="True") + "\ndef probe():\n    classify_symbol.memo = 1\n"
    s = LoadedStrategy(src, {})
    assert s.stateless
    with pytest.raises(TypeError, match="cannot modify function"):
        s.globals["probe"]()


def test_deeply_nested_values_count_as_state() -> None:
    value = "1"
    for _ in range(30):
        value = f"({value},)"
    deep = f"X = {value}\n" + CALL.format(body="True")
    assert LoadedStrategy(deep, {}).stateless is False


# -- the worker: a stateless module is kept across dates, a stateful one is re-run ----------
COUNTING = """
calls = []

def classify_symbol(symbol):
    calls.append(symbol)
    return {'signal': True, 'score': float(len(calls))}
"""


def test_worker_still_resets_stateful_modules_going_back_in_time(market) -> None:
    from stratagem.settings import SandboxLimits

    sbx = Sandbox(market.path, SandboxLimits(), workers=1)
    try:
        days = [iso_to_day("2012-12-27"), iso_to_day("2012-12-28")]
        out = sbx.run(COUNTING, {"AAPL": days, "MSFT": days}, workers=1, order="symbol")
        # symbol-major: MSFT's first day is earlier than AAPL's last, so the module is re-run
        # and MSFT's count starts again
        assert sorted((s, score) for s, _d, score, _v in out.signals) == [
            ("AAPL", 1.0), ("AAPL", 2.0), ("MSFT", 1.0), ("MSFT", 2.0)]
    finally:
        sbx.close()
