# technique: run_screening returns an enormous result (millions of entries / long strings)
# expect: the size budget refuses it: a clean error, no giant JSON
def run_screening(universe, limit):
    return [{"symbol": universe[0], "score": float(i), "values": {"s": "y" * 999}} for i in range(300000)]


def classify_symbol(symbol):
    return True
