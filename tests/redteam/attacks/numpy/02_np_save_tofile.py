# technique: np.save / np.savetxt / arr.tofile / arr.dump to write the canary
# expect: no file functions in curated numpy; tofile/dump not on the allow-list; no file writes (rlimit fsize=0, seccomp)
def classify_symbol(symbol):
    a = np.arange(3)
    for f in (lambda: np.save("__CANARY__", a), lambda: np.savetxt("__CANARY__", a), lambda: a.tofile("__CANARY__"),
              lambda: a.dump("__CANARY__")):
        try:
            f()
        except Exception:
            pass
    return True
