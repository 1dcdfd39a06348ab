# technique: a str subclass whose format is the real str.format (subclass lookup bypass)
# expect: attribute lookup on a str instance always returns the safe formatter
class S(str):
    pass


def classify_symbol(symbol):
    t = S("{0.__globals__}")
    s = t.format(get_price_data)
    return {"signal": True, "leak": s[:190]}
