# technique: zero-width characters inside attribute names built at run time and inside identifiers
# expect: a zero-width char in an identifier is a syntax error; at run time the name does not match
def classify_symbol(symbol):
    name = "__glo\u200bbals__"
    return {"signal": True, "leak": str(getattr(get_price_data, name))[:190]}
