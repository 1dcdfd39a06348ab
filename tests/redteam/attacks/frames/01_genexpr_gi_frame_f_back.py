# technique: a generator expression's gi_frame, then f_back to the caller's frame and its builtins
# expect: validator rejects gi_frame/f_back; at run time the guard refuses them
def classify_symbol(symbol):
    g = (x for x in [1, 2])
    fr = g.gi_frame.f_back
    fr.f_builtins["open"]("__CANARY__", "w").write("x")
    return {"signal": True, "leak": str(fr.f_globals)[:190]}
