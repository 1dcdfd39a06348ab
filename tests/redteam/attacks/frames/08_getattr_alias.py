# technique: alias getattr to another name, then call it with a dynamic name
# expect: getattr may only be called directly with a constant name
def classify_symbol(symbol):
    ga = getattr
    name = "".join(["_", "_", "globals", "_", "_"])
    return {"signal": True, "leak": str(ga(get_price_data, name))[:190]}
