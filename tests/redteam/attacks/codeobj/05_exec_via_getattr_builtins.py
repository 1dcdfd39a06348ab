# technique: getattr(builtins-like objects, 'exec') where the objects are reachable values
# expect: nothing reachable has an exec attribute; validator refuses the name 'builtins'
def classify_symbol(symbol):
    for o in (np, math, statistics, datetime, classify_symbol, get_price_data):
        if hasattr(o, "exec"):
            getattr(o, "exec")("open('__CANARY__','w')")
    b = builtins
    return True
