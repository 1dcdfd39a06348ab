# technique: import types; types.CodeType(...) and types.FunctionType to run raw bytecode
# expect: types is not importable
import types


def classify_symbol(symbol):
    co = types.CodeType(0, 0, 0, 0, 0, 0, b"", (), (), (), "", "", "", 0, b"", b"", (), ())
    f = types.FunctionType(co, {})
    return f()
