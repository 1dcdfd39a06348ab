# technique: the builtin format(obj, spec) and format spec mini-language on hidden objects
# expect: a format spec cannot traverse attributes; errors are per call
def classify_symbol(symbol):
    s = format(get_price_data, "") + format(np, "")
    return {"signal": True, "leak": s[:190]}
