# technique: (harness-expanded) an expression nested thousands of levels deep to crash the parser
# expect: refused with a finding (too deeply nested), no crash
# nest: 5000
def classify_symbol(symbol):
    return True
