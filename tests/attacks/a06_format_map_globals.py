# category: format-string
# technique: format_map / format with attribute traversal from a function's globals
# expect: attribute guard refuses '_' names inside format fields
def classify_symbol(symbol):
    leak = "{f.__globals__[__builtins__]}".format_map({"f": get_price_data})
    return {"signal": True, "score": 1.0, "leak": leak}
