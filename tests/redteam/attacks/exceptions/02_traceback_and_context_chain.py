# technique: __traceback__, __context__, __cause__ chains to reach frames of engine code
# expect: dunder attributes refused
def classify_symbol(symbol):
    try:
        get_price_data(symbol, timeframe="bad")
    except Exception as e:
        c = e.__context__ or e.__cause__
        tb = e.__traceback__
        return {"signal": True, "leak": str(tb.tb_frame.f_globals)[:190]}
    return False
