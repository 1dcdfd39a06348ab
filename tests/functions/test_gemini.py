"""GeminiGenerator against a local fake Gemini HTTP server, through the REAL google-genai client.

The fake server (a WSGI app on pytest-localserver's ``WSGIServer``) answers
``POST /{version}/models/{model}:generateContent`` with scripted, recorded-style responses
(``candidates[0].content.parts[0].text``, ``finishReason``, ``usageMetadata``) or errors in
the Google API error format, and records every request so tests can assert what was sent.
Nothing in the SDK is mocked; only ``sleep`` is injected so backoff is observed, not waited.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("google.genai")
localserver = pytest.importorskip("pytest_localserver.http")

from stratagem.errors import BadInput
from stratagem.generation.base import (
    GeneratedStrategy,
    GenerationFailed,
    GenerationRefused,
    GeneratorUnavailable,
)
from stratagem.generation.gemini import (
    ENV_API_KEY,
    ENV_MODEL,
    GeminiGenerator,
    parse_answer,
)
from stratagem.generation.prompting import (
    DATA_FUNCTIONS,
    NUMPY_NAMES,
    REQUIRED_FIELDS,
    RESPONSE_SCHEMA,
    WORKED_EXAMPLES,
    system_prompt,
    user_turn,
)
from stratagem.sandbox.validator import validate
from werkzeug.wrappers import Request, Response

API_KEY = "AIzaSyTEST-not-a-real-key-0123456789abcd"
MODEL = "gemini-2.5-flash"
PROMPT = "Find stocks that gap up by more than 3% with high volume"

GOOD_CODE = """\
GAP_MIN = 0.03
VOLUME_MULTIPLE = 1.5


def classify_symbol(symbol):
    data = get_price_data(symbol, timeframe='1d', days=21)
    closes, volumes = data['close'], data['volume']
    if len(closes) < 21 or closes[-2] <= 0:
        return False
    avg_volume = sum(volumes[-21:-1]) / 20
    if avg_volume <= 0:
        return False
    gap = data['open'][-1] / closes[-2] - 1.0
    signal = gap > GAP_MIN and volumes[-1] / avg_volume > VOLUME_MULTIPLE
    return {'signal': signal, 'score': gap * 100.0}
"""

BAD_CODE = """\
import pandas as pd

GAP_MIN = 0.03


def classify_symbol(symbol):
    return False
"""


def answer(code: str = GOOD_CODE, **changes: Any) -> dict:
    base = {
        "refused": False, "refusal_reason": "", "name": "Gap up on volume",
        "description": "Gap over 3% with volume over 1.5x average.",
        "explanation": "Gap = open / previous close - 1; volume vs previous 20 sessions.",
        "parameters": [{"name": "GAP_MIN", "value": "0.03", "meaning": "minimum gap"},
                       {"name": "VOLUME_MULTIPLE", "value": "1.5", "meaning": "volume multiple"}],
        "code": code,
    }
    base.update(changes)
    return base


# --------------------------------------------------------------------------------------
# The fake Gemini server
# --------------------------------------------------------------------------------------
def ok_body(text: str, finish: str = "STOP") -> dict:
    """A recorded-style generateContent response."""
    return {
        "candidates": [{
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": finish, "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}],
        }],
        "usageMetadata": {"promptTokenCount": 3512, "candidatesTokenCount": 402, "thoughtsTokenCount": 250,
                          "totalTokenCount": 4164},
        "modelVersion": MODEL, "responseId": "fake-response-1",
    }


def error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    err: dict = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


class Reply:
    def __init__(self, body: Any, status: int = 200, headers: dict | None = None, delay: float = 0.0) -> None:
        self.body, self.status, self.headers, self.delay = body, status, headers or {}, delay


def ok(payload: dict | str, finish: str = "STOP") -> Reply:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return Reply(ok_body(text, finish))


def error(code: int, status: str, message: str, details: list | None = None, headers: dict | None = None) -> Reply:
    return Reply(error_body(code, status, message, details), status=code, headers=headers)


class FakeGemini:
    """WSGI app: replies from a script (the last reply repeats), records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[SimpleNamespace] = []
        self.lock = threading.Lock()

    def reset(self, *replies: Reply) -> None:
        with self.lock:
            self.script = list(replies)
            self.requests = []

    def __call__(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        raw = req.get_data()
        with self.lock:
            self.requests.append(SimpleNamespace(path=req.path, query=req.query_string.decode(), method=req.method,
                                                 headers=dict(req.headers), body=json.loads(raw or b"{}")))
            reply = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if reply.delay:
            time.sleep(reply.delay)
        body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        resp = Response(body, status=reply.status, content_type="application/json; charset=UTF-8",
                        headers=reply.headers)
        return resp(environ, start_response)


@pytest.fixture(scope="module")
def fake_server():
    app = FakeGemini()
    server = localserver.WSGIServer(application=app, threaded=True)
    server.start()
    yield server, app
    server.stop()


@pytest.fixture
def fake(fake_server) -> FakeGemini:
    _, app = fake_server
    app.reset(ok(answer()))
    return app


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(round(seconds, 6))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="module")
def shared_client(fake_server):
    """One real SDK client for the tests that use the default transport settings (building a
    client loads TLS certificates: ~0.3 s each)."""
    from google import genai
    from google.genai import types

    server, _ = fake_server
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(
        base_url=server.url, api_version="v1beta", timeout=2000))


