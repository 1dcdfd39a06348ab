# technique: property(get_price_data).fget then __globals__; reach the data layer's objects
# expect: fget is the function itself (harmless); its dunder attributes are refused
def classify_symbol(symbol):
    p = property(get_price_data)
    fn = p.fget
    return {"signal": True, "leak": str(fn.__globals__)[:190]}
