"""Redis (a real valkey-server) killed mid-run and restarted, seen from the CLI and a long-lived
process: the result cache degrades to no cache with one warning, results are identical, and
the cache is used again once Redis is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import kill_valkey

redis = pytest.importorskip("redis", reason="the redis client is not installed")

ARGS = ["backtest", "builtin:gap_up_volume", "--json", "--start", "2010-01-01", "--end", "2011-12-31"]


def cli(home: Path, url: str, *args: str) -> tuple[dict, str]:
    """Run ``stratagem`` in its own process (each run is a fresh memory cache, as a new function
    instance would be); its JSON result and stderr."""
    env = dict(os.environ, STRATAGEM_HOME=str(home), STRATAGEM_REDIS_URL=url)
    env.pop("STRATAGEM_BACKEND", None)
    proc = subprocess.run([sys.executable, "-m", "stratagem.cli", *args], env=env, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), proc.stderr


def stable(result: dict) -> dict:
    """The result without the run's own timings (``sandbox``: seconds, workers)."""
    return {k: v for k, v in result.items() if k != "sandbox"}


def result_keys(url: str) -> list[bytes]:
    return sorted(redis.Redis.from_url(url).keys("stratagem:result:*"))


def test_cli_redis_killed_and_restarted(settings, market, valkey_factory):
    srv = valkey_factory()
    port = srv.port
    url = f"redis://127.0.0.1:{port}/0"

    first, err = cli(settings.home, url, *ARGS)
    assert "served from the result cache" not in err and "Redis unavailable" not in err
    assert len(result_keys(url)) == 1
    again, err = cli(settings.home, url, *ARGS)  # another process: the hit comes from Redis
    assert "served from the result cache" in err
    assert stable(again) == stable(first)

    kill_valkey(srv)  # SIGKILL: no shutdown, no save
    down, err = cli(settings.home, url, *ARGS)
    assert err.count("Redis unavailable") == 1, err  # one warning for the get and the set
    assert "served from the result cache" not in err
    assert stable(down) == stable(first)

    srv2 = valkey_factory(port)  # back on the same address, empty (nothing was persisted)
    assert srv2.port == port and result_keys(url) == []
    back, err = cli(settings.home, url, *ARGS)
    assert "Redis unavailable" not in err and stable(back) == stable(first)
    assert len(result_keys(url)) == 1  # stored again
    hit, err = cli(settings.home, url, *ARGS)
    assert "served from the result cache" in err and stable(hit) == stable(first)


def test_redis_killed_during_a_run_then_back_in_the_same_process(settings, market, sandbox, valkey_factory, capsys,
                                                                 monkeypatch):
    """Inside one long-lived process (a function instance): Redis dies between the cache lookup
    and the store of a real backtest; the run's result is returned anyway (one warning), and
    after a restart the same cache object stores to Redis again, where another instance finds it."""
    from stratagem.cache import LayeredCache, MemoryCache, RedisCache
    from stratagem.cli import _cached
    from stratagem.engines.backtest import run_backtest

    srv = valkey_factory()
    port = srv.port
    url = f"redis://127.0.0.1:{port}/0"
    from stratagem import cache as cache_mod

    shared = LayeredCache(MemoryCache(), RedisCache(url, timeout_s=0.5))
    made: list[Any] = []

    def make_cache(_url: str | None) -> LayeredCache:  # the CLI's factory, returning our instance
        made.append(_url)
        return shared

    from importlib import resources

    code = resources.files("stratagem.resources.strategies").joinpath("gap_up_volume.py").read_text()
    kw = {"start": 14610, "end": 15339, "windows": [1, 5]}  # 2010-01-01 .. 2011-12-31

    def run() -> dict:
        kill_valkey(srv)  # mid-run: after the lookup missed, before the result is stored
        return run_backtest(sandbox, market, code, market.symbols, **kw)

    monkeypatch.setattr(cache_mod, "make_cache", make_cache)
    out = _cached(settings, "backtest", code, market, market.symbols, kw, run)
    assert out["instances"] and made == [settings.redis_url]
    err = capsys.readouterr().err
    assert err.count("Redis unavailable") == 1
    # the memory layer still serves it in this process
    assert _cached(settings, "backtest", code, market, market.symbols, kw, lambda: pytest.fail("recomputed")) == out

    valkey_factory(port)  # restarted, empty
    assert result_keys(url) == []
    kw2 = dict(kw, windows=[1, 10])
    out2 = _cached(settings, "backtest", code, market, market.symbols, kw2,
                   lambda: run_backtest(sandbox, market, code, market.symbols, **kw2))
    assert len(result_keys(url)) == 1  # the same cache object uses Redis again
    other = LayeredCache(MemoryCache(), RedisCache(url))  # another instance
    from stratagem.cache import result_key

    assert other.get_json(result_key("backtest", code, market.version, market.symbols, kw2)) == out2
    assert other.hits["redis"] == 1
