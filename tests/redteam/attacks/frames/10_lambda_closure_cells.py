# technique: lambda __closure__ cell_contents and __code__ to reach enclosing frames' objects
# expect: dunder attributes refused
def classify_symbol(symbol):
    x = get_price_data
    f = lambda: x
    cell = f.__closure__[0].cell_contents
    return {"signal": True, "leak": str(cell.__closure__)[:190]}
