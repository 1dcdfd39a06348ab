# technique: exec/eval/compile/open/breakpoint/input by name
# expect: these names do not exist (validator); absent from builtins (runtime)
def classify_symbol(symbol):
    exec("import os; os.system('touch __CANARY__')")
    return eval("1")
