"""Gap-up on volume (21 bars): the open gapped more than 3% above the previous close and
today's volume is more than 1.5x the mean volume of the previous 20 sessions."""
# ruff: noqa: F821 - the data functions (and math) are provided by the engine

GAP_MIN = 0.03
VOLUME_MULTIPLE = 1.5
BARS = 21


def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=BARS)
    closes, opens, volumes = d['close'], d['open'], d['volume']
    if len(closes) < BARS:
        return False
    prev_close = closes[-2]
    avg_volume = sum(volumes[:-1]) / (BARS - 1)
    if prev_close <= 0 or avg_volume <= 0:
        return False
    gap = opens[-1] / prev_close - 1.0
    rel_volume = volumes[-1] / avg_volume
    return {"signal": gap > GAP_MIN and rel_volume > VOLUME_MULTIPLE, "score": gap * 100.0,
            "relative_volume": rel_volume}
