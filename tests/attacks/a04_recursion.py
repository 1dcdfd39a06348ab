# category: resource-exhaustion
# technique: unbounded recursion
# expect: a RecursionError reported as the strategy's error; the engine carries on
def down(n):
    return down(n + 1) + 1


def classify_symbol(symbol):
    return down(0) > 0
