# technique: reach os through numpy's module attributes (np.os, np.sys, np.lib.format.os)
# expect: curated numpy has none of them
import numpy


def classify_symbol(symbol):
    leak = []
    for f in (lambda: numpy.os, lambda: numpy.sys, lambda: numpy.lib, lambda: numpy.ctypeslib, lambda: numpy.testing,
              lambda: numpy.f2py, lambda: numpy.distutils, lambda: numpy.core, lambda: numpy.compat):
        try:
            leak.append(str(f().environ))
        except Exception as e:
            leak.append(str(type(e)))
    return {"signal": True, "leak": " ".join(leak)[:190]}
