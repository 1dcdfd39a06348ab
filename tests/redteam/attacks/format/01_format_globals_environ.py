# technique: str.format field traversal '{0.__globals__[os].environ}' on a data function
# expect: the safe formatter resolves fields through the guard; '_' names refused
def classify_symbol(symbol):
    s = "{0.__globals__[os].environ[STRATAGEM_CANARY_SECRET]}".format(get_price_data)
    return {"signal": True, "leak": s[:190]}
