# technique: arr.base / arr.data / memoryview.obj to reach the engine's mapped data and write to it
# expect: base/data/obj not on the allow-lists; data is read-only
def classify_symbol(symbol):
    d = get_price_data(symbol, days=5)
    c = d["close"]
    out = []
    for f in (lambda: c.obj, lambda: np.asarray(c).base, lambda: np.asarray(c).data, lambda: c.cast("B")):
        try:
            out.append(str(f())[:40])
        except Exception as e:
            out.append(str(type(e)))
    return {"signal": True, "leak": " ".join(out)[:190]}
