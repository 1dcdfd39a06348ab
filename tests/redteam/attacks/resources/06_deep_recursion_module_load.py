# technique: unbounded recursion while loading the module and in a call
# expect: RecursionError as a clean error; the worker does not crash the engine
def f(n):
    return f(n + 1) + 1


def classify_symbol(symbol):
    return f(0) > 0
