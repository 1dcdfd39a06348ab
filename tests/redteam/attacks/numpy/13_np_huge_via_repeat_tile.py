# technique: memory bombs through innocent-looking calls: np.tile/np.repeat/np.outer/np.ones((1e5,1e5))
# expect: memory rlimit -> a clean per-call 'memory limit' error, the run continues
def classify_symbol(symbol):
    a = np.ones(10**5)
    b = np.outer(a, a)
    return {"signal": True, "score": float(b.sum())}
