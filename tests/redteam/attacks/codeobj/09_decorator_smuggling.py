# technique: decorators to run callables at definition time (staticmethod, classmethod, arbitrary)
# expect: decorators refused except @property in a class
def deco(f):
    return f


@deco
def classify_symbol(symbol):
    return True
