# technique: type(name, bases, dict) to create a class with a forbidden method (e.g. __getattr__)
# expect: type() takes exactly one argument in a strategy
def classify_symbol(symbol):
    K = type("K", (object,), {"__getattribute__": lambda s, n: n})
    return {"signal": True, "leak": str(K)[:190]}
