# technique: hostile return values from run_batch_backtest / run_realtime_scan entry points
# expect: plain JSON only, within limits
def run_batch_backtest(start_date, end_date, symbols):
    return {get_price_data: 1, "x": [np.array([1, 2])]}


def run_realtime_scan(symbols):
    return [set([1, 2]), b"bytes", 1j]


def classify_symbol(symbol):
    return True
