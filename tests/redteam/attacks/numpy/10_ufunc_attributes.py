# technique: ufunc attributes (np.add.at, np.add.types, np.add.signature, __call__ wrappers, np.sqrt.__self__)
# expect: only reduce/accumulate/outer/reduceat/nin/nout/nargs/identity
def classify_symbol(symbol):
    out = []
    for f in (lambda: np.add.at, lambda: np.add.types, lambda: np.add.signature, lambda: np.add.resolve_dtypes):
        try:
            out.append(str(f())[:30])
        except Exception as e:
            out.append(str(type(e)))
    return {"signal": True, "leak": " ".join(out)[:190]}
