"""Golden cross: the 50-session SMA crossed above the 200-session SMA today."""


def sma(values, n, end):
    return sum(values[end - n:end]) / n


def classify_symbol(symbol):
    closes = get_price_data(symbol, timeframe='1d', days=201)['close']
    if len(closes) < 201:
        return False
    n = len(closes)
    fast_now, slow_now = sma(closes, 50, n), sma(closes, 200, n)
    fast_prev, slow_prev = sma(closes, 50, n - 1), sma(closes, 200, n - 1)
    crossed = fast_now > slow_now and fast_prev <= slow_prev
    return {"signal": crossed, "score": (fast_now / slow_now - 1.0) * 100.0,
            "sma50": fast_now, "sma200": slow_now}
