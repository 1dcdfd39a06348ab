# category: state-tampering
# technique: overwrite shared module attributes and builtins so later strategies misbehave
# expect: writes to curated modules refused; a fresh worker per run anyway
def classify_symbol(symbol):
    n = 0
    for target in [np, math, statistics, datetime]:
        try:
            target.mean = None
            n = n + 1
        except Exception:
            pass
    try:
        np.linalg.norm = None
        n = n + 1
    except Exception:
        pass
    return {"signal": n > 0, "score": float(n)}
