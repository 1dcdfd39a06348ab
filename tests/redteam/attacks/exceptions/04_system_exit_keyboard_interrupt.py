# technique: raise SystemExit / KeyboardInterrupt / GeneratorExit to kill the worker or the engine
# expect: names not available; an exception reaching the worker is a per-call error
def classify_symbol(symbol):
    if symbol == "AAPL":
        raise SystemExit(0)
    raise KeyboardInterrupt()
