"""Regression tests for the holes the red-team found (each failed before its fix)."""

from __future__ import annotations

import pytest
from stratagem.sandbox.guards import guarded_getattr
from stratagem.sandbox.runtime import LoadedStrategy, StrategyError
from stratagem.sandbox.worker import _jsonable


def test_attributeerror_obj_is_refused_cve_2024_47532() -> None:
    """AttributeError.obj carried the object whose lookup failed (possibly an internal object of
    trusted code) out to the strategy."""
    try:
        object().missing  # noqa: B018
    except AttributeError as exc:
        err = exc
    with pytest.raises(AttributeError, match="'obj'"):
        guarded_getattr(err, "obj")
    assert guarded_getattr(err, "name") == "missing"  # the rest of the exception stays usable
    src = ("def classify_symbol(symbol):\n"
           "    try:\n"
           "        np.nonexistent\n"
           "    except AttributeError as e:\n"
           "        return {'signal': True, 'leak': str(e.obj)}\n")
    strat = LoadedStrategy(src, {})
    with pytest.raises(AttributeError, match="'obj'"):
        strat.classify("AAPL")
    # a strategy's own objects may still have an attribute called obj
    own = LoadedStrategy("class K:\n    obj = 1\ndef classify_symbol(symbol):\n    return K().obj == 1\n", {})
    assert own.classify("AAPL") is True


def test_entry_point_results_have_a_text_budget() -> None:
    """19,000 strings of 999 characters passed the node budget and reached the engine as a 19 MB
    frame, which it reported as a crash ('broke the sandbox limits'); now refused by name."""
    with pytest.raises(ValueError, match="too large"):
        _jsonable([{"s": "y" * 999} for _ in range(19_000)])
    with pytest.raises(ValueError, match="too large"):
        _jsonable({("k" * 100) + str(i): 1 for i in range(900)} | {"x": ["é" * 1000] * 499})
    assert _jsonable(["y" * 999] * 400) == ["y" * 999] * 400  # ordinary results still pass


def test_strategy_error_is_the_only_failure_for_bad_results() -> None:
    strat = LoadedStrategy("def classify_symbol(symbol):\n    return {'score': 1}\n", {})
    from stratagem.sandbox.runtime import sanitize_result

    with pytest.raises(StrategyError, match="signal"):
        sanitize_result(strat.classify("AAPL"))


def test_augmented_item_and_attribute_assignment_keep_pythons_evaluation_order() -> None:
    """Found by the program fuzzer: ``d['b'] += f()`` evaluated ``f()`` before reading ``d['b']``
    (the value was an argument of one helper call), so a missing key surfaced as the value's
    IndexError instead of KeyError, and side effects ran in another order than in Python."""
    src = ("log = []\n"
           "def v(x):\n"
           "    log.append('value')\n"
           "    return x\n"
           "class Box:\n"
           "    def __init__(self):\n"
           "        self.n = 1\n"
           "def classify_symbol(symbol):\n"
           "    d = {}\n"
           "    try:\n"
           "        d['b'] += [1][4]\n"
           "    except Exception as e:\n"
           "        first = str(type(e))\n"
           "    b = Box()\n"
           "    b.n += v(2)\n"
           "    g = {'k': 1}\n"
           "    g['k'] += v(3)\n"
           "    try:\n"
           "        b.missing += v(4)\n"
           "    except AttributeError:\n"
           "        log.append('attr-error-before-value')\n"
           "    return {'signal': True, 'first': first, 'n': b.n, 'k': g['k'], 'log': ','.join(log)}\n")
    plain: dict = {"__builtins__": __builtins__}
    exec(compile(src, "<plain>", "exec"), plain)  # noqa: S102 - trusted test source
    expected = plain["classify_symbol"]("AAPL")
    got = LoadedStrategy(src, {}).classify("AAPL")
    assert got == expected
    assert got["first"] == "<class 'KeyError'>" and got["log"] == "value,value,attr-error-before-value"


def test_annotated_assignments_agree_between_validator_and_compiler() -> None:
    """Found by the program fuzzer (mangled source, 5,000-example run): the validator accepted
    ``x: int = 1`` and RestrictedPython then rejected it with a less helpful message. Annotated
    assignments now run as plain assignments; underscore targets are still refused."""
    from stratagem.sandbox.policy import check

    src = ("x: int = 1\n"
           "class K:\n"
           "    def __init__(self):\n"
           "        self.n: float = 2.5\n"
           "def classify_symbol(symbol):\n"
           "    d: dict = {}\n"
           "    d['a']: int = 3\n"
           "    y: int\n"
           "    return {'signal': True, 'score': x + K().n + d['a']}\n")
    assert check(src) == []
    assert LoadedStrategy(src, {}).classify("AAPL") == {"signal": True, "score": 6.5}
    assert check("def classify_symbol(s):\n    s.__x: int = 1\n    return True\n")
