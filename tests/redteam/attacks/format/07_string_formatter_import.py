# technique: import string and use string.Formatter().get_field (CVE-2023-41039 / CVE-2024-47532)
# expect: the string module is not importable
import string


def classify_symbol(symbol):
    f = string.Formatter()
    obj, _ = f.get_field("0.__globals__", [get_price_data], {})
    return {"signal": True, "leak": str(obj)[:190]}
