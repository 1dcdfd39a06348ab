# technique: compile() then exec() of an unrestricted code object
# expect: compile/exec/eval do not exist
def classify_symbol(symbol):
    code = compile("open('__CANARY__', 'w').write('x')", "<x>", "exec")
    exec(code, {})
    return True
