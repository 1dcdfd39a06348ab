# technique: getattr with a fullwidth string constant ('__ｇlobals__'): strings are NOT normalised,
#   so the attribute is simply missing; and '＿＿globals＿＿' with fullwidth low lines
# expect: refused (starts with '_' after validation of the constant) or a harmless AttributeError
def classify_symbol(symbol):
    out = []
    for f in (lambda: getattr(get_price_data, "＿＿globals＿＿"), lambda: getattr(np, "ｌｏａｄ")):
        try:
            out.append(str(f())[:50])
        except Exception as e:
            out.append(str(type(e)))
    return {"signal": True, "leak": " ".join(out)}
