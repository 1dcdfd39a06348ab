"""API security through the real ``api`` function (Functions Framework app over Flask/WSGI).

- Fuzzing from ``docs/openapi.json``: request bodies generated from each operation's schema (a
  small JSON-Schema-to-hypothesis translation below: ``hypothesis-jsonschema`` does not work with
  this Hypothesis version, and ``schemathesis`` is not installed offline) and arbitrary junk bodies; every answer is a documented status
  (never 5xx) with a JSON body that validates against the documented schema for that status.
  ``STRATAGEM_API_FUZZ_EXAMPLES`` (default 25 per operation) sets the size of the run.
- Cross-tenant: another user's strategy or job answers exactly like a missing one.
- Secrets (API keys, Gemini key, Telegram token and webhook secret) appear in no log line and no
  response while the API and the Pub/Sub functions run, including on their error paths.
- Request size and rate limits.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

functions_framework = pytest.importorskip("functions_framework")

from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from stratagem import api as api_mod
from stratagem import factory
from stratagem.bus import InProcessBus
from stratagem.jobs import MemoryJobStore
from stratagem.notify import MemoryAlertLog
from stratagem.service import Services
from stratagem.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "docs" / "openapi.json").read_text())
EXAMPLES = int(os.environ.get("STRATAGEM_API_FUZZ_EXAMPLES", "25"))
STATS: Counter = Counter()
OPERATIONS = sorted(SPEC["paths"])


def _resolve(node: Any) -> Any:
    """Follow ``$ref`` into the spec (components) until a concrete node."""
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        target: Any = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _inline(node: Any, depth: int = 0) -> Any:
    """A schema with every ``$ref`` inlined (hypothesis-jsonschema needs self-contained schemas)."""
    if depth > 20:
        return {}
    if isinstance(node, dict):
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(_resolve({"$ref": node["$ref"]}), depth + 1), **_inline(rest, depth + 1)}
        return {k: _inline(v, depth + 1) for k, v in node.items() if k not in ("example", "examples")}
    if isinstance(node, list):
        return [_inline(v, depth + 1) for v in node]
    return node


def _response_schema(path: str, status: int) -> dict | None:
    responses = SPEC["paths"][path]["post"]["responses"]
    resp = responses.get(str(status)) or responses.get("default")
    if resp is None:
        return None
    resp = _resolve(resp)
    return _inline(resp.get("content", {}).get("application/json", {}).get("schema", {}))


def from_schema(schema: dict) -> st.SearchStrategy:
    """Values valid for ``schema`` (the JSON Schema subset the spec uses), mostly; an occasional
    out-of-range value is fine: every answer must still be documented and never a 5xx."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema({**{k: v for k, v in schema.items() if k != key}, **s}) for s in schema[key]])
    if "allOf" in schema:
        merged: dict = {}
        for s in schema["allOf"]:
            merged.update(s)
        return from_schema(merged)
    t = schema.get("type", "object")
    if isinstance(t, list):
        return st.one_of([from_schema({**schema, "type": x}) for x in t])
    if t == "object":
        props = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in props]
        optional = [k for k in props if k not in required]
        return st.fixed_dictionaries({k: from_schema(props[k]) for k in required},
                                     optional={k: from_schema(props[k]) for k in optional})
    if t == "array":
        return st.lists(from_schema(schema.get("items", {})), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 5))
    if t == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if t == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum")) | st.integers(-5, 5)
    if t == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if t == "boolean":
        return st.booleans()
    if t == "null":
        return st.none()
    return st.none()


def _request_schema(path: str) -> dict:
    body = _resolve(SPEC["paths"][path]["post"].get("requestBody", {}))
    return _inline(body.get("content", {}).get("application/json", {}).get("schema", {"type": "object"}))


@pytest.fixture
def svc(sandbox, market, monkeypatch):
    from stratagem.generation.offline import OfflineGenerator

    s = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                 sandbox_factory=lambda: sandbox, generator_factory=OfflineGenerator, alert_log=MemoryAlertLog())
    factory.wire_in_process(s)
    monkeypatch.setattr(factory, "_services", s)
    return s


