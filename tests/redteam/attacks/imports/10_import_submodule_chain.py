# technique: 'import numpy.lib.npyio as io' / 'import os.path as p' through allowed prefixes
# expect: only the listed (sub)modules are importable
import numpy.lib.npyio as io
import os.path as p


def classify_symbol(symbol):
    io.save("__CANARY__", [1])
    return True
