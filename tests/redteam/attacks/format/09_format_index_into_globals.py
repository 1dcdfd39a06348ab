# technique: '{0[__builtins__]}' item access in format fields on a dict we can reach
# expect: only dicts we built are reachable; the field index reads our own dict
def classify_symbol(symbol):
    d = {"k": 1}
    s = "{0[k]} {1.real}".format(d, 3)
    t = "{0.gi_frame}".format((x for x in [1]))
    return {"signal": True, "leak": (s + t)[:190]}
