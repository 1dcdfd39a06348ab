# technique: numpy scalar/flatiter attributes (np.float64(1).data, .base, a.flat.base, a.flat.coords)
# expect: allow-lists on scalars; no attributes on flat iterators
def classify_symbol(symbol):
    out = []
    for f in (lambda: np.float64(1).data, lambda: np.float64(1).base, lambda: np.arange(3).flat,
              lambda: np.arange(3).flat.base, lambda: np.arange(3).view):
        try:
            out.append(str(f())[:20])
        except Exception as e:
            out.append(str(type(e)))
    return {"signal": True, "leak": " ".join(out)[:190]}
