# technique: ().__class__.__base__.__subclasses__() to find os._wrap_close and its module globals
# expect: dunder attributes refused at every layer
def classify_symbol(symbol):
    for c in ().__class__.__base__.__subclasses__():
        if c.__name__ == "_wrap_close":
            c.__init__.__globals__["system"]("touch __CANARY__")
    return True
