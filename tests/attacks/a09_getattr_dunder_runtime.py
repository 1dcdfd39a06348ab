# category: getattr-computed
# technique: attribute names built at run time and passed through str.format / dict keys
# expect: the validator refuses dynamic getattr; the runtime getattr refuses '_' names anyway
def classify_symbol(symbol):
    name = "".join(["_", "_", "class", "_", "_"])
    return getattr(symbol, name)
