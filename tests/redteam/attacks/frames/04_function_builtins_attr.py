# technique: functions carry __builtins__ (3.10+): the strategy's own function's builtins
# expect: underscore attribute refused
def classify_symbol(symbol):
    b = classify_symbol.__builtins__
    b["open"]("__CANARY__", "w").write("x")
    return True
