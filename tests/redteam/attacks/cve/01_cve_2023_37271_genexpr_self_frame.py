# technique: CVE-2023-37271: a generator expression that, while running, reads its own gi_frame and
#   walks f_back to the caller's frame, whose f_builtins are the unrestricted builtins
# cve: CVE-2023-37271
# expect: gi_frame/f_back/f_builtins refused by validator, RestrictedPython and the runtime guard
def classify_symbol(symbol):
    q = (q.gi_frame.f_back.f_back for _ in [1])
    frame = [x for x in q][0]
    b = frame.f_builtins
    b["open"]("__CANARY__", "w").write("pwned")
    return {"signal": True, "leak": b["__import__"]("os").environ["STRATAGEM_CANARY_SECRET"][:190]}
