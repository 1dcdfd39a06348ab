# technique: nested comprehensions building billions of elements (range(10**5) x range(10**5))
# expect: memory limit or call time limit, per call
def classify_symbol(symbol):
    grid = [[i * j for j in range(10 ** 5)] for i in range(10 ** 5)]
    return {"signal": True, "score": float(len(grid))}
