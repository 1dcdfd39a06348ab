# technique: type(SomeClass) hands out the metaclass, which builds classes around the validator
# expect: type() of a class is refused
class A:
    pass


def classify_symbol(symbol):
    M = type(A)
    B = M("B", (), {"__getattr__": lambda s, n: n})
    return {"signal": True, "leak": str(B)[:190]}
