# technique: pow(3, 10**9): one C-level bignum operation that never returns to the interpreter,
#   so no Python signal handler can stop it
# expect: the engine's wall-clock watchdog kills the worker; the call reports a time limit; other calls go on
def classify_symbol(symbol):
    if symbol == "AAPL":
        return {"signal": True, "score": float(pow(3, 10 ** 9) % 7)}
    return True
