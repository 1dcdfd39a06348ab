# technique: raise an exception whose args carry functions, modules and data objects out of the call
# expect: only a bounded message string crosses the boundary
def classify_symbol(symbol):
    raise ValueError(get_price_data, np, get_price_data(symbol, days=3), "z" * 100000)
