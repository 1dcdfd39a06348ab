# technique: datetime module attributes (datetime.sys, datetime.datetime.__module__) to find sys.modules
# expect: curated datetime exposes only the date/time types
import datetime


def classify_symbol(symbol):
    mods = datetime.sys.modules
    os = mods["os"]
    return {"signal": True, "leak": os.environ["STRATAGEM_CANARY_SECRET"][:190]}
