# technique: a method of the strategy's own class: __func__.__globals__['__builtins__']
# expect: dunder attributes refused
class Box:
    def m(self):
        return 1


def classify_symbol(symbol):
    b = Box()
    glb = b.m.__func__.__globals__
    glb["__builtins__"]["open"]("__CANARY__", "w")
    return True
