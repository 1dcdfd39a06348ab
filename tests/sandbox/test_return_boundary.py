"""Returned values cross the sandbox boundary as plain, size-limited JSON data or as a clean error.

Two sides: the converters themselves (``sanitize_result`` for ``classify_symbol``, ``_jsonable``
for the other entry points) fed hostile Python objects that trusted code could meet (custom
``__bool__``/``__float__``/``__str__``/``__eq__``/``__hash__``, numpy object arrays, huge and deep
containers, NaN/inf, non-str keys, str/dict subclasses), and the real worker processes fed the
hostile values a strategy can actually build.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np
import pytest
from stratagem.errors import StrategyFailed
from stratagem.sandbox.runtime import (
    MAX_KEY_LEN,
    MAX_STR_LEN,
    MAX_VALUES,
    StrategyError,
    sanitize_result,
)
from stratagem.sandbox.worker import _jsonable

PLAIN = (bool, int, float, str, type(None))


def assert_plain_json(value: Any, max_bytes: int | None = None) -> None:
    """``value`` is made of exact JSON types only (no subclasses) and encodes as strict JSON."""

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            assert type(v) is dict
            for k, x in v.items():
                assert type(k) is str
                walk(x)
        elif isinstance(v, list):
            assert type(v) is list
            for x in v:
                walk(x)
        else:
            assert type(v) in PLAIN, f"{type(v).__name__} crossed the boundary"
            if type(v) is float:
                assert math.isfinite(v)

    walk(value)
    text = json.dumps(value, allow_nan=False)
    if max_bytes is not None:
        assert len(text) <= max_bytes


class Sneaky:
    """Every conversion hook runs code (and lies)."""

    calls: ClassVar[list[str]] = []

    def __bool__(self) -> bool:
        Sneaky.calls.append("bool")
        return True

    def __float__(self) -> float:
        Sneaky.calls.append("float")
        return float("inf")

    def __str__(self) -> str:
        Sneaky.calls.append("str")
        return "x" * 10**6

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


class Raising:
    def __float__(self) -> float:
        raise RuntimeError("boom")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class FloatSub(float):
    pass


class StrSub(str):
    pass


class DictSub(dict):
    pass


def _hostile_classify_results() -> list[Any]:
    deep: Any = {"signal": True}
    cur = deep
    for _ in range(500):
        cur["n"] = {}
        cur = cur["n"]
    return [
        Sneaky(), {"signal": Sneaky()}, {"signal": True, "score": Sneaky(), "v": Sneaky()},
        {"signal": True, "score": Raising()}, {"signal": True, "score": float("nan"), "a": float("inf"),
                                               "b": -float("inf"), "c": 10**400, "d": np.float64("nan")},
        {"signal": np.array([True, False])}, {"signal": np.array([1], dtype=object)},
        {"signal": True, 1: 2, (1, 2): 3, None: 4, Sneaky(): 5, "ok": 1.5},
        {"signal": True, "s": "y" * 10**6, "k" * 10**5: 1},
        {"signal": True, **{f"k{i}": i for i in range(10**5)}},
        {"signal": True, "arr": np.arange(10**5), "obj": np.array([Sneaky()], dtype=object), "l": [1, 2]},
        DictSub(signal=True, score=FloatSub(2.5), name=StrSub("abc")),
        {"signal": np.bool_(True), "score": np.int64(7), "x": np.float32(1.5), "y": FloatSub("nan")},
        deep, [True], "True", 1j, np.float64(1.0), None, 3,
    ]


@pytest.mark.parametrize("res", _hostile_classify_results(), ids=lambda r: type(r).__name__)
def test_classify_results_become_plain_data_or_a_clean_error(res: Any) -> None:
    try:
        sig, score, values = sanitize_result(res)
    except StrategyError as exc:
        assert str(exc)  # a per-call error with a message for the user
        return
    except RuntimeError as exc:
        # A conversion hook that raises propagates as the strategy's own failure; the worker
        # reports it per call (describe_exception), never as an engine crash.
        assert "boom" in str(exc)
        return
    assert type(sig) is bool
    assert score is None or (type(score) is float and math.isfinite(score))
    assert len(values) <= MAX_VALUES
    for k, v in values.items():
        assert type(k) is str and len(k) <= MAX_KEY_LEN
        if type(v) is str:
            assert len(v) <= MAX_STR_LEN
    assert_plain_json({"signal": sig, "score": score, "values": values}, max_bytes=64 * 1024)


def _hostile_entry_results() -> list[Any]:
    deep: list = []
    cur = deep
    for _ in range(50):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    return [
        {"ranked_results": [{"symbol": "AAPL", "score": float("nan"), "values": {1: Sneaky()}}]},
        [Sneaky()], {"a": np.array([1, 2])}, {1: 2, None: 3, (1,): 4}, deep, [float("inf"), -0.0, 10**400],
        ["z" * 10**6], list(range(10**6)), {f"k{i}": i for i in range(10**5)}, {1}, b"bytes",
        {StrSub("k"): StrSub("v"), "f": FloatSub(1.0), "d": DictSub(a=1)},
        [{"s": "y" * 999} for _ in range(19_000)],  # within the node budget, ~19 MB of text
        {Raising(): 1},
    ]


@pytest.mark.parametrize("value", _hostile_entry_results(), ids=lambda v: type(v).__name__)
def test_entry_point_results_become_plain_data_or_a_clean_error(value: Any) -> None:
    try:
        out = _jsonable(value)
    except ValueError as exc:
        assert "returned value" in str(exc) or "digits" in str(exc)
        return
    except RuntimeError as exc:  # a hostile __str__ on a key: the strategy's own failure
        assert "no str" in str(exc)
        return
    assert_plain_json(out, max_bytes=4 << 20)


# -- through real worker processes ---------------------------------------------------------------
HOSTILE_SCREENING = {
    "nan_and_forged": """
