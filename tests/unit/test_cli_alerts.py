"""``stratagem alerts log`` / ``alerts track-record`` / ``telegram link``: JSON contract and exit codes."""

from __future__ import annotations

import json
import uuid

import pytest
from stratagem.alertlog import SqliteAlertLog
from stratagem.cli import main
from stratagem.data.store import iso_to_day
from stratagem.engines.common import ms
from stratagem.store import SqliteStore

USER = ""
ALWAYS = "def classify_symbol(s):\n    return {'signal': True, 'score': 1.0}\n"


@pytest.fixture
def home(monkeypatch, settings, market):
    # the session's home (its dataset is unpacked once); a user of its own keeps this test's rows apart
    monkeypatch.setenv("STRATAGEM_HOME", str(settings.home))
    global USER
    USER = f"cli-{uuid.uuid4().hex[:8]}"  # one user per test
    monkeypatch.setenv("STRATAGEM_USER", USER)
    monkeypatch.setenv("STRATAGEM_BACKEND", "local")
    return settings.home


def run(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def seed(home) -> int:
    rec = SqliteStore.in_home(home).create(USER, name="always", code=ALWAYS)
    SqliteStore.in_home(home).set_alert(USER, rec.id, True, ["AAPL", "MSFT"])
    log = SqliteAlertLog.in_home(home)
    for user, sym, date in ((USER, "AAPL", "2012-06-01"), (USER, "MSFT", "2012-06-04"), ("other", "IBM", "2012-06-04")):
        day = iso_to_day(date)
        log.add(user, {"strategy_id": rec.id, "strategy_version": 1, "strategy_name": "always", "symbol": sym,
                       "date": date, "timestamp": ms(day), "close": 1.0, "score": 1.0, "values": {},
                       "dedup_key": f"{rec.id}:1:{sym}:{day}:{user}", "demo_data": False, "message": sym})
    log.set_delivery(f"{rec.id}:1:AAPL:{iso_to_day('2012-06-01')}:{USER}", "telegram", {"status": "sent"})
    return rec.id


def test_alerts_log_json_is_the_users_own_log(home, capsys):
    sid = seed(home)
    code, doc = run(capsys, "alerts", "log", "--json")
    assert code == 0
    assert [(a["symbol"], a["date"]) for a in doc["alerts"]] == [("MSFT", "2012-06-04"), ("AAPL", "2012-06-01")]
    assert doc["alerts"][1]["delivery"] == {"telegram": {"status": "sent"}}
    code, doc = run(capsys, "alerts", "log", "--strategy", str(sid), "--until", "2012-06-01", "--json")
    assert [a["symbol"] for a in doc["alerts"]] == ["AAPL"]  # --until includes its whole day
    code, doc = run(capsys, "alerts", "log", "--since", "2012-13-01", "--json")
    assert code == 2 and doc["error"]["code"] == "bad_input"
    code, doc = run(capsys, "alerts", "log", "--limit", "0", "--json")
    assert code == 2 and "limit must be an integer from 1 to 1000" in doc["error"]["message"]


def test_alerts_track_record_json(home, capsys):
    sid = seed(home)
    code, doc = run(capsys, "alerts", "track-record", str(sid), "--json")
    assert code == 0, doc
    assert doc["strategy"]["version"] == 1 and len(doc["alerts"]) == 2
    assert doc["backtest"]["status"] == "done" and doc["backtest"]["end"] == "2012-05-31"
    assert set(doc["comparison"]) == {"1", "5", "10"}
    assert doc["comparison"]["1"]["live"]["count"] == 2
    code, doc = run(capsys, "alerts", "track-record", "x1", "--json")
    assert code == 2 and "expected a stored strategy id" in doc["error"]["message"]


def test_telegram_link_prints_a_code(home, capsys):
    code, doc = run(capsys, "telegram", "link", "--json")
    assert code == 0 and doc["send"] == f"/start {doc['code']}" and len(doc["code"]) >= 16


def test_human_views_do_not_need_json(home, capsys):
    sid = seed(home)
    assert main(["alerts", "log"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 alerts") and "telegram=sent" in out
    assert main(["alerts", "track-record", str(sid)]) == 0
    out = capsys.readouterr().out
    assert "backtest: done, " in out and out.count("\n") >= 7 and "10d" in out
