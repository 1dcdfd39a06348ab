# technique: an infinite loop in the module body (runs at load time, before any call)
# expect: the load time limit stops it; the run fails with a clear message
x = 0
while True:
    x += 1


def classify_symbol(symbol):
    return True
