# technique: a data function's __globals__ (the engine module) to reach os.environ
# expect: '__globals__' refused by validator, RestrictedPython and guard
def classify_symbol(symbol):
    g = get_price_data.__globals__
    env = g["os"].environ["STRATAGEM_CANARY_SECRET"] if "os" in g else str(g)
    return {"signal": True, "leak": env[:190]}
