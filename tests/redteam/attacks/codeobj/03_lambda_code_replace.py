# technique: (lambda: 0).__code__.replace(co_code=...) and assign back to __code__
# expect: dunder attributes refused (read and write)
def classify_symbol(symbol):
    f = lambda: 0
    c = f.__code__
    f.__code__ = c.replace(co_names=("open",))
    return f()
