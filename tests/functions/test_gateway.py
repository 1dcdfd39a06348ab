"""The WebSocket gateway with a real ``websockets`` client: per-user fan-out, once each,
catch-up from the alert log after a reconnect, and clear rejections of bad credentials."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

websockets = pytest.importorskip("websockets")
from stratagem import messages
from stratagem.alertlog import SqliteAlertLog
from stratagem.api import ApiKeyAuth
from stratagem.bus import InProcessBus
from stratagem.gateway import (
    CLOSE_AUTH_TIMEOUT,
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHORIZED,
    Gateway,
    LogPollSource,
)
from stratagem.service import TOPICS, Services, handle_notify
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DAY = 86_400_000


class TickClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 0.001
        return self.t
KEYS = {"ka": "alice", "kb": "bob"}


def alert(sid: int, symbol: str, day: int) -> dict:
    return {"strategy_id": sid, "strategy_version": 1, "strategy_name": f"s{sid}", "symbol": symbol,
            "date": "2012-01-01", "timestamp": day * DAY, "close": 10.0, "score": 1.0, "values": {},
            "dedup_key": f"{sid}:1:{symbol}:{day}", "demo_data": False, "message": f"{symbol} fired"}


class World:
    """A bus wired like the embedded stack: notify logs the alert, the gateway pushes it."""

    def __init__(self, tmp_path, auth_timeout_s: float = 5.0) -> None:
        # distinct created times: alerts logged in the same millisecond as a ``since`` key are
        # sent again on catch-up (documented at-least-once), which would make the counts vary
        self.log = SqliteAlertLog(tmp_path / "alerts.sqlite3", clock=TickClock())
        self.bus = InProcessBus()
        self.svc = Services(store=None, jobs=None, bus=self.bus, market=None, sandbox_factory=None,  # type: ignore[arg-type]
                            alert_log=self.log, notifiers=[])
        self.bus.subscribe(TOPICS["alerts"], lambda m, mid: handle_notify(self.svc, m, mid))
        self.gw = Gateway(ApiKeyAuth(KEYS), self.log, auth_timeout_s=auth_timeout_s)
        self.gw.attach_bus(self.bus)
        self.url = ""

    async def __aenter__(self) -> World:  # noqa: PYI034 - a test helper
        self.server = await self.gw.serve("127.0.0.1", 0)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/alerts"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def fire(self, user: str, a: dict) -> None:
        # published from another thread, as a Pub/Sub callback would
        await asyncio.to_thread(self.bus.publish, TOPICS["alerts"], messages.make("stratagem.alert.v1", alert=a,
                                                                                    user_id=user))

    async def settle(self, delivered: int) -> None:
        for _ in range(500):
            if self.gw.delivered >= delivered:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"gateway delivered {self.gw.delivered}, expected {delivered}")


async def drain(ws) -> list[dict]:
    """Every frame the server sent before our ping's pong (nothing is left in flight)."""
    await ws.send(json.dumps({"type": "ping"}))
    got = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["type"] == "pong":
            return got
        got.append(msg)


def alerts_of(frames: list[dict]) -> list[str]:
    return [f["alert"]["dedup_key"] for f in frames if f["type"] == "alert"]


