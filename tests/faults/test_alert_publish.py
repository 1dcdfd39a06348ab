"""Pub/Sub refusing the alert message after the alert fired: the alert must not be lost.

An alert is claimed (``strategy:version:symbol:bar``) before it is published, so that
duplicate deliveries, both alert paths and concurrent instances publish it once. If the
publish then fails, the claim must be released: otherwise every re-evaluation (the retried
delivery, the next scheduler sweep) finds it claimed and the alert is never sent."""

from __future__ import annotations

import pytest
from stratagem import messages
from stratagem.bus import InProcessBus, PublishIncomplete
from stratagem.data.store import iso_to_day
from stratagem.errors import InfraUnavailable
from stratagem.factory import wire_in_process
from stratagem.jobs import MemoryJobStore
from stratagem.notify import MemoryAlertLog
from stratagem.service import TOPICS, Services
from stratagem.store import MemoryStore


class Collect:
    channel = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, user_id: str, alert: dict) -> dict:
        self.sent.append((user_id, alert["symbol"], alert["date"]))
        return {"status": "sent"}


class AlertsTopicDown(InProcessBus):
    """Pub/Sub refuses the first ``n`` publishes to the alerts topic (as PubSubBus reports it)."""

    def __init__(self, n: int) -> None:
        super().__init__(max_attempts=5)
        self.down = n

    def publish(self, topic: str, message: dict) -> str:
        if topic == TOPICS["alerts"] and self.down > 0:
            self.down -= 1
            raise InfraUnavailable("Pub/Sub did not accept the message for stratagem-alerts within 3 s (injected)")
        return super().publish(topic, message)


@pytest.fixture
def svc(sandbox, market) -> Services:
    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=AlertsTopicDown(1), market=market,
                 sandbox_factory=lambda: sandbox, alert_log=MemoryAlertLog(), notifiers=[Collect()])
    wire_in_process(s)
    return s


def test_alert_whose_publish_failed_is_sent_once_later(svc):
    from stratagem.live import history_bars

    rec = svc.store.create("alice", name="always", code="def classify_symbol(s):\n    return True\n")
    svc.store.set_alert("alice", rec.id, True, ["AAPL"])
    day = iso_to_day("2013-02-28")
    bars = [b.to_message() for b in history_bars(svc.market, ["AAPL"], day, day)[0]]
    svc.bus.publish(TOPICS["bars"], messages.make("stratagem.bars.v1", bars=bars))
    assert svc.bus.down == 0, "the fault was never hit"
    for _ in range(2):  # the scheduler's sweeps pick up what the event path could not publish
        svc.bus.publish(TOPICS["tick"], messages.make("stratagem.tick.v1", sweep_seconds=0, reason="scheduler"))
    assert svc.notifiers[0].sent == [("alice", "AAPL", "2013-02-28")]  # once: not lost, not doubled
    assert svc.bus.dead_letters == []


class RefusesPartOfOneBatch(InProcessBus):
    """Records each publish_many to the alerts topic; on the ``n``-th call Pub/Sub takes only the
    first message of the batch (as PubSubBus reports a partly refused batch)."""

    def __init__(self, n: int) -> None:
        super().__init__(max_attempts=5)
        self.fail_on = n
        self.calls: list[list[tuple[int, str]]] = []

    def publish_many(self, topic: str, msgs: list[dict]) -> list[str]:
        if topic != TOPICS["alerts"]:
            return super().publish_many(topic, msgs)
        self.calls.append([(m["alert"]["strategy_id"], m["alert"]["symbol"]) for m in msgs])
        if len(self.calls) == self.fail_on:
            self.publish(topic, msgs[0])
            raise PublishIncomplete("Pub/Sub did not accept 2 of 3 message(s) (injected)",
                                    [True] + [False] * (len(msgs) - 1))
        return [self.publish(topic, m) for m in msgs]


def test_alerts_go_out_per_strategy_and_a_refused_batch_loses_and_doubles_nothing(sandbox, market):
    """Each strategy's alerts are published as soon as its evaluation lands (one batch per
    strategy, not one at the end of the tick). When Pub/Sub refuses part of one batch, the rest
    of that evaluation publishes nothing more, the claims of what was not published are released
    for the sweep, and every alert reaches the user exactly once."""
    from stratagem.live import MemoryLiveBars, history_bars

    bus = RefusesPartOfOneBatch(2)
    svc = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=bus, market=market,
                   sandbox_factory=lambda: sandbox, alert_log=MemoryAlertLog(), notifiers=[Collect()],
                   live_bars=MemoryLiveBars())
    wire_in_process(svc)
    syms = ["AAPL", "IBM", "MSFT"]
    try:
        recs = []
        for k in range(3):
            rec = svc.store.create("alice", name=f"always {k}", code=f"def classify_symbol(s):\n    return {k} >= 0\n")
            svc.store.set_alert("alice", rec.id, True, syms)
            recs.append(rec)
        day = iso_to_day("2013-02-28")
        bars = [b.to_message() for b in history_bars(market, syms, day, day)[0]]
        svc.bus.publish(TOPICS["bars"], messages.make("stratagem.bars.v1", bars=bars))
        first_try = bus.calls[:3]
        assert [sorted({sid for sid, _ in c}) for c in first_try[:2]] == [[recs[0].id], [recs[1].id]], first_try
        assert len(first_try) == 2 or first_try[2][0][0] != recs[2].id  # nothing published after the refusal
        # The retried delivery finds its bars stored; the scheduler's sweep evaluates them again.
        svc.bus.publish(TOPICS["tick"], messages.make("stratagem.tick.v1", sweep_seconds=0, reason="scheduler"))
        sent = sorted(svc.notifiers[0].sent)
        assert sent == sorted(("alice", s, "2013-02-28") for _ in recs for s in syms)  # 9: once each
        assert len({(sid, s) for c in bus.calls for sid, s in c}) == 9
        assert svc.bus.dead_letters == []
    finally:
        if svc.alert_runner is not None:
            svc.alert_runner.close()
