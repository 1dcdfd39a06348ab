# technique: rebind the guard hooks (_getattr_, _write_, _getiter_) or the builtins dict
# expect: underscore names cannot be bound or read
# state: true
_write_ = lambda o: o
_getattr_ = lambda o, n: 1


def classify_symbol(symbol):
    return True
