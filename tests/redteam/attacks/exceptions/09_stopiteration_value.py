# technique: StopIteration.value and generator return values carrying objects through next()
# expect: harmless: values are the strategy's own objects
def classify_symbol(symbol):
    it = iter([])
    try:
        next(it)
    except StopIteration as e:
        return {"signal": True, "v": str(e.value), "a": str(e.args)}
    return False
