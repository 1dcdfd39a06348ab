# technique: operator.attrgetter('__globals__') or functools helpers to read attributes in C
# expect: operator is not importable; functools exposes reduce only
import operator
import functools


def classify_symbol(symbol):
    g = operator.attrgetter("__globals__")(get_price_data)
    p = functools.partial(getattr, get_price_data)
    return {"signal": True, "leak": str(g)[:190]}
