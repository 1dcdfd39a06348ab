# technique: dtype attributes (dtype.type, dtype.fields, dtype.base, np.dtype) and structured/void dtypes
# expect: only name/kind/char/itemsize on dtypes
def classify_symbol(symbol):
    a = np.zeros(2, dtype=float)
    t = a.dtype.type
    n = a.dtype.fields
    s = np.zeros(1, dtype=[("a", "O")])
    return {"signal": True, "leak": str(t) + str(n) + str(s)}
