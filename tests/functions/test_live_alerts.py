"""Real-time alerts through the Functions Framework (``create_app(...).test_client()``) with
saved Pub/Sub CloudEvents: live bars in, alerts out, each exactly once.

* ``alert_bars``: a bar beyond the dataset fires once; a duplicate delivery (same bars, new
  event id) and a corrected bar never fire twice; a late, out-of-order bar is evaluated at its
  own date (it does not see the later bar already stored); conflicting history and malformed
  messages are acknowledged and fire nothing.
* ``alert_tick``: the sweep evaluates bars that reached the live store by another way, once.
* Warm engines: one sandbox session per (strategy, version, code) kept across events, closed
  when the strategy is deactivated or changed.
* The market replayer: history replayed as live bars yields exactly the alerts of
  ``stratagem alerts replay`` for the same days.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

functions_framework = pytest.importorskip("functions_framework")
from functions_framework import create_app  # noqa: E402

from stratagem import factory, messages  # noqa: E402
from stratagem.bus import InProcessBus  # noqa: E402
from stratagem.data.store import iso_to_day  # noqa: E402
from stratagem.jobs import MemoryJobStore  # noqa: E402
from stratagem.live import Bar, MemoryLiveBars, bars_message, dataset_last_day, replay_bars  # noqa: E402
from stratagem.notify import MemoryAlertLog  # noqa: E402
from stratagem.service import TOPICS, Services  # noqa: E402
from stratagem.store import MemoryStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "functions"

ABOVE_1000 = '''
def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=3)
    if not d['close']:
        return False
    return {"signal": d['close'][-1] > 1000, "score": d['close'][-1], "bars": len(d['close']),
            "last_ts": d['timestamps'][-1]}
'''

MOMENTUM = '''
def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=6)
    c = d['close']
    if len(c) < 6:
        return False
    move = c[-1] / c[0] - 1
    return {"signal": move > 0.04, "score": move * 100, "close": c[-1]}
'''


class _Collect:
    channel = "test"

    def __init__(self):
        self.sent = []

    def send(self, user_id, alert):
        self.sent.append((user_id, alert["symbol"], alert["date"], alert["score"]))
        return {"status": "sent"}


@pytest.fixture
def svc(sandbox, market, monkeypatch):
    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                 sandbox_factory=lambda: sandbox, alert_log=MemoryAlertLog(), notifiers=[_Collect()],
                 live_bars=MemoryLiveBars())
    factory.wire_in_process(s)
    monkeypatch.setattr(factory, "_services", s)
    yield s
    if s.alert_runner is not None:
        s.alert_runner.close()


def app(name: str):
    return create_app(target=name, source=str(ROOT / name / "main.py"), signature_type="cloudevent").test_client()


def post(client, msg: dict, event_id: str) -> None:
    data = {"message": {"data": base64.b64encode(json.dumps(msg).encode()).decode(), "messageId": event_id},
            "subscription": "projects/p/subscriptions/s"}
    headers = {"ce-id": event_id, "ce-source": "//pubsub.googleapis.com/projects/p/topics/t", "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
    r = client.post("/", json=data, headers=headers)
    assert r.status_code == 200, r.data


def px(sym: str, day: int, close: float, volume: float = 1e6) -> Bar:
    return Bar(sym, day, open=close, high=close * 1.01, low=close * 0.99, close=close, volume=volume)


def alerts(svc) -> list[dict]:
    return [m["alert"] for t, m, _ in svc.bus.published if t == TOPICS["alerts"]]


def test_live_bar_fires_once_across_duplicates_corrections_and_late_bars(svc, market):
    rec = svc.store.create("alice", name="above 1000", code=ABOVE_1000)
    svc.store.set_alert("alice", rec.id, True, ["AAPL"])
    client = app("alert_bars")
    d0 = dataset_last_day(market, "AAPL") + 3  # Monday 2013-03-04, after the bundled data
    msg = bars_message([px("AAPL", d0, 1500.0), px("MSFT", d0, 5000.0)], "feed")  # MSFT: not in the universe
    post(client, msg, "bars-1")
    post(client, msg, "bars-1")  # redelivery, same event id
    post(client, msg, "bars-1-again-with-a-new-id")  # the feed sent it twice
    post(client, bars_message([px("AAPL", d0, 1550.0)]), "bars-2")  # a corrected bar
    assert svc.live_bars.bars_after({"AAPL": d0 - 1})["AAPL"][0].close == 1550.0
    got = alerts(svc)
    assert [(a["symbol"], a["date"], a["score"], a["close"]) for a in got] == [("AAPL", "2013-03-04", 1500.0, 1500.0)]
    assert got[0]["values"]["bars"] == 3 and got[0]["values"]["last_ts"] == d0 * 86_400_000
    assert svc.notifiers[0].sent == [("alice", "AAPL", "2013-03-04", 1500.0)]

    # Out of order: Friday's bar arrives, then Thursday's (late). Thursday is evaluated as of
    # Thursday: its window ends with Thursday's close, never Friday's.
    post(client, bars_message([px("AAPL", d0 + 4, 10.0)]), "bars-fri")
    post(client, bars_message([px("AAPL", d0 + 3, 1200.0)]), "bars-thu-late")
    got = alerts(svc)
    assert [(a["date"], a["score"]) for a in got] == [("2013-03-04", 1500.0), ("2013-03-07", 1200.0)]
    assert got[1]["values"]["last_ts"] == (d0 + 3) * 86_400_000
    logged = svc.alert_log.list("alice")
    assert sorted(a["date"] for a in logged) == ["2013-03-04", "2013-03-07"]


def test_conflicting_history_and_malformed_bars_fire_nothing(svc, market):
    rec = svc.store.create("alice", name="always", code="def classify_symbol(s):\n    return True\n")
    svc.store.set_alert("alice", rec.id, True, ["AAPL"])
    client = app("alert_bars")
    last = dataset_last_day(market, "AAPL")
    post(client, bars_message([px("AAPL", last, 1.0)]), "conflict")  # rewrites history: rejected
    bad = {"schema": "stratagem.bars.v1", "bars": [{"symbol": "AAPL", "time": "2013-03-04", "close": 1}]}
    post(client, bad, "malformed")  # acknowledged (logged), never retried
    assert alerts(svc) == [] and svc.live_bars.since(0) == ([], 0)


def test_the_tick_sweeps_bars_that_reached_the_store_another_way(svc, market):
    rec = svc.store.create("bob", name="always", code="def classify_symbol(s):\n    return True\n")
    svc.store.set_alert("bob", rec.id, True, ["IBM", "MSFT"])
    d0 = dataset_last_day(market, "IBM") + 3
    svc.live_bars.put([px("IBM", d0, 200.0), px("MSFT", d0, 30.0), px("GOOG", d0, 800.0)])
    tick = app("alert_tick")
    post(tick, messages.make("stratagem.tick.v1", sweep_seconds=1, reason="test"), "tick-1")
    assert sorted((a["symbol"], a["date"]) for a in alerts(svc)) == [("IBM", "2013-03-04"), ("MSFT", "2013-03-04")]
    assert svc.live_bars.get_cursor("alert_tick") == 3
    post(tick, messages.make("stratagem.tick.v1", sweep_seconds=0), "tick-2")  # nothing new: nothing fires
    # a bar that arrived through alert_bars is swept again, and the dedup claims it away
    post(app("alert_bars"), bars_message([px("IBM", d0 + 1, 201.0)]), "bars-tue")
    post(tick, messages.make("stratagem.tick.v1", sweep_seconds=0), "tick-3")
    assert sorted((a["symbol"], a["date"]) for a in alerts(svc)) == [
        ("IBM", "2013-03-04"), ("IBM", "2013-03-05"), ("MSFT", "2013-03-04")]
    assert len(svc.notifiers[0].sent) == 3


def test_engines_stay_warm_and_close_when_the_strategy_changes(svc, market):
    rec = svc.store.create("alice", name="above 1000", code=ABOVE_1000)
    svc.store.set_alert("alice", rec.id, True, ["AAPL"])
    client = app("alert_bars")
    d0 = dataset_last_day(market, "AAPL") + 3
    post(client, bars_message([px("AAPL", d0, 900.0)]), "b1")
    (engine,) = svc.alert_runner.engines.values()
    (batch,) = svc.alert_runner.batches.values()
    worker = batch.worker
    post(client, bars_message([px("AAPL", d0 + 1, 950.0)]), "b2")
    assert list(svc.alert_runner.engines.values()) == [engine]
    assert list(svc.alert_runner.batches.values()) == [batch] and batch.worker is worker  # warm
    svc.store.save("alice", rec.id, code=ABOVE_1000.replace("1000", "940"))  # a new version
    post(client, bars_message([px("AAPL", d0 + 2, 960.0)]), "b3")
    (engine2,) = svc.alert_runner.engines.values()
    (batch2,) = svc.alert_runner.batches.values()
    assert engine2 is not engine and engine2.version == 2
    assert batch2 is not batch and batch.worker is None and batch2.worker is not worker
    assert [(a["date"], a["strategy_version"]) for a in alerts(svc)] == [("2013-03-06", 2)]
    svc.store.set_alert("alice", rec.id, False)
    post(client, bars_message([px("AAPL", d0 + 3, 970.0)]), "b4")
    assert svc.alert_runner.engines == {} and svc.alert_runner.batches == {} and batch2.worker is None
    assert len(alerts(svc)) == 1


def test_replayed_history_yields_exactly_the_alerts_of_alerts_replay(svc, sandbox, market):
    from stratagem.engines.alerts import replay_alerts

    symbols = ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    start, end = iso_to_day("2012-10-01"), iso_to_day("2012-12-31")
    rec = svc.store.create("alice", name="momentum", code=MOMENTUM)
    svc.store.set_alert("alice", rec.id, True, symbols)
    want = replay_alerts(sandbox, market, MOMENTUM, symbols, start, end, strategy_id=rec.id, name="momentum",
                         version=rec.version)["alerts"]
    out = replay_bars(market, symbols, start, end, lambda m: svc.bus.publish(TOPICS["bars"], m))
    assert out["sessions"] == 62 and out["bars"] == 5 * 62  # (markets closed two days for Hurricane Sandy)
    got = alerts(svc)
    assert len(want) >= 5 and got == want
    assert len(svc.notifiers[0].sent) == len(want)


def test_a_strategy_that_cannot_load_does_not_hold_back_the_others(svc, market):
    bad = svc.store.create("alice", name="broken", code="x = 1 / 0\ndef classify_symbol(s):\n    return True\n")
    good = svc.store.create("bob", name="always", code="def classify_symbol(s):\n    return True\n")
    for user, rec in (("alice", bad), ("bob", good)):
        svc.store.set_alert(user, rec.id, True, ["AAPL"])
    d0 = dataset_last_day(market, "AAPL") + 3
    post(app("alert_bars"), bars_message([px("AAPL", d0, 400.0)]), "b1")
    assert [(a["strategy_id"], a["symbol"]) for a in alerts(svc)] == [(good.id, "AAPL")]
    assert [s["strategy_id"] for s in svc.alert_runner.skipped] == [bad.id]
    assert "ZeroDivisionError" in svc.alert_runner.skipped[0]["error"]


def test_the_sweep_loops_once_a_second_and_picks_up_bars_arriving_meanwhile(svc, market):
    from stratagem import alerting

    rec = svc.store.create("bob", name="always", code="def classify_symbol(s):\n    return True\n")
    svc.store.set_alert("bob", rec.id, True, ["IBM"])
    d0 = dataset_last_day(market, "IBM") + 3
    now = [100.0]
    published: list = []

    def sleep(seconds: float) -> None:  # a fake clock: no wall-clock time in this test
        now[0] += seconds
        if len(published) == 0:
            svc.live_bars.put([px("IBM", d0, 150.0)])  # arrives during the first second

    out = alerting.sweep(svc, 2, published.append, sleep=sleep, clock=lambda: now[0])
    assert out["passes"] == 3 and out["bars"] == 1 and now[0] == 102.0
    assert [[(r.id, a["symbol"], a["date"]) for r, a in fired] for fired in published] == [
        [(rec.id, "IBM", "2013-03-04")]]
    with pytest.raises(messages.MalformedMessage, match="sweep_seconds must be between 0 and 540"):
        alerting.sweep(svc, 541)


def test_the_sweep_skips_bars_the_event_path_evaluated(svc, market, monkeypatch):
    """The bars function evaluates a message's bars and publishes what fired, then marks them:
    the sweep moves its cursor past them without evaluating them again (it used to evaluate
    every bar a second time). Bars stored by other means, or whose marking failed, it evaluates."""
    from stratagem import alerting
    from stratagem.errors import InfraUnavailable

    rec = svc.store.create("bob", name="always", code="def classify_symbol(s):\n    return True\n")
    svc.store.set_alert("bob", rec.id, True, ["IBM", "MSFT"])
    d0 = dataset_last_day(market, "IBM") + 3
    evaluated: list = []
    real = alerting.evaluate_bars
    monkeypatch.setattr(alerting, "evaluate_bars", lambda s, bars, publish=None: (evaluated.append(
        [(b.symbol, b.day) for b in bars]), real(s, bars, publish))[1])
    post(app("alert_bars"), bars_message([px("IBM", d0, 150.0)]), "bars-1")
    assert evaluated == [[("IBM", d0)]] and len(alerts(svc)) == 1
    tick = app("alert_tick")
    post(tick, messages.make("stratagem.tick.v1", sweep_seconds=0), "tick-1")
    assert evaluated == [[("IBM", d0)]]  # nothing evaluated twice
    svc.live_bars.put([px("MSFT", d0, 30.0)])  # written by another feed: the sweep's job

    def down(bars):
        raise InfraUnavailable("Firestore is unavailable: injected")

    monkeypatch.setattr(svc.live_bars, "mark_evaluated", down)
    post(app("alert_bars"), bars_message([px("IBM", d0 + 1, 151.0)]), "bars-2")  # delivered, not marked
    assert len(alerts(svc)) == 2
    post(tick, messages.make("stratagem.tick.v1", sweep_seconds=0), "tick-2")
    assert sorted(evaluated[-1]) == [("IBM", d0 + 1), ("MSFT", d0)]
    assert sorted((a["symbol"], a["date"]) for a in alerts(svc)) == [
        ("IBM", "2013-03-04"), ("IBM", "2013-03-05"), ("MSFT", "2013-03-04")]  # each once
    n = len(evaluated)
    post(tick, messages.make("stratagem.tick.v1", sweep_seconds=0), "tick-3")
    assert len(evaluated) == n


def test_two_instances_racing_on_the_same_bars_fire_each_alert_once(sandbox, market):
    """Two function instances (own warm engines, own live stores: say the bars function and a
    sweep) evaluate the same bars at the same time; the shared claim lets one alert through."""
    import threading

    from stratagem.service import handle_alert_bars

    store, jobs = MemoryStore(), MemoryJobStore()
    rec = store.create("alice", name="always", code="def classify_symbol(s):\n    return True\n")
    store.set_alert("alice", rec.id, True, None)
    instances = [Services(store=store, jobs=jobs, bus=InProcessBus(), market=market, sandbox_factory=lambda: sandbox,
                          live_bars=MemoryLiveBars()) for _ in range(2)]
    d0 = dataset_last_day(market, "AAPL") + 3
    msgs = [bars_message([px(s, d0 + i, 100.0 + i) for s in ("AAPL", "IBM", "MSFT")]) for i in range(4)]
    barrier = threading.Barrier(2)
    errors: list = []

    def run(k: int) -> None:
        try:
            barrier.wait()
            for i, m in enumerate(msgs):
                handle_alert_bars(instances[k], m, f"instance{k}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        fired = [a["dedup_key"] for svc in instances for a in alerts(svc)]
        assert sorted(fired) == sorted({f"{rec.id}:1:{s}:{d0 + i}" for s in ("AAPL", "IBM", "MSFT") for i in range(4)})
    finally:
        for svc in instances:
            if svc.alert_runner is not None:
                svc.alert_runner.close()


def test_strategies_are_batched_per_tenant_only(svc, market):
    from stratagem import alerting

    d0 = dataset_last_day(market, "AAPL") + 3
    recs = []
    for user in ("alice", "bob", "alice"):
        r = svc.store.create(user, name=f"above {user}", code=ABOVE_1000.replace("1000", "10"))
        svc.store.set_alert(user, r.id, True, ["AAPL"])
        recs.append(r)
    post(app("alert_bars"), bars_message([px("AAPL", d0, 900.0)]), "b1")
    batches = svc.alert_runner.batches
    assert sorted(user for user, _keys in batches) == ["alice", "bob"]  # never one worker for two users
    for (user, keys), batch in batches.items():
        assert len(batch.sources) == len(keys) == (2 if user == "alice" else 1)
    assert sorted((a["strategy_id"], a["symbol"]) for a in alerts(svc)) == sorted((r.id, "AAPL") for r in recs)
    assert alerting.BATCH_STRATEGIES >= 2