@pytest.fixture
def keys(monkeypatch) -> dict[str, str]:
    """Random secrets in the environment, as the deployed functions get them."""
    k = {"alice": "ka-" + secrets.token_hex(12), "bob": "kb-" + secrets.token_hex(12),
         "gemini": "AIza" + secrets.token_hex(16), "telegram": f"{secrets.randbelow(10**9)}:{secrets.token_hex(16)}",
         "webhook": secrets.token_hex(16)}
    monkeypatch.setenv("STRATAGEM_API_KEYS", f"{k['alice']}:alice,{k['bob']}:bob")
    monkeypatch.setenv("GEMINI_API_KEY", k["gemini"])
    monkeypatch.setenv("STRATAGEM_TELEGRAM_TOKEN", k["telegram"])
    monkeypatch.setenv("STRATAGEM_TELEGRAM_WEBHOOK_SECRET", k["webhook"])
    return k


def _client():
    return create_app(target="api", source=str(ROOT / "functions" / "api" / "main.py"),
                      signature_type="http").test_client()


def _check_response(path: str, r: Any) -> None:
    STATS[f"status_{r.status_code}"] += 1
    assert r.status_code < 500, (path, r.status_code, r.get_data(as_text=True)[:500])
    documented = SPEC["paths"][path]["post"]["responses"]
    assert str(r.status_code) in documented or "default" in documented, (path, r.status_code, "undocumented status")
    doc = json.loads(r.get_data())
    schema = _response_schema(path, r.status_code)
    if schema:
        errors = sorted(Draft202012Validator(schema).iter_errors(doc), key=str)
        assert not errors, (path, r.status_code, [e.message for e in errors[:3]], doc)


@pytest.fixture
def fuzz_client(svc, keys, monkeypatch):
    # A generous rate limit so the fuzzer reaches the endpoints (the limit has its own test).
    orig = api_mod.RateLimiter.__init__
    monkeypatch.setattr(api_mod.RateLimiter, "__init__", lambda self, rate=1e6, burst=10**6: orig(self, rate, burst))
    # Bob owns strategy 1: Alice's fuzzed ids hit a foreign strategy (must look missing) or nothing.
    svc.store.create("bob", name="bobs", code="def classify_symbol(symbol):\n    return True\n")
    return _client()


