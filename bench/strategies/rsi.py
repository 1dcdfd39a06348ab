"""Oversold (100 bars): RSI(14) below 30, Wilder's smoothing run over the last 100 sessions."""
# ruff: noqa: F821 - the data functions (and math) are provided by the engine

PERIOD = 14
THRESHOLD = 30.0
BARS = 100


def classify_symbol(symbol):
    closes = get_price_data(symbol, timeframe='1d', days=BARS)['close']
    if len(closes) < BARS:
        return False
    gains, losses = 0.0, 0.0
    for i in range(1, PERIOD + 1):
        change = closes[i] - closes[i - 1]
        if change > 0:
            gains += change
        else:
            losses -= change
    avg_gain, avg_loss = gains / PERIOD, losses / PERIOD
    for i in range(PERIOD + 1, BARS):
        change = closes[i] - closes[i - 1]
        avg_gain = (avg_gain * (PERIOD - 1) + max(change, 0.0)) / PERIOD
        avg_loss = (avg_loss * (PERIOD - 1) + max(-change, 0.0)) / PERIOD
    rsi = 100.0 if avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return {"signal": rsi < THRESHOLD, "score": THRESHOLD - rsi}
