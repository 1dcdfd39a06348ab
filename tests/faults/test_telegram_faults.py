"""Telegram failing while alerts are delivered: the notify handler with the REAL
python-telegram-bot against a local fake Bot API, the REAL SQLite alert log, real waits
(short ``retry_after`` and backoff; nothing about the client is mocked).

What the user sees: a flood-control answer (429 retry_after), a 5xx or a timeout delays the
phone message but it arrives once, and the alert log says ``sent`` with the attempts; a
permanent refusal (403 bot blocked, 400 chat not found) leaves the alert in the log with
``telegram: failed, permanent`` and the reason, while the other channels still deliver; a
redelivered alert message never sends it again."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("telegram")
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

from stratagem.alertlog import SqliteAlertLog
from stratagem.bus import InProcessBus
from stratagem.jobs import MemoryJobStore
from stratagem.notify import FileNotifier
from stratagem.service import Services, handle_notify
from stratagem.store import MemoryStore
from stratagem.telegram import TelegramNotifier

TOKEN = "123456789:AAHfakeTOKENforFAULTS_abcdefghijklmnop"
CHAT = 424242


class FakeBotAPI:
    """``POST /bot<token>/sendMessage`` like the Bot API; ``script`` steps are consumed one per
    request: ``(status, body)``, or ``("delay", s)`` to stall past the client's timeout."""

    def __init__(self) -> None:
        self.script: list[tuple] = []
        self.requests: list[dict] = []
        self.answered_ok = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                params = json.loads(raw or "{}") if "json" in self.headers.get("Content-Type", "") else {}
                with fake.lock:
                    fake.requests.append(params)
                    step = fake.script.pop(0) if fake.script else None
                if step and step[0] == "delay":
                    time.sleep(step[1])
                    step = None
                if step is None:
                    fake.answered_ok += 1
                    step = (200, {"ok": True, "result": {"message_id": len(fake.requests), "date": int(time.time()),
                                                         "chat": {"id": CHAT, "type": "private"}, "text": "x"}})
                data = json.dumps(step[1]).encode()
                try:
                    self.send_response(step[0])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/bot"


def err(code: int, description: str, **parameters: Any) -> tuple[int, dict]:
    body: dict = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return code, body


@pytest.fixture
def bot():
    fake = FakeBotAPI()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def svc(tmp_path, bot, market) -> Services:
    telegram = TelegramNotifier(TOKEN, {"alice": CHAT}, base_url=bot.base_url, timeout=1.0, backoff_base=0.05,
                                max_retries=3)
    return Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                    sandbox_factory=lambda: None, alert_log=SqliteAlertLog.in_home(tmp_path),
                    notifiers=[FileNotifier(tmp_path / "inbox.jsonl"), telegram])


def alert(n: int = 1) -> dict:
    return {"strategy_id": 3, "strategy_version": 1, "strategy_name": "Gap up", "symbol": "AAPL",
            "date": f"2013-02-{n:02d}", "timestamp": 1359676800000 + n * 86_400_000, "close": 450.5, "score": 2.5,
            "values": {"gap": 0.031}, "message": "Gap up: AAPL", "dedup_key": f"3:1:AAPL:{15737 + n}",
            "demo_data": False}


def notify(svc: Services, a: dict) -> dict:
    handle_notify(svc, {"schema": "stratagem.alert.v1", "alert": a, "user_id": "alice"}, "")
    entry = svc.alert_log.get("alice", a["dedup_key"])
    assert entry is not None, "the alert was lost from the log"
    return entry


def inbox(svc: Services) -> list[str]:
    path = svc.notifiers[0].path
    return [json.loads(x)["dedup_key"] for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("script,attempts", [
    ([err(429, "Too Many Requests: retry after 1", retry_after=1)], 2),
    ([err(502, "Bad Gateway"), err(500, "Internal Server Error")], 3),
    ([("delay", 2.0)], 2),
], ids=["429-retry-after", "5xx", "timeout"])
def test_transient_telegram_failures_deliver_once(svc, bot, script, attempts):
    bot.script = list(script)
    a = alert()
    entry = notify(svc, a)
    tg = entry["delivery"]["telegram"]
    assert tg["status"] == "sent" and tg["attempts"] == attempts, tg
    assert entry["delivery"]["file"]["status"] == "sent"
    sent_before = len(bot.requests)
    assert len(bot.requests) == attempts
    # Pub/Sub redelivers the same alert message: nothing is sent again, nothing logged twice
    again = notify(svc, a)
    assert len(bot.requests) == sent_before and again["delivery"] == entry["delivery"]
    assert inbox(svc) == [a["dedup_key"]]
    assert [e["dedup_key"] for e in svc.alert_log.list("alice")] == [a["dedup_key"]]


def test_timeout_can_reach_the_phone_twice_but_is_logged_once(svc, bot):
    """The honest limit: the Bot API has no idempotency key, so a request that timed out on our
    side but that Telegram processed, followed by the retry, reaches the chat twice. Our log
    records one alert, one ``sent``."""
    bot.script = [("delay", 2.0)]
    entry = notify(svc, alert(2))
    time.sleep(1.5)  # the stalled request is answered after the client gave up
    assert bot.answered_ok == 2 and entry["delivery"]["telegram"]["attempts"] == 2
    assert len(svc.alert_log.list("alice")) == 1


@pytest.mark.parametrize("answer,needle", [
    (err(403, "Forbidden: bot was blocked by the user"), "blocked"),
    (err(400, "Bad Request: chat not found"), "chat not found"),
], ids=["403-blocked", "400-chat-not-found"])
def test_permanent_telegram_failures_are_recorded_and_the_alert_kept(svc, bot, answer, needle):
    bot.script = [answer]
    a = alert(3)
    entry = notify(svc, a)
    tg = entry["delivery"]["telegram"]
    assert tg["status"] == "failed" and tg["permanent"] is True and needle in tg["reason"].lower(), tg
    assert TOKEN not in json.dumps(entry)
    assert entry["delivery"]["file"]["status"] == "sent"  # the other channel still delivered
    assert len(bot.requests) == 1  # permanent: not retried
    notify(svc, a)  # redelivered: the recorded outcome stands, no new request
    assert len(bot.requests) == 1 and inbox(svc) == [a["dedup_key"]]
    # the next alert for this user is attempted again (the block may have been lifted)
    nxt = notify(svc, alert(4))
    assert nxt["delivery"]["telegram"]["status"] == "sent" and len(bot.requests) == 2
