# technique: __del__ that raises or writes when the engine drops the object (after the call's guards)
# expect: __del__ cannot be defined
class Bomb:
    def __del__(self):
        open("__CANARY__", "w").write("x")
        raise SystemExit(0)


def classify_symbol(symbol):
    b = Bomb()
    return {"signal": True, "b": b}
