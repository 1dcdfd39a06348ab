"""Gemini failing while a strategy is generated: the whole generate -> validate job (API,
in-process bus with Pub/Sub's retry semantics, stores) with the REAL google-genai client
against a local fake Gemini server (pytest-localserver). Real waits, kept short.

What the user sees for each failure, and that no half-saved strategy exists:

=============================  ===========================================================
5xx / 429, then an answer      retried inside the generator; job done, one strategy
5xx for good                   job failed ``generator_unavailable`` ("Gemini is unavailable
                               (503 ...) after N attempts; try again later"); nothing saved
timeouts for good              job failed ``generator_unavailable`` ("did not answer within")
garbage JSON, then an answer   the repair loop sends the exact parse error back; job done
garbage JSON every time        job failed ``generation_failed`` after 3 attempts; nothing saved
safety block                   job failed ``refused`` naming the safety filter; nothing saved
=============================  ===========================================================
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

pytest.importorskip("google.genai")
localserver = pytest.importorskip("pytest_localserver.http")

from stratagem.api import Api, ApiKeyAuth
from stratagem.bus import InProcessBus
from stratagem.factory import wire_in_process
from stratagem.generation.gemini import GeminiGenerator
from stratagem.jobs import MemoryJobStore
from stratagem.service import Services
from stratagem.store import MemoryStore
from werkzeug.wrappers import Request, Response

API_KEY = "AIzaSyFAULTS-not-a-real-key-0123456789ab"
CODE = """\
THRESHOLD = 0.02


def classify_symbol(symbol):
    d = get_price_data(symbol, timeframe='1d', days=2)
    if len(d['close']) < 2:
        return False
    r = d['close'][-1] / d['close'][-2] - 1
    return {'signal': r > THRESHOLD, 'score': r * 100}
"""
ANSWER = {"refused": False, "refusal_reason": "", "name": "Up 2%", "description": "Close up more than 2%.",
          "explanation": "Daily return over 2%.", "parameters": [{"name": "THRESHOLD", "value": "0.02",
                                                                   "meaning": "minimum daily return"}],
          "code": CODE}


def ok_body(text: str, finish: str = "STOP") -> dict:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish,
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20}}


def error_body(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


class FakeGemini:
    """WSGI ``generateContent``: replies from a script (the last one repeats); counts requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, float]] = []
        self.requests = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        Request(environ).get_data()
        with self.lock:
            self.requests += 1
            status, body, delay = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if delay:
            time.sleep(delay)
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status=status, content_type="application/json; charset=UTF-8")(environ, start_response)


OK = (200, ok_body(json.dumps(ANSWER)), 0.0)
UNAVAILABLE = (503, error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), 0.0)
RATE = (429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded."), 0.0)
SLOW = (200, ok_body(json.dumps(ANSWER)), 3.0)
GARBAGE = (200, ok_body('{"name": "half an answer", "code": "def classify_symbol(s'), 0.0)
SAFETY = (200, ok_body("", finish="SAFETY"), 0.0)


@pytest.fixture(scope="module")
def server():
    app = FakeGemini()
    srv = localserver.WSGIServer(application=app, threaded=True)
    srv.start()
    yield srv, app
    srv.stop()


@pytest.fixture
def system(server, sandbox, market):
    srv, app = server
    app.requests = 0
    gen = GeminiGenerator(api_key=API_KEY, base_url=srv.url, timeout_s=1.0, max_retries=2, backoff_s=0.05,
                          max_backoff_s=0.2)
    svc = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(max_attempts=5), market=market,
                   sandbox_factory=lambda: sandbox, generator_factory=lambda: gen)
    wire_in_process(svc)
    return svc, Api(svc, ApiKeyAuth({"k": "alice"})), app


def create(api: Api) -> tuple[int, dict]:
    return api.handle("POST", "/api/createStrategyFromPrompt",
                      json.dumps({"query": "stocks up more than 2% today"}).encode(), {"Authorization": "Bearer k"})


@pytest.mark.parametrize("script,requests", [([UNAVAILABLE, OK], 2), ([RATE, UNAVAILABLE, OK], 3),
                                             ([SLOW, OK], 2), ([GARBAGE, OK], 2)],
                         ids=["5xx-then-ok", "429-5xx-then-ok", "timeout-then-ok", "garbage-then-repaired"])
def test_transient_model_failures_end_in_one_strategy(system, script, requests):
    svc, api, app = system
    app.script = list(script)
    status, doc = create(api)
    assert status == 200 and doc["status"] == "done", doc
    assert app.requests == requests
    strategies = svc.store.list("alice")
    assert [s.id for s in strategies] == [doc["result"]["strategy"]["id"]] and strategies[0].code == CODE
    assert svc.bus.dead_letters == []


@pytest.mark.parametrize("script,code,needle,requests", [
    ([UNAVAILABLE], "generator_unavailable", "503", 3),
    ([SLOW], "generator_unavailable", "did not answer within", 3),
    ([GARBAGE], "generation_failed", "not valid JSON", 3),
    ([SAFETY], "refused", "safety filter", 1),
], ids=["5xx-forever", "timeouts-forever", "garbage-forever", "safety-block"])
def test_lasting_model_failures_fail_the_job_clearly(system, script, code, needle, requests):
    svc, api, app = system
    app.script = list(script)
    status, doc = create(api)
    assert status == 422 and doc["status"] == "failed", doc
    assert doc["error"]["code"] == code and needle in doc["error"]["message"], doc["error"]
    assert API_KEY not in json.dumps(doc)
    assert app.requests == requests  # bounded: transport retries, or 3 repair attempts
    assert svc.store.list("alice") == []  # no half-saved strategy
    assert svc.bus.dead_letters == []  # failed on the job, not left to Pub/Sub to dead-letter
