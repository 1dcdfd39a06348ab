"""explain_code: a plain-English back-translation computed from the strategy's code alone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import stratagem.generation.explain as explain_module
from stratagem.generation.explain import explain_code
from stratagem.generation.prompting import WORKED_EXAMPLES

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ALL_SAMPLES = sorted(SAMPLES.glob("**/*.py")) + sorted((SAMPLES.parent / "attacks").glob("*.py"))


def summary(source: str) -> str:
    return explain_code(source)["summary"]


# --------------------------------------------------------------------------------------
# The reference strategies: exact back-translations
# --------------------------------------------------------------------------------------
PROMPT_REFS = {
    "gap-1": "signal when (today's open / yesterday's close − 1) > 0.03 and (today's volume / average volume of the "
             "previous 20 sessions) > 1.5",
    "mom-1": "signal when (today's close / the close 21 sessions ago − 1) > 0.1",
    "ma-1": "signal when average close of the last 50 sessions > average close of the last 200 sessions and average "
            "close of the previous 50 sessions ≤ average close of the previous 200 sessions",
    "bb-1": "signal when today's close < (average close of the last 20 sessions − 2 × standard deviation of close "
            "over the last 20 sessions)",
    "cdl-1": "signal when today's high < yesterday's high and today's low > yesterday's low",
    "fund-1": "signal when 0 < P/E ratio < 15 and market cap > 1,000,000,000",
    "sec-1": "signal when sector contains 'tech' and rsi < 30, where rsi = the last value of rsi_series(the last 250 "
             "closes, 14)",
    "tk-1": "signal when the symbol is 'AAPL' and (today's open / yesterday's close − 1) ≥ 0.04",
    "vol-1": "signal when (today's volume / average volume of the previous 50 sessions) ≥ 3",
}


@pytest.mark.parametrize("name", sorted(PROMPT_REFS))
def test_prompt_reference_summaries(name):
    source = (SAMPLES / "prompt_refs" / f"{name}.py").read_text()
    assert summary(source) == PROMPT_REFS[name]


def test_gap_reference_in_full():
    out = explain_code((SAMPLES / "prompt_refs" / "gap-1.py").read_text())
    assert out["parameters"] == [{"name": "GAP_MIN", "value": 0.03, "line": 42},
                                 {"name": "VOLUME_MULTIPLE", "value": 1.5, "line": 43},
                                 {"name": "VOLUME_LOOKBACK", "value": 20, "line": 44}]
    # days=int(want * 1.6) + 10 inside the fetch helper, with want = VOLUME_LOOKBACK + 1
    assert out["data"] == [{"function": "get_price_data", "line": 24, "via": ["fetch"],
                            "arguments": {"symbol": "the symbol", "timeframe": "'1d'", "days": "43"},
                            "text": "daily bars of the symbol: the last 43 sessions"}]
    assert out["conditions"] == [
        {"kind": "data_check", "text": "bars is known", "line": 49},
        {"kind": "data_check", "text": "yesterday's close > 0", "line": 53},
        {"kind": "data_check", "text": "average volume of the previous 20 sessions > 0", "line": 53},
        {"kind": "signal", "text": "(today's open / yesterday's close − 1) > 0.03", "line": 58},
        {"kind": "signal", "text": "(today's volume / average volume of the previous 20 sessions) > 1.5", "line": 58},
    ]
    assert out["score"] == "(today's open / yesterday's close − 1) × 100"
    json.dumps(out)  # plain JSON


def test_ticker_and_sector_filters_are_filters():
    tk = explain_code((SAMPLES / "prompt_refs" / "tk-1.py").read_text())
    assert {"kind": "filter", "text": "the symbol is 'AAPL'", "line": 37} in tk["conditions"]
    assert tk["data"][0]["text"] == "daily bars of AAPL: the last 13 sessions"
    sec = explain_code((SAMPLES / "prompt_refs" / "sec-1.py").read_text())
    assert [c["text"] for c in sec["conditions"] if c["kind"] == "filter"] == ["sector contains 'tech'"]
    assert [d["text"] for d in sec["data"]] == ["daily bars of the symbol: the last 410 sessions",
                                                "fundamentals of the symbol as of the evaluation date (sector)"]


def test_fundamentals_reference():
    out = explain_code((SAMPLES / "prompt_refs" / "fund-1.py").read_text())
    assert out["data"][0]["text"] == "fundamentals of the symbol as of the evaluation date (pe_ratio, market_cap)"
    assert [c["text"] for c in out["conditions"] if c["kind"] == "data_check"] == [
        "P/E ratio is known", "market cap is known"]
    assert out["score"] == "−P/E ratio"


BENIGN = {
    "001_gap_up_volume": "signal when ((today's open − yesterday's close) / yesterday's close) > 0.03 and (today's "
                         "volume / average volume of the previous 4 sessions if average volume of the previous 4 "
                         "sessions > 0, else 0) > 1.5",
    "002_momentum_5d": "signal when (today's close / the close 5 sessions ago − 1) > 0.05 and today's volume > "
                       "average volume of the last 30 sessions",
    "004_sma_cross_20_50": "signal when average close of the last 20 sessions > average close of the last 50 sessions "
                           "and crossed, where crossed is changed in the loop at line 19",
    "007_value_screen_fundamentals": "signal when 0 < P/E ratio < 15 and market cap > 1,000,000,000",
    "010_dict_score_values": "signal when today's close > average close of the last 10 sessions",
    "020_run_screening_defined": "signals for every symbol whose data checks pass",
    "027_gemini_style_full": "signal when value < 45 and (1 − today's close / highest close of the last 20 "
                             "sessions) ≤ 0.1, where value = rsi(the last 40 closes)",
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_summaries(name):
    assert summary((SAMPLES / "benign" / f"{name}.py").read_text()) == BENIGN[name]


def test_worked_examples_of_the_prompt_explain_as_intended():
    texts = [summary(ex.answer["code"]) for ex in WORKED_EXAMPLES if ex.answer["code"]]
    assert texts == [
        PROMPT_REFS["gap-1"],
        "signal when sector is 'technology' and rsi < 30, where rsi = wilder_rsi(the last 120 closes, 14)",
        ("signal when the symbol is 'AAPL' and today's close > average close of the last 50 sessions and yesterday's "
        "close ≤ average close of the previous 50 sessions"),
    ]


# --------------------------------------------------------------------------------------
# Hand-written cases
# --------------------------------------------------------------------------------------
BRIEF = '''
GAP_MIN = 0.03
VOLUME_MULTIPLE = 1.5


def classify_symbol(symbol):
    data = get_price_data(symbol, timeframe='1d', days=21)
    opens, closes, volumes = data['open'], data['close'], data['volume']
    if len(closes) < 21:
        return False
    prev_close = closes[-2]
    avg_volume = sum(volumes[-21:-1]) / len(volumes[-21:-1])
    gap = opens[-1] / prev_close - 1.0
    rel_volume = volumes[-1] / avg_volume
    return {"signal": gap > GAP_MIN and rel_volume > VOLUME_MULTIPLE, "score": gap}
'''


def test_the_briefs_example():
    out = explain_code(BRIEF)
    assert out["summary"] == ("signal when (today's open / yesterday's close − 1) > 0.03 and (today's volume / "
                              "average volume of the previous 20 sessions) > 1.5")
    assert out["parameters"] == [{"name": "GAP_MIN", "value": 0.03, "line": 2},
                                 {"name": "VOLUME_MULTIPLE", "value": 1.5, "line": 3}]
    assert out["conditions"][0] == {"kind": "data_check", "text": "the number of closes ≥ 21", "line": 9}
    assert out["score"] == "today's open / yesterday's close − 1"
    assert out["data"][0]["arguments"] == {"symbol": "the symbol", "timeframe": "'1d'", "days": "21"}


def test_equivalent_slices_read_the_same():
    out = explain_code('''
def classify_symbol(symbol):
    closes = get_price_data(symbol, days=30)['close']
    n = len(closes)
    a = sum(closes[n - 21:n - 1]) / 20
    b = np.mean(closes[-21:-1])
    c = statistics.mean(list(closes)[len(closes) - 21:-1])
    return closes[-1] > a and closes[-1] > b and closes[-1] > c
''')
    assert out["summary"] == "signal when today's close > average close of the previous 20 sessions"
    # the three spellings become one condition
    assert out["conditions"] == [
        {"kind": "signal", "text": "today's close > average close of the previous 20 sessions", "line": 8}]


def test_mean_over_the_requested_window():
    out = explain_code('''
LOOKBACK = 20

def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=LOOKBACK + 1)
    volumes = d['volume']
    if len(volumes) < LOOKBACK + 1:
        return False
    avg_volume = sum(volumes[:-1]) / LOOKBACK
    if avg_volume <= 0:
        return False
    return volumes[-1] > 2 * avg_volume
''')
    assert out["summary"] == "signal when today's volume > 2 × average volume of the previous 20 sessions"
    assert [c["kind"] for c in out["conditions"]] == ["data_check", "data_check", "signal"]


def test_earnings():
    assert summary('''
SURPRISE_MIN = 5.0

def classify_symbol(symbol):
    reports = get_earnings_data(symbol, quarters=4)
    if not reports:
        return False
    surprise = reports[-1].get('surprise_pct')
    if surprise is None:
        return False
    return {'signal': surprise > SURPRISE_MIN, 'score': surprise}
''') == "signal when the latest earnings report's EPS surprise % > 5"


def test_several_ways_to_signal_and_a_predicate_helper():
    out = explain_code('''
WEEK = 5
LOOKBACK = 4 * WEEK

def is_up(a, b):
    if a > b:
        return True
    return False

def classify_symbol(symbol):
    d = get_price_data(symbol, days=LOOKBACK + 1)
    c = d['close']
    if len(c) < LOOKBACK + 1:
        return False
    if is_up(c[-1], c[-1 - LOOKBACK]):
        return {'signal': True, 'score': 1.0}
    elif c[-1] < min(d['low'][:-1]):
        return {'signal': True, 'score': -1.0}
    return {'signal': False, 'score': 0.0}
''')
    assert out["summary"] == ("signal when today's close > the close 20 sessions ago; or when today's close ≤ the "
                              "close 20 sessions ago and today's close < lowest low of the previous 20 sessions")
    assert [(p["name"], p["value"]) for p in out["parameters"]] == [("WEEK", 5), ("LOOKBACK", 20)]
    assert out["data"][0]["text"] == "daily bars of the symbol: the last 21 sessions"
    assert out["score"] == "1; −1"


def test_numpy_bands_and_imported_names():
    assert summary('''
import numpy as np
from statistics import pstdev
BAND = 2.0

def classify_symbol(symbol):
    closes = np.array(get_price_data(symbol, days=60)['close'], dtype=float)
    if len(closes) < 20:
        return False
    window = closes[-20:]
    upper = window.mean() + BAND * pstdev(window)
    return bool(closes[-1] > upper)
''') == ("signal when today's close > (average close of the last 20 sessions + 2 × standard deviation of close "
         "over the last 20 sessions)")


def test_helper_with_a_loop_is_named_not_guessed():
    out = explain_code('''
def score_of(closes):
    total = 0.0
    for i in range(1, len(closes)):
        total += abs(closes[i] - closes[i - 1])
    return total

def classify_symbol(symbol):
    closes = get_price_data(symbol, days=10)['close']
    choppiness = score_of(closes)
    return {'signal': choppiness > 5, 'score': choppiness}
''')
    assert out["summary"] == "signal when choppiness > 5, where choppiness = score_of(the last 10 closes)"


def test_data_calls_outside_classify_symbol_are_listed():
    out = explain_code('''
def classify_symbol(symbol):
    f = get_fundamental_data(symbol)
    return f.get('sector') in ('Technology', 'Healthcare')

def run_screening(universe, limit):
    picks = scan_universe({'min_price': 10}, limit=limit)
    return [{"symbol": s, "score": 1.0, "values": {}} for s in picks if s in universe]
''')
    assert out["summary"] == "signal when sector is one of ('Technology', 'Healthcare')"
    assert [(d["function"], d["text"]) for d in out["data"]] == [
        ("get_fundamental_data", "fundamentals of the symbol as of the evaluation date (sector)"),
        ("scan_universe", "symbols matching {'min_price': 10} (at most limit)")]


def test_constants_folding_and_branches_on_constants():
    out = explain_code('''
MODE = 'strict'
LEVEL = 0.05 if MODE == 'strict' else 0.1

def classify_symbol(symbol):
    closes = get_price_data(symbol, days=6)['close']
    if len(closes) < 6:
        return False
    if MODE == 'strict':
        limit = LEVEL
    else:
        limit = 1.0
    return closes[-1] / closes[-6] - 1 > limit
''')
    assert out["summary"] == "signal when today's close / the close 5 sessions ago − 1 > 0.05"
    assert out["parameters"][1] == {"name": "LEVEL", "value": 0.05, "line": 3}


def test_not_and_negation_are_pushed_into_comparisons():
    assert summary('''
def classify_symbol(symbol):
    d = get_price_data(symbol, days=2)
    if not (d['close'][-1] > d['open'][-1]):
        return False
    return not d['volume'][-1] <= d['volume'][-2]
''') == "signal when today's close > today's open and today's volume > yesterday's volume"


def test_never_signals_and_always_signals():
    assert summary("def classify_symbol(symbol):\n    return False\n") == "never signals: every path returns no signal"
    assert summary("def classify_symbol(symbol):\n    return {'signal': True, 'score': 1.0}\n") == \
        "signals for every symbol whose data checks pass"


def test_no_classify_symbol_and_syntax_errors():
    out = explain_code("X = 1\n")
    assert out["summary"] == "the code defines no classify_symbol(symbol) function, so it never signals"
    assert out["parameters"] == [{"name": "X", "value": 1, "line": 1}]
    bad = explain_code("def classify_symbol(symbol:\n")
    assert bad["summary"] == "the code does not parse ('(' was never closed, line 1)"
    assert bad["parameters"] == bad["data"] == bad["conditions"] == []


def test_parameters_are_json_values():
    out = explain_code("SYMBOLS = ('AAPL', 'MSFT')\nLEVELS = {1, 2}\nBIG = 10 ** 3\nNAN = float('nan')\n"
                       "def classify_symbol(symbol):\n    return symbol in SYMBOLS\n")
    assert out["parameters"] == [
        {"name": "SYMBOLS", "value": ["AAPL", "MSFT"], "line": 1}, {"name": "LEVELS", "value": [1, 2], "line": 2},
        {"name": "BIG", "value": 1000, "line": 3}, {"name": "NAN", "value": "nan", "line": 4}]
    assert out["summary"] == "signal when the symbol is one of SYMBOLS"
    json.dumps(out)


# --------------------------------------------------------------------------------------
# Robustness: anything parses into an answer, quickly, never an exception
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_gets_an_answer(path):
    started = time.monotonic()
    out = explain_code(path.read_text(encoding="utf-8"))
    assert time.monotonic() - started < 2.0
    assert set(out) == {"summary", "parameters", "data", "conditions", "score"}
    assert isinstance(out["summary"], str) and out["summary"]
    json.dumps(out)


@pytest.mark.parametrize("source", [
    # recursion, lambdas, while loops, classes, comprehensions, walrus, star-args
    ("def f(n):\n    return f(n - 1) + 1\n\ndef classify_symbol(symbol):\n    x = f(3)\n    g = lambda v: v * 2\n"
    "    i = 0\n    while i < 3:\n        i += 1\n    return x > g(i)\n"),
    ("class A:\n    def __init__(self):\n        self.v = 1\n\ndef classify_symbol(symbol, *rest, **kw):\n"
    "    a = A()\n    a.v += 1\n    if (n := len(rest)) > 2:\n        return {'signal': a.v > n}\n"
    "    return [x for x in rest]\n"),
    ("def classify_symbol(symbol):\n    try:\n        d = get_price_data(symbol)\n    except Exception:\n"
    "        return False\n    finally:\n        pass\n    for k, v in d.items():\n        if v:\n"
    "            return {'signal': k}\n    return {'score': 1}\n"),
    "def classify_symbol():\n    return 1\n",
    "classify_symbol = 3\n",
    "def classify_symbol(symbol):\n    return " + "(" * 60 + "symbol" + ")" * 60 + " == 'A'\n",
    ("def classify_symbol(symbol):\n    x = get_price_data(symbol, timeframe='5m', days='x')['close'][::2]\n"
    "    return x[len(x)] > x[100:][-3:][0] and x[len(x) + 5:] and x[-3:-1][5]\n"),
    "",
    "\x00",
])
def test_odd_but_valid_python_never_raises(source):
    out = explain_code(source)
    assert isinstance(out["summary"], str) and out["summary"]
    json.dumps(out)


def test_recursion_stays_a_call():
    out = explain_code("def f(n):\n    return f(n - 1) + 1\n\ndef classify_symbol(symbol):\n    x = f(3)\n"
                       "    return x > 2\n")
    assert out["summary"] == "signal when x > 2, where x = f(3)"


def test_pathological_sizes_are_bounded():
    branches = "".join(f"    if symbol == 'S{i}':\n        return True\n" for i in range(500))
    started = time.monotonic()
    out = explain_code(f"def classify_symbol(symbol):\n{branches}    return False\n")
    assert out["summary"].startswith("signal when the symbol is 'S0'; or when the symbol is not 'S0' and the symbol "
                                     "is 'S1'; or when")
    assert out["summary"].endswith("; or in 488 more ways")
    growth = "".join(f"    if symbol > 'S{i}':\n        x = x + {i}\n" for i in range(300))
    out = explain_code(f"def classify_symbol(symbol):\n    x = 0\n{growth}    return x > 5\n")
    assert out["summary"] == "signal when x > 5, where x is set differently on different branches (line 595)"
    assert time.monotonic() - started < 5.0


def test_falls_back_to_the_codes_own_conditions(monkeypatch):
    monkeypatch.setattr(explain_module, "_MAX_STEPS", 5)
    out = explain_code(BRIEF)
    assert out["summary"] == ("the code is too complex to simplify; the signal is gap > GAP_MIN and rel_volume > "
                              "VOLUME_MULTIPLE")
    assert {"kind": "filter", "text": "len(closes) < 21", "line": 9} in out["conditions"]
    assert out["data"][0]["function"] == "get_price_data"
    assert [p["name"] for p in out["parameters"]] == ["GAP_MIN", "VOLUME_MULTIPLE"]
