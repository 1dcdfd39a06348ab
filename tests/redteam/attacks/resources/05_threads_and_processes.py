# technique: start threads/processes (threading, multiprocessing, concurrent.futures, os.fork)
# expect: none importable; fork denied by seccomp and RLIMIT_NPROC regardless
import threading
import multiprocessing


def classify_symbol(symbol):
    t = threading.Thread(target=lambda: open("__CANARY__", "w"))
    t.start()
    return True
