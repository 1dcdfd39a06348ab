# technique: ExceptionGroup and except* (CVE-2025-22153's construct)
# expect: except* refused by the validator and by RestrictedPython; ExceptionGroup not a builtin
def classify_symbol(symbol):
    try:
        raise ExceptionGroup("g", [ValueError(1)])
    except* ValueError as eg:
        return {"signal": True, "leak": str(eg.exceptions)}
    return False
