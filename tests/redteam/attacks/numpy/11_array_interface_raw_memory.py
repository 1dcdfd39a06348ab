# technique: a class with __array_interface__ = {'data': (address, False), ...} makes numpy read
#   arbitrary memory (and with False read-only flag, write it)
# expect: underscore class attributes refused at every layer
class Raw:
    __array_interface__ = {"shape": (64,), "typestr": "|u1", "data": (4096, False), "version": 3}


def classify_symbol(symbol):
    a = np.asarray(Raw())
    a[0] = 1
    return {"signal": True, "leak": str(a.tolist())[:190]}
