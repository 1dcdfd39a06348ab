"""Momentum (21 bars): the close rose more than 10% over the last 20 sessions."""
# ruff: noqa: F821 - the data functions (and math) are provided by the engine

THRESHOLD = 0.10
BARS = 21


def classify_symbol(symbol):
    closes = get_price_data(symbol, timeframe='1d', days=BARS)['close']
    if len(closes) < BARS or closes[0] <= 0:
        return False
    change = closes[-1] / closes[0] - 1.0
    return {"signal": change > THRESHOLD, "score": change * 100.0}
