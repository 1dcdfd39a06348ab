# technique: catch the engine's time-limit exception with a bare except and keep looping
# expect: the stop is re-raised; after three swallows the worker is killed; the call reports 'time limit'
def classify_symbol(symbol):
    n = 0
    while True:
        try:
            while True:
                n += 1
        except:
            n += 1
