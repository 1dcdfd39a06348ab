# technique: gi_code of a generator expression and co_consts / replace
# expect: gi_code forbidden
def classify_symbol(symbol):
    g = (x for x in [1])
    c = g.gi_code
    return {"signal": True, "leak": str(c.replace)[:190]}
