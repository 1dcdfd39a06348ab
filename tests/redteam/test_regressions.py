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
