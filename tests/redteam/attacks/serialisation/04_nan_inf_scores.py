# technique: NaN/inf/-inf/huge ints as score and values (invalid JSON if passed through)
# expect: null in the JSON output, the document stays valid JSON
def classify_symbol(symbol):
    return {"signal": True, "score": float("nan"), "a": float("inf"), "b": -float("inf"), "c": 10 ** 400,
            "d": np.float64("nan"), "e": np.array([1.0]), "f": [float("nan")]}
