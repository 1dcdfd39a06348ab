# technique: math.__loader__ / np.__spec__.loader.load_module('os')
# expect: dunder attributes refused; curated modules are plain namespaces
def classify_symbol(symbol):
    ldr = math.__loader__
    os = ldr.load_module("os")
    return {"signal": True, "leak": os.environ["STRATAGEM_CANARY_SECRET"][:190]}
