# technique: replace np.mean / np.array / math.sqrt at module level so later strategies (or the engine)
#   compute wrong numbers
# expect: curated modules are read-only; each run gets its own namespaces in a fresh process anyway
# state: true
np.mean = lambda *a, **k: 0.0
math.sqrt = lambda x: 0.0


def classify_symbol(symbol):
    return True
