# technique: np.ctypeslib / arr.ctypes.data to get raw pointers
# expect: not in the curated numpy; .ctypes not on the ndarray allow-list
def classify_symbol(symbol):
    a = np.zeros(4)
    p = a.ctypes.data
    lib = np.ctypeslib.load_library("libc", "/lib")
    return {"signal": True, "leak": str(p) + str(lib)}
