"""The offline generator: what it understands (parsed spec), what it refuses, and that the code
it emits validates, runs on every bundled symbol and agrees with the team's reference strategies.

* ``CASES``: prompt -> expected spec (conditions with and/or/not, tickers, sectors, ranking); every
  case's code must pass the sandbox policy and run without error on every bundled symbol on days
  that include FB before its listing and on its first day (empty / one-bar histories).
* ``REFUSALS``: requests that cannot be expressed with daily bars and the data API.
* ``test_sample_prompt_matches_reference``: every sample prompt in tests/samples/prompts.jsonl gives
  the same signal as its reference strategy on every (symbol, session) of 2011-01-01..2013-03-01.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from stratagem.data.pit import PointInTime
from stratagem.data.reference import ReferenceData
from stratagem.data.store import iso_to_day
from stratagem.generation.base import GeneratedStrategy, GenerationRefused
from stratagem.generation.offline import (
    AllOf,
    AnyOf,
    Condition,
    Not,
    OfflineGenerator,
    Ranking,
)
from stratagem.sandbox.policy import check
from stratagem.sandbox.runtime import LoadedStrategy, sanitize_result

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
GEN = OfflineGenerator()

# sessions exercising short histories: the first days of the data, FB before its listing and on
# its first session, a split window (AAPL 2005-02-28) and the last day of the data
SMOKE_DAYS = ("2000-01-04", "2000-02-15", "2005-03-01", "2012-05-17", "2012-05-18", "2012-05-21", "2013-03-01")


def c(kind: str, op: str | None = None, threshold: float | None = None, **params) -> Condition:
    return Condition(kind, params, op, threshold)


def both(*items):
    return AllOf(tuple(items))


def either(*items):
    return AnyOf(tuple(items))


GOLDEN = c("ma_cross", fast=50, slow=200, ma="sma", direction="up")
RSI_OVERSOLD = c("rsi", "<", 30.0, period=14)
HIGH_VOLUME = c("relative_volume", ">", 1.5, lookback=20)

# (prompt, expected expr, expected extras: tickers / sectors / ranking)
CASES: list[tuple[str, object, dict]] = [
    # gaps
    ("Find stocks that gap up by more than 3% with high volume", both(c("gap", ">", 3.0), HIGH_VOLUME), {}),
    ("Alert me when AAPL gaps up by 4%", c("gap", ">=", 4.0), {"tickers": ("AAPL",)}),
    ("gap down more than 5%", c("gap", "<", -5.0), {}),
    ("stocks gapping up at least 2 percent", c("gap", ">=", 2.0), {}),
    ("a 3% gap up on heavy volume", both(c("gap", ">=", 3.0), HIGH_VOLUME), {}),
    ("gap up", c("gap", ">=", 2.0), {}),
    ("gapped down three percent or more", c("gap", "<=", -3.0), {}),
    ("gaps above yesterday's high", c("gap", ">", 0.0, ref="high"), {}),
    ("opens 2% higher than the previous close", c("gap", ">=", 2.0), {}),
    # returns and momentum
    ("stocks up more than 10% over the past month", c("return", ">", 10.0, lookback=21), {}),
    ("down 5% today", c("return", "<=", -5.0, lookback=1), {}),
    ("fell more than 10% over the past week", c("return", "<", -10.0, lookback=5), {}),
    ("up three percent in ten days", c("return", ">=", 3.0, lookback=10), {}),
    ("20-day momentum above 5%", c("return", ">", 5.0, lookback=20), {}),
    ("positive 3-month momentum", c("return", ">", 0.0, lookback=63), {}),
    ("10% gain over the past quarter", c("return", ">=", 10.0, lookback=63), {}),
    ("stocks that rose 15% or more in the last 2 months", c("return", ">=", 15.0, lookback=42), {}),
    ("Alert me when TSLA drops 5% in a day", c("return", "<=", -5.0, lookback=1), {"tickers": ("TSLA",)}),
    ("$NVDA up 10% this month", c("return", ">=", 10.0, lookback=21), {"tickers": ("NVDA",)}),
    ("stocks that are up on the day with volume above average",
     both(c("return", ">", 0.0, lookback=1), c("relative_volume", ">", 1.0, lookback=20)), {}),
    ("up more than 50% over the past year", c("return", ">", 50.0, lookback=252), {}),
    # price level
    ("price above $50", c("price", ">", 50.0), {}),
    ("stocks under $10", c("price", "<", 10.0), {}),
    ("price between $10 and $50", both(c("price", ">=", 10.0), c("price", "<=", 50.0)), {}),
    # moving averages
    ("golden cross (50 day crossing above the 200 day)", GOLDEN, {}),
    ("golden cross", GOLDEN, {}),
    ("death cross", c("ma_cross", fast=50, slow=200, ma="sma", direction="down"), {}),
    ("the 10-day EMA crosses above the 30-day EMA", c("ma_cross", fast=10, slow=30, ma="ema", direction="up"), {}),
    ("the 20 EMA crossing below the 50 EMA", c("ma_cross", fast=20, slow=50, ma="ema", direction="down"), {}),
    ("price crosses above its 50-day moving average", c("ma_cross", fast=1, slow=50, ma="sma", direction="up"), {}),
    ("above its 200-day moving average", c("ma_distance", ">", 0.0, period=200, ma="sma"), {}),
    ("trading below the 50 SMA", c("ma_distance", "<", 0.0, period=50, ma="sma"), {}),
    ("stocks above the 200 day", c("ma_distance", ">", 0.0, period=200, ma="sma"), {}),
    ("more than 10% below its 200-day moving average", c("ma_distance", "<", -10.0, period=200, ma="sma"), {}),
    ("50-day moving average above the 200-day moving average", c("ma_spread", ">", 0.0, fast=50, slow=200, ma="sma"), {}),
    ("MACD crosses above signal line",
     c("macd_cross", fast=12, slow=26, signal=9, direction="up", line="signal"), {}),
    ("bullish MACD crossover", c("macd_cross", fast=12, slow=26, signal=9, direction="up", line="signal"), {}),
    ("MACD above zero", c("macd", ">", 0.0, fast=12, slow=26, signal=9, line="macd"), {}),
    # RSI
    ("RSI(2) below 10", c("rsi", "<", 10.0, period=2), {}),
    ("RSI below 30", RSI_OVERSOLD, {}),
    ("14-day RSI under 25", c("rsi", "<", 25.0, period=14), {}),
    ("RSI 2 under 5", c("rsi", "<", 5.0, period=2), {}),
    ("oversold", RSI_OVERSOLD, {}),
    ("overbought", c("rsi", ">", 70.0, period=14), {}),
    ("RSI crosses above 30", c("rsi_cross", period=14, direction="up", level=30.0), {}),
    ("RSI between 40 and 60", both(c("rsi", ">=", 40.0, period=14), c("rsi", "<=", 60.0, period=14)), {}),
    ("Identify oversold technology stocks with RSI below 30", RSI_OVERSOLD, {"sectors": ("Technology",)}),
    # Bollinger
    ("closes below the lower bollinger band", c("bollinger", period=20, width=2.0, band="lower", mode="close"), {}),
    ("closes above the upper bollinger band", c("bollinger", period=20, width=2.0, band="upper", mode="close"), {}),
    ("touches the lower Bollinger Band", c("bollinger", period=20, width=2.0, band="lower", mode="touch"), {}),
    ("close below the lower bollinger band (20, 2.5)",
     c("bollinger", period=20, width=2.5, band="lower", mode="close"), {}),
    # volume
    ("volume spike: today's volume at least 3x the 50-day average", c("relative_volume", ">=", 3.0, lookback=50), {}),
    ("volume 3x the 50-day average", c("relative_volume", ">=", 3.0, lookback=50), {}),
    ("2x average volume", c("relative_volume", ">=", 2.0, lookback=20), {}),
    ("twice the average volume", c("relative_volume", ">=", 2.0, lookback=20), {}),
    ("1.5 times the average volume", c("relative_volume", ">=", 1.5, lookback=20), {}),
    ("relative volume above 2", c("relative_volume", ">", 2.0, lookback=20), {}),
    ("volume spike", c("relative_volume", ">=", 2.0, lookback=20), {}),
    ("unusual volume", c("relative_volume", ">=", 2.0, lookback=20), {}),
    ("low volume", c("relative_volume", "<", 0.75, lookback=20), {}),
    ("average volume above 1 million shares", c("volume", ">", 1e6, lookback=20), {}),
    # new highs / lows / breakouts
    ("new 52-week high", c("new_extreme", lookback=252, side="high", price="high"), {}),
    ("new 20-day low", c("new_extreme", lookback=20, side="low", price="low"), {}),
    ("closes at a new 52-week high", c("new_extreme", lookback=252, side="high", price="close"), {}),
    ("all-time high", c("new_extreme", lookback=None, side="high", price="high"), {}),
    ("making new highs", c("new_extreme", lookback=252, side="high", price="high"), {}),
    ("within 3% of its 52-week high", c("extreme_distance", ">=", -3.0, lookback=252, side="high"), {}),
    ("near its 52 week high", c("extreme_distance", ">=", -5.0, lookback=252, side="high"), {}),
    ("more than 20% below its 52-week high", c("extreme_distance", "<", -20.0, lookback=252, side="high"), {}),
    ("breaks out above the 20-day high", c("breakout", lookback=20, side="high"), {}),
    ("drops below its 20-day low", c("breakout", lookback=20, side="low"), {}),
    ("breakout", c("breakout", lookback=20, side="high"), {}),
    # candlesticks
    ("Inside day", c("candle", pattern="inside_day"), {}),
    ("outside day", c("candle", pattern="outside_day"), {}),
    ("bullish engulfing", c("candle", pattern="bullish_engulfing"), {}),
    ("bearish engulfing pattern", c("candle", pattern="bearish_engulfing"), {}),
    ("hammer candle", c("candle", pattern="hammer"), {}),
    ("shooting star", c("candle", pattern="shooting_star"), {}),
    ("doji", c("candle", pattern="doji"), {}),
    ("NR7", c("candle", pattern="narrow_range", lookback=7), {}),
    ("green candle on high volume", both(c("body", ">", 0.0), HIGH_VOLUME), {}),
    # ATR, range, volatility
    ("ATR(14) above 5% of price", c("atr_pct", ">", 5.0, period=14), {}),
    ("10-day ATR above 3%", c("atr_pct", ">", 3.0, period=10), {}),
    ("ATR above $2", c("atr", ">", 2.0, period=14), {}),
    ("daily range more than 2x average range", c("range_ratio", ">", 2.0, lookback=20), {}),
    ("range expansion", c("range_ratio", ">=", 2.0, lookback=20), {}),
    ("intraday range above 3%", c("range_pct", ">", 3.0), {}),
    ("low volatility", c("volatility", "<", 20.0, lookback=20, annualized=True), {}),
    ("20-day volatility above 50%", c("volatility", ">", 50.0, lookback=20, annualized=True), {}),
    # streaks
    ("up 5 days in a row", c("streak", ">=", 5.0, direction="up"), {}),
    ("3 consecutive down days", c("streak", ">=", 3.0, direction="down"), {}),
    ("closed higher for four straight days", c("streak", ">=", 4.0, direction="up"), {}),
    # mean reversion
    ("more than 2 standard deviations below its 20-day mean", c("zscore", "<", -2.0, lookback=20), {}),
    ("z-score below -2", c("zscore", "<", -2.0, lookback=20), {}),
    ("oversold stocks 2 std below 20-day mean", c("zscore", "<=", -2.0, lookback=20), {}),
    # relative strength
    ("outperforming MSFT over the last 3 months", c("relative_strength", ">", 0.0, benchmark="MSFT", lookback=63), {}),
    ("underperforming SPY by 5% over the past month",
     c("relative_strength", "<=", -5.0, benchmark="SPY", lookback=21), {}),
    ("relative strength vs QQQ positive over 6 months",
     c("relative_strength", ">", 0.0, benchmark="QQQ", lookback=126), {}),
    ("stocks beating the market over the past year",
     c("relative_strength", ">", 0.0, benchmark="SPY", lookback=252), {}),
    # fundamentals
    ("P/E under 15 and market cap over $1B",
     both(c("fundamental", "<", 15.0, field="pe_ratio"), c("fundamental", ">", 1e9, field="market_cap")), {}),
    ("P/E below 20", c("fundamental", "<", 20.0, field="pe_ratio"), {}),
    ("EPS above 2", c("fundamental", ">", 2.0, field="eps"), {}),
    ("market cap over 500M", c("fundamental", ">", 5e8, field="market_cap"), {}),
    ("market cap above 2 trillion", c("fundamental", ">", 2e12, field="market_cap"), {}),
    ("market cap of at least 1.5 billion dollars", c("fundamental", ">=", 1.5e9, field="market_cap"), {}),
    ("debt to equity below 0.5", c("fundamental", "<", 0.5, field="debt_to_equity"), {}),
    ("large cap", c("fundamental", ">=", 1e10, field="market_cap"), {}),
    ("mid-cap stocks", both(c("fundamental", ">=", 2e9, field="market_cap"), c("fundamental", "<", 1e10, field="market_cap")),
     {}),
    ("profitable tech stocks", c("fundamental", ">", 0.0, field="eps"), {"sectors": ("Technology",)}),
    # earnings
    ("beat earnings estimates by 10%", c("earnings_surprise", ">=", 10.0), {}),
    ("missed earnings", c("earnings_surprise", "<", 0.0), {}),
    ("positive earnings surprise", c("earnings_surprise", ">", 0.0), {}),
    ("earnings surprise above 5%", c("earnings_surprise", ">", 5.0), {}),
    # sectors
    ("tech stocks with RSI below 30", RSI_OVERSOLD, {"sectors": ("Technology",)}),
    ("healthcare stocks up 5% this week", c("return", ">=", 5.0, lookback=5), {"sectors": ("Healthcare",)}),
    ("tech or healthcare stocks with RSI below 30", RSI_OVERSOLD, {"sectors": ("Technology", "Healthcare")}),
    # rankings
    ("top 10 by 20-day momentum", None, {"ranking": Ranking("return", {"lookback": 20}, True, 10)}),
    ("top 5 stocks with the highest RSI", None, {"ranking": Ranking("rsi", {"period": 14}, True, 5)}),
    ("rank by market cap", None, {"ranking": Ranking("fundamental", {"field": "market_cap"}, True, None)}),
    ("the 5 biggest gainers today", None, {"ranking": Ranking("return", {"lookback": 1}, True, 5)}),
    ("top 10 losers over the past week", None, {"ranking": Ranking("return", {"lookback": 5}, False, 10)}),
    ("10 most oversold stocks", None, {"ranking": Ranking("rsi", {"period": 14}, False, 10)}),
    ("top 10 tech stocks by 1-month return that are above their 200-day moving average",
     c("ma_distance", ">", 0.0, period=200, ma="sma"),
     {"sectors": ("Technology",), "ranking": Ranking("return", {"lookback": 21}, True, 10)}),
    # and / or / not
    ("RSI below 30 and not below the lower bollinger band",
     both(RSI_OVERSOLD, Not(c("bollinger", period=20, width=2.0, band="lower", mode="close"))), {}),
    ("gap up or volume spike", either(c("gap", ">=", 2.0), c("relative_volume", ">=", 2.0, lookback=20)), {}),
    ("golden cross but not overbought", both(GOLDEN, Not(c("rsi", ">", 70.0, period=14))), {}),
    ("RSI below 30, price above 200-day SMA or volume 3x average",
     either(RSI_OVERSOLD, c("ma_distance", ">", 0.0, period=200, ma="sma"), c("relative_volume", ">=", 3.0, lookback=20)),
     {}),
    ("stocks with RSI below 30 without a gap down", both(RSI_OVERSOLD, Not(c("gap", "<=", -2.0))), {}),
    ("inside day and RSI(2) below 10 or new 20-day low",
     either(both(c("candle", pattern="inside_day"), c("rsi", "<", 10.0, period=2)),
            c("new_extreme", lookback=20, side="low", price="low")), {}),
    ("stocks up more than five percent today on twice the normal volume",
     both(c("return", ">", 5.0, lookback=1), c("relative_volume", ">=", 2.0, lookback=20)), {}),
    ("stocks whose 50 day SMA is above the 200 day SMA and RSI(14) above 50",
     both(c("ma_spread", ">", 0.0, fast=50, slow=200, ma="sma"), c("rsi", ">", 50.0, period=14)), {}),
    ("gap up 3% and close above the open", both(c("gap", ">=", 3.0), c("body", ">", 0.0)), {}),
    ("AAPL or MSFT golden cross", GOLDEN, {"tickers": ("AAPL", "MSFT")}),
    ("FIND STOCKS WITH RSI BELOW 30", RSI_OVERSOLD, {}),
]

REFUSALS = [
    ("make me rich", "prediction"),
    ("stocks that will go up", "prediction"),
    ("predict tomorrow's price for AAPL", "prediction"),
    ("the best stocks to buy now", "prediction"),
    ("5-minute chart breakout", "intraday"),
    ("hourly RSI below 30", "intraday"),
    ("pre-market gap up above 3%", "intraday"),
    ("stocks crossing above VWAP", "intraday"),
    ("stocks with unusual options activity", "options"),
    ("buy when implied volatility spikes", "options"),
    ("high open interest in calls and puts", "options"),
    ("stocks trending on twitter", "social"),
    ("positive news sentiment", "news"),
    ("insider buying this week", "insider"),
    ("level 2 order book imbalance", "order-book"),
    ("widening bid-ask spread", "order-book"),
    ("bitcoin above 50k", "crypto"),
    ("EUR/USD breakout", "forex"),
    ("dividend yield above 4%", "data field"),
    ("short interest above 20%", "data field"),
    ("weekly RSI below 30", "daily bars"),
    ("find good stocks", "no condition"),
    ("hello", "no condition"),
    ("tech stocks", "no condition"),
    ("", "empty"),
]


@pytest.fixture(scope="module")
def pit(market):
    return PointInTime(market, ReferenceData.load_default())


def _run_days(source: str, pit: PointInTime, days: list[int], symbols: list[str]) -> dict[tuple[str, int], bool]:
    strategy = LoadedStrategy(source, pit.functions())
    out = {}
    for day in days:
        pit.set_asof(day)
        for sym in symbols:
            signal, score, _ = sanitize_result(strategy.classify(sym))
            assert score is None or math.isfinite(score)
            out[(sym, day)] = signal
    return out


def _expected_spec(expected_expr, extra):
    return (expected_expr, tuple(extra.get("tickers", ())), tuple(extra.get("sectors", ())), extra.get("ranking"))


@pytest.mark.parametrize("prompt,expr,extra", CASES, ids=[p[:60] for p, _, _ in CASES])
def test_parse_generate_validate_and_run(prompt, expr, extra, pit, market):
    spec = GEN.parse(prompt)
    assert (spec.expr, spec.tickers, spec.sectors, spec.ranking) == _expected_spec(expr, extra), spec
    assert spec.ignored == (), f"words not understood: {spec.ignored}"
    strategy = GEN.generate(prompt)
    assert isinstance(strategy, GeneratedStrategy) and strategy.generator == "offline"
    assert check(strategy.code) == [], strategy.code
    # every parameter is an UPPER_CASE module constant of the code, with a meaning
    for p in strategy.parameters:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", p.name) and p.meaning
        assert re.search(rf"^{p.name} = ", strategy.code, re.MULTILINE), p.name
    assert re.fullmatch(r"[a-z0-9_]{3,60}", strategy.name)
    assert strategy.description.endswith(".") and strategy.explanation
    assert 'Prompt: "' in strategy.code
    days = [iso_to_day(d) for d in SMOKE_DAYS]
    _run_days(strategy.code, pit, days, market.symbols)


def test_case_table_is_broad():
    assert len(CASES) >= 80
    kinds = {leaf.kind for p, _, _ in CASES for leaf in GEN.parse(p).conditions()}
    assert kinds >= {"gap", "return", "price", "ma_cross", "ma_distance", "ma_spread", "rsi", "rsi_cross", "bollinger",
                     "relative_volume", "volume", "new_extreme", "breakout", "extreme_distance", "candle", "atr_pct",
                     "atr", "range_ratio", "range_pct", "volatility", "streak", "zscore", "relative_strength",
                     "fundamental", "earnings_surprise", "macd", "macd_cross", "body"}


@pytest.mark.parametrize("prompt,topic", REFUSALS, ids=[p[:40] or "empty" for p, _ in REFUSALS])
def test_refusals_say_why_and_what_is_possible(prompt, topic):
    with pytest.raises(GenerationRefused) as info:
        GEN.generate(prompt)
    msg = str(info.value)
    assert "daily" in msg and "RSI" in msg and "ranking" in msg  # the capability list
    words = {"prediction": "prediction", "intraday": "intraday", "options": "options", "social": "social media",
             "news": "news", "insider": "insider", "order-book": "order-book", "crypto": "crypto",
             "forex": "forex", "data field": "data field", "daily bars": "daily bars", "no condition": "no condition",
             "empty": "empty"}
    assert words[topic] in msg
    assert GenerationRefused.exit_code == 1


def test_refusal_table_is_broad():
    assert len(REFUSALS) >= 15


def _samples():
    rows = [json.loads(line) for line in (SAMPLES / "prompts.jsonl").read_text().splitlines() if line.strip()]
    return rows


@pytest.mark.parametrize("row", [r for r in _samples() if r.get("expect") == "reject"], ids=lambda r: r["id"])
def test_sample_rejections(row):
    with pytest.raises(GenerationRefused):
        GEN.generate(row["prompt"])


@pytest.mark.parametrize("row", [r for r in _samples() if r.get("reference")], ids=lambda r: r["id"])
def test_sample_prompt_matches_reference(row, pit, market):
    """Same signal as the expert's reference on every (symbol, session), 2011-01-01..2013-03-01."""
    reference = (SAMPLES / row["reference"]).read_text()
    generated = GEN.generate(row["prompt"])
    assert check(generated.code) == []
    days = [int(d) for d in market.calendar() if iso_to_day("2011-01-01") <= d <= iso_to_day("2013-03-01")]
    want = _run_days(reference, pit, days, market.symbols)
    got = _run_days(generated.code, pit, days, market.symbols)
    diff = sorted(k for k in want if want[k] != got[k])
    assert not diff, f"{len(diff)} disagreements, first: {diff[:5]}"
    assert any(want.values()) or row["id"] in ()  # the comparison is not vacuous


