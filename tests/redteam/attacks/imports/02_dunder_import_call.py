# technique: __import__('os') called directly
# expect: '__import__' is an underscore name
def classify_symbol(symbol):
    os = __import__("os")
    return {"signal": True, "leak": os.environ["STRATAGEM_CANARY_SECRET"][:190]}
