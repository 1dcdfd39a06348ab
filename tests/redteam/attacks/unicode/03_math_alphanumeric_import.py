# technique: mathematical alphanumeric symbols in an import: import 𝗈𝗌 (NFKC -> os)
# expect: normalised to 'os' and refused
import 𝗈𝗌


def classify_symbol(symbol):
    return {"signal": True, "leak": 𝗈𝗌.environ["STRATAGEM_CANARY_SECRET"][:190]}
