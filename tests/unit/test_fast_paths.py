"""Fast paths against the plain ones: symbol-major shards and their wire plans (pool._symbol_shards), cached ISO dates, long-list nan_to_none."""

from __future__ import annotations

import random

import pytest
from stratagem.sandbox.pool import _encode_plan, _symbol_shards


def _expand(wire: dict) -> list[tuple[int, str]]:
    if "splan" in wire:
        return [(d, s) for s, days in wire["splan"] for d in days]
    return [(d, s) for d, syms in wire["plan"] for s in syms]


@pytest.mark.parametrize("seed", range(40))
def test_wire_plans_are_exactly_the_shards(seed: int) -> None:
    rng = random.Random(seed)
    symbols = sorted({f"S{rng.randrange(60)}" for _ in range(rng.randrange(1, 25))})
    by_sym = {s: sorted(rng.sample(range(1000, 1400), rng.randrange(0, 40))) for s in symbols}
    n = rng.randrange(1, 6)
    shards, wire = _symbol_shards(symbols, by_sym, n)
    items = [(d, s) for s in symbols for d in by_sym[s]]
    assert [it for sh in shards for it in list(sh)] == items
    assert len(shards) <= n and all(len(sh) for sh in shards)
    sizes = {len(sh) for sh in shards[:-1]}
    assert len(sizes) <= 1  # equal pieces but the last
    for sh, w in zip(shards, wire):
        sh = list(sh)
        assert w is not None and _expand(w) == sh == _expand(_encode_plan(sh))
        # one entry per symbol run, no empty ones
        assert all(days for _, days in w["splan"])


def test_one_symbol_cut_in_two_continues_in_the_next_shard() -> None:
    shards, wire = _symbol_shards(["A", "B"], {"A": [1, 2, 3], "B": [1]}, 2)
    assert [list(sh) for sh in shards] == [[(1, "A"), (2, "A")], [(3, "A"), (1, "B")]]
    assert wire == [{"splan": [["A", [1, 2]]]}, {"splan": [["A", [3]], ["B", [1]]]}]


def test_runs_index_like_a_list() -> None:
    shards, _ = _symbol_shards(["A", "B", "C"], {"A": [5, 6], "B": [], "C": [1, 2, 3]}, 1)
    (runs,) = shards
    items = [(5, "A"), (6, "A"), (1, "C"), (2, "C"), (3, "C")]
    assert len(runs) == 5
    assert [runs[i] for i in range(5)] == items
    assert runs[-1] == (3, "C") and runs[1:4] == items[1:4] and runs[3:] == items[3:]
    with pytest.raises(IndexError):
        runs[5]


def test_days_to_iso_cached_and_uncached_agree() -> None:
    import datetime as dt

    from stratagem.data.store import day_to_iso, days_to_iso

    days = [-1, 0, 59, 10_956, 15_000, 19_000, 47_000]
    want = [(dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat() for d in days]
    assert days_to_iso(days) == want  # first call: converted
    assert days_to_iso(days) == want  # second: from the cache
    assert days_to_iso(days[::-1]) == want[::-1] and [day_to_iso(d) for d in days] == want


def test_nan_to_none_long_lists() -> None:
    from stratagem.engines.metrics import nan_to_none

    floats = [float(i) for i in range(100)]
    assert nan_to_none(floats) == floats and nan_to_none(floats) is not floats
    bad = floats[:50] + [float("nan"), float("inf")] + floats[52:]
    assert nan_to_none(bad) == floats[:50] + [None, None] + floats[52:]
    mixed = floats[:99] + [{"x": float("nan")}]
    assert nan_to_none(mixed) == floats[:99] + [{"x": None}]
    ints = list(range(100)) + [float("-inf")]
    assert nan_to_none(ints) == list(range(100)) + [None]
    strs = [str(i) for i in range(100)]
    assert nan_to_none(strs) == strs