# ---------------------------------------------------------------------------- behaviour
def test_ticker_restriction_only_that_symbol_signals(pit, market):
    code = GEN.generate("Alert me when AAPL gaps up by 1%").code
    days = [int(d) for d in market.calendar() if iso_to_day("2012-01-01") <= d <= iso_to_day("2012-12-31")]
    got = _run_days(code, pit, days, market.symbols)
    assert any(v for (s, _), v in got.items() if s == "AAPL")
    assert not any(v for (s, _), v in got.items() if s != "AAPL")


def test_sector_filter_uses_fundamental_sector(pit, market):
    code = GEN.generate("communication services stocks up 1% today").code
    days = [int(d) for d in market.calendar() if iso_to_day("2012-06-01") <= d <= iso_to_day("2013-03-01")]
    got = _run_days(code, pit, days, market.symbols)
    assert {s for (s, _), v in got.items() if v} <= {"GOOG", "FB"}
    assert any(got.values())


def test_fb_before_listing_is_false(pit):
    for prompt in ("golden cross", "RSI below 30", "inside day", "all-time high", "up 5 days in a row",
                   "P/E under 15", "outperforming MSFT over the last 3 months", "top 10 by 20-day momentum"):
        strategy = LoadedStrategy(GEN.generate(prompt).code, pit.functions())
        pit.set_asof(iso_to_day("2012-05-01"))
        assert sanitize_result(strategy.classify("FB"))[0] is False, prompt
        assert sanitize_result(strategy.classify("NOPE"))[0] is False, prompt


