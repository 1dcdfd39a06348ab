# technique: CVE-2023-37271 variant without the attribute syntax: getattr(gen, 'gi_frame') and
#   getattr(frame, 'f_back') where names are constants that do not start with '_'
# cve: CVE-2023-37271
# expect: the names are on the forbidden list in the validator and the runtime guard
def classify_symbol(symbol):
    q = (getattr(getattr(q, "gi_frame"), "f_back") for _ in [1])
    fr = list(q)[0]
    return {"signal": True, "leak": str(getattr(fr, "f_globals"))[:190]}
