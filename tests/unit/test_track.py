"""engines/track.py against hand-computed values (no data layer, no sandbox)."""

from __future__ import annotations

import math

import pytest
from stratagem.engines import track

DAYS = [10, 11, 12, 15, 16, 17, 18, 19, 22, 23, 24, 25]  # sessions (a weekend-like gap after 12)
CLOSES = [100.0, 110.0, 99.0, 100.0, 105.0, 120.0, 90.0, 100.0, 100.0, 100.0, 130.0, 80.0]


def lookup(symbol):
    return (DAYS, CLOSES) if symbol == "AAA" else ([], [])


def alert(day, symbol="AAA"):
    return {"symbol": symbol, "timestamp": day * track.DAY_MS, "strategy_version": 1}


def test_forward_returns_count_trading_days_and_stay_null_until_known():
    assert track.forward_returns(DAYS, CLOSES, 10) == pytest.approx({"1": 0.10, "5": 0.20, "10": 0.30})
    r = track.forward_returns(DAYS, CLOSES, 17)  # t=5, close 120; t+1 = 90, t+5 = 130, t+10 past the data
    assert r["1"] == pytest.approx(-0.25) and r["5"] == pytest.approx(130 / 120 - 1) and r["10"] is None
    r = track.forward_returns(DAYS, CLOSES, 24)
    assert r["1"] == pytest.approx(80 / 130 - 1) and r["5"] is None and r["10"] is None
    assert track.forward_returns(DAYS, CLOSES, 13) == {"1": None, "5": None, "10": None}  # not a session
    assert track.forward_returns([], [], 10, [3]) == {"3": None}


def test_live_window_stats_by_hand():
    rows = track.with_returns([alert(10), alert(17), alert(24), alert(13), alert(10, "ZZZ")], lookup)
    live = track.live_window_stats(rows)
    one = live["1"]
    assert (one["count"], one["pending"]) == (3, 2)
    assert one["hit_rate"] == pytest.approx(1 / 3)
    assert one["mean"] == pytest.approx((0.10 - 0.25 + (80 / 130 - 1)) / 3)
    assert one["std"] == pytest.approx(0.250157741162473)
    five = live["5"]
    assert (five["count"], five["pending"], five["hit_rate"]) == (2, 3, 1.0)
    assert five["mean"] == pytest.approx((0.20 + 130 / 120 - 1) / 2)
    ten = live["10"]
    assert (ten["count"], ten["mean"], ten["hit_rate"]) == (1, pytest.approx(0.30), 1.0)
    assert math.isnan(ten["std"])


def test_compare_with_the_backtest():
    rows = track.with_returns([alert(10), alert(17), alert(24)], lookup)
    live = track.live_window_stats(rows)
    bt = {"1": {"count": 100, "mean": 0.01, "std": 0.02, "hit_rate": 0.55},
          "5": {"count": 80, "mean": 0.03, "std": 0.05, "hit_rate": 0.6}}
    cmp = track.compare(live, bt)
    one = cmp["1"]
    assert one["backtest"] == {"count": 100, "hit_rate": 0.55, "mean": 0.01}
    assert one["hit_rate_diff"] == pytest.approx(1 / 3 - 0.55)
    assert one["mean_diff"] == pytest.approx(-0.1782051282051282 - 0.01)
    assert one["welch_t"] == pytest.approx(-1.3029762443829591)
    assert one["drift"] is None  # 3 live returns: too few to call drift either way
    assert cmp["10"]["backtest"] is None and cmp["10"]["drift"] is None
    assert track.compare(live, None)["5"]["backtest"] is None


def test_drift_is_flagged_with_enough_live_returns():
    live = {"1": {"count": 10, "pending": 0, "hit_rate": 0.2, "mean": -0.02, "std": 0.01}}
    bt = {"1": {"count": 50, "mean": 0.01, "std": 0.02, "hit_rate": 0.6}}
    t = (-0.02 - 0.01) / math.sqrt(0.01 ** 2 / 10 + 0.02 ** 2 / 50)
    row = track.compare(live, bt, [1])["1"]
    assert row["welch_t"] == pytest.approx(t) and row["drift"] is True
    calm = {"1": dict(live["1"], mean=0.011)}
    assert track.compare(calm, bt, [1])["1"]["drift"] is False


def test_baseline_period_ends_the_day_before_the_first_alert():
    assert track.baseline_period([]) is None
    assert track.baseline_period([alert(1000), alert(900)], years=1.0) == (900 - 365, 899)


def test_track_record_is_json_safe_and_ordered():
    doc = track.track_record([alert(24), alert(10)], lookup, None, [1])
    assert [a["timestamp"] for a in doc["alerts"]] == [10 * track.DAY_MS, 24 * track.DAY_MS]
    assert doc["live"]["1"]["std"] == pytest.approx(math.sqrt(((0.1 - (80 / 130 - 1)) ** 2) / 2))
    assert doc["comparison"]["1"]["welch_t"] is None  # NaN -> null
