# technique: np.memmap of the secret file (read) or the canary (w+)
# expect: memmap not in curated numpy
def classify_symbol(symbol):
    m = np.memmap("__SECRET_FILE__", dtype="u1", mode="r")
    w = np.memmap("__CANARY__", dtype="u1", mode="w+", shape=(1,))
    return {"signal": True, "leak": bytes(m).decode()[:190]}
