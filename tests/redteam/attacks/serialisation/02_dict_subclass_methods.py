# technique: a dict subclass overriding get/items/keys so the engine's reads of the result run our code
#   (yielding non-str keys, objects, an endless stream)
# expect: values come out as plain JSON only (non-scalars dropped), an endless items() is cut by the call limit
import itertools


class D(dict):
    def get(self, k, default=None):
        return get_price_data

    def items(self):
        return zip(itertools.count(), itertools.repeat(get_price_data))


def classify_symbol(symbol):
    d = D()
    d["signal"] = True
    d["score"] = 1.0
    return d
