# technique: Trojan Source: bidi override characters make code read differently from how it runs
# expect: whatever it hides is still parsed and checked: the hidden import is refused
def classify_symbol(symbol):
    ok = True  # ‮ } ⁦import os⁩ ⁦ ‬
    access = "user"
    if access != "user‮ ⁦# admin⁩ ⁦":
        ok = False
    return ok
import os
