"""Value (the seed's example): P/E below 15 and market capitalisation above $1B.

Uses get_fundamental_data(); in the bundled dataset fundamentals are ILLUSTRATIVE DEMO DATA,
and every result built on them is labelled so.
"""

MAX_PE = 15.0
MIN_MARKET_CAP = 1e9


def classify_symbol(symbol):
    f = get_fundamental_data(symbol)
    pe, cap = f.get('pe_ratio'), f.get('market_cap')
    if pe is None or cap is None:
        return False
    return {"signal": 0 < pe < MAX_PE and cap > MIN_MARKET_CAP, "score": MAX_PE - pe,
            "pe_ratio": pe, "market_cap_bn": cap / 1e9}
