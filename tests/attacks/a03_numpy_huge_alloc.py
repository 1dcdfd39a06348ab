# category: resource-exhaustion
# technique: one giant numpy allocation (8 GB) and a pure-Python list bomb
# expect: memory limit error naming the limit
def classify_symbol(symbol):
    a = np.ones(10**9)
    return {"signal": True, "score": float(a.sum())}
