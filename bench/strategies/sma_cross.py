"""Golden cross (201 bars): the 50-session SMA crossed above the 200-session SMA today."""
# ruff: noqa: F821 - the data functions (and math) are provided by the engine

FAST = 50
SLOW = 200
BARS = SLOW + 1


def classify_symbol(symbol):
    closes = get_price_data(symbol, timeframe='1d', days=BARS)['close']
    if len(closes) < BARS:
        return False
    fast_now = sum(closes[BARS - FAST:]) / FAST
    slow_now = sum(closes[1:]) / SLOW
    fast_prev = sum(closes[BARS - FAST - 1:BARS - 1]) / FAST
    slow_prev = sum(closes[:SLOW]) / SLOW
    crossed = fast_now > slow_now and fast_prev <= slow_prev
    return {"signal": crossed, "score": (fast_now / slow_now - 1.0) * 100.0}
