# technique: (harness-expanded) a strategy that is mostly a giant literal to stress the parser/validator
# expect: refused: larger than the source or node limits
# expand: 250000
X = [0]


def classify_symbol(symbol):
    return True
