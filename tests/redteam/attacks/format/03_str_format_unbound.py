# technique: str.format called unbound (str.format(template, obj)) to dodge an instance-only check
# expect: unbound str.format is also the safe formatter
def classify_symbol(symbol):
    f = str.format
    s = f("{0.__globals__}", get_price_data)
    return {"signal": True, "leak": s[:190]}
