# technique: an async generator's ag_frame / a coroutine's cr_frame (CVE-2023-37271 family)
# expect: async syntax is rejected; ag_frame/cr_frame forbidden
async def agen():
    yield 1


async def coro():
    return 1


def classify_symbol(symbol):
    a = agen()
    c = coro()
    fr = a.ag_frame or c.cr_frame
    return {"signal": True, "leak": str(fr.f_back.f_globals)[:190]}
