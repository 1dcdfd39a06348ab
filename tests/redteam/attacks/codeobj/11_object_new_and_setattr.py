# technique: object.__new__/object.__setattr__ on curated modules to replace functions
# expect: dunder attributes refused; setattr does not exist
def classify_symbol(symbol):
    setattr(np, "mean", lambda *a: 0)
    object.__setattr__(np, "mean", 0)
    return True
