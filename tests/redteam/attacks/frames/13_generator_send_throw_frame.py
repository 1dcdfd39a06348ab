# technique: drive a genexpr with throw() and read frame-ish attributes gi_code / gi_yieldfrom / gi_running
# expect: gi_* frame and code attributes forbidden (validator and guard)
def classify_symbol(symbol):
    g = (x * 2 for x in [1, 2, 3])
    next(g)
    code = g.gi_code
    yf = g.gi_yieldfrom
    return {"signal": True, "leak": str(code.co_consts)[:190] + str(yf)}
