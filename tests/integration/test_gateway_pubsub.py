"""The WebSocket gateway's production path on the emulators: two gateway instances, each with
its own pull subscription on the alerts topic (Pub/Sub emulator), the Firestore alert log,
real ``websockets`` clients. Every user gets their alerts once on every connection, on
whichever instance holds it; stopping an instance removes its subscription."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("websockets")
from stratagem import messages
from stratagem.alertlog_firestore import FirestoreAlertLog
from stratagem.api import ApiKeyAuth
from stratagem.bus import PubSubBus
from stratagem.gateway import Gateway, PubSubSource
from stratagem.service import TOPICS
from websockets.asyncio.client import connect

from .conftest import PROJECT

pytestmark = pytest.mark.integration
DAY = 86_400_000


def alert(sid: int, symbol: str, day: int) -> dict:
    return {"strategy_id": sid, "strategy_version": 1, "strategy_name": f"s{sid}", "symbol": symbol,
            "date": "2012-01-01", "timestamp": day * DAY, "close": 10.0, "score": 1.0, "values": {},
            "dedup_key": f"{sid}:1:{symbol}:{day}", "demo_data": False, "message": symbol}


async def recv_alerts(ws, n: int) -> list[str]:
    got = []
    while len(got) < n:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if msg["type"] == "alert":
            got.append(msg["alert"]["dedup_key"])
    await ws.send(json.dumps({"type": "ping"}))  # anything else queued would arrive before the pong
    extra = []
    while (msg := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "pong":
        extra.append(msg)
    assert extra == []
    return got


def test_two_instances_fan_out_through_their_own_subscriptions(pubsub_env, firestore_client, prefix):
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(name=publisher.topic_path(PROJECT, TOPICS["alerts"]))

    async def main():
        gws, sources, servers, urls = [], [], [], []
        for _ in range(2):
            gw = Gateway(ApiKeyAuth({"ka": "alice", "kb": "bob"}),
                         FirestoreAlertLog(client=firestore_client, prefix=prefix))
            server = await gw.serve("127.0.0.1", 0)
            src = PubSubSource(gw, PROJECT, TOPICS["alerts"])
            await asyncio.to_thread(src.start)
            gws.append(gw), sources.append(src), servers.append(server)
            urls.append(f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/")
        subs = {s.subscription for s in sources}
        assert len(subs) == 2
        alice1 = await connect(urls[0], additional_headers={"Authorization": "Bearer ka"})
        alice2 = await connect(urls[1], additional_headers={"Authorization": "Bearer ka"})
        bob2 = await connect(urls[1], additional_headers={"Authorization": "Bearer kb"})
        for ws in (alice1, alice2, bob2):
            assert json.loads(await ws.recv())["type"] == "welcome"
        bus = PubSubBus(PROJECT)
        xa, xb = alert(1, "AAPL", 100), alert(2, "MSFT", 100)
        for user, a in (("alice", xa), ("bob", xb), ("alice", xa)):  # the last: a duplicate publish
            await asyncio.to_thread(bus.publish, TOPICS["alerts"], messages.make("stratagem.alert.v1", alert=a,
                                                                                  user_id=user))
        assert await recv_alerts(alice1, 1) == [xa["dedup_key"]]
        assert await recv_alerts(alice2, 1) == [xa["dedup_key"]]
        assert await recv_alerts(bob2, 1) == [xb["dedup_key"]]
        for ws in (alice1, alice2, bob2):
            await ws.close()
        for src, server in zip(sources, servers):
            await asyncio.to_thread(src.stop)
            server.close()
            await server.wait_closed()
        sub_client = pubsub_v1.SubscriberClient()
        left = {s.name.rsplit("/", 1)[1] for s in
                sub_client.list_subscriptions(request={"project": f"projects/{PROJECT}"})}
        assert not subs & left, "a stopped instance leaves its subscription behind"

    asyncio.run(main())
