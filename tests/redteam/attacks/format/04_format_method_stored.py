# technique: keep a reference to a template's bound format and call it later / via map
# expect: the reference is still the safe formatter (CVE-2024-56326-style indirect call)
def classify_symbol(symbol):
    fmt = "{0.__init__.__globals__}".format
    s = list(map(fmt, [get_price_data]))
    return {"signal": True, "leak": str(s)[:190]}
