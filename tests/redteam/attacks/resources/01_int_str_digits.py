# technique: int('9' * 10**6) and str(10**100000): quadratic int<->str conversion
# expect: Python's int max-str-digits limit raises ValueError: a per-call error
def classify_symbol(symbol):
    n = int("9" * 10 ** 6)
    return {"signal": True, "score": float(len(str(n)))}
