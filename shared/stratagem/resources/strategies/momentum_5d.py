"""Momentum (the seed's example): 5-session return above 5% with above-average volume.

Signal when close[-1]/close[-6] - 1 > 5% and today's volume exceeds the 30-session mean.
Score: the 5-session return in percent.
"""

import numpy as np

MIN_RETURN = 0.05
LOOKBACK = 5
VOLUME_WINDOW = 30


def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=VOLUME_WINDOW)
    closes, volumes = d['close'], d['volume']
    if len(closes) < LOOKBACK + 1:
        return False
    ret = closes[-1] / closes[-1 - LOOKBACK] - 1.0
    avg_volume = float(np.mean(volumes))
    return {"signal": ret > MIN_RETURN and volumes[-1] > avg_volume, "score": ret * 100.0,
            "return_5d_pct": ret * 100.0, "volume_vs_avg": volumes[-1] / avg_volume}
