"""`stratagem serve --no-emulators` (embedded adapters): alerts fired by another process (the
market replayer of the CLI, on its own in-process bus) are logged in the home's SQLite alert log,
and the stack's WebSocket gateway, polling that log, pushes each of them once to the user's
socket; the API's alert log shows the websocket delivery. Needs no emulators."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("websockets")
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory, settings, market):
    sys.path.insert(0, str(ROOT))
    from emulators.stack import Stack

    home = tmp_path_factory.mktemp("stack-local-home")
    (home / "data").mkdir()
    (home / "data" / "sample").symlink_to(settings.data_dir / "sample")
    st = Stack(home)
    st.start(use_emulators=False)
    yield st
    st.stop()


def test_alerts_fired_elsewhere_reach_the_socket_once(stack):
    status, doc = stack.call("/api/createStrategyFromPrompt", {"query": "stocks up more than 2% today"})
    assert status == 200, doc  # the in-process bus finishes the job before answering
    sid = doc["result"]["strategy"]["id"]
    assert stack.call("/api/setAlert", {"strategyId": sid, "active": True, "symbols": ["AAPL", "IBM"]})[0] == 200

    async def main() -> tuple[list[tuple[str, str]], dict]:
        ws = await connect(f"ws://127.0.0.1:{stack.ports['ws_gateway']}/",
                           additional_headers={"Authorization": f"Bearer {stack.api_key}"})
        assert json.loads(await ws.recv())["type"] == "welcome"
        replay = [sys.executable, "-m", "stratagem.cli", "market", "replay", "--symbols", "AAPL,IBM",
                  "--start", "2013-01-02", "--end", "2013-01-31", "--json"]
        for _ in range(2):  # the same bars twice: the second replay fires nothing new
            done = await asyncio.to_thread(subprocess.run, replay, env=stack.env, capture_output=True, text=True,
                                           timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
        fired = json.loads(done.stdout)
        got = []
        try:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                got.append((msg["alert"]["symbol"], msg["alert"]["date"]))
        except TimeoutError:
            pass
        await ws.close()
        return got, fired

    got, fired = asyncio.run(main())
    status, doc = stack.call("/api/getAlertLogs", {"strategyId": sid})
    logged = sorted((a["symbol"], a["date"]) for a in doc["alerts"])
    assert logged and sorted(got) == logged and len(set(got)) == len(got)  # every logged alert, once
    assert all(a["delivery"]["websocket"]["status"] == "sent" for a in doc["alerts"])
    # the second replay (a new process: its in-memory claims are gone) fired the same alerts again;
    # the durable alert log kept them to one entry and one push each
    assert sorted((a["symbol"], a["date"]) for a in fired["alerts"]) == logged
