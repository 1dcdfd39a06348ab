# technique: 'global _getattr_' inside a function, then rebind the guard
# expect: underscore names refused in global statements too
def classify_symbol(symbol):
    global _getattr_
    _getattr_ = lambda o, n: object.__getattribute__(o, n)
    return {"signal": True, "leak": str(get_price_data.__globals__)[:190]}
