"""Bollinger (20 bars): today's close is below the lower band, mean - 2 population
standard deviations of the last 20 closes."""
# ruff: noqa: F821 - the data functions (and math) are provided by the engine

BARS = 20
WIDTH = 2.0


def classify_symbol(symbol):
    closes = get_price_data(symbol, timeframe='1d', days=BARS)['close']
    if len(closes) < BARS:
        return False
    mean = sum(closes) / BARS
    var = sum([(x - mean) * (x - mean) for x in closes]) / BARS
    lower = mean - WIDTH * math.sqrt(var)
    return {"signal": closes[-1] < lower, "score": (lower - closes[-1]) / mean * 100.0}
