# technique: the attribute spelled with a fullwidth low line (＿ U+FF3F) which NFKC maps to '_'
# expect: normalised to '__class__' and refused
def classify_symbol(symbol):
    return {"signal": True, "leak": str(().＿＿class＿＿)[:190]}
