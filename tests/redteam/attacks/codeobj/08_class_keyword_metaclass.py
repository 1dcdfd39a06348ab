# technique: class with metaclass= keyword and __init_subclass__ / __set_name__ hooks
# expect: class keywords refused; dunder method definitions other than the allowed few refused
class Meta(type):
    def __call__(cls, *a):
        return cls


class K(metaclass=Meta):
    def __init_subclass__(cls):
        pass

    def __getattr__(self, name):
        return name


def classify_symbol(symbol):
    return True
