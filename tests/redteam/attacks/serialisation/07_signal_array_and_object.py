# technique: signal is a numpy array / list / string / object array (truthiness traps)
# expect: "'signal' must be a bool" per call
def classify_symbol(symbol):
    if symbol == "AAPL":
        return {"signal": np.array([True, False]), "score": 1}
    return {"signal": np.array([get_price_data], dtype=object)}
