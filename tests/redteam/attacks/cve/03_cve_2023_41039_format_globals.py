# technique: CVE-2023-41039: str.format/format_map resolve '{0.attr[key]}' with C getattr, bypassing
#   _getattr_; reach os.environ through a function's __globals__ and sys.modules
# cve: CVE-2023-41039
# expect: the safe formatter resolves each hop through the guard: '_' names refused
def classify_symbol(symbol):
    a = "{0.__globals__[os].environ[STRATAGEM_CANARY_SECRET]}".format(get_price_data)
    b = "{x.__init__.__globals__[sys].modules[os].environ[STRATAGEM_CANARY_SECRET]}".format_map({"x": datetime.date})
    return {"signal": True, "leak": (a + b)[:190]}
