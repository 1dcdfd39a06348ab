# technique: plain 'import os' and read the environment / write a file
# expect: import refused by the validator and by the guarded __import__
import os


def classify_symbol(symbol):
    open("__CANARY__", "w").write(os.environ.get("STRATAGEM_CANARY_SECRET", ""))
    return True
