# technique: assign a module-level '__builtins__' / '_getattr_' to replace the guards
# expect: underscore names cannot be bound
__builtins__ = {"open": None}
_getattr_ = getattr


def classify_symbol(symbol):
    return {"signal": True, "leak": str(get_price_data.__globals__)[:190]}
