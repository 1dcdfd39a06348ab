"""Pub/Sub refusing the alert message after the alert fired: the alert must not be lost.

An alert is claimed (``strategy:version:symbol:bar``) before it is published, so that
duplicate deliveries, both alert paths and concurrent instances publish it once. If the
publish then fails, the claim must be released: otherwise every re-evaluation (the retried
delivery, the next scheduler sweep) finds it claimed and the alert is never sent."""

from __future__ import annotations

import pytest
from stratagem import messages
from stratagem.bus import InProcessBus
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
