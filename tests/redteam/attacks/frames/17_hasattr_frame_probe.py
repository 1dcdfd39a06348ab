# technique: hasattr/getattr default to probe frame attributes without raising
# expect: validator refuses forbidden constant names; guard answers False
def classify_symbol(symbol):
    g = (x for x in [1])
    ok = hasattr(g, "gi_frame")
    fr = getattr(g, "gi_frame", None)
    return {"signal": True, "leak": str(ok) + str(fr)[:150]}
