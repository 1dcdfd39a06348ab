"""Issue 6's "done when", on the local stack (`stratagem serve` with the emulators): a user links
a Telegram chat through the webhook function, activates an alert, a market-data event arrives
twice, and the signal reaches the user once on Telegram (the real python-telegram-bot against a
fake Bot API server) and once on the WebSocket gateway; the alert log shows both deliveries."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from stratagem.emulator import find_firestore_emulator, find_pubsub_emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

if not (find_firestore_emulator() and find_pubsub_emulator()):
    pytest.skip("SKIPPED LOUDLY: the Firestore/Pub/Sub emulators are not installed here (Google Cloud SDK "
                "components cloud-firestore-emulator and pubsub-emulator); the alert delivery test cannot run",
                allow_module_level=True)
pytest.importorskip("websockets")
pytest.importorskip("telegram")

SECRET = "e2e-webhook-secret"
ALWAYS_UP = "stocks up more than 2% today"


@pytest.fixture(scope="module")
def world(tmp_path_factory, settings, market):
    sys.path.insert(0, str(ROOT))
    from emulators.stack import Stack

    from tests.functions import test_telegram as fake  # its fake Bot API server

    bot = fake.FakeBotAPI()
    bot.thread.start()
    env = {"STRATAGEM_TELEGRAM_TOKEN": fake.TOKEN, "STRATAGEM_TELEGRAM_BASE_URL": bot.base_url,
           "STRATAGEM_TELEGRAM_WEBHOOK_SECRET": SECRET}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the stack's processes inherit it
    home = tmp_path_factory.mktemp("stack-delivery-home")
    (home / "data").mkdir()
    (home / "data" / "sample").symlink_to(settings.data_dir / "sample")
    st = Stack(home)
    try:
        st.start()
        yield st, bot
    finally:
        st.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        bot.server.shutdown()
        bot.server.server_close()


def wait_job(stack, job_id: str, timeout: float = 180) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        status, doc = stack.call("/api/getJob", {"jobId": job_id})
        if status != 202:
            return doc
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not done after {timeout} s")


def post_update(stack, text: str) -> dict:
    update = {"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000, "text": text,
                                          "chat": {"id": 4242, "type": "private"},
                                          "from": {"id": 4242, "is_bot": False, "first_name": "Ann"}}}
    req = urllib.request.Request(f"http://127.0.0.1:{stack.ports['telegram_webhook']}/",
                                 data=json.dumps(update).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-Telegram-Bot-Api-Secret-Token": SECRET})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_one_signal_reaches_telegram_and_websocket_once(world, market):
    from google.cloud import pubsub_v1
    from stratagem.data.store import iso_to_day
    from stratagem.live import bars_message, history_bars
    from stratagem.telegram_firestore import FirestoreChatDirectory
    from websockets.asyncio.client import connect

    stack, bot = world
    # 1. link the chat: the app's code (shared Firestore directory), /start CODE through the webhook
    os.environ["FIRESTORE_EMULATOR_HOST"] = stack.env["FIRESTORE_EMULATOR_HOST"]
    code = FirestoreChatDirectory(project=stack.project).new_link_code(stack.user)
    assert post_update(stack, f"/start {code}") == {"ok": True, "handled": True, "linked": True}
    assert bot.sends()[-1]["params"]["chat_id"] == "4242"
    # 2. a strategy with an active alert, and a day on which it signals for AAPL
    status, doc = stack.call("/api/createStrategyFromPrompt", {"query": ALWAYS_UP, "strategyId": -1})
    sid = wait_job(stack, doc["jobId"])["result"]["strategy"]["id"]
    status, doc = stack.call("/api/runBacktest", {"strategyId": sid, "start": 1325376000000, "symbols": ["AAPL"]})
    day = wait_job(stack, doc["jobId"])["result"]["instances"][0]["date"]
    assert stack.call("/api/setAlert", {"strategyId": sid, "active": True, "symbols": ["AAPL", "MSFT"]})[0] == 200

    async def main():
        url = f"ws://127.0.0.1:{stack.ports['ws_gateway']}/"
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {stack.api_key}"})
        assert json.loads(await ws.recv()) == {"type": "welcome", "user": stack.user}
        pub = pubsub_v1.PublisherClient()
        msg = bars_message(history_bars(market, ["AAPL"], iso_to_day(day), iso_to_day(day))[0], "e2e-ws")
        for _ in range(2):  # the feed sends the bar twice
            pub.publish(pub.topic_path(stack.project, "stratagem-bars"), json.dumps(msg).encode()).result(timeout=30)
        first = json.loads(await asyncio.wait_for(ws.recv(), 90))
        assert first["type"] == "alert" and (first["alert"]["symbol"], first["alert"]["date"]) == ("AAPL", day)
        await asyncio.sleep(5)  # let the duplicate run through every function
        await ws.send(json.dumps({"type": "ping"}))
        rest = []
        while (m := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "pong":
            rest.append(m)
        assert rest == []  # once
        await ws.close()
        return first["alert"]

    alert = asyncio.run(main())
    texts = [r["params"]["text"] for r in bot.sends() if r["params"]["chat_id"] == "4242"]
    assert sum("AAPL" in t for t in texts) == 1  # once on Telegram too
    t0 = time.time()
    while time.time() - t0 < 30:
        status, doc = stack.call("/api/getAlertLogs", {"strategyId": sid})
        delivery = doc["alerts"][0]["delivery"] if doc.get("alerts") else {}
        if delivery.get("telegram", {}).get("status") == "sent" and "websocket" in delivery:
            break
        time.sleep(0.5)
    assert status == 200 and [a["dedup_key"] for a in doc["alerts"]] == [alert["dedup_key"]]
    assert delivery["telegram"]["status"] == "sent" and delivery["telegram"]["chat_id"] == 4242
    assert delivery["websocket"] == {"status": "sent", "connections": 1}