def test_each_user_receives_only_their_own_alerts_once(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            a1 = await connect(w.url, additional_headers={"Authorization": "Bearer ka"})
            a2 = await connect(w.url, additional_headers={"X-API-Key": "ka"})
            b1 = await connect(w.url)
            await b1.send(json.dumps({"type": "auth", "token": "kb"}))  # how a browser authenticates
            for ws, user in ((a1, "alice"), (a2, "alice"), (b1, "bob")):
                assert json.loads(await ws.recv()) == {"type": "welcome", "user": user}
            xa, xb, ya = alert(1, "AAPL", 100), alert(2, "MSFT", 100), alert(1, "IBM", 101)
            await w.fire("alice", xa)
            await w.fire("bob", xb)
            await w.fire("alice", ya)
            w.bus.redeliver(0)  # Pub/Sub delivered the first alert twice
            await w.fire("alice", xa)  # and the tick fired it again
            await w.settle(5)
            assert alerts_of(await drain(a1)) == [xa["dedup_key"], ya["dedup_key"]]
            assert alerts_of(await drain(a2)) == [xa["dedup_key"], ya["dedup_key"]]
            assert alerts_of(await drain(b1)) == [xb["dedup_key"]]
            assert w.log.get("alice", xa["dedup_key"])["delivery"]["websocket"] == {"status": "sent", "connections": 2}
            assert w.log.get("bob", xb["dedup_key"])["delivery"]["websocket"] == {"status": "sent", "connections": 1}
            for ws in (a1, a2, b1):
                await ws.close()
    asyncio.run(main())


def test_a_reconnecting_client_catches_up_from_the_log_without_duplicates(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            ws = await connect(w.url, additional_headers={"Authorization": "Bearer ka"})
            await ws.recv()  # welcome
            first = alert(1, "AAPL", 100)
            await w.fire("alice", first)
            await w.settle(1)
            assert alerts_of(await drain(ws)) == [first["dedup_key"]]
            await ws.close()
            missed = [alert(1, "MSFT", 101), alert(1, "IBM", 102)]
            for a in missed:
                await w.fire("alice", a)  # nobody connected: logged, waiting for the catch-up
            await w.fire("bob", alert(2, "GOOG", 101))
            assert "websocket" not in w.log.get("alice", missed[0]["dedup_key"])["delivery"]
            ws = await connect(w.url)
            await ws.send(json.dumps({"type": "auth", "token": "ka", "since": first["dedup_key"]}))
            assert json.loads(await ws.recv())["type"] == "welcome"
            frames = [json.loads(await ws.recv()) for _ in range(3)]
            assert [f.get("alert", {}).get("dedup_key") for f in frames[:2]] == [a["dedup_key"] for a in missed]
            assert all(f["catch_up"] for f in frames[:2]) and frames[2] == {"type": "caught_up", "count": 2}
            assert w.log.get("alice", missed[1]["dedup_key"])["delivery"]["websocket"]["catch_up"] is True
            live = alert(1, "AAPL", 103)
            await w.fire("alice", live)
            await w.settle(4)
            assert alerts_of(await drain(ws)) == [live["dedup_key"]]
            # catching up again by time sends only what this connection has not had
            await ws.send(json.dumps({"type": "catch_up", "since": 0}))
            got = await drain(ws)
            assert alerts_of(got) == [first["dedup_key"]] and got[-1] == {"type": "caught_up", "count": 1}
            await ws.close()
            # ?since= in the URL works for clients that authenticate by header
            ws = await connect(w.url + f"?since={missed[1]['dedup_key']}", additional_headers={"X-API-Key": "ka"})
            await ws.recv()
            assert alerts_of([json.loads(await ws.recv())]) == [live["dedup_key"]]
            await ws.close()
    asyncio.run(main())


@pytest.mark.parametrize("how, code, reason", [
    ("header", CLOSE_UNAUTHORIZED, "unauthorized: missing or unknown API key"),
    ("message", CLOSE_UNAUTHORIZED, "unauthorized: missing or unknown API key"),
    ("not-auth", CLOSE_UNAUTHORIZED, 'unauthorized: the first message must be {"type": "auth"'),
    ("silence", CLOSE_AUTH_TIMEOUT, "unauthorized: no credentials within 0.3 s"),
])
def test_bad_credentials_are_rejected_with_a_clear_close_reason(tmp_path, how, code, reason):
    async def main():
        async with World(tmp_path, auth_timeout_s=0.3) as w:
            headers = {"Authorization": "Bearer wrong"} if how == "header" else None
            ws = await connect(w.url, additional_headers=headers)
            if how == "message":
                await ws.send(json.dumps({"type": "auth", "token": "wrong"}))
            elif how == "not-auth":
                await ws.send(json.dumps({"type": "catch_up", "since": 0}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == code
            assert ws.close_reason.startswith(reason), ws.close_reason
            await w.fire("alice", alert(1, "AAPL", 100))
            assert w.gw.conns == {}  # nothing registered for a rejected socket
    asyncio.run(main())


def test_health_check_answers_plain_http(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            url = w.url.replace("ws://", "http://").replace("/alerts", "/healthz")
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
            assert body == b"ok\n"
    asyncio.run(main())


def test_log_poll_source_feeds_alerts_logged_by_another_process(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            other = SqliteAlertLog(tmp_path / "alerts.sqlite3")  # the API process's own handle on the file
            source = LogPollSource(w.gw, w.log)
            ws = await connect(w.url, additional_headers={"Authorization": "Bearer kb"})
            await ws.recv()
            assert await asyncio.to_thread(source.poll_once) == 0
            a = alert(2, "MSFT", 100)
            other.add("bob", a)
            other.add("alice", alert(1, "AAPL", 100))
            assert await asyncio.to_thread(source.poll_once) == 1  # only users connected here are polled
            await w.settle(1)
            await asyncio.to_thread(source.poll_once)  # the same entry again: not re-sent
            assert alerts_of(await drain(ws)) == [a["dedup_key"]]
            await ws.close()
    asyncio.run(main())


def test_too_many_sockets_of_one_user_are_refused(tmp_path):
    async def main():
        async with World(tmp_path) as w:
            w.gw.max_connections_per_user = 2
            keep = [await connect(w.url, additional_headers={"X-API-Key": "ka"}) for _ in range(2)]
            for ws in keep:
                await ws.recv()
            extra = await connect(w.url, additional_headers={"X-API-Key": "ka"})
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(extra.recv(), 5)
            assert extra.close_code == CLOSE_TOO_MANY and "at most 2 per user" in extra.close_reason
            bob = await connect(w.url, additional_headers={"X-API-Key": "kb"})  # other users are not affected
            assert json.loads(await bob.recv())["type"] == "welcome"
            await keep[0].close()
            for _ in range(100):  # the closed socket is unregistered
                if len(w.gw.conns["alice"]) < 2:
                    break
                await asyncio.sleep(0.01)
            again = await connect(w.url, additional_headers={"X-API-Key": "ka"})
            assert json.loads(await again.recv())["type"] == "welcome"
            for ws in (keep[1], bob, again):
                await ws.close()
    asyncio.run(main())
