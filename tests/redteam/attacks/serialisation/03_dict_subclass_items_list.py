# technique: dict subclass whose items() returns hostile pairs (non-str keys, nested objects, huge strings)
# expect: only str keys with finite numbers/bools/short strings survive
class D(dict):
    def items(self):
        return [(1, 2), ("ok", 1.5), ("big", "x" * 100000), ("fn", get_price_data), (("t",), 1),
                ("nan", float("nan")), ("inf", float("inf")), ("k" * 5000, 1)]


def classify_symbol(symbol):
    d = D()
    d["signal"] = True
    return d
