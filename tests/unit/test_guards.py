"""The language layer alone (RestrictedPython + guards), exercised in-process.

These tests run strategy code in the test process on purpose: they prove that the
language layer holds by itself, independently of the OS isolation that the process tests
cover. Resource-exhaustion attacks are not run here (they are the OS layer's job).
"""

from __future__ import annotations

import pytest

from stratagem.data.pit import PointInTime
from stratagem.data.store import iso_to_day
from stratagem.errors import StrategyRejected
from stratagem.sandbox.runtime import LoadedStrategy, StrategyError, sanitize_result


@pytest.fixture(scope="module")
def pit(market):
    p = PointInTime(market)
    p.set_asof(iso_to_day("2012-12-31"))
    return p


def run(pit, body: str, symbol: str = "AAPL"):
    src = "def classify_symbol(symbol):\n" + "\n".join("    " + line for line in body.strip().splitlines()) + "\n"
    return LoadedStrategy(src, pit.functions()).classify(symbol)


@pytest.mark.parametrize("expr,exc", [
    ("get_price_data('AAPL')['close'].obj", AttributeError),
    ("np.asarray(get_price_data('AAPL')['close']).base", AttributeError),
    ("np.asarray(get_price_data('AAPL')['close']).tofile", AttributeError),
    ("np.asarray(get_price_data('AAPL')['close']).ctypes", AttributeError),
    ("np.float64(1.0).tofile", AttributeError),
    ("type(np.array([1.0])).tofile", AttributeError),
    ("np.load", AttributeError),
    ("np.save", AttributeError),
    ("np.lib", AttributeError),
    ("np.ctypeslib", AttributeError),
    ("np.random", AttributeError),
    ("datetime.sys", AttributeError),
    ("math.sys", AttributeError),
    ("statistics.sys", AttributeError),
    ("np.ndarray((3,))", TypeError),
    ("getattr(np, 'load')", AttributeError),
    ("np.array([1.0]).dtype.type", AttributeError),
])
def test_escape_routes_are_closed(pit, expr, exc):
    with pytest.raises(exc):
        run(pit, f"return {expr}")


def test_format_string_cannot_traverse_attributes(pit):
    # CVE-2023-41039: '{0.__globals__}'.format(fn) must go through the guards.
    for tpl in ("'{0.__globals__}'", "'{0.sys}'", "'{0.gi_frame}'"):
        with pytest.raises(AttributeError):
            run(pit, f"return {{'signal': True, 'x': {tpl}.format(get_price_data)}}")


def test_ordinary_formatting_still_works(pit):
    res = run(pit, "return {'signal': '{:.2f}|{}|{n}'.format(3.14159, 'a', n=2) == '3.14|a|2' and '%.1f' % 2.25 == '2.2'}")
    assert res["signal"] is True


def test_data_is_read_only_and_not_shared(pit):
    body = """
d = get_price_data('AAPL', days=5)
c = d['close']
hits = 0
for attempt in ['item', 'np', 'append', 'reverse']:
    try:
        if attempt == 'item':
            c[0] = 0.0
        elif attempt == 'np':
            v = np.asarray(c)
            v[0] = 0.0
        elif attempt == 'append':
            c.append(1.0)
        else:
            c.reverse()
        hits += 1
    except Exception:
        pass
d['close'] = [1.0]   # the dict is the strategy's own copy
return {'signal': hits == 0, 'score': float(hits)}
"""
    before = list(pit.price_data("AAPL", "1d", 5)["close"])
    res = run(pit, body)
    assert res["signal"] is True
    assert list(pit.price_data("AAPL", "1d", 5)["close"]) == before


def test_writes_only_to_own_objects(pit):
    with pytest.raises(TypeError, match="cannot modify"):
        run(pit, "np.pi = 3\nreturn True")
    with pytest.raises(TypeError, match="cannot modify"):
        run(pit, "math.floor = None\nreturn True")
    assert run(pit, "a = [1, 2]\na[0] += 5\nd = {'k': 1}\nd['k'] -= 1\nreturn a == [6, 2] and d['k'] == 0")


def test_module_state_is_fresh_per_load(pit):
    src = "seen = []\ndef classify_symbol(symbol):\n    seen.append(symbol)\n    return {'signal': True, 'score': float(len(seen))}\n"
    a = LoadedStrategy(src, pit.functions())
    a.classify("AAPL"), a.classify("MSFT")
    b = LoadedStrategy(src, pit.functions())
    assert b.classify("AAPL")["score"] == 1.0


def test_no_exit_no_baseexception(pit):
    for name in ("SystemExit", "BaseException", "KeyboardInterrupt"):
        with pytest.raises(StrategyRejected):
            LoadedStrategy(f"def classify_symbol(s):\n    raise {name}()\n", pit.functions())
    from stratagem.sandbox.guards import curated_modules, make_builtins

    b = make_builtins(curated_modules())
    assert not {"SystemExit", "BaseException", "exec", "eval", "open", "compile", "globals"} & set(b)


def test_sanitize_maps_non_finite_to_none_and_drops_objects():
    sig, score, values = sanitize_result({"signal": True, "score": float("nan"), "x": float("inf"), "y": [1],
                                          "z": "ok", "n": 3})
    assert (sig, score) == (True, None) and values == {"x": None, "z": "ok", "n": 3.0}
    with pytest.raises(StrategyError, match="'signal'"):
        sanitize_result({"score": 1.0})
    with pytest.raises(StrategyError, match="bool or a dict"):
        sanitize_result([1, 2])


def test_imports_bind_curated_modules(pit):
    src = "import numpy as np2\nfrom math import sqrt\nfrom numpy.linalg import norm\ndef classify_symbol(s):\n    return {'signal': sqrt(4.0) == 2.0 and float(norm(np2.array([3.0, 4.0]))) == 5.0}\n"
    assert LoadedStrategy(src, pit.functions()).classify("AAPL")["signal"] is True


def test_numpy_methods_work_despite_lazy_internal_imports(pit):
    assert run(pit, "a = np.array([1.0, 2.0, 3.0])\nreturn float(a.mean()) == 2.0 and float(a.std()) > 0")


@pytest.mark.parametrize("expr", ["type(int)", "type(np.ndarray)", "type(type(1))"])
def test_no_metaclass_reachable(pit, expr):
    with pytest.raises(TypeError, match="type\\(\\) of a class"):
        run(pit, f"return {expr}")


def test_instance_only_stand_ins_hide_the_real_class(pit):
    assert run(pit, "return isinstance(np.array([1.0]), np.ndarray) and not isinstance([1], np.ndarray)")
    with pytest.raises(AttributeError):
        run(pit, "return getattr(np.ndarray, 'wrapped')")
