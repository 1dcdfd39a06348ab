# technique: CVE-2023-41039 via string.Formatter().vformat / get_field, the other format entry point
# cve: CVE-2023-41039
# expect: the string module is not importable; no Formatter reachable
from string import Formatter


def classify_symbol(symbol):
    obj = Formatter().get_field("0.__globals__", [get_price_data], {})[0]
    return {"signal": True, "leak": str(obj)[:190]}