@pytest.fixture
def make(fake_server, sleeps, shared_client):
    server, _ = fake_server

    def build(**kw: Any) -> GeminiGenerator:
        if not {"base_url", "timeout_s", "api_key", "client"} & set(kw):
            kw["client"] = shared_client
        kw.setdefault("api_key", API_KEY)
        kw.setdefault("base_url", server.url)
        kw.setdefault("timeout_s", 2.0)
        kw.setdefault("sleep", sleeps)
        kw.setdefault("jitter", lambda: 0.0)
        return GeminiGenerator(**kw)

    return build


def assert_no_key(exc: BaseException, gen: GeminiGenerator | None = None) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'message', '')} {exc.__cause__!r} {exc.__context__!r}"
    assert API_KEY not in text
    assert exc.__cause__ is None or API_KEY not in repr(exc.__cause__)
    if gen is not None:
        assert API_KEY not in repr(gen)


# --------------------------------------------------------------------------------------
# Success and what is sent
# --------------------------------------------------------------------------------------
def test_good_answer_and_the_request_sent(make, fake):
    gen = make(api_key=API_KEY)  # its own client, built from the settings
    assert gen._client is None  # nothing built until the first call
    s = gen.generate(PROMPT)
    assert isinstance(s, GeneratedStrategy)
    assert (s.name, s.generator) == ("Gap up on volume", "gemini")
    assert s.code == GOOD_CODE
    assert validate(s.code) == []
    assert [(p.name, p.value, p.meaning) for p in s.parameters] == [
        ("GAP_MIN", 0.03, "minimum gap"), ("VOLUME_MULTIPLE", 1.5, "volume multiple")]
    assert s.explanation.startswith("Gap = open")
    assert gen.last_usage["total_token_count"] == 4164

    (req,) = fake.requests
    assert req.method == "POST"
    assert req.path == f"/v1beta/models/{MODEL}:generateContent"
    # The key travels in the header only: not in the URL, not in the body.
    assert req.headers.get("X-Goog-Api-Key") == API_KEY
    assert API_KEY not in req.path + req.query and API_KEY not in json.dumps(req.body)
    body = req.body
    assert body["systemInstruction"]["parts"][0]["text"] == system_prompt()
    assert body["contents"][-1]["role"] == "user"
    assert body["contents"][-1]["parts"][0]["text"] == f"Trading idea: {PROMPT}"
    cfg = body["generationConfig"]
    assert cfg["temperature"] == 0.2
    assert cfg["responseMimeType"] == "application/json"
    schema = cfg["responseSchema"]
    assert schema["type"] == "OBJECT" and sorted(schema["required"]) == sorted(REQUIRED_FIELDS)
    assert set(schema["properties"]) == set(REQUIRED_FIELDS)
    assert API_KEY not in repr(gen)


def test_model_and_temperature_are_sent(make, fake):
    make(model="gemini-2.5-pro", temperature=0.7).generate(PROMPT)
    (req,) = fake.requests
    assert req.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert req.body["generationConfig"]["temperature"] == 0.7


def test_repair_loop_second_request_carries_the_first_error(make, fake):
    fake.reset(ok(answer(BAD_CODE)), ok(answer()))
    gen = make()
    first = gen.generate(PROMPT)
    findings = validate(first.code)
    assert findings, "the first answer must fail validation"
    feedback = [str(f) for f in findings]
    second = gen.generate(PROMPT, feedback=feedback)
    assert validate(second.code) == []
    assert len(fake.requests) == 2
    first_text = fake.requests[0].body["contents"][-1]["parts"][0]["text"]
    repair_text = fake.requests[1].body["contents"][-1]["parts"][0]["text"]
    assert "Problems with your previous answer" not in first_text
    assert repair_text.startswith(f"Trading idea: {PROMPT}")
    assert "Problems with your previous answer" in repair_text
    assert feedback[0] in repair_text and "import of 'pandas' is not allowed" in repair_text
    assert "import pandas as pd" in repair_text  # the code being repaired is shown too


