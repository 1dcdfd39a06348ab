# technique: 'x' * 10**10, bytes(10**10), [0] * 10**10
# expect: memory limit -> MemoryError -> a clean per-call 'memory limit' error
def classify_symbol(symbol):
    s = "x" * 10 ** 10
    return {"signal": True, "score": float(len(s))}
