# technique: getattr with a constant name to dodge the attribute-node check
# expect: validator refuses getattr of a forbidden attribute; guard refuses at run time
def classify_symbol(symbol):
    g = (x for x in [1])
    fr = getattr(g, "gi_frame")
    return {"signal": True, "leak": str(getattr(fr, "f_globals"))[:190]}
