# technique: print() output collector name 'printed' and _print_ to smuggle data or objects
# expect: 'printed' is reserved; print writes nowhere visible
def classify_symbol(symbol):
    print("leak", get_price_data)
    return {"signal": True, "leak": str(printed)[:190]}
