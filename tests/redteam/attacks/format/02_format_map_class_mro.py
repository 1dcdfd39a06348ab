# technique: format_map with '{x.__class__.__mro__[1].__subclasses__}'
# expect: guard refuses '_' names inside fields
def classify_symbol(symbol):
    s = "{x.__class__.__mro__[1]}".format_map({"x": 1})
    return {"signal": True, "leak": s[:190]}
