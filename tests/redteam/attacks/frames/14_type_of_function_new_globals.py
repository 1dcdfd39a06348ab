# technique: type(f) is FunctionType: build a function with the data function's code and our globals
# expect: needs __code__ (refused); type() of the function type is refused
def classify_symbol(symbol):
    FT = type(get_price_data)
    f2 = FT(get_price_data.__code__, {"__builtins__": None})
    return {"signal": True, "leak": str(f2)[:190]}
