# category: dunder-traversal
# technique: reach object's subclasses without underscores: type(x).mro() then look for helpers
# expect: 'mro' refused; no class reachable gives builtins
def classify_symbol(symbol):
    for cls in type(1).mro():
        for sub in cls.subclasses():
            if sub.name == "Popen":
                sub(["sh", "-c", "echo x > __CANARY__"])
    return True
