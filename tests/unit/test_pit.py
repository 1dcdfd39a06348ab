"""Point-in-time data: what a strategy sees equals history cut at the as-of date and
re-adjusted as of that date - never a later bar, never a later corporate action."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from stratagem.data.pit import DataError, PointInTime, reference_truth
from stratagem.data.store import MS_PER_DAY, iso_to_day


@pytest.fixture(scope="module")
def pit(market):
    return PointInTime(market)


def test_bundled_dataset_shape(market):
    assert market.symbols == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert market.range("AAPL")[1] - market.range("AAPL")[0] == 3270
    assert market.range("FB")[1] - market.range("FB")[0] == 196
    splits = [(a["symbol"], a["date"], a["ratio"]) for a in market.meta["actions"] if a["kind"] == "split"]
    assert splits == [("AAPL", "2000-06-21", 2.0), ("AAPL", "2005-02-28", 2.0), ("MSFT", "2003-02-18", 2.0)]
    # MSFT's 2004 special dividend moved the factor by ~11%; it must not be taken for a split.
    msft_2004 = [a for a in market.meta["actions"] if a["symbol"] == "MSFT" and a["date"] == "2004-11-15"]
    assert msft_2004 and msft_2004[0]["kind"] == "dividend"


def test_last_bar_is_exactly_what_traded(pit, market):
    day = iso_to_day("2005-03-10")
    pit.set_asof(day)
    d = pit.price_data("AAPL", "1d", 12)
    a, _ = market.range("AAPL")
    i = a + int(np.searchsorted(market.dates("AAPL"), day))
    assert d["close"][-1] == market.columns["close"][i]
    assert d["timestamps"][-1] == day * MS_PER_DAY
    # Bars before the 2005-02-28 2:1 split are halved as of 2005-03-10 ...
    assert d["close"][0] == pytest.approx(market.columns["close"][i - 11] / 2, rel=1e-9)
    # ... and volume doubled (splits only).
    assert d["volume"][0] == pytest.approx(market.columns["volume"][i - 11] * 2, rel=1e-12)


def test_before_the_split_nothing_is_adjusted_for_it(pit, market):
    pit.set_asof(iso_to_day("2005-02-25"))
    d = pit.price_data("AAPL", "1d", 3)
    assert list(d["close"]) == [88.23, 88.93, 88.99]  # raw prices the day before the split


@pytest.mark.parametrize("days", [0, 1, 5, 30, 10**9])
def test_never_a_bar_after_asof(pit, days):
    day = iso_to_day("2008-10-13")
    pit.set_asof(day)
    d = pit.price_data("MSFT", "1d", days)
    assert len(d["close"]) == min(days, len(d["timestamps"]))
    assert all(t <= day * MS_PER_DAY for t in d["timestamps"])
    if days:
        assert d["timestamps"][-1] == day * MS_PER_DAY


def test_unknown_symbol_and_no_history_are_empty(pit):
    pit.set_asof(iso_to_day("2010-01-04"))
    for sym in ("NOPE", "FB"):
        d = pit.price_data(sym)
        assert not d["close"] and len(d["open"]) == 0 and not d["timestamps"]


@pytest.mark.parametrize("bad", [-1, float("nan"), "30", None])
def test_bad_days(pit, bad):
    pit.set_asof(iso_to_day("2010-01-04"))
    with pytest.raises(DataError, match="days"):
        pit.price_data("AAPL", "1d", bad)


@pytest.mark.parametrize("tf", ["1h", "5m", "1wk", "", None, 1])
def test_unsupported_timeframe_is_a_clear_error(pit, tf):
    pit.set_asof(iso_to_day("2010-01-04"))
    with pytest.raises(DataError, match="unsupported timeframe"):
        pit.price_data("AAPL", tf, 5)


def test_no_asof_means_no_data(market):
    p = PointInTime(market)
    with pytest.raises(DataError, match="inside classify_symbol"):
        p.price_data("AAPL")


def test_sequences_are_read_only_and_list_like(pit):
    pit.set_asof(iso_to_day("2012-06-01"))
    d = pit.price_data("AAPL", "1d", 5)
    c = d["close"]
    assert len(c) == 5 and c[-2] == list(c)[-2] and sum(c) == pytest.approx(sum(list(c)))
    assert isinstance(c[-1], float) and isinstance(d["timestamps"][-1], int)
    assert float(np.mean(c)) == pytest.approx(sum(c) / 5)
    with pytest.raises(TypeError):
        c[0] = 1.0
    arr = np.asarray(c)
    with pytest.raises(ValueError):
        arr[0] = 1.0
    with pytest.raises(ValueError):
        arr.setflags(write=True)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sym=st.sampled_from(["AAPL", "MSFT", "IBM", "GOOG", "FB"]),
       offset=st.integers(min_value=0, max_value=4760), days=st.integers(min_value=0, max_value=400))
def test_property_equals_history_cut_and_readjusted(pit, market, sym, offset, days):
    day = iso_to_day("2000-02-15") + offset
    pit.set_asof(day)
    got = pit.price_data(sym, "1d", days)
    want = reference_truth(market, sym, day, days)
    assert len(got["close"]) == len(want["close"])
    for k in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.asarray(got["timestamps"]), want["timestamps"])
    if len(want["timestamps"]):
        assert want["timestamps"][-1] <= day * MS_PER_DAY


def test_regime_cache_is_consistent_after_many_asofs(market):
    p = PointInTime(market, cache_bytes=1)  # force eviction on every new regime
    for day in range(iso_to_day("2004-01-02"), iso_to_day("2006-01-02"), 3):
        p.set_asof(day)
        got = p.price_data("MSFT", "1d", 120)
        want = reference_truth(market, "MSFT", day, 120)
        np.testing.assert_allclose(np.asarray(got["close"]), want["close"], rtol=1e-12)


def _last_session_ref(market, symbols, asof):
    best = None
    for sym in symbols:
        d = market.dates(sym)
        if len(d) == 0:
            continue
        i = int(np.searchsorted(d, asof, "right")) - 1 if asof is not None else len(d) - 1
        if i >= 0:
            best = int(d[i]) if best is None else max(best, int(d[i]))
    return best


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.sampled_from(["AAPL", "FB", "GOOG", "IBM", "MSFT", "NOPE"]), max_size=6, unique=True),
       offset=st.integers(-400, 4000), asof_none=st.booleans())
def test_last_session_and_listed_on_match_a_per_symbol_search(market, picks, offset, asof_none):
    # The vectorised index (first/last date per symbol) must give what a plain search over each
    # symbol's dates gives, for as-of dates before, inside (FB listed 2012) and after the data.
    cal = market.calendar()
    asof = None if asof_none else int(cal[0]) + offset
    assert market.last_session(picks, asof) == _last_session_ref(market, picks, asof)
    # Long lists take the vectorised path (unknown names are skipped by both).
    assert market.last_session(picks + [f"NOPE{i}" for i in range(70)], asof) == _last_session_ref(market, picks, asof)
    if asof is not None:
        want = [s for s in picks if market.range(s)[1] > market.range(s)[0] and int(market.dates(s)[0]) <= asof]
        assert market.listed_on(picks, asof) == want


def test_symbol_spelling_and_argument_errors(market):
    pit = PointInTime(market)
    pit.set_asof(iso_to_day("2012-12-31"))
    want = pit.price_data("AAPL", "1d", 5)
    for spelling in (" aapl ", "aapl", "Aapl", " aapl "):  # the normalised-name cache, twice
        got = pit.price_data(spelling, "1d", 5)
        assert list(got["close"]) == list(want["close"])

    class Name(str):
        pass

    assert list(pit.price_data(Name("aapl"), "1d", 5)["close"]) == list(want["close"])
    with pytest.raises(DataError, match="symbol must be a string"):
        pit.price_data(["AAPL"], "1d", 5)
    with pytest.raises(DataError, match="unsupported timeframe"):
        pit.price_data("AAPL", "1h", 5)
    with pytest.raises((DataError, TypeError)):
        pit.price_data("AAPL", ["1d"], 5)  # unhashable: refused, never taken for daily
    assert list(pit.price_data("AAPL", "1d", 5.0)["close"]) == list(want["close"])
    with pytest.raises(DataError, match=">= 0"):
        pit.price_data("AAPL", "1d", -1)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["AAPL", "FB", "MSFT", "NOPE"]), st.integers(-3, 40), st.booleans()),
                min_size=1, max_size=60), st.integers(0, 3200))
def test_index_asof_follows_any_sequence_of_dates(market, steps, start):
    # The index walks forward from each symbol's last lookup; any order of dates (forward by
    # a session, forward by many, backwards, repeated) must give the binary search's answer.
    pit = PointInTime(market)
    dates = np.asarray(market.columns["date"])
    cal = np.asarray(market.calendar())
    k = start
    for sym, step, skip_weekend in steps:
        k = min(max(k + step, 0), cal.size - 1)
        day = int(cal[k]) + (1 if skip_weekend else 0)  # also dates that are not sessions
        pit.set_asof(day)
        a, b = market.range(sym)
        want = (a, a + int(np.searchsorted(dates[a:b], day, side="right"))) if b > a else (0, 0)
        assert pit.index_asof(sym) == want
        assert pit.index_asof(sym) == want  # and again, from the cache


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["AAPL", "IBM", "MSFT", "NOPE"]), st.sampled_from([-5, 0, 1, 1, 1, 1, 2, 30]),
                          st.sampled_from([1, 5, 21, 90])), min_size=1, max_size=80), st.integers(0, 3200))
def test_price_data_walking_equals_fresh_lookups(market, steps, start):
    # price_data steps one bar forward from a symbol's last lookup and reuses the last
    # re-adjusted window (IBM and MSFT pay dividends: windows straddle ex-dates): every answer
    # must equal a fresh view's for the same date.
    pit = PointInTime(market)
    cal = np.asarray(market.calendar())
    k = start
    for sym, step, n in steps:
        k = min(max(k + step, 0), cal.size - 1)
        day = int(cal[k])
        pit.set_asof(day)
        fresh = PointInTime(market)
        fresh.set_asof(day)
        got, want = pit.price_data(sym, "1d", n), fresh.price_data(sym, "1d", n)
        assert {c: list(v) for c, v in got.items()} == {c: list(v) for c, v in want.items()}


def test_price_data_alternating_dividend_payers_equal_fresh_lookups(market):
    pit, fresh = PointInTime(market), PointInTime(market)
    cal = np.asarray(market.calendar())
    straddled = 0
    for day in cal[2000:2400:3].tolist():
        pit.set_asof(day)
        fresh.set_asof(day)
        for sym in ("IBM", "MSFT", "AAPL"):
            got = pit.price_data(sym, "1d", 90)
            fresh._idx, fresh._last_adj = {}, None  # no walking state: a lookup from scratch
            want = fresh.price_data(sym, "1d", 90)
            assert {c: list(v) for c, v in got.items()} == {c: list(v) for c, v in want.items()}
            a, e = fresh.index_asof(sym)
            regimes = np.asarray(market.columns["regime"][max(a, e - 90):e])
            straddled += int(regimes[0] != regimes[-1])
    assert straddled > 50  # the re-adjusted path was exercised
    # Both symbols in their k-th dividend regime, one after the other: the same regime number
    # must not hand one symbol the other's re-adjusted prices.
    firsts = {}
    for sym in ("IBM", "MSFT"):
        a, b = market.range(sym)
        r = np.asarray(market.columns["regime"][a:b])
        firsts[sym] = {int(k): int(market.columns["date"][a + int(np.argmax(r == k))]) for k in np.unique(r)}
    shared = sorted(set(firsts["IBM"]) & set(firsts["MSFT"]) - {0})
    assert len(shared) > 20
    for k in shared:
        for sym in ("IBM", "MSFT"):
            pit.set_asof(firsts[sym][k])
            fresh.set_asof(firsts[sym][k])
            fresh._idx, fresh._last_adj = {}, None
            got, want = pit.price_data(sym, "1d", 30), fresh.price_data(sym, "1d", 30)
            assert {c: list(v) for c, v in got.items()} == {c: list(v) for c, v in want.items()}, (sym, k)
