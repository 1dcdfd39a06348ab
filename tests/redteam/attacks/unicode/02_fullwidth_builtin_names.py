# technique: fullwidth spellings of forbidden builtins: ｅｘｅｃ, ｅｖａｌ, ｏｐｅｎ
# expect: normalised to exec/eval/open and refused
def classify_symbol(symbol):
    ｏｐｅｎ("__CANARY__", "w").write("x")
    return ｅｖａｌ("1")
