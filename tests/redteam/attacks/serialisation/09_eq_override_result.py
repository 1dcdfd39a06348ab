# technique: a class defining __eq__ (allowed) returned as the result, so 'res is False' / '== False' lie
# expect: not a bool or dict: a clean per-call error
class Liar:
    def __eq__(self, other):
        return True


def classify_symbol(symbol):
    return Liar()
