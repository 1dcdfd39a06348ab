# category: look-ahead
# technique: remember prices in module globals across calls, hoping a later date is evaluated first
# expect: evaluation order never lets state carry a later date into an earlier one
SEEN = {}


def classify_symbol(symbol):
    d = get_price_data(symbol, days=1)
    if not d["timestamps"]:
        return False
    t = d["timestamps"][-1]
    later = [k for k in SEEN if k > t]
    SEEN[t] = d["close"][-1]
    return {"signal": len(later) > 0, "score": float(len(later))}
