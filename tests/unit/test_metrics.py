"""Metric functions against hand-computed values (empyrical style: small named series)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratagem.engines import metrics
from stratagem.engines.backtest import forward_returns

MIXED = [0.01, -0.02, 0.03, 0.0, 0.04]
NEG = [-0.01, -0.02, -0.03]


def test_empty_and_nan_only_give_nan_or_zero_count():
    for x in ([], [math.nan], [math.inf, math.nan]):
        s = metrics.summary(x)
        assert s["count"] == 0 and all(math.isnan(v) for k, v in s.items() if k != "count")


def test_mixed_series_hand_values():
    s = metrics.summary(MIXED)
    assert s["count"] == 5
    assert s["mean"] == pytest.approx(0.012, abs=1e-15)
    assert s["median"] == pytest.approx(0.01)
    # sample std: deviations -0.002,-0.032,0.018,-0.012,0.028 -> squares sum 0.00228 / 4
    assert s["std"] == pytest.approx(math.sqrt(0.00228 / 4), rel=1e-12)
    assert s["hit_rate"] == pytest.approx(3 / 5)  # 0.0 is not a hit
    assert s["t_stat"] == pytest.approx(0.012 / (math.sqrt(0.00228 / 4) / math.sqrt(5)), rel=1e-12)
    assert (s["best"], s["worst"]) == (0.04, -0.02)


def test_all_negative():
    s = metrics.summary(NEG)
    assert s["hit_rate"] == 0.0 and s["mean"] == pytest.approx(-0.02) and s["t_stat"] < 0


def test_single_value_has_no_dispersion():
    s = metrics.summary([0.05])
    assert s["count"] == 1 and s["mean"] == 0.05 and math.isnan(s["std"]) and math.isnan(s["t_stat"])


def test_constant_series_t_stat_is_nan_not_inf():
    assert math.isnan(metrics.t_stat([0.01, 0.01, 0.01]))


def test_ndarray_input_same_as_list():
    assert metrics.summary(np.array(MIXED)) == metrics.summary(MIXED)


def test_forward_returns_counts_bars_and_ends_with_nan():
    adj = np.array([10.0, 11.0, 12.1, 9.0])
    f1 = forward_returns(adj, 1)
    np.testing.assert_allclose(f1[:3], [0.1, 0.1, 9.0 / 12.1 - 1])
    assert math.isnan(f1[3])
    f5 = forward_returns(adj, 5)
    assert np.isnan(f5).all()


def test_nan_to_none_recurses():
    assert metrics.nan_to_none({"a": [math.nan, 1.0], "b": {"c": math.inf}}) == {"a": [None, 1.0], "b": {"c": None}}


def test_equity_metrics_hand_values():
    r = [0.10, -0.50, 0.20]
    assert metrics.total_return(r) == pytest.approx(1.1 * 0.5 * 1.2 - 1)
    np.testing.assert_allclose(metrics.equity_curve(r), [1.1, 0.55, 0.66])
    assert metrics.max_drawdown(r) == pytest.approx(0.55 / 1.1 - 1)  # -50%
    assert metrics.cagr([0.01] * 252) == pytest.approx(1.01 ** 252 - 1)
    assert metrics.cagr([0.0] * 126) == 0.0
    m, s = np.mean(r), np.std(r, ddof=1)
    assert metrics.sharpe(r) == pytest.approx(m / s * math.sqrt(252))


def test_drawdown_properties():
    assert metrics.max_drawdown([0.01, 0.02, 0.03]) == 0.0  # rising returns never draw down
    assert metrics.max_drawdown([]) == 0.0 and metrics.total_return([]) == 0.0
    assert metrics.max_drawdown([-0.1]) == pytest.approx(-0.1)  # a first-day loss counts from 1.0
    assert math.isnan(metrics.sharpe([0.01])) and math.isnan(metrics.cagr([]))


def test_nan_to_none_on_long_homogeneous_series_and_mixed_ones() -> None:
    from stratagem.engines.metrics import nan_to_none

    nan, inf = float("nan"), float("inf")
    doc = {"eq": [1.0] * 100, "eq_bad": [1.0] * 99 + [nan], "dates": ["2012-01-03"] * 100,
           "mixed": ["a"] * 99 + [inf], "rows": [{"r": -inf, "s": 2.0}] * 70, "short": [nan, 1.0]}
    out = nan_to_none(doc)
    assert out["eq"] == [1.0] * 100 and out["eq"] is not doc["eq"]
    assert out["eq_bad"] == [1.0] * 99 + [None]
    assert out["dates"] == ["2012-01-03"] * 100
    assert out["mixed"] == ["a"] * 99 + [None]
    assert out["rows"] == [{"r": None, "s": 2.0}] * 70
    assert out["short"] == [None, 1.0]
