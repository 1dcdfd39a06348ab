"""TelegramNotifier and ChatDirectory against a local fake Bot API, through the REAL python-telegram-bot.

The fake server (a threaded ``http.server`` on 127.0.0.1) answers ``POST /bot<token>/<method>``
like the Bot API does: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code",
"description", "parameters"}`` with the matching HTTP status, and records every request so
tests can assert exactly what the library sent. Nothing in python-telegram-bot or httpx is
mocked; only ``sleep`` is injected so flood-control waits and backoff are observed, not waited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

pytest.importorskip("telegram")

# PTB 22.x warns (from inside RetryAfter's constructor) that retry_after will become a timedelta;
# the notifier handles both types.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

from stratagem.engines.alerts import alert_message
from stratagem.telegram import (
    BAD_CODE_TEXT,
    LINKED_TEXT,
    ChatDirectory,
    TelegramNotifier,
    format_alert_html,
)

TOKEN = "123456789:AAHfakeTOKENforTESTS_abcdefghijklmnopq"
CHAT = 987654321
USER = "user-1"


def _ok_message(chat_id, text, message_id=77):
    return {"ok": True, "result": {"message_id": message_id, "date": int(time.time()),
                                   "chat": {"id": int(chat_id), "type": "private", "first_name": "Ann"},
                                   "text": text}}


def _error(code, description, **parameters):
    body = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return code, body


class FakeBotAPI:
    """Scripted fake of the Telegram Bot API. ``script`` entries are consumed in order, one per
    request: ``(status, body)``, or ``("delay", seconds)`` to stall past the client's timeout
    (then answer normally). With the script empty, ``sendMessage`` succeeds."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                _, _, rest = self.path.partition("/bot")
                token, _, method = rest.partition("/")
                with api._lock:
                    api.requests.append({"token": token, "method": method, "params": params,
                                         "content_type": ctype})
                    step = api.script.pop(0) if api.script else None
                if step and step[0] == "delay":
                    time.sleep(step[1])
                    step = None
                if step is None:
                    if token != TOKEN:
                        status, body = _error(401, "Unauthorized")
                    elif method == "sendMessage":
                        status, body = 200, _ok_message(params.get("chat_id", 0), params.get("text", ""))
                    else:
                        status, body = _error(404, "Not Found")
                else:
                    status, body = step
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def sends(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "sendMessage"]


@pytest.fixture
def api():
    fake = FakeBotAPI()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


def make(api, sleeps, chats=None, **kw) -> TelegramNotifier:
    return TelegramNotifier(TOKEN, {USER: CHAT} if chats is None else chats, base_url=api.base_url,
                            sleep=sleeps, **kw)


ALERT = {
    "strategy_id": 7, "strategy_version": 1, "strategy_name": "Gap <up> & go", "symbol": "AAPL",
    "date": "2024-03-15", "timestamp": 1710460800000, "close": 1234.5, "score": 0.8731,
    "values": {"gap": 0.0412, "volume_ratio": 2.5, "note": "<b>x</b>", "missing": None},
    "dedup_key": "7:1:AAPL:19797", "demo_data": False,
}
ALERT["message"] = alert_message(ALERT["strategy_name"], ALERT["symbol"], ALERT["date"], ALERT["close"],
                                 ALERT["score"], ALERT["values"])

EXPECTED_TEXT = (
    "🔔 <b>Gap &lt;up&gt; &amp; go</b>\n"
    "<b>AAPL</b> signalled at the close of 2024-03-15\n"
    "Close: 1,234.50\n"
    "Score: 0.8731\n"
    "\n"
    "<i>Why:</i>\n"
    "• gap: 0.0412\n"
    "• volume_ratio: 2.5\n"
    "• note: &lt;b&gt;x&lt;/b&gt;"
)


# ---------------------------------------------------------------------------------- delivery


def test_happy_path_exact_request(api, sleeps):
    n = make(api, sleeps)
    res = n.send(USER, ALERT)
    assert res == {"status": "sent", "message_id": 77, "chat_id": CHAT, "attempts": 1}
    [req] = api.requests
    assert req["token"] == TOKEN and req["method"] == "sendMessage"
    assert req["params"]["chat_id"] == str(CHAT)
    assert req["params"]["parse_mode"] == "HTML"
    assert req["params"]["text"] == EXPECTED_TEXT
    assert sleeps.calls == []
    assert n.channel == "telegram"


