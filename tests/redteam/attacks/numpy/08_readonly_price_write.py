# technique: write into the read-only price series (memoryview, np.asarray view, setflags)
# expect: writes refused (guard / read-only buffer); later evaluations see unchanged data
def classify_symbol(symbol):
    d = get_price_data(symbol, days=5)
    errs = []
    for f in (lambda: np.asarray(d["close"]).setflags(write=True),
              lambda: np.asarray(d["close"]).fill(0.0)):
        try:
            f()
        except Exception as e:
            errs.append(str(type(e)))
    a = np.asarray(d["close"])
    try:
        a[0] = -1.0
    except Exception as e:
        errs.append(str(type(e)))
    return {"signal": True, "score": float(d["close"][0]), "leak": " ".join(errs)}
