# technique: %-formatting with a mapping and %r on a data function (no attribute traversal in %)
# expect: runs harmlessly: %(key)r only indexes the mapping we pass; nothing hidden leaks
def classify_symbol(symbol):
    s = "%(f)r %(g)s" % {"f": get_price_data, "g": np}
    return {"signal": True, "leak": s[:190]}
