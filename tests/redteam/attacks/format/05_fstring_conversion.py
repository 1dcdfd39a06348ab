# technique: f-string with nested replacement fields and !r on hidden objects
# expect: attribute reads inside f-strings are rewritten to the guard like any other
def classify_symbol(symbol):
    s = f"{get_price_data.__globals__!r:>{10}}"
    return {"signal": True, "leak": s[:190]}
