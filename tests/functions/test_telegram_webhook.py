"""The Telegram webhook function: Telegram's secret header is required, /start <code> links the
chat and the bot answers it (the REAL python-telegram-bot against the fake Bot API server of
test_telegram.py), updates are built with python-telegram-bot's own classes, and one test
goes through a real HTTP server."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

telegram = pytest.importorskip("telegram")
from functions_framework import create_app
from stratagem.telegram import BAD_CODE_TEXT, LINKED_TEXT, ChatDirectory
from stratagem.telegram_webhook import (
    SECRET_HEADER,
    TelegramWebhook,
    check_secret,
    register_webhook,
)

from .test_telegram import TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parents[2] / "functions"
SECRET = "s3cret_webhook-token"


@pytest.fixture
def bot_api():
    fake = FakeBotAPI()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch, bot_api):
    monkeypatch.setenv("STRATAGEM_HOME", str(tmp_path))
    monkeypatch.setenv("STRATAGEM_BACKEND", "local")
    monkeypatch.setenv("STRATAGEM_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("STRATAGEM_TELEGRAM_BASE_URL", bot_api.base_url)
    monkeypatch.setenv("STRATAGEM_TELEGRAM_WEBHOOK_SECRET", SECRET)
    return tmp_path


def app():
    return create_app(target="telegram_webhook", source=str(ROOT / "telegram_webhook" / "main.py"),
                      signature_type="http")


def start_update(chat_id: int, text: str, update_id: int = 1) -> bytes:
    """A real ``telegram.Update`` as Telegram would post it."""
    user = telegram.User(id=chat_id, is_bot=False, first_name="Ann")
    msg = telegram.Message(message_id=5, date=dt.datetime(2024, 3, 15, tzinfo=dt.UTC),
                           chat=telegram.Chat(id=chat_id, type="private"), text=text, from_user=user)
    return telegram.Update(update_id=update_id, message=msg).to_json().encode()


def post(client, body: bytes, secret: str | None = SECRET):
    headers = {"Content-Type": "application/json", **({SECRET_HEADER: secret} if secret is not None else {})}
    return client.post("/", data=body, headers=headers)


def test_start_code_links_the_chat_and_the_bot_confirms(home, bot_api):
    code = ChatDirectory(home / "telegram_chats.json").new_link_code("alice")  # what the app shows alice
    client = app().test_client()
    r = post(client, start_update(4242, f"/start {code}"))
    assert r.status_code == 200 and r.get_json() == {"ok": True, "handled": True, "linked": True}
    assert ChatDirectory(home / "telegram_chats.json").chat_for("alice") == 4242
    assert bot_api.sends()[-1]["params"] == {"chat_id": "4242", "text": LINKED_TEXT}
    # the code was single use: Telegram delivering the same update again links nothing new
    r = post(client, start_update(5555, f"/start {code}", 2))
    assert r.get_json()["linked"] is False and bot_api.sends()[-1]["params"]["text"] == BAD_CODE_TEXT
    assert ChatDirectory(home / "telegram_chats.json").chat_for("alice") == 4242


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
def test_missing_or_wrong_secret_is_401_and_links_nothing(home, bot_api, secret):
    code = ChatDirectory(home / "telegram_chats.json").new_link_code("alice")
    r = post(app().test_client(), start_update(4242, f"/start {code}"), secret)
    assert r.status_code == 401 and SECRET_HEADER in r.get_json()["error"]["message"]
    assert ChatDirectory(home / "telegram_chats.json").chat_for("alice") is None
    assert bot_api.sends() == []


def test_other_updates_are_acknowledged_and_ignored(home, bot_api):
    client = app().test_client()
    assert post(client, b"{not json").get_json() == {"ok": True, "handled": False}
    assert post(client, b"[1, 2]").status_code == 200
    r = post(client, start_update(4242, "hello bot"))
    assert r.status_code == 200 and r.get_json()["linked"] is False
    assert client.get("/", headers={SECRET_HEADER: SECRET}).status_code == 405
    assert bot_api.sends() == []


def test_without_a_configured_secret_every_update_is_refused(home, monkeypatch):
    monkeypatch.delenv("STRATAGEM_TELEGRAM_WEBHOOK_SECRET")
    r = post(app().test_client(), start_update(1, "/start x"), "anything")
    assert r.status_code == 503 and "STRATAGEM_TELEGRAM_WEBHOOK_SECRET" in r.get_json()["error"]["message"]


def test_over_real_http(home, bot_api):
    from pytest_localserver.http import WSGIServer

    code = ChatDirectory(home / "telegram_chats.json").new_link_code("bob")
    server = WSGIServer(application=app())
    server.start()
    try:
        def send(secret):
            req = urllib.request.Request(server.url + "/", data=start_update(77, f"/start {code}"), method="POST",
                                         headers={"Content-Type": "application/json", SECRET_HEADER: secret})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        assert send("forged")[0] == 401
        assert send(SECRET) == (200, {"ok": True, "handled": True, "linked": True})
    finally:
        server.stop()
    assert ChatDirectory(home / "telegram_chats.json").chat_for("bob") == 77


def test_secret_shape_and_repr():
    with pytest.raises(Exception, match="1-256 characters"):
        check_secret("has space")
    assert SECRET not in repr(TelegramWebhook(SECRET, ChatDirectory()))


def test_register_webhook_calls_set_webhook(bot_api):
    bot_api.script.append((200, {"ok": True, "result": True}))
    assert register_webhook(TOKEN, "https://example.test/hook", SECRET, base_url=bot_api.base_url) is True
    [req] = bot_api.requests
    assert req["method"] == "setWebhook"
    params = req["params"]
    assert params["url"] == "https://example.test/hook" and params["secret_token"] == SECRET
    assert json.loads(params["allowed_updates"]) == ["message"]
    with pytest.raises(Exception, match="https://"):
        register_webhook(TOKEN, "http://example.test/hook", SECRET, base_url=bot_api.base_url)


def test_a_code_from_the_api_function_is_redeemed_by_the_webhook_function(home, bot_api, monkeypatch):
    from stratagem import factory

    monkeypatch.setenv("STRATAGEM_API_KEYS", "ka:alice")
    monkeypatch.setattr(factory, "_services", None)  # built from this test's environment
    api = create_app(target="api", source=str(ROOT / "api" / "main.py"), signature_type="http").test_client()
    r = api.post("/api/createTelegramLink", json={}, headers={"Authorization": "Bearer ka"})
    assert r.status_code == 200, r.get_json()
    send = r.get_json()["send"]
    r = post(app().test_client(), start_update(6060, send))
    assert r.get_json()["linked"] is True
    assert ChatDirectory(home / "telegram_chats.json").chat_for("alice") == 6060
    monkeypatch.setattr(factory, "_services", None)
