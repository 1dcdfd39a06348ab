"""Momentum: 20-session return above 10%, ranked by that return."""

import numpy as np

LOOKBACK = 20
MIN_RETURN = 0.10


def classify_symbol(symbol):
    closes = np.array(get_price_data(symbol, timeframe='1d', days=LOOKBACK + 1)['close'], dtype=float)
    if len(closes) < LOOKBACK + 1:
        return False
    ret = closes[-1] / closes[0] - 1.0
    return {"signal": bool(ret > MIN_RETURN), "score": float(ret * 100.0), "return_pct": float(ret * 100.0)}
