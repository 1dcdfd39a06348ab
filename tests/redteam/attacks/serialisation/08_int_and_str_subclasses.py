# technique: int/str/float subclasses as signal, score and values (subclass methods run on conversion)
# expect: converted to plain bool/float/str; subclass identity does not cross the boundary
class I(int):
    def bit_length(self):
        return get_price_data


class S(str):
    def upper(self):
        return get_price_data


def classify_symbol(symbol):
    return {"signal": I(1), "score": I(7), "name": S("abc"), "n": I(3)}
