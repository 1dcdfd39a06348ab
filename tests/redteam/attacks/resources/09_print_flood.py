# technique: print() in a loop to flood stdout/stderr of the engine
# expect: print output is collected inside the worker and never reaches the CLI's stdout
def classify_symbol(symbol):
    for i in range(200000):
        print("flood", i, "A" * 100)
    return True
