# technique: typing generics forward attribute lookups to their origin; collections classes' module
#   attributes (typing.List.copy_with, collections.deque internals) to reach sys/os
# expect: nothing but harmless objects
import typing
import collections


def classify_symbol(symbol):
    out = []
    for f in (lambda: typing.sys, lambda: typing.List.copy_with(()), lambda: typing.Callable.copy_with,
              lambda: collections.deque.sys, lambda: typing.List.sys, lambda: typing.Optional.os):
        try:
            out.append(str(f())[:40])
        except Exception as e:
            out.append(str(type(e)))
    return {"signal": True, "leak": " ".join(out)[:190]}
