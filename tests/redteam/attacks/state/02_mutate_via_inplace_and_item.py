# technique: augmented assignment and item assignment on shared objects (np.linalg.norm, datetime.date)
# expect: the write guard refuses non-strategy objects
# state: true
def classify_symbol(symbol):
    errs = []
    for f in (lambda: np.linalg.norm.reduce, lambda: datetime.date.today):
        try:
            f()
        except Exception as e:
            errs.append(str(type(e)))
    np.pi += 1
    datetime.date.resolution = 0
    return {"signal": True, "leak": " ".join(errs)}
