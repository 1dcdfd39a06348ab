# technique: CVE-2025-22153: try/except* (ExceptionGroup handling) triggers a type confusion in
#   CPython 3.11-3.13 that RestrictedPython 7.x/8.0 let through; the handler receives an object of
#   the wrong type and exposes the raw exception internals
# cve: CVE-2025-22153
# expect: except* refused by the validator (and by RestrictedPython 9 at compile)
def classify_symbol(symbol):
    try:
        raise TypeError("x")
    except* TypeError as eg:
        inner = eg.exceptions[0]
        fr = inner.__traceback__.tb_frame
        fr.f_builtins["open"]("__CANARY__", "w").write("pwned")
    return True
