# technique: from numpy import ctypeslib, load, save, memmap, fromfile (names not in the curated list)
# expect: ImportError at load (the curated namespace has no such names)
from numpy import ctypeslib, load, memmap


def classify_symbol(symbol):
    memmap("__CANARY__", mode="w+", shape=(4,))
    return True
