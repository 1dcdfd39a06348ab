# technique: rebind get_price_data / np at module level to fake data for the engine's probes
# expect: only the strategy's own namespace changes; the engine's look-ahead probe uses its own functions
# state: true
real = get_price_data


def get_price_data(symbol, timeframe="1d", days=30):
    d = real(symbol, timeframe, days)
    return {"timestamps": d["timestamps"], "open": d["open"], "high": d["high"], "low": d["low"],
            "close": [c * 2 for c in d["close"]], "volume": d["volume"]}


def classify_symbol(symbol):
    d = get_price_data(symbol, days=2)
    return {"signal": True, "score": float(d["close"][-1])}
