"""Gemini through the official ``google-genai`` SDK: a plain-English idea in, strategy source out.

    gen = GeminiGenerator.from_settings(os.environ)        # the caller passes the environment
    strategy = gen.generate("gap up more than 3% on high volume")
    strategy = gen.generate(prompt, feedback=["line 4, col 5: import of 'pandas' is not allowed"])

The SDK client is built on first use (never at import) and the SDK's own retries are off:
this module retries, so that every failure ends as exactly one of our errors.

=====================================  ========================================================
what happened                          what ``generate`` raises
=====================================  ========================================================
429, 408, 500, 502, 503, 504           retried (exponential backoff with jitter; Retry-After or
                                       RetryInfo.retryDelay honoured; total wait capped), then
                                       :class:`GeneratorUnavailable`
timeout, connection error              retried the same way, then :class:`GeneratorUnavailable`
400 bad API key, 401, 403              :class:`GeneratorUnavailable` naming ``GEMINI_API_KEY``
404 (unknown model)                    :class:`GeneratorUnavailable` naming
                                       ``STRATAGEM_GEMINI_MODEL``
other 4xx                              :class:`GenerationFailed` naming the model and
                                       temperature settings
prompt or answer blocked for safety    :class:`GenerationRefused` (the model's safety filter)
the model answers ``refused: true``    :class:`GenerationRefused` with the model's reason
empty / cut-off / malformed JSON,      :class:`GenerationFailed` saying exactly what was wrong,
missing or mistyped fields             so the pipeline can retry with that feedback
=====================================  ========================================================

The API key travels only in the SDK's ``x-goog-api-key`` header. It is never logged, never
part of ``repr`` and scrubbed from every message we raise (upstream messages can quote it).
"""

from __future__ import annotations

import ast
import email.utils
import json
import logging
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import BadInput
from .base import (
    GeneratedStrategy,
    GenerationFailed,
    GenerationRefused,
    GeneratorUnavailable,
    Parameter,
)
from .prompting import REQUIRED_FIELDS, RESPONSE_SCHEMA, system_prompt, user_turn

__all__ = [
    "DEFAULT_MODEL",
    "ENV_API_KEY",
    "ENV_API_KEY_FALLBACK",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "ENV_TEMPERATURE",
    "ENV_TIMEOUT",
    "GeminiGenerator",
    "parse_answer",
    "strategy_from_answer",
]

log = logging.getLogger(__name__)

