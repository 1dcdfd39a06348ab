"""The CLI contract (CONTRACT §1): one JSON document with --json, exit codes 0/1/2/3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stratagem.cli import main

GOOD = "def classify_symbol(symbol):\n    d = get_price_data(symbol, days=2)\n    return {'signal': len(d['close']) == 2, 'score': d['close'][-1]}\n"


@pytest.fixture(autouse=True)
def home(settings, market, monkeypatch):
    monkeypatch.setenv("STRATAGEM_HOME", str(settings.home))
    return settings.home


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    doc = json.loads(out) if "--json" in argv else None
    if doc is not None:
        assert out.count("\n") == 1
    return code, doc, err


def test_validate_ok_and_invalid(tmp_path, capsys):
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    assert run(capsys, "validate", str(good), "--json")[:2] == (0, {"valid": True, "errors": []})
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef classify_symbol(s):\n    return os.getcwd()\n")
    code, doc, _ = run(capsys, "validate", str(bad), "--json")
    assert code == 1 and doc["valid"] is False and doc["errors"][0]["line"] == 1 and "os" in doc["errors"][0]["message"]


def test_missing_file_is_bad_input(capsys):
    code, doc, err = run(capsys, "validate", "/nonexistent/x.py", "--json")
    assert code == 2 and doc["error"]["code"] == "bad_input" and "no such strategy file" in err


def test_screen_json(tmp_path, capsys):
    f = tmp_path / "s.py"
    f.write_text(GOOD)
    code, doc, _ = run(capsys, "screen", str(f), "--asof", "2012-06-01", "--limit", "2", "--json")
    assert code == 0 and doc["asof"] == "2012-06-01" and len(doc["ranked_results"]) == 2
    assert set(doc) >= {"asof", "ranked_results", "evaluated", "errors"}


def test_backtest_json_and_bad_flags(tmp_path, capsys):
    f = tmp_path / "s.py"
    f.write_text(GOOD)
    code, doc, _ = run(capsys, "backtest", str(f), "--symbols", "AAPL", "--start", "2013-02-01", "--end", "2013-02-28",
                       "--windows", "1,5", "--json")
    assert code == 0 and doc["windows"] == [1, 5] and doc["instances"][0]["ticker"] == "AAPL"
    assert doc["start"] == "2013-02-01" and len(doc["instances"]) == 19
    code, doc, _ = run(capsys, "backtest", str(f), "--start", "2013-02-31", "--json")
    assert code == 2 and "ISO date" in doc["error"]["message"]
    code, doc, _ = run(capsys, "backtest", str(f), "--windows", "0", "--json")
    assert code == 2 and "windows" in doc["error"]["message"]
    code, doc, _ = run(capsys, "screen", str(f), "--symbols", "AA PL", "--json")
    assert code == 2


def test_rejected_strategy_exit_1(tmp_path, capsys):
    f = tmp_path / "s.py"
    f.write_text("def classify_symbol(s):\n    return ().__class__\n")
    code, doc, _ = run(capsys, "screen", str(f), "--json")
    assert code == 1 and doc["error"]["code"] == "strategy_rejected" and doc["error"]["details"][0]["line"] == 2


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["backtest"])
    assert ei.value.code == 2


def test_data_import_list_info(tmp_path, capsys):
    csv = tmp_path / "toy.csv"
    csv.write_text("date,open,high,low,close,volume\n2020-01-02,10,11,9,10.5,100\n2020-01-03,10.5,12,10,11,200\n")
    code, doc, _ = run(capsys, "data", "import", str(csv), "--name", "toy", "--json")
    assert code == 0 and doc["symbols"] == {"TOY": {"bars": 2, "first": "2020-01-02", "last": "2020-01-03"}}
    code, doc, _ = run(capsys, "data", "list", "--json")
    assert {d["name"] for d in doc["datasets"]} >= {"sample", "toy"}
    code, doc, _ = run(capsys, "data", "info", "sample", "--json")
    assert code == 0 and doc["demo"] is False and "AAPL" in doc["symbols"]


def test_data_import_bad_file_names_row_and_column(tmp_path, capsys, home):
    csv = tmp_path / "bad.csv"
    csv.write_text("date,open,high,low,close,volume\n2020-01-02,10,11,9,10.5,100\n2020-01-03,10.5,9,10,11,200\n")
    code, doc, err = run(capsys, "data", "import", str(csv), "--name", "bad", "--json")
    assert code == 2 and "bad.csv" in doc["error"]["message"] and "line 3" in doc["error"]["message"]
    assert not (Path(home) / "data" / "bad").exists()  # nothing half-imported


def test_demo_json(capsys):
    code, doc, err = run(capsys, "demo", "--json")
    assert code == 0 and doc["dataset"]["name"] == "sample" and doc["dataset"]["demo"] is False
    assert len(doc["strategies"]) == 5 and all(s["valid"] for s in doc["strategies"])
    value = [s for s in doc["strategies"] if s["name"] == "value_pe"][0]
    assert value["backtest"]["demo_data"] is True and value["screen"]["demo_data"] is True
    assert doc["sandbox_check"]["rejected"] is True


def test_alerts_replay_json(tmp_path, capsys):
    code, doc, _ = run(capsys, "alerts", "replay", "builtin:rsi_oversold", "--start", "2012-10-01", "--end", "2012-12-31",
                       "--json")
    assert code == 0 and doc["alerts"]
    keys = [(a["timestamp"], a["symbol"]) for a in doc["alerts"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # time order, once per symbol x bar
    a = doc["alerts"][0]
    assert {"strategy_id", "symbol", "date", "timestamp", "message"} <= set(a) and a["symbol"] in a["message"]


def test_universes(capsys):
    assert run(capsys, "universe", "save", "mine", "msft, aapl", "--json")[1]["symbols"] == ["AAPL", "MSFT"]
    assert run(capsys, "universe", "show", "mine", "--json")[1]["symbols"] == ["AAPL", "MSFT"]
    code, doc, _ = run(capsys, "screen", "builtin:momentum_20d", "--universe", "mine", "--json")
    assert code == 0 and doc["universe_size"] == 2
    code, doc, _ = run(capsys, "screen", "builtin:momentum_20d", "--universe", "scan:sector=Technology", "--json")
    assert code == 0 and doc["universe_size"] == 3  # AAPL, IBM, MSFT
    code, doc, _ = run(capsys, "screen", "builtin:momentum_20d", "--universe", "nope", "--json")
    assert code == 2 and "known" in doc["error"]["message"]
    code, doc, _ = run(capsys, "screen", "builtin:momentum_20d", "--universe", "scan:bogus=1", "--json")
    assert code == 2 and "min_market_cap" in doc["error"]["message"]


def test_result_cache_serves_the_second_run(capsys):
    args = ("backtest", "builtin:golden_cross", "--symbols", "AAPL,MSFT", "--start", "2010-01-01", "--end", "2010-12-31",
            "--json")
    first = run(capsys, *args)
    second = run(capsys, *args)
    assert first[1] == second[1] and "served from the result cache" in second[2]
    # a different strategy is never served the cached result
    third = run(capsys, "backtest", "builtin:momentum_20d", *args[2:])
    assert "served from the result cache" not in third[2] and third[1] != first[1]
