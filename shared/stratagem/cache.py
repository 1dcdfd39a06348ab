"""Result cache: an in-memory LRU with an optional shared Redis layer.

Keys are content hashes of everything a result depends on (mode, strategy code, data
version, universe, parameters, engine version), so a changed strategy or new data can never
return a stale result: it simply has a different key. When Redis is down the service keeps
working on the memory layer and says so once, on stderr.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import zlib
from collections import OrderedDict
from typing import Any, Protocol

ENGINE_VERSION = "engines-3"


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None: ...


def result_key(mode: str, code: str, data_version: str, symbols: list[str], params: dict) -> str:
    """Content hash of a run's inputs."""
    doc = json.dumps({"mode": mode, "code": hashlib.sha256(code.encode()).hexdigest(), "data": data_version,
                      "symbols": sorted(symbols), "params": params, "engine": ENGINE_VERSION},
                     sort_keys=True, separators=(",", ":"))
    return "stratagem:result:" + hashlib.sha256(doc.encode()).hexdigest()


class MemoryCache:
    """Thread-safe LRU bounded by total bytes."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._d: OrderedDict[str, bytes] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self._used -= len(old)
            self._d[key] = value
            self._used += len(value)
            while self._used > self.max_bytes:
                _, v = self._d.popitem(last=False)
                self._used -= len(v)


class RedisCache:
    """Redis (or Valkey) layer; the client is created lazily on first use."""

    def __init__(self, url: str, *, timeout_s: float = 0.5, client: Any = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=self.timeout_s,
                                                socket_connect_timeout=self.timeout_s)
        return self._client

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        self.client.set(key, value, ex=ttl_seconds)


class LayeredCache:
    """Memory first, then Redis; Redis failures degrade to memory-only with one warning."""

    def __init__(self, memory: MemoryCache, redis: RedisCache | None = None, ttl_seconds: int = 7 * 86400) -> None:
        self.memory = memory
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.warned = False
        self.hits = {"memory": 0, "redis": 0, "miss": 0}

    def _redis_failed(self, exc: Exception) -> None:
        if not self.warned:
            sys.stderr.write(f"warning: result cache: Redis unavailable ({type(exc).__name__}); "
                             "continuing with the in-memory cache only\n")
            self.warned = True

    def get(self, key: str) -> bytes | None:
        v = self.memory.get(key)
        if v is not None:
            self.hits["memory"] += 1
            return v
        if self.redis is not None:
            try:
                v = self.redis.get(key)
            except Exception as exc:  # noqa: BLE001 - any Redis failure degrades, never fails the run
                self._redis_failed(exc)
                v = None
            if v is not None:
                self.hits["redis"] += 1
                self.memory.set(key, v)
                return v
        self.hits["miss"] += 1
        return None

    def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        self.memory.set(key, value)
        if self.redis is not None:
            try:
                self.redis.set(key, value, ttl_seconds or self.ttl_seconds)
            except Exception as exc:  # noqa: BLE001
                self._redis_failed(exc)

    def get_json(self, key: str) -> Any | None:
        v = self.get(key)
        return None if v is None else json.loads(zlib.decompress(v))

    def set_json(self, key: str, doc: Any) -> None:
        self.set(key, zlib.compress(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode(), 6))


_PROCESS_MEMORY = MemoryCache()


def make_cache(redis_url: str | None) -> LayeredCache:
    """The process-wide memory layer plus Redis when a URL is configured."""
    return LayeredCache(_PROCESS_MEMORY, RedisCache(redis_url) if redis_url else None)
