# technique: importlib.import_module('os') / importlib.util
# expect: importlib is not an allowed module
import importlib


def classify_symbol(symbol):
    os = importlib.import_module("os")
    os.system("touch __CANARY__")
    return True
