"""Which sequence type should data functions hand to strategies?

Measures, side by side in one run, the cost of building the six series of one
``get_price_data`` call and of a gap-up strategy body using them, for candidate types:

* ``list``        - a Python list slice of pre-built lists (what the seed did): O(days) to build
* ``ndarray``     - a read-only numpy view: O(1), but scalar indexing returns numpy scalars
                    and ``not arr`` raises for more than one element
* ``tuple``       - a tuple slice of pre-built tuples: O(days) to build, immutable
* ``pyseq``       - a Python class wrapping a memoryview (read-only, list-like API)
* ``memoryview``  - a read-only memoryview slice: O(1), C-speed indexing to Python floats

Run: ``python bench/sequences.py``.
"""

from __future__ import annotations

import time

import numpy as np

N = 3000
rng = np.random.default_rng(0)
base = {k: np.ascontiguousarray(rng.uniform(10, 20, N)) for k in ("open", "high", "low", "close", "volume")}
for a in base.values():
    a.flags.writeable = False
lists = {k: v.tolist() for k, v in base.items()}
tuples = {k: tuple(v) for k, v in lists.items()}
mviews = {k: memoryview(v) for k, v in base.items()}


class PySeq:
    __slots__ = ("_m",)

    def __init__(self, m: memoryview) -> None:
        self._m = m

    def __len__(self) -> int:
        return len(self._m)

    def __getitem__(self, i):
        r = self._m[i]
        return PySeq(r) if isinstance(i, slice) else r

    def __iter__(self):
        return iter(self._m)


def make(kind: str, end: int, days: int) -> dict:
    lo = max(0, end - days)
    if kind == "list":
        return {k: v[lo:end] for k, v in lists.items()}
    if kind == "tuple":
        return {k: v[lo:end] for k, v in tuples.items()}
    if kind == "ndarray":
        return {k: v[lo:end] for k, v in base.items()}
    if kind == "memoryview":
        return {k: v[lo:end] for k, v in mviews.items()}
    return {k: PySeq(v[lo:end]) for k, v in mviews.items()}


def gap_up(d: dict) -> bool:
    try:
        if not d["close"] or len(d["close"]) < 2:
            return False
    except ValueError:  # ndarray truthiness: what a seed-style try/except turns into False
        return False
    prev_close = d["close"][-2]
    gap = (d["open"][-1] - prev_close) / prev_close
    vol = d["volume"]
    avg = sum(vol[:-1]) / len(vol[:-1])
    return gap > 0.03 and vol[-1] / avg > 1.5


def bench(kind: str, days: int, reps: int = 20000) -> tuple[float, float, bool]:
    ends = [100 + (i * 7) % (N - 100) for i in range(reps)]
    t0 = time.perf_counter()
    for e in ends:
        make(kind, e, days)
    build = (time.perf_counter() - t0) / reps * 1e9
    ds = [make(kind, e, days) for e in ends[:5000]]
    t0 = time.perf_counter()
    truthy_ok = True
    for d in ds:
        gap_up(d)
    body = (time.perf_counter() - t0) / len(ds) * 1e9
    try:
        bool(make(kind, 500, days)["close"])
    except ValueError:
        truthy_ok = False
    return build, body, truthy_ok


def main() -> None:
    print(f"{'type':<11} {'days':>5} {'build ns':>9} {'gap-up ns':>10} {'total ns':>9}  not-seq works")
    for days in (5, 30, 250):
        for kind in ("list", "tuple", "ndarray", "pyseq", "memoryview"):
            b, g, ok = bench(kind, days)
            print(f"{kind:<11} {days:>5} {b:>9.0f} {g:>10.0f} {b + g:>9.0f}  {ok}")


if __name__ == "__main__":
    main()