def run_screening(universe, limit):
    return {"ranked_results": [{"symbol": "EVIL", "score": 1.0, "values": {}},
                               {"symbol": universe[0], "score": float("nan"), "values": {"a": float("inf"), "b": [1, {"c": 2}]}}]}
def classify_symbol(symbol):
    return True
""",
    "deep": """
def run_screening(universe, limit):
    deep = []
    cur = deep
    for i in range(100):
        nxt = []
        cur.append(nxt)
        cur = nxt
    return [{"symbol": universe[0], "score": 1.0, "values": {"deep": deep}}]
def classify_symbol(symbol):
    return True
""",
    "huge": """
def run_screening(universe, limit):
    return [{"symbol": universe[0], "score": 1.0, "values": {"s": "y" * 999}} for i in range(19000)]
def classify_symbol(symbol):
    return True
""",
    "objects": """
class K:
    pass
def run_screening(universe, limit):
    return [{"symbol": universe[0], "score": 1.0, "values": {"k": K(), "f": get_price_data}}]
def classify_symbol(symbol):
    return True
""",
    "non_str_keys": """
def run_screening(universe, limit):
    return [{"symbol": universe[0], "score": 1.0, "values": {1: 2, (1, 2): 3, None: 4}}]
def classify_symbol(symbol):
    return True
""",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SCREENING))
def test_run_screening_values_cross_as_plain_json(name: str, sandbox, market) -> None:
    from stratagem.engines.screen import run_screen

    try:
        doc = run_screen(sandbox, market, HOSTILE_SCREENING[name], ["AAPL", "MSFT"])
    except StrategyFailed as exc:
        assert exc.message  # refused with a reason (too large, too deep, not plain data)
        if name == "huge":  # refused by the worker's own budget, with that reason (not a crash)
            assert "too large" in exc.message
        return
    assert name != "huge", "a 19 MB result was accepted"
    assert all(r["symbol"] in ("AAPL", "MSFT") for r in doc["ranked_results"])
    assert_plain_json(doc["ranked_results"], max_bytes=4 << 20)


def test_classify_hostile_values_through_the_worker(sandbox, market) -> None:
    """What a strategy can build (subclasses, NaN, huge strings, many keys) comes back plain."""
    src = """
class I(int):
    pass
class S(str):
    pass
class D(dict):
    pass
def classify_symbol(symbol):
    d = D()
    d["signal"] = I(1)
    d["score"] = float("nan") if symbol == "AAPL" else I(3)
    d["name"] = S("abc") + "y" * 100000
    d["inf"] = float("inf")
    for i in range(200):
        d["k" + str(i)] = i
    d[1] = 2
    return d
"""
    last = int(market.calendar()[-1])
    out = sandbox.run(src, [(last, ["AAPL", "MSFT"])])
    assert not out.errors
    assert len(out.signals) == 2
    for _sym, _day, score, values in out.signals:
        assert score is None or (type(score) is float and math.isfinite(score))
        assert len(values) <= MAX_VALUES and len(values["name"]) <= MAX_STR_LEN
        assert values["inf"] is None
        assert_plain_json({"score": score, "values": values})
