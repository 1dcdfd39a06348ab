"""52-week high (252 bars): today's close is above every high of the previous 251 sessions."""
# ruff: noqa: F821 - the data functions (and math) are provided by the engine

BARS = 252


def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=BARS)
    highs, closes = d['high'], d['close']
    if len(closes) < BARS:
        return False
    prior_high = max(highs[:-1])
    return {"signal": closes[-1] > prior_high, "score": (closes[-1] / prior_high - 1.0) * 100.0}
