# technique: relative import into the engine package and a star import to pull underscore names
# expect: relative and star imports refused
from . import service
from math import *


def classify_symbol(symbol):
    return {"signal": True, "leak": str(service)[:190]}
