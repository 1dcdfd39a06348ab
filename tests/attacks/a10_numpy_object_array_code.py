# category: numpy-escape
# technique: np.frompyfunc / vectorize / object arrays reaching code, and numpy file helpers
# expect: none of these are in the curated numpy
def classify_symbol(symbol):
    out = []
    for name in ["frompyfunc", "vectorize", "fromfile", "memmap", "genfromtxt", "DataSource", "lib", "ctypeslib",
                 "testing", "f2py", "distutils", "show_config", "load", "save", "savetxt", "loadtxt", "tofile"]:
        try:
            getattr(np, "ones")
            out.append(name)
        except Exception:
            pass
    arr = np.array([1.0, 2.0])
    arr.tofile("__CANARY__")
    return True
