# technique: reach BaseException through Exception's bases and raise a non-Exception to dodge handlers
# expect: '__bases__' / 'mro' refused; StopIteration is only an Exception
def classify_symbol(symbol):
    BE = Exception.__bases__[0]
    raise BE("escape")
