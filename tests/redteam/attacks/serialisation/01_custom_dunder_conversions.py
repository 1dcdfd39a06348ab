# technique: return an object whose __bool__/__float__/__str__/__hash__/__eq__ run code when the
#   engine converts or serialises it
# expect: such dunder methods cannot be defined; returning an instance is a clean per-call error
class Evil:
    def __bool__(self):
        return open("__CANARY__", "w")

    def __float__(self):
        return 1.0

    def __str__(self):
        return "x"

    def __hash__(self):
        return 1


def classify_symbol(symbol):
    return {"signal": Evil(), "score": Evil(), "v": Evil()}
