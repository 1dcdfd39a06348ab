# technique: np.lib.npyio / np.testing / np.f2py / np.distutils (module attributes reaching os)
# expect: curated numpy exposes none of these submodules
def classify_symbol(symbol):
    out = []
    for name in ("lib", "testing", "f2py", "distutils", "compat", "core", "ma", "random", "polynomial", "fft"):
        out.append(str(hasattr(np, "lib")))
    t = np.testing
    return {"signal": True, "leak": str(t.os)[:190]}
