# technique: AttributeError.obj (3.10+) hands back the object whose lookup failed inside trusted code
#   (CVE-2024-47532 family): make a data function fail on an attribute of its own internals
# expect: 'obj' on exceptions refused by the guard (defence in depth); nothing internal leaks
class Odd:
    pass


def classify_symbol(symbol):
    out = []
    for f in (lambda: get_price_data(Odd()), lambda: scan_universe(Odd()), lambda: get_multiple_symbols_data(Odd()),
              lambda: np.nonexistent):
        try:
            f()
        except AttributeError as e:
            out.append(str(e.obj))
        except Exception as e:
            out.append(str(type(e)))
    return {"signal": True, "leak": " ".join(out)[:190]}
