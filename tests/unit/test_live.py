"""Live market data: the ``stratagem.bars.v1`` schema, the live bar stores (new / corrected /
duplicate / out of order, arrival cursor), the dataset rule, and the point-in-time overlay
(no look-ahead; equal to the dataset itself when the overlay is the dataset's own history).

The ``bars_store`` tests are behaviour tests of the :class:`LiveBarStore` port:
``tests/integration/test_firestore_live.py`` reruns them against the Firestore emulator.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stratagem import messages
from stratagem.data.pit import PointInTime
from stratagem.data.store import MarketData, build_store, iso_to_day
from stratagem.live import (
    CONFLICT,
    CORRECTED,
    DUPLICATE,
    NEW,
    Bar,
    MemoryLiveBars,
    SQLiteLiveBars,
    bars_from_message,
    bars_message,
    dataset_last_day,
    history_bars,
    ingest,
    overlay_for,
    replay_bars,
)

D0 = iso_to_day("2013-03-04")  # the first session after the bundled data (ends 2013-03-01)


def bar(sym: str = "AAPL", day: int = D0, close: float = 100.0, **kw) -> Bar:
    base = dict(open=99.0, high=max(101.0, close), low=min(98.0, close), close=close, volume=1e6)
    base.update(kw)
    return Bar(sym, day, **base)


# --- schema ----------------------------------------------------------------------------------
def good(**kw) -> dict:
    b = {"symbol": "AAPL", "timeframe": "1d", "time": "2013-03-04", "open": 10, "high": 11, "low": 9.5,
         "close": 10.5, "volume": 1000}
    b.update(kw)
    return b


def test_a_valid_message_round_trips_through_bar_objects():
    msg = messages.make("stratagem.bars.v1", source="feed", bars=[good(), good(symbol="msft", adj_close=10.4)])
    bars = bars_from_message(msg)
    assert [b.symbol for b in bars] == ["AAPL", "MSFT"] and bars[0].day == D0 and bars[1].adj_close == 10.4
    again = bars_message(bars, "feed")
    assert bars_from_message(again) == bars
    assert messages.decode(messages.encode(again)) == again


def test_legacy_int_day_is_accepted_and_timeframe_defaults_to_daily():
    b = good()
    del b["time"], b["timeframe"]
    b["day"] = D0
    (parsed,) = bars_from_message(messages.make("stratagem.bars.v1", bars=[b]))
    assert parsed.day == D0 and parsed.timeframe == "1d"


@pytest.mark.parametrize("bad, expected", [
    ({"time": "2013-3-4"}, "bars[0] (AAPL): 'time' must be the bar's date as \"YYYY-MM-DD\", got '2013-3-4'"),
    ({"time": None}, "'time' must be the bar's date"),
    ({"day": D0}, "not both 'time' and 'day'"),
    ({"timeframe": "1h"}, "'timeframe' must be one of 1d (daily bars), got '1h'"),
    ({"symbol": "not a ticker"}, "bars[0]: 'symbol' must be a ticker like 'AAPL'"),
    ({"close": "10"}, "bars[0] (AAPL): 'close' must be a number, got str"),
    ({"close": True}, "'close' must be a number, got bool"),
    ({"open": -1}, "'open' must be a finite number > 0, got -1.0"),
    ({"volume": float("nan")}, "'volume' must be a finite number >= 0, got nan"),
    ({"high": 9.0}, "expected high >= low, got high 9.0 < low 9.5"),
    ({"close": 12.0}, "expected low <= close <= high, got close 12.0 outside [9.5, 11.0]"),
    ({"venue": "X"}, "unknown field(s) venue"),
    ({"time": "2150-01-01"}, "outside 1970-01-01..2099-12-31"),
])
def test_each_malformed_bar_gets_a_precise_message(bad, expected):
    with pytest.raises(messages.MalformedMessage) as exc:
        messages.make("stratagem.bars.v1", bars=[good(**bad)])
    assert expected in exc.value.message


def test_the_message_names_the_bar_index_and_counts_bad_bars():
    bars = [good(), good(symbol="IBM", close=50), good(), good(symbol="MSFT", volume=-5)]
    with pytest.raises(messages.MalformedMessage) as exc:
        messages.make("stratagem.bars.v1", bars=bars)
    msg = exc.value.message
    assert msg.startswith("stratagem.bars.v1: 2 of 4 bars are invalid")
    assert "bars[1] (IBM)" in msg and "bars[3] (MSFT)" in msg and "bars[0]" not in msg


def test_batches_are_capped_and_not_empty():
    with pytest.raises(messages.MalformedMessage, match="'bars' is empty"):
        messages.make("stratagem.bars.v1", bars=[])
    with pytest.raises(messages.MalformedMessage, match="at most 5000"):
        messages.make("stratagem.bars.v1", bars=[good()] * (messages.MAX_BARS_PER_MESSAGE + 1))
    with pytest.raises(messages.MalformedMessage, match="expected an object"):
        messages.make("stratagem.bars.v1", bars=[["AAPL", 1]])


# --- the store port (behaviour tests; rerun on Firestore) -------------------------------------
@pytest.fixture(params=["memory", "sqlite"])
def bars_store(request, tmp_path):
    return MemoryLiveBars() if request.param == "memory" else SQLiteLiveBars.in_home(tmp_path)


def test_new_duplicate_and_corrected_bars(bars_store):
    assert bars_store.put([bar(), bar("MSFT")]) == [NEW, NEW]
    assert bars_store.put([bar()]) == [DUPLICATE]
    assert bars_store.put([bar(close=100.5)]) == [CORRECTED]
    assert bars_store.put([bar(close=100.5)]) == [DUPLICATE]
    got = bars_store.bars_after({"AAPL": D0 - 1, "MSFT": D0 - 1, "IBM": D0 - 1})
    assert [b.close for b in got["AAPL"]] == [100.5] and len(got["MSFT"]) == 1 and got["IBM"] == []


def test_a_bar_is_symbol_timeframe_and_date(bars_store):
    assert bars_store.put([bar(day=D0), bar(day=D0 + 1), bar("IBM", day=D0)]) == [NEW, NEW, NEW]
    # the same key twice in one batch: the second is judged against the first
    assert bars_store.put([bar(day=D0 + 2), bar(day=D0 + 2), bar(day=D0 + 2, close=99.0)]) == [NEW, DUPLICATE,
                                                                                              CORRECTED]
    assert bars_store.put([bar(day=D0, adj_close=99.0)]) == [CORRECTED]  # adj_close is part of the bar


def test_out_of_order_bars_are_stored_and_read_back_in_date_order(bars_store):
    assert bars_store.put([bar(day=D0 + 3, close=103), bar(day=D0 + 1, close=101)]) == [NEW, NEW]
    assert bars_store.put([bar(day=D0 + 2, close=102)]) == [NEW]  # late: fills the gap
    got = bars_store.bars_after({"AAPL": D0})["AAPL"]
    assert [(b.day - D0, b.close) for b in got] == [(1, 101), (2, 102), (3, 103)]
    assert [b.day - D0 for b in bars_store.bars_after({"AAPL": D0 + 1})["AAPL"]] == [2, 3]


def test_since_returns_arrivals_after_a_cursor_and_corrections_again(bars_store):
    bars_store.put([bar(day=D0), bar(day=D0 + 1)])
    got, c1 = bars_store.since(0)
    assert [b.day for b in got] == [D0, D0 + 1]
    assert bars_store.since(c1) == ([], c1)
    bars_store.put([bar(day=D0)])  # duplicate: not an arrival
    assert bars_store.since(c1) == ([], c1)
    bars_store.put([bar(day=D0, close=99.5), bar("IBM")])
    got, c2 = bars_store.since(c1)
    assert [(b.symbol, b.close) for b in got] == [("AAPL", 99.5), ("IBM", 100.0)] and c2 > c1
    got, c3 = bars_store.since(0, limit=2)
    assert len(got) == 2 and c3 < c2


def test_evaluated_bars_are_left_out_of_pending_arrivals(bars_store):
    bars_store.put([bar(day=D0), bar(day=D0 + 1), bar("IBM")])
    bars_store.mark_evaluated([bar(day=D0), bar("IBM", close=1.0)])  # IBM: not the stored values
    got, c1 = bars_store.since(0, pending_only=True)
    assert [(b.symbol, b.day) for b in got] == [("AAPL", D0 + 1), ("IBM", D0)]
    assert bars_store.since(0)[1] == c1 and len(bars_store.since(0)[0]) == 3  # everything, unfiltered
    bars_store.mark_evaluated([bar(day=D0 + 1), bar("IBM")])
    got, c2 = bars_store.since(0, pending_only=True)
    assert got == [] and c2 == c1  # the cursor still moves past them
    bars_store.put([bar(day=D0, close=99.5)])  # a correction: pending again
    got, c3 = bars_store.since(c1, pending_only=True)
    assert [(b.day, b.close) for b in got] == [(D0, 99.5)] and c3 > c1
    bars_store.mark_evaluated([bar(day=D0)])  # the old version: does not cover the correction
    assert [b.close for b in bars_store.since(c1, pending_only=True)[0]] == [99.5]
    bars_store.mark_evaluated([])


def test_cursors_are_named_and_never_move_back(bars_store):
    assert bars_store.get_cursor("sweep") == 0
    bars_store.set_cursor("sweep", 5)
    bars_store.set_cursor("sweep", 3)
    bars_store.set_cursor("other", 1)
    assert bars_store.get_cursor("sweep") == 5 and bars_store.get_cursor("other") == 1


def test_concurrent_writers_never_lose_or_double_a_bar(bars_store):
    barrier = threading.Barrier(4)
    results: dict[int, list[str]] = {}

    def work(k: int) -> None:
        barrier.wait()
        # every writer sends the same 5 bars plus 5 of its own
        results[k] = bars_store.put([bar(day=D0 + i) for i in range(5)] + [bar(f"S{k}", day=D0 + i) for i in range(5)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared = [results[k][:5] for k in range(4)]
    assert sum(s.count(NEW) for s in shared) == 5 and all(s.count(NEW) + s.count(DUPLICATE) == 5 for s in shared)
    assert all(results[k][5:] == [NEW] * 5 for k in range(4))
    got, _ = bars_store.since(0)
    assert len(got) == 25 and len({b.key for b in got}) == 25


# --- the dataset rule -------------------------------------------------------------------------
def test_history_duplicates_are_arrivals_and_conflicts_are_rejected(market):
    store = MemoryLiveBars()
    last = dataset_last_day(market, "AAPL")
    (hist,) = history_bars(market, ["AAPL"], last, last)
    same = hist[0]
    changed = Bar("AAPL", last, same.open, same.high, same.low, same.close * 0.99 if same.close * 0.99 >= same.low
                  else same.low, same.volume)
    gap_day = last - 1 if last - 1 not in set(np.asarray(market.dates("AAPL")).tolist()) else last - 2
    rep = ingest(store, market, [same, changed, bar(day=last + 3), Bar("AAPL", gap_day, 1, 1, 1, 1, 0)])
    assert rep.statuses[0] == NEW and rep.statuses[2] == NEW
    assert rep.statuses[1] == CONFLICT and "differs from the dataset" in rep.conflicts[0]
    assert rep.statuses[3] == CONFLICT
    assert [b.day for b in rep.to_evaluate] == [last, last + 3]
    assert ingest(store, market, [same]).statuses == [DUPLICATE]
    # only bars beyond the dataset are laid over it
    assert [b.day for b in overlay_for(store, market, ["AAPL", "IBM"])["AAPL"]] == [last + 3]
    assert "IBM" not in overlay_for(store, market, ["AAPL", "IBM"])


# --- the overlay ------------------------------------------------------------------------------
def rows(bars: list[Bar]) -> list[list]:
    return [b.row() for b in bars]


def test_overlay_bars_appear_at_their_date_and_never_before(market):
    p = PointInTime(market)
    last = dataset_last_day(market, "AAPL")
    p.apply_overlay({"AAPL": {"keep": 0, "bars": rows([bar(day=last + 3, close=500.0), bar(day=last + 4, close=510.0)])}})
    p.set_asof(last)
    d = p.price_data("AAPL", "1d", 5)
    assert len(d["close"]) == 5 and d["timestamps"][-1] == last * 86_400_000  # nothing from the overlay yet
    p.set_asof(last + 3)
    d = p.price_data("AAPL", "1d", 5)
    assert d["close"][-1] == 500.0 and d["timestamps"][-1] == (last + 3) * 86_400_000 and len(d["close"]) == 5
    assert list(d["close"][:-1]) == list(p.price_data("AAPL", "1d", 5)["close"][:-1])
    p.set_asof(last + 100)
    d = p.price_data("AAPL", "1d", 2)
    assert list(d["close"]) == [500.0, 510.0]
    assert p.multiple(["AAPL"], "1d", 1)["AAPL"]["close"][-1] == 510.0
    assert d["close"].readonly and d["volume"].readonly and d["timestamps"].readonly
    with pytest.raises(TypeError):
        d["close"][0] = 1.0


def test_scan_and_sector_data_see_overlay_prices_from_their_date(market):
    from stratagem.data.reference import ReferenceData

    p = PointInTime(market, ReferenceData.load_default())
    last = dataset_last_day(market, "IBM")
    p.apply_overlay({"IBM": {"keep": 0, "bars": rows([bar("IBM", last + 3, close=5000.0)])}})
    p.set_asof(last + 2)
    assert "IBM" not in p.scan({"min_price": 1000})
    p.set_asof(last + 3)
    assert p.scan({"min_price": 1000}) == ["IBM"]
    sector = p.sector("Technology", 1)
    assert sector["IBM"]["close"][-1] == 5000.0 and sector["AAPL"]["close"][-1] < 1000


def test_views_handed_out_never_change_when_later_bars_arrive(market):
    p = PointInTime(market)
    last = dataset_last_day(market, "GOOG")
    p.apply_overlay({"GOOG": {"keep": 0, "bars": rows([bar("GOOG", last + 3, close=700.0)])}})
    p.set_asof(last + 3)
    before = p.price_data("GOOG", "1d", 3)
    kept = list(before["close"]), list(before["timestamps"])
    for i in range(4, 200):  # many appends: in place, then a bigger buffer
        p.apply_overlay({"GOOG": {"keep": i - 3, "bars": rows([bar("GOOG", last + i, close=700.0 + i)])}})
    assert (list(before["close"]), list(before["timestamps"])) == kept and len(before["close"]) == 3
    p.set_asof(last + 100)
    d = p.price_data("GOOG", "1d", 400)  # longer than the joined history: built for the call
    assert d["close"][-1] == 800.0 and len(d["close"]) == 400
    assert list(d["close"][-98:]) == [700.0] + [700.0 + i for i in range(4, 101)]


def test_overlay_updates_keep_a_prefix_and_reset_drops_all(market):
    p = PointInTime(market)
    last = dataset_last_day(market, "IBM")
    p.apply_overlay({"IBM": {"keep": 0, "bars": rows([bar("IBM", last + 3), bar("IBM", last + 4)])}})
    p.apply_overlay({"IBM": {"keep": 1, "bars": rows([bar("IBM", last + 4, close=105.0)])}})  # a correction
    assert [r[4] for r in p.overlay_rows("IBM")] == [100.0, 105.0]
    p.apply_overlay({"IBM": {"keep": 2, "bars": rows([bar("IBM", last)])}})  # history: ignored
    assert len(p.overlay_rows("IBM")) == 2
    with pytest.raises(ValueError, match="strictly increasing"):
        p.apply_overlay({"IBM": {"keep": 2, "bars": rows([bar("IBM", last + 3)])}})
    p.apply_overlay({"NEWCO": {"keep": 0, "bars": rows([bar("NEWCO", last + 3)])}})
    p.set_asof(last + 3)
    assert "NEWCO" in p.listed() and p.price_data("NEWCO", "1d", 10)["close"][-1] == 100.0
    p.apply_overlay(None, reset=True)
    assert p.overlay_rows("IBM") == [] and "NEWCO" not in p.listed()


def test_repeated_live_windows_are_fresh_dicts_and_follow_corrections(market):
    # One tick's windows are kept for the next strategy of a batch: each caller still gets
    # its own dict, and a corrected bar (same date) or a new date is never answered from them.
    p = PointInTime(market)
    last = dataset_last_day(market, "IBM")
    p.apply_overlay({"IBM": {"keep": 0, "bars": rows([bar("IBM", last + 3, close=101.0)])}})
    p.set_asof(last + 3)
    first, second = p.price_data("IBM", "1d", 5), p.price_data("IBM", "1d", 5)
    assert first is not second and first == second and first["close"][-1] == 101.0
    first["close"] = "changed by a strategy"
    assert p.price_data("IBM", "1d", 5)["close"][-1] == 101.0
    p.apply_overlay({"IBM": {"keep": 0, "bars": rows([bar("IBM", last + 3, close=102.0)])}})  # a correction
    assert p.price_data("IBM", "1d", 5)["close"][-1] == 102.0
    p.apply_overlay({"IBM": {"keep": 1, "bars": rows([bar("IBM", last + 4, close=103.0)])}})
    assert p.price_data("IBM", "1d", 5)["close"][-1] == 102.0  # still as of last + 3
    p.set_asof(last + 4)
    assert list(p.price_data("IBM", "1d", 2)["close"]) == [102.0, 103.0]
    p.apply_overlay(None, reset=True)
    assert p.price_data("IBM", "1d", 1)["timestamps"][-1] == last * 86_400_000


def test_get_price_data_answers_repeated_live_windows_like_price_data(market):
    # The strategy-facing function answers a window this tick already built before any argument
    # handling: it must give exactly what price_data gives, a fresh dict each time, never a
    # window of another date or bar version, and keep every argument check.
    from stratagem.data.pit import DataError

    p = PointInTime(market)
    get = p.functions()["get_price_data"]
    last = dataset_last_day(market, "IBM")
    p.apply_overlay({"IBM": {"keep": 0, "bars": rows([bar("IBM", last + 3, close=101.0)])}})
    p.set_asof(last + 3)
    first = get("IBM", timeframe="1d", days=5)
    again = get("IBM", "daily", 5)
    assert first is not again and first == again == p.price_data("IBM", "1d", 5)
    assert list(first["close"])[-1] == 101.0 and len(first["close"]) == 5
    again["close"] = "changed by a strategy"
    assert get("IBM", "1d", 5)["close"][-1] == 101.0
    assert get("ibm", "1d", 5) == first  # as written: the general path, same answer
    assert get("IBM", "1d", 5.0) == first
    for bad in [dict(days=True), dict(days=-1), dict(timeframe="1h"), dict(days="5")]:
        with pytest.raises(DataError):
            get("IBM", **{"timeframe": "1d", "days": 5, **bad})
    p.set_asof(last + 2)  # before the live bar: the dataset, not the tick's window
    assert get("IBM", "1d", 5)["timestamps"][-1] == last * 86_400_000
    p.set_asof(last + 3)
    p.apply_overlay({"IBM": {"keep": 0, "bars": rows([bar("IBM", last + 3, close=102.0)])}})  # a correction
    assert get("IBM", "1d", 5)["close"][-1] == 102.0
    p.apply_overlay({"IBM": {"keep": 1, "bars": rows([bar("IBM", last + 4, close=103.0)])}})
    p.set_asof(last + 4)
    assert list(get("IBM", "1d", 2)["close"]) == [102.0, 103.0]


def test_overlay_of_the_datasets_own_history_equals_the_dataset(market, tmp_path):
    """Cut the dataset at a day, lay the following history over the cut copy as live bars:
    every as-of date in the cut's corporate-action regime sees exactly what the full
    dataset shows (rtol 0: the overlay is shown raw, like the as-of regime's bars)."""
    full = PointInTime(market)
    checked = 0
    for sym in ["AAPL", "GOOG", "IBM", "MSFT", "FB"]:
        a, b = market.range(sym)
        regime = np.asarray(market.columns["regime"][a:b])
        dates = np.asarray(market.columns["date"][a:b])
        cut = len(dates) - 40
        same = int(np.searchsorted(regime, regime[cut], side="right"))  # first index of the next regime
        stop = min(len(dates), same)
        cut_store = build_store({s: market.bars(s, until_day=int(dates[cut])) for s in market.symbols},
                                tmp_path / f"cut-{sym}", source="cut")
        p = PointInTime(MarketData(cut_store))
        live = history_bars(market, [sym], int(dates[cut + 1]), int(dates[-1]))
        p.apply_overlay({sym: {"keep": 0, "bars": rows([day[0] for day in live])}})
        for i in range(cut - 2, stop):
            day = int(dates[i])
            p.set_asof(day)
            full.set_asof(day)
            for n in (1, 5, 30, 300):
                got, want = p.price_data(sym, "1d", n), full.price_data(sym, "1d", n)
                for k in ("timestamps", "open", "high", "low", "close", "volume"):
                    assert list(got[k]) == list(want[k]), (sym, day, n, k)
            checked += 1
        # past the regime: the live bars still show as traded (adjustment waits for a dataset refresh)
        if stop < len(dates):
            p.set_asof(int(dates[stop]))
            assert p.price_data(sym, "1d", 1)["close"][-1] == float(market.columns["close"][a + stop])
    assert checked > 20


# --- the replayer (library part) --------------------------------------------------------------
def test_replay_publishes_one_message_per_session_at_the_given_speed(market):
    sent: list[dict] = []
    waits: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    start, end = iso_to_day("2013-02-20"), iso_to_day("2013-03-01")
    out = replay_bars(market, ["AAPL", "FB"], start, end, sent.append, speed=2.0, sleep=sleep, clock=lambda: now[0])
    assert out["sessions"] == len(sent) == 8 and out["bars"] == 16
    assert all(len(m["bars"]) == 2 and m["source"] == "replay" for m in sent)
    assert [m["bars"][0]["time"] for m in sent] == sorted(m["bars"][0]["time"] for m in sent)
    assert waits == [0.5] * 7  # 2 sessions a second, the first at once
    again = [b for m in sent for b in bars_from_message(m)]
    assert again == [b for day in history_bars(market, ["AAPL", "FB"], start, end) for b in day]


# --- the overlay inside the sandbox -----------------------------------------------------------
PEEK = '''
def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=3)
    try:
        d['close'][0] = 0.0
        wrote = 1
    except Exception:
        wrote = 0
    many = get_multiple_symbols_data([symbol], '1d', 2)[symbol]
    return {"signal": True, "score": d['close'][-1], "n": len(d['close']), "wrote": wrote,
            "multi": many['close'][-1], "listed": len(scan_universe({}, 100))}
'''


def test_the_overlay_travels_to_the_worker_and_survives_a_new_worker(sandbox, market):
    last = dataset_last_day(market, "MSFT")
    b1, b2 = bar("MSFT", last + 3, close=40.0), bar("MSFT", last + 4, close=41.0)
    with sandbox.session(PEEK) as sess:
        out = sess.evaluate([(last, "MSFT"), (last + 3, "MSFT")], overlay={"MSFT": rows([b1])})
        (_, d0, score0, v0), (_, d1, score1, v1) = out.signals
        assert d0 == last and score0 == float(market.columns["close"][market.range("MSFT")[1] - 1])
        assert d1 == last + 3 and score1 == 40.0 and v1["multi"] == 40.0 and v1["n"] == 3
        assert v0["wrote"] == v1["wrote"] == 0  # read-only views, in the sandbox too
        out = sess.evaluate([(last + 4, "MSFT")], overlay={"MSFT": rows([b1, b2])})  # only b2 travels
        assert out.signals[0][2] == 41.0
        sess.worker.kill()  # a fresh worker must get the whole overlay again
        out = sess.evaluate([(last + 4, "MSFT"), (last + 3, "MSFT")], overlay={"MSFT": rows([b1, b2])})
        assert [s[2] for s in out.signals] == [41.0, 40.0] and out.errors == []
        corrected = bar("MSFT", last + 3, close=39.5)
        out = sess.evaluate([(last + 3, "MSFT")], overlay={"MSFT": rows([corrected, b2])})
        assert out.signals[0][2] == 39.5


def test_alert_runner_wire_rows_reuse_unchanged_bars():
    from stratagem.alerting import AlertRunner
    from stratagem.live import Bar

    r = AlertRunner()
    b1, b2, b3 = (Bar("AAA", d, 1.0, 2.0, 0.5, 1.5, 10.0) for d in (1, 2, 3))
    first = r._wire_rows({"AAA": [b1, b2]})["AAA"]
    assert first == [b1.row(), b2.row()]
    second = r._wire_rows({"AAA": [b1, b2, b3]})["AAA"]
    assert second == [b1.row(), b2.row(), b3.row()] and second is not first  # a new list each tick
    assert second[0] is first[0] and second[1] is first[1]  # unchanged bars keep their rows
    fixed = Bar("AAA", 2, 1.0, 2.0, 0.5, 1.6, 10.0)  # a correction of day 2
    third = r._wire_rows({"AAA": [b1, fixed, b3]})["AAA"]
    assert third == [b1.row(), fixed.row(), b3.row()] and third[0] is first[0]
    assert r._wire_rows({"AAA": [b2, b3]})["AAA"] == [b2.row(), b3.row()]  # the window moved on
