# technique: remember prices seen on later dates in module state and use them on earlier dates
#   (the engine evaluates symbol by symbol; a shared dict could carry the future back)
# expect: the module is re-run whenever the date goes backwards; no signal uses a future price
# state: true
# run: screen,backtest
# assert: no_signals
SEEN = {}


def classify_symbol(symbol):
    d = get_price_data(symbol, days=1)
    ts = d["timestamps"][-1]
    future = [v for (s, t), v in SEEN.items() if s == symbol and t > ts]
    SEEN[(symbol, ts)] = d["close"][-1]
    return {"signal": bool(future), "score": float(len(future))}