@pytest.mark.parametrize("path", OPERATIONS)
def test_openapi_fuzz_no_5xx_and_schema_conformance(path: str, fuzz_client, keys) -> None:
    body_strategy = from_schema(_request_schema(path))
    junk = st.one_of(st.binary(max_size=200), st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(body=st.one_of(body_strategy.map(lambda b: json.dumps(b).encode()), junk),
           who=st.sampled_from(["alice", "bob", "nobody"]))
    def run(body: bytes, who: str) -> None:
        STATS["cases"] += 1
        headers = {"Content-Type": "application/json"}
        if who != "nobody":
            headers["Authorization"] = f"Bearer {keys[who]}"
        r = fuzz_client.post(path, data=body, headers=headers)
        _check_response(path, r)
        text = r.get_data(as_text=True)
        assert not any(v in text for v in keys.values()), "a secret appeared in a response"

    run()


def test_foreign_ids_look_missing_on_every_endpoint(fuzz_client, svc, keys) -> None:
    """Alice asking for Bob's strategy or job gets the same 404 as for an id that does not exist."""
    bob = svc.store.list("bob")[0]
    r = fuzz_client.post("/api/runUnifiedStrategy", json={"strategyId": bob.id, "executionMode": "screening"},
                         headers={"Authorization": f"Bearer {keys['bob']}"})
    bobs_job = r.get_json().get("jobId")
    assert bobs_job
    cases = [("/api/getStrategy", {"strategyId": bob.id}), ("/api/getStrategyVersions", {"strategyId": bob.id}),
             ("/api/setAlert", {"strategyId": bob.id, "active": True}), ("/api/runBacktest", {"strategyId": bob.id}),
             ("/api/runUnifiedStrategy", {"strategyId": bob.id, "executionMode": "screening"}),
             ("/api/createStrategyFromPrompt", {"query": "rsi below 30", "strategyId": bob.id}),
             ("/api/getJob", {"jobId": bobs_job})]
    for path, body in cases:
        foreign = fuzz_client.post(path, json=body, headers={"Authorization": f"Bearer {keys['alice']}"})
        missing_body = dict(body, **({"strategyId": 999} if "strategyId" in body else {"jobId": "no-such-job"}))
        missing = fuzz_client.post(path, json=missing_body, headers={"Authorization": f"Bearer {keys['alice']}"})
        assert foreign.status_code == missing.status_code == 404, (path, foreign.get_json())
        assert foreign.get_json()["error"]["code"] == missing.get_json()["error"]["code"]
        _check_response(path, foreign)
    assert svc.store.get("bob", bob.id).is_alert_active is False  # Alice's setAlert changed nothing
    assert svc.store.list("alice") == []


def test_secrets_never_logged(svc, keys, capsys, caplog, sandbox, market) -> None:
    """The API and a Pub/Sub function run with secrets in the environment, through success and
    error paths; no secret appears in stdout/stderr, in log records or in any response."""
    import base64

    from stratagem import messages
    from stratagem.jobs import Job
    from stratagem.settings import Settings

    caplog.set_level(logging.DEBUG)
    client = _client()
    texts = []
    ka, kb = keys["alice"], keys["bob"]
    for path, body, key in [("/api/createStrategyFromPrompt", {"query": "RSI below 30", "strategyId": -1}, ka),
                            ("/api/getStrategies", {}, kb), ("/api/getStrategies", {}, ka[:-1] + "x"),
                            ("/api/getStrategy", {"strategyId": 1}, kb), ("/api/runBacktest", {"strategyId": "x"}, ka),
                            ("/api/nope", {}, ka)]:
        r = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        texts.append(r.get_data(as_text=True))
    r = client.post("/api/getStrategies", data=b"{not json", headers={"X-API-Key": ka})
    texts.append(r.get_data(as_text=True))
    # A Pub/Sub function on its error paths: a malformed event and a forged shard.
    rec = svc.store.create("alice", name="x", code="def classify_symbol(s):\n    return True\n")
    svc.jobs.create(Job("job-s", "alice", "screen", params={"strategy_id": rec.id, "version": 1, "asof": 15700,
                                                             "limit": 5, "symbols": ["AAPL"]}))
    screen = create_app(target="screen", source=str(ROOT / "functions" / "screen" / "main.py"),
                        signature_type="cloudevent").test_client()
    for msg in ({"schema": "nonsense"}, messages.make("stratagem.screen_shard.v1", job_id="job-s", shard=0, shards=1,
                                                       user_id="bob", strategy_id=rec.id, version=1, symbols=["AAPL"],
                                                       asof=15700, limit=5)):
        data = {"message": {"data": base64.b64encode(json.dumps(msg).encode()).decode(), "messageId": "m1"},
                "subscription": "projects/p/subscriptions/s"}
        headers = {"ce-id": "m1", "ce-source": "//pubsub.googleapis.com/projects/p/topics/t", "ce-specversion": "1.0",
                   "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
        texts.append(screen.post("/", json=data, headers=headers).get_data(as_text=True))
    texts.append(repr(Settings.from_env()))
    out = capsys.readouterr()
    logged = [out.out, out.err] + [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    assert "message rejected" in out.out  # the forged shard was logged (so logs were captured)
    for name, value in keys.items():
        for text in texts + logged:
            assert value not in text, f"the {name} secret appeared in a log line or response"


def test_request_size_limit(fuzz_client, keys) -> None:
    big = json.dumps({"query": "x" * (api_mod.MAX_BODY + 1)}).encode()
    for headers in ({"Authorization": f"Bearer {keys['alice']}"}, {}):
        r = fuzz_client.post("/api/createStrategyFromPrompt", data=big, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_large"
        _check_response("/api/createStrategyFromPrompt", r)
    small = fuzz_client.post("/api/getStrategies", json={}, headers={"Authorization": f"Bearer {keys['alice']}"})
    assert small.status_code == 200


def test_rate_limit_per_user(svc) -> None:
    api = api_mod.Api(svc, api_mod.ApiKeyAuth({"ka": "alice", "kb": "bob"}),
                      limiter=api_mod.RateLimiter(rate=1e-9, burst=3))  # no refill within the test
    statuses = [api.handle("POST", "/api/getStrategies", b"{}", {"Authorization": "Bearer ka"})[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    _status, doc = api.handle("POST", "/api/getStrategies", b"{}", {"Authorization": "Bearer ka"})
    assert doc["error"]["code"] == "rate_limited"
    assert api.handle("POST", "/api/getStrategies", b"{}", {"Authorization": "Bearer kb"})[0] == 200  # others unaffected


def teardown_module(module: object) -> None:
    if STATS:
        print("\nAPI fuzz: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items())))