def test_demo_data_note_and_escaping():
    text = format_alert_html({**ALERT, "demo_data": True, "close": None, "score": None, "values": {}})
    assert text.endswith("⚠️ <i>DEMO DATA: based on illustrative fundamentals, not real ones.</i>")
    assert "Close" not in text and "Score" not in text and "Why" not in text
    many = format_alert_html({**ALERT, "values": {f"v{i}": i for i in range(12)}})
    assert "• v7: 7" in many and "v8:" not in many and "… and 4 more" in many


def test_429_waits_retry_after_then_succeeds(api, sleeps):
    api.script = [_error(429, "Too Many Requests: retry after 2", retry_after=2)]
    res = make(api, sleeps).send(USER, ALERT)
    assert res["status"] == "sent" and res["attempts"] == 2
    assert sleeps.calls == [2]
    assert len(api.sends()) == 2
    assert api.sends()[1]["params"]["text"] == EXPECTED_TEXT


def test_429_forever_gives_up_not_permanent(api, sleeps):
    api.script = [_error(429, "Too Many Requests: retry after 5", retry_after=5)] * 10
    res = make(api, sleeps, max_retries=2).send(USER, ALERT)
    assert res["status"] == "failed" and res["permanent"] is False and res["error"] == "RetryAfter"
    assert res["attempts"] == 3 and sleeps.calls == [5, 5]


def test_500_then_success_with_backoff(api, sleeps):
    api.script = [_error(500, "Internal Server Error"), _error(502, "Bad Gateway")]
    res = make(api, sleeps).send(USER, ALERT)
    assert res["status"] == "sent" and res["attempts"] == 3
    assert sleeps.calls == [0.5, 1.0]  # exponential backoff


def test_server_errors_exhaust_retries(api, sleeps):
    api.script = [_error(500, "Internal Server Error")] * 10
    res = make(api, sleeps, max_retries=3).send(USER, ALERT)
    assert res["status"] == "failed" and res["permanent"] is False
    assert res["attempts"] == 4 and len(api.sends()) == 4 and len(sleeps.calls) == 3


def test_timeout_is_retried(api, sleeps):
    api.script = [("delay", 1.0)]
    t0 = time.monotonic()
    res = make(api, sleeps, timeout=0.3).send(USER, ALERT)
    assert res["status"] == "sent" and res["attempts"] == 2
    assert len(sleeps.calls) == 1
    assert time.monotonic() - t0 < 5


def test_403_blocked_is_permanent(api, sleeps):
    api.script = [_error(403, "Forbidden: bot was blocked by the user")]
    res = make(api, sleeps).send(USER, ALERT)
    assert res["status"] == "failed" and res["permanent"] is True
    assert res["error"] == "Forbidden" and "blocked by the user" in res["reason"]
    assert len(api.sends()) == 1 and sleeps.calls == []


def test_400_chat_not_found_is_permanent(api, sleeps):
    api.script = [_error(400, "Bad Request: chat not found")]
    res = make(api, sleeps).send(USER, ALERT)
    assert res["status"] == "failed" and res["permanent"] is True
    assert res["error"] == "BadRequest" and "chat not found" in res["reason"].lower()
    assert len(api.sends()) == 1


def test_no_chat_is_skipped(api, sleeps):
    res = make(api, sleeps).send("someone-else", ALERT)
    assert res == {"status": "skipped", "reason": "no Telegram chat linked"}
    assert api.requests == []


def test_unreachable_server_fails_without_raising(sleeps):
    n = TelegramNotifier(TOKEN, {USER: CHAT}, base_url="http://127.0.0.1:9/bot", sleep=sleeps, max_retries=1)
    res = n.send(USER, ALERT)
    assert res["status"] == "failed" and res["permanent"] is False
    assert TOKEN not in json.dumps(res)


