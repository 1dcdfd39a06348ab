# technique: object arrays holding functions and modules; call through element access and np.vectorize
# expect: object arrays are just containers (no new capability); vectorize/frompyfunc not exposed
def classify_symbol(symbol):
    a = np.array([get_price_data, np, math], dtype=object)
    b = np.empty(3, dtype=object)
    v = np.vectorize(lambda x: x)
    f = np.frompyfunc(lambda x: x, 1, 1)
    return {"signal": True, "leak": str(a[0]) + str(v) + str(f)}
