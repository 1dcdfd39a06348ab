# technique: FunctionType via type(lambda), CodeType via type(type(lambda).__code__)
# expect: no route to a code object; type() refuses metaclass results
def classify_symbol(symbol):
    FT = type(lambda: 0)
    CT = type(FT.__code__)
    return {"signal": True, "leak": str(CT)[:190]}