def test_token_never_leaks(api, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    n = make(api, sleeps)
    bad = TelegramNotifier(TOKEN[:-3] + "xyz", {USER: CHAT}, base_url=api.base_url, sleep=sleeps)
    api.script = [_error(403, f"Forbidden: bot was blocked by the user {TOKEN}"),
                  _error(429, "Too Many Requests", retry_after=1), _error(500, "boom"), ("delay", 1.0)]
    results = [n.send(USER, ALERT), bad.send(USER, ALERT)]
    n2 = make(api, sleeps, timeout=0.3)
    results.append(n2.send(USER, ALERT))
    results.append(n.send("nobody", ALERT))
    assert [r["status"] for r in results] == ["failed", "failed", "sent", "skipped"]
    assert results[1]["permanent"] is True and results[1]["error"] == "InvalidToken"
    dumped = json.dumps(results)
    for secret in (TOKEN, TOKEN[:-3] + "xyz"):
        assert secret not in dumped
        assert secret not in caplog.text
        assert secret not in repr(n) and secret not in repr(bad)
    assert "<redacted-token>" in results[0]["reason"]
    assert any("sendMessage" in r.getMessage() for r in caplog.records)  # httpx did log the request


def test_send_from_inside_event_loop(api, sleeps):
    n = make(api, sleeps)

    async def main():
        return n.send(USER, ALERT)

    assert asyncio.run(main())["status"] == "sent"


# ---------------------------------------------------------------------------------- linking


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _start_update(chat_id: int, text: str, update_id: int = 1) -> str:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": 5, "date": 1_700_000_000, "text": text,
        "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})


def test_start_code_links_chat_and_confirms(api, sleeps, tmp_path):
    clock = Clock()
    directory = ChatDirectory(tmp_path / "chats.json", clock=clock, code_ttl=600)
    n = make(api, sleeps, chats=directory)
    assert n.send(USER, ALERT)["status"] == "skipped"

    code = directory.new_link_code(USER)
    assert len(code) >= 16 and code != directory.new_link_code(USER)  # random
    assert code not in (tmp_path / "chats.json").read_text()  # only hashes stored

    assert n.handle_update(_start_update(4242, f"/start {code}")) == USER
    assert directory.chat_for(USER) == 4242
    confirm = api.sends()[-1]["params"]
    assert confirm["chat_id"] == "4242" and confirm["text"] == LINKED_TEXT

    res = n.send(USER, ALERT)
    assert res["status"] == "sent" and res["chat_id"] == 4242
    assert api.sends()[-1]["params"]["chat_id"] == "4242"

    # single use: the same code again is rejected (and the chat is told so), the link stands
    assert directory.handle_update(_start_update(5555, f"/start {code}", 2)) is None
    assert api.sends()[-1]["params"] == {"chat_id": "5555", "text": BAD_CODE_TEXT}
    assert directory.chat_for(USER) == 4242

    # persisted: a fresh directory on the same file (e.g. another process) sees the link
    assert ChatDirectory(tmp_path / "chats.json").chat_for(USER) == 4242


def test_expired_code_rejected(api, sleeps, tmp_path):
    clock = Clock()
    directory = ChatDirectory(tmp_path / "chats.json", clock=clock, code_ttl=600)
    make(api, sleeps, chats=directory)
    code = directory.new_link_code(USER)
    clock.now += 601
    assert directory.handle_update(_start_update(4242, f"/start {code}")) is None
    assert directory.chat_for(USER) is None
    assert api.sends()[-1]["params"]["text"] == BAD_CODE_TEXT
    # a code issued in one process is redeemable in another that shares the file
    code2 = directory.new_link_code(USER)
    other = ChatDirectory(tmp_path / "chats.json", clock=clock, responder=lambda c, t: None)
    assert other.handle_update(json.loads(_start_update(99, f"/start@StratagemBot {code2}"))) == USER
    assert directory.chat_for(USER) == 99


def test_irrelevant_updates_ignored(api, sleeps):
    directory = ChatDirectory()
    make(api, sleeps, chats=directory)
    for upd in ["not json", json.dumps({"update_id": 3}), _start_update(1, "hello"),
                json.dumps({"update_id": 4, "message": {"chat": {"id": 1}}}),
                json.dumps({"update_id": 5, "callback_query": {"id": "x"}})]:
        assert directory.handle_update(upd) is None
    assert api.requests == []
    # bare /start (no code) gets the explanatory answer
    assert directory.handle_update(_start_update(1, "/start")) is None
    assert api.sends()[-1]["params"]["text"] == BAD_CODE_TEXT


def test_link_reply_failure_does_not_undo_link(api, sleeps):
    directory = ChatDirectory()
    make(api, sleeps, chats=directory)
    code = directory.new_link_code(USER)
    api.script = [_error(403, "Forbidden: bot was blocked by the user")]
    assert directory.handle_update(_start_update(4242, f"/start {code}")) == USER
    assert directory.chat_for(USER) == 4242
