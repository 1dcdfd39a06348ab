"""``stratagem market replay``: history published as live ``stratagem.bars.v1`` events on the
in-process bus; the active strategies of the local store alert exactly as ``alerts replay``."""

from __future__ import annotations

import json

import pytest

from stratagem.cli import main
from stratagem.store import SqliteStore

MOMENTUM = '''
def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=6)
    c = d['close']
    if len(c) < 6:
        return False
    move = c[-1] / c[0] - 1
    return {"signal": move > 0.04, "score": move * 100}
'''


@pytest.fixture
def home(settings, market, tmp_path, monkeypatch):
    h = tmp_path / "home"
    (h / "data").mkdir(parents=True)
    (h / "data" / "sample").symlink_to(settings.data_dir / "sample")
    monkeypatch.setenv("STRATAGEM_HOME", str(h))
    monkeypatch.setenv("STRATAGEM_USER", "local")
    return h


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    doc = json.loads(out) if "--json" in argv else None
    if doc is not None:
        assert out.count("\n") == 1
    return code, doc, err


def test_market_replay_alerts_like_alerts_replay(home, capsys):
    store = SqliteStore.in_home(home)
    rec = store.create("local", name="momentum", code=MOMENTUM)
    store.set_alert("local", rec.id, True, ["AAPL", "MSFT", "IBM"])
    span = ("--start", "2012-10-01", "--end", "2012-12-31")
    code, doc, err = run(capsys, "market", "replay", "--symbols", "AAPL,MSFT,IBM", *span, "--json")
    assert code == 0, err
    assert doc["sessions"] == 62 and doc["bars"] == 3 * 62 and doc["messages"] == 62 and doc["topic"] == "stratagem-bars"
    code, want, err = run(capsys, "alerts", "replay", str(rec.id), "--symbols", "AAPL,MSFT,IBM", *span, "--json")
    assert code == 0, err
    key = ["symbol", "date", "score", "values", "message", "strategy_id", "strategy_version"]
    assert len(want["alerts"]) >= 3
    assert [{k: a[k] for k in key} for a in doc["alerts"]] == [{k: a[k] for k in key} for a in want["alerts"]]
    # run again: the same events, the same alerts (live bars are kept in memory for a replay)
    code, again, _ = run(capsys, "market", "replay", "--symbols", "AAPL,MSFT,IBM", *span, "--json")
    assert [a["dedup_key"] for a in again["alerts"]] == [a["dedup_key"] for a in doc["alerts"]]


def test_market_replay_bad_input(home, capsys):
    code, doc, _ = run(capsys, "market", "replay", "--symbols", "AAPL,NOPE", "--json")
    assert code == 2 and "NOPE" in doc["error"]["message"]
    code, doc, _ = run(capsys, "market", "replay", "--start", "2013-01-10", "--end", "2013-01-01", "--json")
    assert code == 2 and "after --end" in doc["error"]["message"]
    code, doc, _ = run(capsys, "market", "replay", "--speed", "-1", "--json")
    assert code == 2 and "--speed" in doc["error"]["message"]
    code, doc, _ = run(capsys, "market", "replay", "--start", "2013-02-27", "--json")  # no strategy active: no alerts
    assert code == 0 and doc["alerts"] == [] and doc["sessions"] == 3
