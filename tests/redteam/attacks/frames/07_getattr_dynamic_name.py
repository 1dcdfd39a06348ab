# technique: getattr with a name assembled at run time ('gi_' + 'frame', '_' * 2 + 'globals' ...)
# expect: validator refuses dynamic getattr; the runtime guard refuses '_' and frame names
def classify_symbol(symbol):
    u = "_" * 2
    g = (x for x in [1])
    fr = getattr(g, "gi_" + "frame")
    glb = getattr(get_price_data, u + "globals" + u)
    return {"signal": True, "leak": str(fr)[:90] + str(glb)[:90]}