ENV_API_KEY = "GEMINI_API_KEY"
ENV_API_KEY_FALLBACK = "GOOGLE_API_KEY"
ENV_MODEL = "STRATAGEM_GEMINI_MODEL"
ENV_TEMPERATURE = "STRATAGEM_GEMINI_TEMPERATURE"
ENV_BASE_URL = "STRATAGEM_GEMINI_BASE_URL"
ENV_TIMEOUT = "STRATAGEM_GEMINI_TIMEOUT_S"

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_API_VERSION = "v1beta"

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SAFETY_REASONS = frozenset({"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                            "MODEL_ARMOR", "JAILBREAK"})
_OK_FINISH = frozenset({"", "STOP", "FINISH_REASON_UNSPECIFIED"})
_KEY_PATTERN = re.compile(r"AIza[0-9A-Za-z_\-]{20,}")
_MAX_UPSTREAM_MESSAGE = 300
_REMEMBERED_PROMPTS = 64


class GeminiGenerator:
    """The :class:`~stratagem.generation.base.Generator` backed by Gemini (``name = "gemini"``).

    ``client`` injects a ready ``google.genai.Client`` (otherwise one is built on first use from
    ``api_key``, ``base_url``, ``api_version`` and ``timeout_s``). ``sleep`` and ``jitter`` are
    injectable so tests can observe the backoff without waiting.
    """

    name = "gemini"

    def __init__(self, api_key: str | None = None, model: str = DEFAULT_MODEL,
                 temperature: float = DEFAULT_TEMPERATURE, *, base_url: str | None = None,
                 api_version: str | None = DEFAULT_API_VERSION, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES, backoff_s: float = 1.0, max_backoff_s: float = 16.0,
                 max_total_wait_s: float = 60.0, max_output_tokens: int | None = None,
                 client: Any | None = None, sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        key = (api_key or "").strip()
        if not key and client is None:
            raise GeneratorUnavailable(f"no Gemini API key: set {ENV_API_KEY} (or {ENV_API_KEY_FALLBACK}) to a key "
                                       "from https://aistudio.google.com/apikey")
        if not isinstance(model, str) or not model.strip():
            raise BadInput(f"the Gemini model name is empty: set {ENV_MODEL}, e.g. {DEFAULT_MODEL!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0.0 <= temperature <= 2.0:
            raise BadInput(f"{ENV_TEMPERATURE} must be a number between 0 and 2, got {temperature!r}")
        if not timeout_s or timeout_s <= 0:
            raise BadInput(f"{ENV_TIMEOUT} must be a positive number of seconds, got {timeout_s!r}")
        if max_retries < 0:
            raise BadInput(f"max_retries must be >= 0, got {max_retries!r}")
        self._api_key = key
        self.model = model.strip()
        self.temperature = float(temperature)
        self.base_url = base_url.strip().rstrip("/") if base_url and base_url.strip() else None
        self.api_version = api_version
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_total_wait_s = float(max_total_wait_s)
        self.max_output_tokens = max_output_tokens
        self._client = client
        self._config: Any = None
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self._previous: OrderedDict[str, str] = OrderedDict()
        #: Token counts of the last successful call (``usageMetadata``), for logs and metrics.
        self.last_usage: dict[str, Any] = {}

    # -- construction from settings --------------------------------------------------------
    @classmethod
    def from_settings(cls, env: Mapping[str, str], **overrides: Any) -> GeminiGenerator:
        """Build from an environment mapping (the caller passes ``os.environ``); keyword
        arguments win over the environment, which wins over the defaults."""
        kwargs: dict[str, Any] = {}
        key = (env.get(ENV_API_KEY) or "").strip() or (env.get(ENV_API_KEY_FALLBACK) or "").strip()
        if key:
            kwargs["api_key"] = key
        if (env.get(ENV_MODEL) or "").strip():
            kwargs["model"] = env[ENV_MODEL].strip()
        if (env.get(ENV_TEMPERATURE) or "").strip():
            kwargs["temperature"] = _number(env, ENV_TEMPERATURE, "a number between 0 and 2")
        if (env.get(ENV_BASE_URL) or "").strip():
            kwargs["base_url"] = env[ENV_BASE_URL].strip()
        if (env.get(ENV_TIMEOUT) or "").strip():
            kwargs["timeout_s"] = _number(env, ENV_TIMEOUT, "a positive number of seconds")
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"GeminiGenerator(model={self.model!r}, base_url={self.base_url!r})"

    # -- the Generator protocol ------------------------------------------------------------
    def generate(self, prompt: str, feedback: list[str] | None = None) -> GeneratedStrategy:
        """One model call (with transport retries) turned into a :class:`GeneratedStrategy`.

        ``feedback`` (the exact errors of earlier attempts) is appended to the user turn,
        together with the code this generator produced last for the same prompt.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadInput("the prompt is empty: describe a trading idea, e.g. "
                           "'stocks that gap up more than 3% on high volume'")
        previous = self._recall(prompt) if feedback else None
        response = self._call(user_turn(prompt, feedback, previous))
        answer = parse_answer(_response_text(response))
        strategy = strategy_from_answer(answer, prompt=prompt, generator=self.name)
        self._remember(prompt, strategy.code)
        return strategy

    # -- SDK plumbing ----------------------------------------------------------------------
    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                genai, types = _sdk()
                options = types.HttpOptions(base_url=self.base_url, api_version=self.api_version,
                                            timeout=max(1, round(self.timeout_s * 1000)))
                problem = None
                try:
                    self._client = genai.Client(api_key=self._api_key, http_options=options)
                except Exception as exc:  # noqa: BLE001 - any construction failure is "unavailable"
                    problem = f"could not create the Gemini client: {self._scrub(str(exc))}"
                if problem:
                    raise GeneratorUnavailable(problem)
            if self._config is None:
                _, types = _sdk()
                extra = {"max_output_tokens": self.max_output_tokens} if self.max_output_tokens else {}
                self._config = types.GenerateContentConfig(
                    system_instruction=system_prompt(), temperature=self.temperature,
                    response_mime_type="application/json", response_schema=RESPONSE_SCHEMA, **extra)
            return self._client

    def _call(self, contents: str) -> Any:
        client = self._get_client()
        waited = 0.0
        attempt = 0
        while True:
            failure: tuple[bool, float | None, Exception] | None = None
            try:
                response = client.models.generate_content(model=self.model, contents=contents, config=self._config)
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                failure = self._classify(exc, attempt + 1)
            if failure is None:
                self.last_usage = _usage(response)
                if attempt:
                    log.info("Gemini call succeeded after %d retries", attempt)
                return response
            # Raised outside the except block on purpose: the SDK's exception (whose text may
            # quote the key) must not ride along as __context__.
            retry, hint, error = failure
            if not retry or attempt >= self.max_retries:
                raise error
            remaining = self.max_total_wait_s - waited
            if hint is not None:
                delay = hint
                if delay > remaining:
                    raise type(error)(f"{error}; the server asked to wait {delay:g} s, more than the "
                                      f"remaining retry budget of {max(0.0, remaining):g} s")
            else:
                # Exponential backoff with "equal jitter": half fixed, half random.
                base = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
                delay = base * (0.5 + 0.5 * self._jitter())
                if delay > remaining:
                    if remaining <= 0:
                        raise error
                    delay = remaining
            attempt += 1
            log.warning("Gemini call failed (%s); retry %d of %d in %.2f s",
                        _first_line(str(error)), attempt, self.max_retries, delay)
            if delay > 0:
                self._sleep(delay)
            waited += delay

    def _classify(self, exc: Exception, attempts: int) -> tuple[bool, float | None, Exception]:
        """(retry?, server-requested delay, the error to raise if we stop here)."""
        from google.genai import (
            errors as genai_errors,  # the SDK is loaded once a call was made
        )

        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        if isinstance(exc, genai_errors.APIError):
            code = int(exc.code or 0)
            status = f"{code} {exc.status}" if exc.status else str(code)
            message = self._scrub(str(exc.message or "")).strip()[:_MAX_UPSTREAM_MESSAGE]
            said = f"{status}: {message}" if message else status
            if code in RETRYABLE_STATUS:
                hint = _retry_after(exc)
                if code == 429:
                    what = (f"Gemini rate limit or quota exceeded ({said}) after {tries}; wait and try again, or "
                            f"use a key with more quota ({ENV_API_KEY})")
                elif code == 408:
                    what = f"Gemini timed out the request ({said}) after {tries}"
                else:
                    what = f"Gemini is unavailable ({said}) after {tries}; try again later"
                return True, hint, GeneratorUnavailable(what)
            if code in (401, 403) or _is_bad_key(exc):
                return False, None, GeneratorUnavailable(
                    f"Gemini rejected the API key ({said}): set {ENV_API_KEY} (or {ENV_API_KEY_FALLBACK}) to a valid "
                    "key from https://aistudio.google.com/apikey with the Generative Language API enabled")
            if code == 404:
                where = f" at {ENV_BASE_URL}={self.base_url}" if self.base_url else ""
                return False, None, GeneratorUnavailable(
                    f"Gemini model {self.model!r} was not found{where} ({said}): set {ENV_MODEL} to an available "
                    f"model such as {DEFAULT_MODEL!r}" + (f" or fix {ENV_BASE_URL}" if self.base_url else ""))
            if 400 <= code < 500:
                return False, None, GenerationFailed(
                    f"Gemini rejected the request ({said}); check {ENV_MODEL}={self.model!r} and "
                    f"{ENV_TEMPERATURE}={self.temperature:g}")
            return False, None, GeneratorUnavailable(f"Gemini failed ({said})")
        kind = _transport_kind(exc)
        where = self.base_url or "the Gemini API"
        if kind == "timeout":
            return True, None, GeneratorUnavailable(
                f"Gemini did not answer within {self.timeout_s:g} s ({tries}); try again later or raise {ENV_TIMEOUT}")
        if kind == "network":
            return True, None, GeneratorUnavailable(
                f"cannot reach {where} ({type(exc).__name__}: {self._scrub(str(exc))[:200]}) after {tries}; "
                f"check the network" + (f" and {ENV_BASE_URL}" if self.base_url else ""))
        if isinstance(exc, genai_errors.UnknownApiResponseError):
            return False, None, GenerationFailed("Gemini's HTTP response was not valid JSON")
        if isinstance(exc, (GeneratorUnavailable, GenerationFailed, GenerationRefused)):
            return False, None, exc
        return False, None, GeneratorUnavailable(
            f"the Gemini call failed: {type(exc).__name__}: {self._scrub(str(exc))[:_MAX_UPSTREAM_MESSAGE]}")

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return _KEY_PATTERN.sub("[redacted]", text)

    def _recall(self, prompt: str) -> str | None:
        with self._lock:
            return self._previous.get(prompt.strip())

    def _remember(self, prompt: str, code: str) -> None:
        with self._lock:
            key = prompt.strip()
            self._previous[key] = code
            self._previous.move_to_end(key)
            while len(self._previous) > _REMEMBERED_PROMPTS:
                self._previous.popitem(last=False)


# ------------------------------------------------------------------------------------------
# Answer parsing (pure functions: tested without a server too)
# ------------------------------------------------------------------------------------------
def parse_answer(text: str) -> dict[str, Any]:
    """The model's JSON answer as a checked dict.

    Raises :class:`GenerationRefused` when the model refused, and :class:`GenerationFailed`
    naming every missing or mistyped field when the answer is incomplete.
    """
    raw = (text or "").strip()
    if not raw:
        raise GenerationFailed("Gemini returned an empty answer: expected a JSON object with the fields "
                               + ", ".join(REQUIRED_FIELDS))
    raw = _strip_fence(raw)
    try:
        answer = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise GenerationFailed(f"the answer is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                               f"it starts with {raw[:80]!r}") from None
    if not isinstance(answer, dict):
        raise GenerationFailed(f"the answer must be a JSON object with the fields {', '.join(REQUIRED_FIELDS)}, "
                               f"got a JSON {_json_type(answer)}")
    refused = answer.get("refused")
    if refused is True:
        reason = answer.get("refusal_reason")
        reason = reason.strip() if isinstance(reason, str) else ""
        raise GenerationRefused(reason or "the model declined the request without giving a reason")
    problems: list[str] = []
    missing = [f for f in REQUIRED_FIELDS if f not in answer and f != "refusal_reason"]
    if missing:
        problems.append("missing field" + ("s " if len(missing) > 1 else " ") + ", ".join(repr(f) for f in missing))
    if "refused" in answer and refused is not False:
        problems.append(f"'refused' must be true or false, got {_json_type(refused)}")
    for f in ("name", "description", "explanation", "code"):
        if f in answer and not isinstance(answer[f], str):
            problems.append(f"{f!r} must be a string, got {_json_type(answer[f])}")
    if isinstance(answer.get("code"), str) and not _strip_fence(answer["code"]).strip():
        problems.append("'code' is empty")
    params = answer.get("parameters")
    if "parameters" in answer:
        if not isinstance(params, list):
            problems.append(f"'parameters' must be a list of {{name, value, meaning}} objects, got {_json_type(params)}")
        else:
            for i, p in enumerate(params):
                if not isinstance(p, dict):
                    problems.append(f"parameters[{i}] must be an object with name, value, meaning, got {_json_type(p)}")
                    continue
                lacking = [k for k in ("name", "value", "meaning") if k not in p]
                if lacking:
                    problems.append(f"parameters[{i}] is missing " + ", ".join(repr(k) for k in lacking))
                elif not isinstance(p["name"], str) or not p["name"].strip():
                    problems.append(f"parameters[{i}].name must be a non-empty string")
    if problems:
        raise GenerationFailed("the model's answer is incomplete: " + "; ".join(problems))
    return answer


def strategy_from_answer(answer: dict[str, Any], *, prompt: str = "", generator: str = "gemini") -> GeneratedStrategy:
    """A :class:`GeneratedStrategy` from a checked answer. Parameter values come from the code
    itself when the constant exists there (the code is the source of truth), else from the
    answer; with no parameters listed, the code's UPPER_CASE constants are used."""
    code = _strip_fence(answer["code"]).strip("\n") + "\n"
    constants = _module_constants(code)
    params: list[Parameter] = []
    for p in answer.get("parameters") or []:
        name = p["name"].strip()
        value = constants[name] if name in constants else _literal(p.get("value"))
        params.append(Parameter(name=name, value=value, meaning=str(p.get("meaning") or "").strip()))
    if not params:
        params = [Parameter(name=n, value=v, meaning="") for n, v in constants.items()]
    name = answer["name"].strip() or (prompt.strip()[:60] if prompt else "generated strategy")
    return GeneratedStrategy(name=name[:80], description=answer["description"].strip(), code=code,
                             parameters=params, explanation=answer["explanation"].strip(), generator=generator)


def _response_text(response: Any) -> str:
    """The answer text of a ``GenerateContentResponse``; safety blocks become refusals."""
    feedback = getattr(response, "prompt_feedback", None)
    block = _enum_name(getattr(feedback, "block_reason", None)) if feedback is not None else ""
    if block:
        detail = getattr(feedback, "block_reason_message", None)
        raise GenerationRefused(f"the request was blocked by the model's safety filter ({block}"
                                + (f": {detail}" if detail else "") + "); describe the idea as a rule over "
                                "prices, volume, fundamentals or earnings")
    candidates = getattr(response, "candidates", None) or []
    if not candidates:
        raise GenerationFailed("Gemini returned no candidates (an empty response)")
    cand = candidates[0]
    finish = _enum_name(getattr(cand, "finish_reason", None))
    if finish in SAFETY_REASONS:
        raise GenerationRefused(f"the request was blocked by the model's safety filter (finish reason {finish}); "
                                "describe the idea as a rule over prices, volume, fundamentals or earnings")
    content = getattr(cand, "content", None)
    parts = getattr(content, "parts", None) or []
    text = "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))
    if finish == "MAX_TOKENS":
        raise GenerationFailed("the answer was cut off at the output token limit (finish reason MAX_TOKENS); "
                               "write shorter code")
    if finish not in _OK_FINISH:
        raise GenerationFailed(f"Gemini stopped early (finish reason {finish}) without a usable answer")
    if not text.strip():
        raise GenerationFailed(f"Gemini returned an empty answer (finish reason {finish or 'unknown'}): expected a "
                               "JSON object with the fields " + ", ".join(REQUIRED_FIELDS))
    return text


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _sdk() -> tuple[Any, Any]:
    try:
        from google import genai
        from google.genai import types
    except ImportError:
        raise GeneratorUnavailable("the google-genai package is not installed: pip install google-genai") from None
    return genai, types


def _number(env: Mapping[str, str], name: str, expected: str) -> float:
    raw = env[name].strip()
    try:
        return float(raw)
    except ValueError:
        raise BadInput(f"{name} must be {expected}, got {raw!r}") from None


def _enum_name(value: Any) -> str:
    if value is None:
        return ""
    name = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
    return str(name).rsplit(".", 1)[-1].upper()


def _transport_kind(exc: BaseException) -> str | None:
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & {"TimeoutException", "ReadTimeout", "ConnectTimeout",
                                                 "WriteTimeout", "PoolTimeout", "Timeout"}:
        return "timeout"
    if isinstance(exc, ConnectionError) or names & {"ConnectError", "NetworkError", "RemoteProtocolError",
                                                    "TransportError", "ProtocolError"}:
        return "network"
    return None


def _is_bad_key(exc: Any) -> bool:
    text = json.dumps(getattr(exc, "details", None), default=str) + " " + str(getattr(exc, "message", "") or "")
    return "API_KEY_INVALID" in text or "API key not valid" in text or "API key expired" in text


_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _retry_after(exc: Any) -> float | None:
    """Seconds the server asked us to wait: the Retry-After header, else RetryInfo.retryDelay."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = None
    if headers is not None:
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except Exception:  # noqa: BLE001 - exotic header containers
            value = None
    if value:
        value = str(value).strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    details = getattr(exc, "details", None)
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details", []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            m = _DELAY.match(str(item.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    return None


def _usage(response: Any) -> dict[str, Any]:
    usage = getattr(response, "usage_metadata", None)
    if usage is None:
        return {}
    out = {}
    for k in ("prompt_token_count", "candidates_token_count", "thoughts_token_count", "total_token_count"):
        v = getattr(usage, k, None)
        if v is not None:
            out[k] = v
    return out


def _strip_fence(text: str) -> str:
    t = text.strip()
    if t.startswith("```"):
        first_nl = t.find("\n")
        t = t[first_nl + 1:] if first_nl != -1 else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value.strip()


_CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _module_constants(code: str) -> dict[str, Any]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    out: dict[str, Any] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for t in targets:
            if isinstance(t, ast.Name) and _CONSTANT_NAME.match(t.id):
                try:
                    out[t.id] = ast.literal_eval(value)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    out[t.id] = ast.unparse(value)
    return out


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
