# technique: run_screening returns deep nesting, huge lists, objects, non-str keys, NaN and forged symbols
# expect: the engine accepts plain data within limits only, forged symbols are rejected
def run_screening(universe, limit):
    deep = []
    cur = deep
    for i in range(200):
        nxt = []
        cur.append(nxt)
        cur = nxt
    return {"ranked_results": [{"symbol": "EVIL", "score": float("nan"), "values": {1: get_price_data}},
                               {"symbol": universe[0], "score": 1.0, "values": {"deep": deep}}]}


def classify_symbol(symbol):
    return True
