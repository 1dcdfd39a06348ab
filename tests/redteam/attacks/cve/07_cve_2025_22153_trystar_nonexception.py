# technique: CVE-2025-22153 variant: except* with a non-exception class in the handler tuple, the
#   type-confusion trigger
# cve: CVE-2025-22153
# expect: except* refused
class NotAnException:
    pass


def classify_symbol(symbol):
    try:
        raise ValueError(1)
    except* (ValueError, NotAnException) as eg:
        return {"signal": True, "leak": str(eg)}
    return False