def test_answer_wrapped_in_markdown_fence_is_accepted(make, fake):
    fake.reset(ok("```json\n" + json.dumps(answer()) + "\n```"))
    assert make().generate(PROMPT).code == GOOD_CODE


def test_parameter_values_come_from_the_code(make, fake):
    params = [{"name": "GAP_MIN", "value": "0.05", "meaning": "minimum gap"}]
    fake.reset(ok(answer(parameters=params)))
    (p,) = make().generate(PROMPT).parameters
    assert (p.name, p.value) == ("GAP_MIN", 0.03)


# --------------------------------------------------------------------------------------
# Bad answers -> GenerationFailed (retryable by the pipeline) / GenerationRefused
# --------------------------------------------------------------------------------------
def test_malformed_json(make, fake):
    fake.reset(ok('{"name": "x", "code": "def classify_symbol(s):'))
    with pytest.raises(GenerationFailed, match=r"not valid JSON \(Unterminated string.*line 1, column"):
        make().generate(PROMPT)


def test_empty_text(make, fake):
    fake.reset(ok(""))
    with pytest.raises(GenerationFailed, match="empty answer") as info:
        make().generate(PROMPT)
    assert info.value.exit_code == 1


def test_missing_fields_are_named(make, fake):
    bad = answer()
    del bad["code"], bad["explanation"]
    fake.reset(ok(bad))
    with pytest.raises(GenerationFailed) as info:
        make().generate(PROMPT)
    assert "missing fields 'explanation', 'code'" in info.value.message


def test_mistyped_fields_are_named(make, fake):
    fake.reset(ok(answer(parameters="GAP_MIN=0.03", code="   ")))
    with pytest.raises(GenerationFailed) as info:
        make().generate(PROMPT)
    assert "'code' is empty" in info.value.message
    assert "'parameters' must be a list of {name, value, meaning} objects, got string" in info.value.message


def test_answer_must_be_an_object(make, fake):
    fake.reset(ok("[1, 2]"))
    with pytest.raises(GenerationFailed, match="must be a JSON object .* got a JSON array"):
        make().generate(PROMPT)


def test_cut_off_answer(make, fake):
    fake.reset(ok('{"name": "Gap', finish="MAX_TOKENS"))
    with pytest.raises(GenerationFailed, match="MAX_TOKENS"):
        make().generate(PROMPT)


def test_model_refuses(make, fake):
    fake.reset(ok({"refused": True, "refusal_reason": "Intraday bars are not available; daily bars only.",
                   "name": "", "description": "", "explanation": "", "parameters": [], "code": ""}))
    with pytest.raises(GenerationRefused, match="^Intraday bars are not available") as info:
        make().generate("first 5 minutes breakout")
    assert info.value.exit_code == 1 and info.value.code == "refused"


def test_prompt_blocked_by_safety_filter(make, fake):
    fake.reset(Reply({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}}))
    with pytest.raises(GenerationRefused, match=r"blocked by the model's safety filter \(SAFETY\)"):
        make().generate(PROMPT)
    assert len(fake.requests) == 1  # a block is an answer: no retry


def test_answer_blocked_by_safety_filter(make, fake):
    fake.reset(Reply({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]}]}))
    with pytest.raises(GenerationRefused, match=r"blocked by the model's safety filter \(finish reason SAFETY\)"):
        make().generate(PROMPT)


# --------------------------------------------------------------------------------------
# Transport failures: retries, backoff, budgets, messages
# --------------------------------------------------------------------------------------
def test_429_then_success_honours_retry_after(make, fake, sleeps):
    fake.reset(error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                     headers={"Retry-After": "3"}), ok(answer()))
    s = make().generate(PROMPT)
    assert s.code == GOOD_CODE
    assert len(fake.requests) == 2
    assert sleeps == [3.0]


