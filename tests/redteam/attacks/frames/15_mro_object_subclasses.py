# technique: type(1).mro()[-1] is object; walk its subclasses without any underscore in the source
# expect: 'mro' is a forbidden attribute; object has no public subclasses accessor
def classify_symbol(symbol):
    base = type(1).mro()[-1]
    subs = getattr(base, "mro")
    return {"signal": True, "leak": str(subs)[:190]}