def test_ranking_signals_every_symbol_and_screens_top_n(pit, market):
    strategy = GEN.generate("top 3 by 20-day momentum")
    assert "def run_screening(universe, limit):" in strategy.code
    loaded = LoadedStrategy(strategy.code, pit.functions())
    pit.set_asof(iso_to_day("2012-09-04"))
    rows = loaded.entry("run_screening")(market.symbols, 10)
    assert len(rows) == 3
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert {"symbol", "score", "values"} <= set(rows[0])
    assert loaded.entry("run_screening")(market.symbols, 2)[:2] == rows[:2]
    assert len(loaded.entry("run_screening")(market.symbols, 2)) == 2
    for sym in market.symbols:  # every listed symbol signals; the score is the 20-day return in %
        signal, score, values = sanitize_result(loaded.classify(sym))
        assert signal and score == values["return_20d_pct"]
    ascending = LoadedStrategy(GEN.generate("10 most oversold stocks").code, pit.functions())
    pit.set_asof(iso_to_day("2012-09-04"))
    signal, score, values = sanitize_result(ascending.classify("AAPL"))
    assert signal and score == -values["rsi"]


def test_score_is_the_main_measure(pit):
    pit.set_asof(iso_to_day("2012-06-01"))
    gap = LoadedStrategy(GEN.generate("gap down 0.1%").code, pit.functions())
    _, score, values = sanitize_result(gap.classify("AAPL"))
    assert score == -values["gap_pct"]
    rsi = LoadedStrategy(GEN.generate("RSI below 90").code, pit.functions())
    signal, score, values = sanitize_result(rsi.classify("AAPL"))
    assert signal and score == pytest.approx(90.0 - values["rsi"])


def test_deterministic_and_readable():
    a, b = GEN.generate("Find stocks that gap up by more than 3% with high volume"), \
        GEN.generate("Find stocks that gap up by more than 3% with high volume")
    assert a == b
    code = a.code
    assert code.startswith('"""') and "Interpretation" in code and "default: 'high volume'" in code
    assert "GAP_PCT_MIN = 3.0" in code and "RELATIVE_VOLUME_MIN = 1.5" in code and "VOLUME_LOOKBACK = 20" in code
    assert "signal = gap_up and high_volume" in code
    assert {p.name: p.value for p in a.parameters}["GAP_PCT_MIN"] == 3.0
    assert "1.5x" in a.explanation and "20" in a.explanation


def test_ignored_words_are_reported():
    spec = GEN.parse("Acme gaps up")
    assert spec.ignored == ("acme",)
    strategy = GEN.generate("Acme gaps up")
    assert "acme" in strategy.explanation and "not understood" in strategy.code


def test_prompt_is_quoted_safely_in_the_docstring():
    strategy = GEN.generate('gap up 3% """; import os \\ "quoted"')
    assert check(strategy.code) == []
