# technique: CVE-2024-47532: AttributeError.obj carries the object whose lookup failed. A lookup that
#   fails inside trusted code (a data function, the guard, numpy) hands back an object the strategy
#   could not reach; also try the string module the advisory names
# cve: CVE-2024-47532
# expect: the guard refuses '.obj' on exceptions; nothing internal leaks
class Probe:
    pass


def classify_symbol(symbol):
    got = []
    for f in (lambda: get_price_data(symbol).nope, lambda: scan_universe(Probe()), lambda: np.linalg.missing,
              lambda: get_price_data(symbol)["close"].obj):
        try:
            f()
        except AttributeError as e:
            got.append(str(e.obj)[:60])
        except Exception as e:
            got.append(str(type(e)))
    return {"signal": True, "leak": " ".join(got)[:190]}
