# technique: set attributes on shared classes (int, dict, np.float64, collections.Counter) to poison them
# expect: the write guard refuses every class the strategy did not create
# state: true
import collections


def classify_symbol(symbol):
    errs = []
    for target in (int, dict, np.float64, collections.Counter, datetime.datetime):
        try:
            target.poisoned = True
        except Exception as e:
            errs.append(str(type(e)))
    return {"signal": True, "leak": " ".join(errs)}
