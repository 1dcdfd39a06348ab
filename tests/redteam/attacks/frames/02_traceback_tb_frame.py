# technique: catch an exception, walk __traceback__.tb_frame.f_back to the engine's globals
# expect: '__traceback__' rejected (underscore), tb_frame forbidden
def classify_symbol(symbol):
    try:
        1 / 0
    except ZeroDivisionError as e:
        f = e.__traceback__.tb_frame
        while f.f_back is not None:
            f = f.f_back
        f.f_globals["__builtins__"]["open"]("__CANARY__", "w").write("x")
    return True
