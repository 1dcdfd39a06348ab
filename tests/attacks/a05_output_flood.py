# category: output-flood
# technique: return megabytes of text in values and print a lot
# expect: values truncated, output bounded, one JSON document
def classify_symbol(symbol):
    big = "A" * (5 * 1024 * 1024)
    vals = {"signal": True, "score": 1.0}
    for i in range(200):
        vals["k" + str(i)] = big
    return vals
