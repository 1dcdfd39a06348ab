# technique: np.load / np.loadtxt / np.fromfile / np.genfromtxt to read the secret file
# expect: absent from curated numpy; open() is denied by seccomp anyway
def classify_symbol(symbol):
    got = []
    for f in (lambda: np.loadtxt("__SECRET_FILE__", dtype=str), lambda: np.fromfile("__SECRET_FILE__", dtype="u1"),
              lambda: np.genfromtxt("__SECRET_FILE__"), lambda: np.load("__SECRET_FILE__", allow_pickle=True)):
        try:
            got.append(str(f()))
        except Exception as e:
            got.append(str(type(e)))
    return {"signal": True, "leak": " ".join(got)[:190]}
