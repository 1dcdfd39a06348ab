# technique: mutate the containers data functions return (dicts, lists of dicts) hoping they are cached
#   and served to later calls or strategies
# expect: every call returns fresh containers over read-only series; the next call is clean
# state: true
def classify_symbol(symbol):
    d = get_price_data(symbol, days=5)
    d["close"] = [0.0] * 5
    f = get_fundamental_data(symbol)
    f["pe_ratio"] = -1
    for row in get_earnings_data(symbol):
        row["eps_actual"] = 999
    s = get_sector_data("Technology", 2)
    s.clear()
    again = get_price_data(symbol, days=5)
    return {"signal": True, "score": float(again["close"][-1]), "pe": get_fundamental_data(symbol).get("pe_ratio")}
