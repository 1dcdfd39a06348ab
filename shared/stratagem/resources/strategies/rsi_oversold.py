"""Oversold: RSI(14) below 30 (Wilder's smoothing over the last 100 sessions).

Score: how far below 30 the RSI is.
"""

PERIOD = 14
THRESHOLD = 30.0


def wilder_rsi(closes, period=PERIOD):
    if len(closes) < period + 1:
        return None
    gains, losses = 0.0, 0.0
    for i in range(1, period + 1):
        change = closes[i] - closes[i - 1]
        if change > 0:
            gains += change
        else:
            losses -= change
    avg_gain, avg_loss = gains / period, losses / period
    for i in range(period + 1, len(closes)):
        change = closes[i] - closes[i - 1]
        avg_gain = (avg_gain * (period - 1) + max(change, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + max(-change, 0.0)) / period
    if avg_loss == 0:
        return 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def classify_symbol(symbol):
    closes = get_price_data(symbol, timeframe='1d', days=100)['close']
    rsi = wilder_rsi(closes)
    if rsi is None:
        return False
    return {"signal": rsi < THRESHOLD, "score": THRESHOLD - rsi, "rsi": rsi}
