# technique: a strategy exception class whose attributes hold engine objects; engine formats it
# expect: only str(exc) (bounded) is reported; attributes never cross
class Leak(Exception):
    pass


def classify_symbol(symbol):
    e = Leak("boom")
    e.payload = get_price_data
    e.more = [np, math]
    raise e
