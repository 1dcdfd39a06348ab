# technique: fullwidth letters in a dunder name (NFKC-normalised by the parser): __ｇlobals__
# expect: the validator sees the normalised name '__globals__' and refuses it
def classify_symbol(symbol):
    return {"signal": True, "leak": str(get_price_data.__ｇｌｏｂａｌｓ__)[:190]}