def test_429_honours_retry_info_delay(make, fake, sleeps):
    retry_info = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                   {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},
                  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    fake.reset(error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", retry_info), ok(answer()))
    make().generate(PROMPT)
    assert sleeps == [7.0]


def test_retry_after_beyond_the_budget_gives_up_at_once(make, fake, sleeps):
    fake.reset(error(429, "RESOURCE_EXHAUSTED", "quota", headers={"Retry-After": "120"}), ok(answer()))
    with pytest.raises(GeneratorUnavailable, match="asked to wait 120 s, more than the remaining retry budget of 60 s"):
        make().generate(PROMPT)
    assert sleeps == [] and len(fake.requests) == 1


def test_500_and_503_then_success_with_exponential_backoff(make, fake, sleeps):
    fake.reset(error(500, "INTERNAL", "An internal error has occurred."),
               error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
               ok(answer()))
    assert make().generate(PROMPT).code == GOOD_CODE
    assert len(fake.requests) == 3
    assert sleeps == [0.5, 1.0]  # backoff 1 s, 2 s with the jitter at its minimum (half)


def test_jitter_spreads_the_backoff(make, fake, sleeps):
    fake.reset(error(503, "UNAVAILABLE", "overloaded"), ok(answer()))
    make(jitter=lambda: 1.0).generate(PROMPT)
    assert sleeps == [1.0]


def test_persistent_503_is_unavailable(make, fake, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    fake.reset(error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    gen = make(max_retries=3)
    with pytest.raises(GeneratorUnavailable) as info:
        gen.generate(PROMPT)
    assert len(fake.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    msg = info.value.message
    assert "Gemini is unavailable (503 UNAVAILABLE: The model is overloaded" in msg and "after 4 attempts" in msg
    assert info.value.exit_code == 3
    assert_no_key(info.value, gen)
    retries = [r.getMessage() for r in caplog.records if r.name == "stratagem.generation.gemini"]
    assert len(retries) == 3 and retries[0].startswith("Gemini call failed (Gemini is unavailable (503 UNAVAILABLE")
    assert API_KEY not in caplog.text


def test_total_wait_is_capped(make, fake, sleeps):
    fake.reset(error(503, "UNAVAILABLE", "overloaded"))
    with pytest.raises(GeneratorUnavailable):
        make(max_retries=10, max_total_wait_s=2.0).generate(PROMPT)
    assert sum(sleeps) == pytest.approx(2.0) and len(sleeps) == 3  # 0.5 + 1.0 + 0.5 (clipped)


def test_timeout_is_retried_then_unavailable(make, fake, sleeps):
    fake.reset(Reply(ok_body(json.dumps(answer())), delay=1.0))
    gen = make(timeout_s=0.2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable) as info:
        gen.generate(PROMPT)
    assert time.monotonic() - started < 1.5
    assert "Gemini did not answer within 0.2 s (2 attempts)" in info.value.message
    assert "STRATAGEM_GEMINI_TIMEOUT_S" in info.value.message
    assert sleeps == [0.5]
    deadline = time.monotonic() + 2
    while len(fake.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fake.requests) == 2


def test_connection_refused_is_retried_then_unavailable(make, sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = make(base_url=f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(GeneratorUnavailable, match=rf"cannot reach http://127.0.0.1:{port} .*after 3 attempts"):
        gen.generate(PROMPT)
    assert len(sleeps) == 2


# --------------------------------------------------------------------------------------
# Configuration errors name the setting to fix and never show the key
# --------------------------------------------------------------------------------------
def test_401_names_the_key_setting_and_hides_the_key(make, fake, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    fake.reset(error(401, "UNAUTHENTICATED", f"Request had invalid authentication credentials: {API_KEY}"))
    gen = make()
    with pytest.raises(GeneratorUnavailable) as info:
        gen.generate(PROMPT)
    msg = info.value.message
    assert msg.startswith("Gemini rejected the API key (401 UNAUTHENTICATED: Request had invalid authentication")
    assert ENV_API_KEY in msg and "[redacted]" in msg
    assert_no_key(info.value, gen)
    assert len(fake.requests) == 1 and sleeps == []
    assert API_KEY not in caplog.text


def test_400_invalid_key_names_the_key_setting(make, fake):
    fake.reset(error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]))
    with pytest.raises(GeneratorUnavailable, match=f"Gemini rejected the API key .*set {ENV_API_KEY}") as info:
        make().generate(PROMPT)
    assert_no_key(info.value)


def test_403_names_the_key_setting(make, fake):
    fake.reset(error(403, "PERMISSION_DENIED", f"Permission denied: Consumer 'api_key:{API_KEY}' has been suspended."))
    with pytest.raises(GeneratorUnavailable, match=ENV_API_KEY) as info:
        make().generate(PROMPT)
    assert_no_key(info.value)


def test_404_unknown_model_names_the_model_setting(make, fake):
    fake.reset(error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta, or is not supported "
                                       "for generateContent."))
    with pytest.raises(GeneratorUnavailable, match=f"model 'gemini-9' was not found.*set {ENV_MODEL}"):
        make(model="gemini-9").generate(PROMPT)


def test_other_400_is_a_generation_failure_naming_settings(make, fake):
    fake.reset(error(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature'"))
    with pytest.raises(GenerationFailed, match="STRATAGEM_GEMINI_MODEL='gemini-2.5-flash' and "
                                               "STRATAGEM_GEMINI_TEMPERATURE=0.2"):
        make().generate(PROMPT)


def test_from_settings_reads_only_the_given_mapping(fake_server, fake):
    server, _ = fake_server
    env = {"GOOGLE_API_KEY": API_KEY, "STRATAGEM_GEMINI_MODEL": "gemini-2.5-pro",
           "STRATAGEM_GEMINI_TEMPERATURE": "0.5", "STRATAGEM_GEMINI_BASE_URL": server.url + "/",
           "STRATAGEM_GEMINI_TIMEOUT_S": "3"}
    gen = GeminiGenerator.from_settings(env)
    assert (gen.model, gen.temperature, gen.base_url, gen.timeout_s) == ("gemini-2.5-pro", 0.5, server.url, 3.0)
    assert GeminiGenerator.from_settings(env, model="gemini-2.5-flash").model == "gemini-2.5-flash"
    gen.generate(PROMPT)
    assert fake.requests[0].headers["X-Goog-Api-Key"] == API_KEY
    assert GeminiGenerator.from_settings({"GEMINI_API_KEY": "first", "GOOGLE_API_KEY": "second"})._api_key == "first"


def test_from_settings_errors_name_the_setting():
    with pytest.raises(GeneratorUnavailable, match="set GEMINI_API_KEY"):
        GeminiGenerator.from_settings({})
    with pytest.raises(BadInput, match="STRATAGEM_GEMINI_TEMPERATURE must be a number between 0 and 2, got 'hot'"):
        GeminiGenerator.from_settings({"GEMINI_API_KEY": API_KEY, "STRATAGEM_GEMINI_TEMPERATURE": "hot"})
    with pytest.raises(BadInput, match="STRATAGEM_GEMINI_TEMPERATURE must be a number between 0 and 2, got 3.0"):
        GeminiGenerator.from_settings({"GEMINI_API_KEY": API_KEY, "STRATAGEM_GEMINI_TEMPERATURE": "3"})


def test_empty_prompt_is_bad_input(make, fake):
    with pytest.raises(BadInput, match="prompt is empty"):
        make().generate("   ")
    assert fake.requests == []


# --------------------------------------------------------------------------------------
# parse_answer and the user turn (no server)
# --------------------------------------------------------------------------------------
def test_parse_answer_lists_every_problem():
    with pytest.raises(GenerationFailed) as info:
        parse_answer(json.dumps({"refused": "no", "name": 3, "parameters": [{"name": "X"}, 7]}))
    msg = info.value.message
    assert "missing fields 'description', 'explanation', 'code'" in msg
    assert "'refused' must be true or false, got string" in msg
    assert "'name' must be a string, got number" in msg
    assert "parameters[0] is missing 'value', 'meaning'" in msg
    assert "parameters[1] must be an object with name, value, meaning, got number" in msg


def test_refusal_without_reason_still_says_so():
    with pytest.raises(GenerationRefused, match="declined the request without giving a reason"):
        parse_answer('{"refused": true}')


def test_user_turn_bounds_feedback():
    text = user_turn("x" * 5000, [f"problem {i}" for i in range(30)], "code")
    assert "[truncated]" in text and "20. problem 19" in text and "... and 10 more problems" in text
    assert user_turn("idea", None, "old code") == "Trading idea: idea"


# --------------------------------------------------------------------------------------
# The system prompt says only true things about the sandbox
# --------------------------------------------------------------------------------------
_MODULES = ("np.linalg", "np", "math", "statistics", "datetime", "collections", "itertools", "functools")


def _sandbox_names():
    from stratagem.data.pit import PointInTime
    from stratagem.sandbox.guards import curated_modules, make_builtins
    from stratagem.sandbox.validator import ENTRY_POINTS

    modules = curated_modules()
    data = set(PointInTime.functions(SimpleNamespace()))
    return modules, data, set(make_builtins(modules)), set(ENTRY_POINTS)


def test_documented_data_functions_are_exactly_the_sandbox_ones():
    _, data, _, _ = _sandbox_names()
    assert [f.name for f in DATA_FUNCTIONS] == sorted(data, key=[f.name for f in DATA_FUNCTIONS].index)
    assert {f.name for f in DATA_FUNCTIONS} == data
    for f in DATA_FUNCTIONS:
        assert f.signature.startswith(f.name + "(")


def test_every_function_the_prompt_mentions_exists():
    import datetime as real_datetime

    import numpy as np

    modules, data, builtins, entry_points = _sandbox_names()
    prompt = system_prompt()
    alias = {"np": "numpy", "np.linalg": "numpy.linalg"}
    example_defs = set()
    for ex in WORKED_EXAMPLES:
        example_defs |= set(re.findall(r"^def (\w+)\(", ex.answer["code"], re.MULTILINE))

    # module.attr[.attr...] references resolve inside the curated modules
    checked = 0
    for m in re.finditer(r"(?<![\w.])(np|math|statistics|datetime|collections|itertools|functools)((?:\.\w+)+)",
                         prompt):
        obj: Any = modules[alias.get(m.group(1), m.group(1))]
        for part in m.group(2).split(".")[1:]:
            assert hasattr(obj, part), f"the prompt mentions {m.group(0)}, which the sandbox lacks"
            obj = getattr(obj, part)
        checked += 1
    assert checked >= len(NUMPY_NAMES)

    # bare calls are data functions, safe builtins, entry points or the examples' own helpers
    known = data | builtins | entry_points | example_defs
    for name in re.findall(r"(?<![\w.])([A-Za-z_]\w*)\(", prompt):
        assert name in known, f"the prompt calls {name}(), which does not exist in the sandbox"

    # method calls exist on the objects strategies handle
    holders = (dict, list, str, float, int, np.ndarray, memoryview, real_datetime.datetime, real_datetime.date)
    for owner, name in re.findall(r"(\w+|\)|\]|')\.([A-Za-z_]\w*)\(", prompt):
        if owner in _MODULES or owner == "linalg":
            continue  # module functions: checked above
        assert any(hasattr(h, name) for h in holders), f"the prompt calls .{name}(), which nothing provides"


def test_prompt_states_the_conventions():
    p = system_prompt()
    for phrase in ("Gap = today's open / yesterday's close - 1", "a month = 21", "52 weeks = 252",
                   "Wilder's RSI", "Check lengths before indexing", "score = the main measured quantity",
                   "every sequence is empty", "`days` is the number of bars returned"):
        assert phrase in p


def test_schema_matches_the_required_fields():
    assert RESPONSE_SCHEMA["required"] == list(REQUIRED_FIELDS)
    assert set(RESPONSE_SCHEMA["properties"]) == set(REQUIRED_FIELDS)
    for ex in WORKED_EXAMPLES:
        assert list(ex.answer) == list(REQUIRED_FIELDS)


@pytest.mark.parametrize("example", [e for e in WORKED_EXAMPLES if not e.answer["refused"]],
                         ids=lambda e: e.answer["name"])
def test_worked_examples_validate_parse_and_run(example, market):
    from stratagem.data.pit import PointInTime
    from stratagem.data.reference import ReferenceData
    from stratagem.data.store import iso_to_day
    from stratagem.sandbox.runtime import LoadedStrategy, sanitize_result

    ans = example.answer
    assert validate(ans["code"]) == []
    parsed = parse_answer(json.dumps(ans))
    assert parsed == ans
    pit = PointInTime(market, ReferenceData.load_default())
    strategy = LoadedStrategy(ans["code"], pit.functions())
    results = []
    for day in ("2008-10-10", "2010-06-01", "2012-03-01"):
        pit.set_asof(iso_to_day(day))
        for sym in market.symbols:
            results.append(sanitize_result(strategy.classify(sym)))
    assert all(isinstance(sig, bool) for sig, _, _ in results)
    constants = {p["name"] for p in ans["parameters"]}
    assert constants == set(re.findall(r"^([A-Z][A-Z0-9_]*) = ", ans["code"], re.MULTILINE))


def test_refusal_example_parses_as_refusal():
    refusals = [e for e in WORKED_EXAMPLES if e.answer["refused"]]
    assert refusals
    for ex in refusals:
        with pytest.raises(GenerationRefused, match="intraday"):
            parse_answer(json.dumps(ex.answer))
