# technique: vars()/dir()/globals()/locals() to list and reach hidden names (_getattr_, __builtins__)
# expect: these names do not exist in the sandbox
def classify_symbol(symbol):
    g = globals()
    g["_getattr_"] = lambda o, n: o
    return {"signal": True, "leak": str(vars())[:100] + str(dir())[:90]}
