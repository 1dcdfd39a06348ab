# technique: Cyrillic homoglyphs (о, е, а) in 'ореn' / 'еxес' to look like allowed names in review
# expect: they are different names (not normalised): undefined, a clean NameError
def classify_symbol(symbol):
    ореn("__CANARY__", "w")
    return True
