# technique: math.factorial(10**7) / math.comb: long C-level computations in the math module
# expect: stopped by the wall-clock watchdog (worker killed) or the CPU limit
def classify_symbol(symbol):
    if symbol == "MSFT":
        return {"signal": True, "score": float(math.factorial(10 ** 7) % 11)}
    return False
