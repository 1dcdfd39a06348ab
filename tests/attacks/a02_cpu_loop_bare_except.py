# category: resource-exhaustion
# technique: an infinite loop that swallows every exception with a bare except
# expect: the per-call time limit stops it (the worker kills itself after repeated stops)
def classify_symbol(symbol):
    n = 0
    while True:
        try:
            while True:
                n = n + 1
        except:
            pass
    return True
