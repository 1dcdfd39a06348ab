# category: exception-frames
# technique: catch an exception and walk its traceback to a frame with real builtins
# expect: rejected at validation ('__traceback__', 'tb_frame', 'f_globals')
def classify_symbol(symbol):
    try:
        1 / 0
    except Exception as e:
        tb = e.__traceback__
        g = tb.tb_frame.f_back.f_globals
        g["__builtins__"]["open"]("__CANARY__", "w").write("x")
    return True
