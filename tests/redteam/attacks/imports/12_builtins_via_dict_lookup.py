# technique: find 'open' by iterating the values reachable from the module (no names), e.g. through
#   the closure-free data functions and namespaces' attribute lists
# expect: the curated namespaces expose only numeric and data functions
def classify_symbol(symbol):
    found = []
    for mod in (np, math, datetime, statistics):
        for name in ("open", "system", "popen", "environ", "load", "save", "fromfile", "memmap", "ctypeslib"):
            if hasattr(mod, name):
                found.append(name)
    return {"signal": True, "leak": " ".join(found)[:190]}
