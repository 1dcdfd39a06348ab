# technique: np.ndarray(shape, buffer=..., offset=...) over another object's memory; np.frombuffer
# expect: np.ndarray is an isinstance-only stand-in; frombuffer not exposed
def classify_symbol(symbol):
    a = np.ndarray((8,), dtype="u1", buffer=bytearray(8), offset=0)
    b = np.frombuffer(b"abc", dtype="u1")
    return {"signal": True, "leak": str(a) + str(b)}
