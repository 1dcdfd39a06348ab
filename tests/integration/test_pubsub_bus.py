"""``PubSubBus.publish_many`` on the official Pub/Sub emulator: every message in flight at
once (the client batches them), each accepted one delivered, refusals reported per message."""

from __future__ import annotations

import pytest
from stratagem import messages
from stratagem.bus import PublishIncomplete, PubSubBus

from .conftest import PROJECT

pytestmark = pytest.mark.integration


def alert(i: int) -> dict:
    a = {"strategy_id": 1, "strategy_version": 1, "strategy_name": "s", "symbol": f"S{i}", "date": "2012-01-01",
         "timestamp": 0, "close": 10.0, "score": float(i), "values": {}, "dedup_key": f"1:1:S{i}:0",
         "demo_data": False, "message": f"S{i}"}
    return messages.make("stratagem.alert.v1", alert=a, user_id="alice")


def test_publish_many_delivers_each_message_once_and_reports_refusals(pubsub_env):
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, "bus-many")
    publisher.create_topic(name=topic)
    sub = subscriber.subscription_path(PROJECT, "bus-many-check")
    subscriber.create_subscription(name=sub, topic=topic)
    bus = PubSubBus(PROJECT, timeout_s=20)

    ids = bus.publish_many("bus-many", [alert(i) for i in range(300)])
    assert len(ids) == 300 and len(set(ids)) == 300 and all(ids)
    got: list[str] = []
    while len(got) < 300:
        resp = subscriber.pull(request={"subscription": sub, "max_messages": 100}, timeout=20)
        assert resp.received_messages, f"only {len(got)} of 300 messages arrived"
        got += [messages.decode(m.message.data)["alert"]["symbol"] for m in resp.received_messages]
        subscriber.acknowledge(request={"subscription": sub, "ack_ids": [m.ack_id for m in resp.received_messages]})
    assert sorted(got) == sorted(f"S{i}" for i in range(300))

    with pytest.raises(PublishIncomplete) as err:
        bus.publish_many("no-such-topic", [alert(1), alert(2)])
    assert err.value.accepted == [False, False] and "2 of 2" in err.value.message
