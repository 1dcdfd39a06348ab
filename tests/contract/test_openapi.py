"""docs/openapi.json against the API core: the same paths, the same required fields and types,
and every status and body the handlers answer is documented.

Each request is the spec's own example (with real ids): answering 2xx proves every property
it leaves out is optional; removing each property it has must answer 400 exactly for the
documented required ones. No endpoint needs the sandbox: the bus has no subscribers, so jobs
stay queued (202).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from stratagem.api import Api, ApiKeyAuth, RateLimiter
from stratagem.bus import InProcessBus
from stratagem.jobs import MemoryJobStore
from stratagem.service import Services
from stratagem.store import MemoryStore
from stratagem.telegram import ChatDirectory

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "docs" / "openapi.json").read_text())
CODE = ("def classify_symbol(symbol):\n    d = get_price_data(symbol, days=2)\n"
        "    if len(d['close']) < 2:\n        return False\n"
        "    return {'signal': d['close'][-1] > d['close'][-2], 'score': 1.0}\n")
# Properties whose wrong type the handler ignores instead of rejecting (documented type kept).
LENIENT: dict = {}
WRONG = {"integer": "1", "number": "1", "string": 12345, "boolean": "yes", "array": "AAPL", "object": []}


def resolve(node: dict) -> dict:
    while "$ref" in node:
        assert node["$ref"].startswith("#/"), node["$ref"]
        target = SPEC
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def operation(path: str) -> dict:
    return SPEC["paths"][path]["post"]


def request_schema(path: str) -> tuple[dict, dict]:
    media = operation(path)["requestBody"]["content"]["application/json"]
    return resolve(media["schema"]), copy.deepcopy(media["example"])


# -- the document ---------------------------------------------------------------------------------
def test_spec_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    assert {"title", "version"} <= set(SPEC["info"])
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(SPEC)  # raises on any structural error


def test_every_reference_resolves():
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(SPEC)


def test_paths_are_the_api_routes():
    routes = Api(None, ApiKeyAuth({})).routes  # type: ignore[arg-type]
    assert set(SPEC["paths"]) == set(routes)
    for path, item in SPEC["paths"].items():
        assert set(item) == {"post"}, f"{path}: the API answers only POST"


def test_bearer_security():
    schemes = SPEC["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert {"bearerAuth": []} in SPEC["security"]


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
def test_errors_are_documented_with_the_error_schema(path):
    responses = operation(path)["responses"]
    assert {"200", "400", "401", "413", "429"} <= set(responses)
    for code, r in responses.items():
        if code.startswith(("4", "5")):
            schema = resolve(resolve(r)["content"]["application/json"]["schema"])
            assert "error" in schema["required"], f"{path} {code}"
            assert resolve(schema["properties"]["error"])["required"] == ["code", "message"]


# -- against the handlers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(market):
    svc = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(), market=market,
                   sandbox_factory=lambda: pytest.fail("no endpoint should need the sandbox"))
    api = Api(svc, ApiKeyAuth({"key-alice": "alice"}), limiter=RateLimiter(rate=1e9, burst=10**9),
              chats=ChatDirectory())  # an in-memory Telegram chat directory for /api/createTelegramLink
    rec = svc.store.create("alice", name="up", code=CODE)
    status, doc = call(api, "/api/createStrategyFromPrompt", {"query": "buy strength"})
    assert status == 202
    return {"api": api, "strategyId": rec.id, "jobId": doc["jobId"], "symbols": market.symbols[:2],
            "seen": {}}


def call(api: Api, path: str, body: dict) -> tuple[int, dict]:
    return api.handle("POST", path, json.dumps(body).encode(), {"Authorization": "Bearer key-alice"})


def example(world: dict, path: str) -> dict:
    _schema, body = request_schema(path)
    for key in ("strategyId", "jobId", "symbols"):
        if key in body and body[key] != -1:
            body[key] = world[key]
    return body


def answer(world: dict, path: str, body: dict) -> int:
    status, doc = call(world["api"], path, body)
    world["seen"].setdefault(path, []).append((status, doc))
    return status


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
def test_the_example_is_accepted(world, path):
    schema, _ = request_schema(path)
    body = example(world, path)
    assert set(schema.get("required", [])) <= set(body), "the example must show every required field"
    assert set(body) <= set(schema["properties"]), "the example uses undocumented fields"
    status = answer(world, path, body)
    assert 200 <= status < 300, (status, call(world["api"], path, body)[1])


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
def test_required_fields_are_exactly_those_whose_absence_is_a_400(world, path):
    schema, _ = request_schema(path)
    body = example(world, path)
    required = set(schema.get("required", []))
    for prop in body:
        status = answer(world, path, {k: v for k, v in body.items() if k != prop})
        if prop in required:
            assert status == 400, f"{path}: without required {prop!r} the API answered {status}"
        else:
            assert 200 <= status < 300, f"{path}: without optional {prop!r} the API answered {status}"


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
def test_documented_types_are_enforced(world, path):
    schema, _ = request_schema(path)
    body = example(world, path)
    for prop in body:
        if (path, prop) in LENIENT:
            continue
        kind = resolve(schema["properties"][prop])["type"]
        status = answer(world, path, dict(body, **{prop: WRONG[kind]}))
        assert status == 400, f"{path}: {prop!r} of the wrong type ({WRONG[kind]!r}, not {kind}) answered {status}"


@pytest.mark.parametrize("path", sorted(SPEC["paths"]))
def test_foreign_or_missing_ids_are_documented_404s(world, path):
    body = example(world, path)
    if "strategyId" in body:
        body["strategyId"] = 987654
    elif "jobId" in body:
        body["jobId"] = "no-such-job"
    else:
        assert "404" not in operation(path)["responses"], f"{path} names nothing that could be missing"
        return
    assert answer(world, path, body) == 404
    assert "404" in operation(path)["responses"]


def test_every_status_and_body_seen_is_documented(world):
    """Every answer the tests above got (pytest runs this last in the module), plus the examples'."""
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:spec", Resource.from_contents(SPEC, default_specification=DRAFT202012))
    for path in SPEC["paths"]:
        answer(world, path, example(world, path))
    for path, answers in world["seen"].items():
        responses = operation(path)["responses"]
        for status, doc in answers:
            assert str(status) in responses, f"{path} answered an undocumented {status}"
            media = resolve(responses[str(status)])["content"]["application/json"]
            schema = {"$ref": "urn:spec#" + media["schema"]["$ref"][1:]} if "$ref" in media["schema"] else \
                json.loads(json.dumps(media["schema"]).replace('"#/', '"urn:spec#/'))
            jsonschema.Draft202012Validator(schema, registry=registry).validate(doc)
