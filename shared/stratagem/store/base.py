"""The strategy store port: records, the ``StrategyStore`` Protocol and input checks.

A strategy belongs to one user and has a positive integer id (CONTRACT §6) and a list of
versions; the strategy's *current* fields are those of its latest version. Saving an
existing strategy appends a version, so a run can always say which code it executed and
``get(..., version=n)`` can give that code back.

Adapters: :class:`~stratagem.store.memory.MemoryStore` (tests, fakes) and
:class:`~stratagem.store.sqlite.SqliteStore` (the embedded default). The port is shaped
so a Firestore adapter maps onto it one call to one transaction::

    counters/strategies          {next: int}      ids allocated by incrementing in the txn
    strategies/{id}              current fields + userId, version, isAlertActive, ...
    strategies/{id}/versions/{n} one StrategyVersion each (append-only)
    strategies/{id}/runs/{runId} one RunRecord each (upserted by runId)
    requests/{sha(user, reqId)}  {strategyId, version}: idempotent create/save

Every method takes the calling user's id. Another user's strategy is reported exactly
like a missing one (``NotFound("strategy 7 not found")``) so ids leak nothing.

Example::

    >>> from stratagem.store.memory import MemoryStore
    >>> store = MemoryStore()
    >>> s = store.save("u1", -1, name="Gap up", code="def classify_symbol(s):\\n    return False\\n")
    >>> s.id, s.version
    (1, 1)
    >>> store.save("u1", 1, code="def classify_symbol(s):\\n    return True\\n").version
    2
    >>> store.get("u1", 1, version=1).code.endswith("return False\\n")
    True
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ..errors import BadInput, NotFound

# --- limits (what validation promises; messages quote them) ---------------------------
MAX_USER_ID_CHARS = 128
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 10_000
MAX_PROMPT_CHARS = 10_000
MAX_EXPLANATION_CHARS = 50_000
MAX_CODE_BYTES = 200 * 1024
MAX_PARAMETERS_BYTES = 64 * 1024
MAX_REQUEST_ID_CHARS = 128
MAX_RUN_ID_CHARS = 128
MAX_RUN_JSON_BYTES = 256 * 1024
MAX_UNIVERSE_SYMBOLS = 10_000
MAX_SYMBOL_CHARS = 32

NEW_STRATEGY_ID = -1
"""``save(user, NEW_STRATEGY_ID, ...)`` creates, as ``strategyId: -1`` does in the API."""

RUN_MODES = ("backtest", "screen", "replay")
STRATEGY_FIELDS = ("name", "description", "prompt", "code", "parameters", "explanation")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """``2024-05-01T12:00:00.000123Z``: fixed width, so string order is time order."""
    if moment.tzinfo is None:
        raise BadInput(f"timestamps must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def code_sha256(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


# --- records ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StrategyVersion:
    """One saved version of a strategy (append-only)."""

    id: int
    version: int
    name: str
    description: str
    prompt: str
    code: str
    parameters: Any
    explanation: str
    created_at: str
    code_sha256: str

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "code": self.code,
            "parameters": self.parameters,
            "name": self.name,
            "description": self.description,
            "prompt": self.prompt,
            "explanation": self.explanation,
            "createdAt": self.created_at,
            "codeSha256": self.code_sha256,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StrategyVersion:
        return cls(
            id=doc["id"], version=doc["version"], name=doc["name"], description=doc["description"],
            prompt=doc["prompt"], code=doc["code"], parameters=doc["parameters"],
            explanation=doc["explanation"], created_at=doc["createdAt"], code_sha256=doc["codeSha256"],
        )


@dataclass(frozen=True)
class StrategyRecord:
    """A strategy as of one version (the latest unless asked otherwise).

    ``created_at`` is when the strategy was created; ``updated_at`` is the last change
    (a save or an alert change), or the version's creation time for an older version.
    ``alert_universe`` is ``None`` until set: the alert tick then uses its default universe.
    ``versions`` is filled only when asked for (``get(..., include_versions=True)``).
    """

    id: int
    user_id: str
    name: str
    description: str
    prompt: str
    code: str
    parameters: Any
    explanation: str
    is_alert_active: bool
    alert_universe: builtins.list[str] | None
    created_at: str
    updated_at: str
    version: int
    versions: builtins.list[StrategyVersion] | None = None

    @property
    def code_sha256(self) -> str:
        return code_sha256(self.code)

    def to_json(self) -> dict:
        doc = {
            "id": self.id,
            "userId": self.user_id,
            "name": self.name,
            "description": self.description,
            "prompt": self.prompt,
            "code": self.code,
            "parameters": self.parameters,
            "explanation": self.explanation,
            "isAlertActive": self.is_alert_active,
            "alertUniverse": None if self.alert_universe is None else builtins.list(self.alert_universe),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "version": self.version,
        }
        if self.versions is not None:
            doc["versions"] = [v.to_json() for v in self.versions]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StrategyRecord:
        versions = doc.get("versions")
        return cls(
            id=doc["id"], user_id=doc["userId"], name=doc["name"], description=doc["description"],
            prompt=doc["prompt"], code=doc["code"], parameters=doc["parameters"],
            explanation=doc["explanation"], is_alert_active=doc["isAlertActive"],
            alert_universe=doc.get("alertUniverse"), created_at=doc["createdAt"],
            updated_at=doc["updatedAt"], version=doc["version"],
            versions=None if versions is None else [StrategyVersion.from_json(v) for v in versions],
        )


@dataclass(frozen=True)
class RunRecord:
    """One backtest, screen or alert replay of a strategy, pinned to the version it ran.

    ``created_at`` may be left ``None``; the store stamps it. Recording the same
    ``run_id`` for the same strategy again replaces version, mode, params and summary
    (so a run can be recorded when it starts and again when it finishes) and keeps the
    first ``created_at``.
    """

    run_id: str
    strategy_id: int
    version: int
    user_id: str
    mode: str
    params: dict = field(default_factory=dict)
    result_summary: dict = field(default_factory=dict)
    created_at: str | None = None

    def to_json(self) -> dict:
        return {
            "runId": self.run_id,
            "strategyId": self.strategy_id,
            "version": self.version,
            "userId": self.user_id,
            "mode": self.mode,
            "params": self.params,
            "resultSummary": self.result_summary,
            "createdAt": self.created_at,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        return cls(
            run_id=doc["runId"], strategy_id=doc["strategyId"], version=doc["version"],
            user_id=doc["userId"], mode=doc["mode"], params=doc.get("params") or {},
            result_summary=doc.get("resultSummary") or {}, created_at=doc.get("createdAt"),
        )


# --- the port --------------------------------------------------------------------------
@runtime_checkable
class StrategyStore(Protocol):
    """Strategies with versions, alert flags and run records, scoped by user.

    Errors: :class:`~stratagem.errors.BadInput` for malformed input (the message says
    what was expected), :class:`~stratagem.errors.NotFound` for an id the user does not
    own, :class:`~stratagem.errors.InfraUnavailable` when the backing store is down.
    """

    def create(self, user_id: str, *, name: str, code: str, description: str = "", prompt: str = "",
               parameters: Any = None, explanation: str = "",
               request_id: str | None = None) -> StrategyRecord:
        """New strategy at version 1 with a fresh positive id. The same ``request_id``
        from the same user returns the record that request created instead of a second one."""
        ...

    def save(self, user_id: str, strategy_id: int, *, request_id: str | None = None,
             **fields: Any) -> StrategyRecord:
        """CONTRACT §6: ``-1`` creates; an existing id appends a version (fields not given
        are carried over from the current version); any other id is ``NotFound``."""
        ...

    def get(self, user_id: str, strategy_id: int, version: int | None = None, *,
            include_versions: bool = False) -> StrategyRecord: ...

    def list(self, user_id: str) -> builtins.list[StrategyRecord]:
        """The user's strategies at their latest versions, ordered by id."""
        ...

    def versions(self, user_id: str, strategy_id: int) -> builtins.list[StrategyVersion]:
        """All versions, oldest first."""
        ...

    def set_alert(self, user_id: str, strategy_id: int, active: bool,
                  universe: builtins.list[str] | None = None) -> StrategyRecord:
        """Turn alerts on/off; ``universe`` replaces the alert symbols, ``None`` keeps them."""
        ...

    def active_alerts(self) -> builtins.list[StrategyRecord]:
        """Every user's strategies with alerts on, ordered by id (for the alert tick)."""
        ...

    def record_run(self, run: RunRecord) -> RunRecord:
        """Store (or update, same ``run_id``) a run of a version the run's user owns."""
        ...

    def runs(self, user_id: str, strategy_id: int) -> builtins.list[RunRecord]:
        """The strategy's runs, oldest first."""
        ...

    def delete(self, user_id: str, strategy_id: int) -> None:
        """Remove the strategy with its versions, runs and request ids. Ids are not reused."""
        ...


# --- shared behaviour and checks ---------------------------------------------------------
class SaveDispatch:
    """``save`` in terms of ``create`` and the adapter's ``_append_version``."""

    def create(self, user_id: str, *, name: str, code: str, description: str = "", prompt: str = "",
               parameters: Any = None, explanation: str = "",
               request_id: str | None = None) -> StrategyRecord:  # pragma: no cover - adapters
        raise NotImplementedError

    def _append_version(self, user_id: str, strategy_id: int, fields: dict[str, Any],
                        request_id: str | None) -> StrategyRecord:  # pragma: no cover - adapters
        raise NotImplementedError

    def save(self, user_id: str, strategy_id: int, *, request_id: str | None = None,
             **fields: Any) -> StrategyRecord:
        check_user_id(user_id)
        unknown = sorted(set(fields) - set(STRATEGY_FIELDS))
        if unknown:
            raise BadInput(f"unknown strategy field(s) {', '.join(map(repr, unknown))}; "
                           f"expected some of {', '.join(STRATEGY_FIELDS)}")
        if check_strategy_id(strategy_id, allow_new=True) == NEW_STRATEGY_ID:
            missing = [f for f in ("name", "code") if f not in fields]
            if missing:
                raise BadInput(f"a new strategy (strategyId -1) needs {' and '.join(missing)}")
            return self.create(user_id, request_id=request_id, **fields)
        return self._append_version(user_id, strategy_id, check_fields(fields, partial=True),
                                    check_request_id(request_id))


def not_found(strategy_id: int) -> NotFound:
    """The one message for "missing" and "someone else's"."""
    return NotFound(f"strategy {strategy_id} not found")


def no_version(strategy_id: int, version: int, latest: int) -> NotFound:
    return NotFound(f"strategy {strategy_id} has no version {version}; versions are 1..{latest}")


def check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise BadInput(f"user id must be a non-empty string, got {user_id!r}")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise BadInput(f"user id must be at most {MAX_USER_ID_CHARS} characters, got {len(user_id)}")
    _utf8(user_id, "user id")
    return user_id


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadInput(f"{what} must be a positive integer, got {value!r}")
    return value


def check_strategy_id(strategy_id: object, *, allow_new: bool = False) -> int:
    expected = "a positive integer (or -1 to create)" if allow_new else "a positive integer"
    if isinstance(strategy_id, bool) or not isinstance(strategy_id, int):
        raise BadInput(f"strategy id must be {expected}, got {strategy_id!r}")
    if allow_new and strategy_id == NEW_STRATEGY_ID:
        return NEW_STRATEGY_ID
    if strategy_id <= 0:
        raise BadInput(f"strategy id must be {expected}, got {strategy_id!r}")
    return strategy_id


def check_version(version: object) -> int:
    return _positive_int(version, "version")


def check_request_id(request_id: object) -> str | None:
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > MAX_REQUEST_ID_CHARS:
        raise BadInput(f"request id must be a non-empty string of at most {MAX_REQUEST_ID_CHARS} "
                       f"characters, or None; got {request_id!r:.60}")
    _utf8(request_id, "request id")
    return request_id


def _check_text(name: str, value: object, limit: int, *, required: bool = False) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise BadInput(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise BadInput(f"{name} must be at most {limit} characters, got {len(value)}")
    _utf8(value, name)
    return value


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} must be valid Unicode text (it holds a lone surrogate)") from None


def dump_json(value: Any, what: str, limit: int) -> str:
    """Canonical JSON text of ``value``, or BadInput saying what is accepted."""
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{what} must be JSON-serialisable (dicts with string keys, lists, strings, "
                       f"finite numbers, booleans, null): {exc}") from None
    size = len(_utf8(text, what))
    if size > limit:
        raise BadInput(f"{what} must be at most {limit} bytes as JSON, got {size}")
    return text


def check_fields(fields: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validated copies of strategy fields; ``parameters`` become canonical JSON text
    (key ``parameters_json``) so no caller-held object is shared with the store."""
    out: dict[str, Any] = {}
    if not partial or "name" in fields:
        out["name"] = _check_text("name", fields.get("name"), MAX_NAME_CHARS, required=True)
    if not partial or "code" in fields:
        code = fields.get("code")
        if not isinstance(code, str):
            raise BadInput(f"code must be a string of Python source, got {type(code).__name__}")
        if not code.strip():
            raise BadInput("code must be a non-empty string of Python source")
        size = len(_utf8(code, "code"))
        if size > MAX_CODE_BYTES:
            raise BadInput(f"code must be at most {MAX_CODE_BYTES // 1024} KB, got {size} bytes")
        out["code"] = code
    for name, limit in (("description", MAX_DESCRIPTION_CHARS), ("prompt", MAX_PROMPT_CHARS),
                        ("explanation", MAX_EXPLANATION_CHARS)):
        if not partial or name in fields:
            value = fields.get(name)
            out[name] = _check_text(name, "" if value is None else value, limit)
    if not partial or "parameters" in fields:
        params = fields.get("parameters")
        out["parameters_json"] = dump_json({} if params is None else params, "parameters", MAX_PARAMETERS_BYTES)
    return out


def check_universe(universe: object) -> builtins.list[str] | None:
    """``None`` (keep), or a list of symbols: stripped, upper-cased, duplicates dropped."""
    if universe is None:
        return None
    if isinstance(universe, (str, bytes)) or not isinstance(universe, Iterable):
        raise BadInput(f"alert universe must be a list of ticker symbols, got {type(universe).__name__}")
    out: builtins.list[str] = []
    seen: set[str] = set()
    for sym in universe:
        if not isinstance(sym, str) or not sym.strip() or len(sym.strip()) > MAX_SYMBOL_CHARS:
            raise BadInput(f"alert universe symbols must be non-empty strings of at most "
                           f"{MAX_SYMBOL_CHARS} characters, got {sym!r:.60}")
        s = sym.strip().upper()
        if s not in seen:
            seen.add(s)
            out.append(s)
    if len(out) > MAX_UNIVERSE_SYMBOLS:
        raise BadInput(f"alert universe must hold at most {MAX_UNIVERSE_SYMBOLS} symbols, got {len(out)}")
    return out


def check_active(active: object) -> bool:
    if not isinstance(active, bool):
        raise BadInput(f"alert 'active' must be true or false, got {active!r}")
    return active


def check_run(run: object) -> RunRecord:
    """A validated copy of ``run`` with canonical JSON in params/result_summary and
    ``created_at`` normalised to UTC (or ``None`` for the store to stamp)."""
    if not isinstance(run, RunRecord):
        raise BadInput(f"expected a RunRecord, got {type(run).__name__}")
    if not isinstance(run.run_id, str) or not run.run_id.strip() or len(run.run_id) > MAX_RUN_ID_CHARS:
        raise BadInput(f"run id must be a non-empty string of at most {MAX_RUN_ID_CHARS} characters, "
                       f"got {run.run_id!r:.60}")
    _utf8(run.run_id, "run id")
    check_user_id(run.user_id)
    check_strategy_id(run.strategy_id)
    check_version(run.version)
    if run.mode not in RUN_MODES:
        raise BadInput(f"run mode must be one of {', '.join(RUN_MODES)}, got {run.mode!r}")
    for name, value in (("run params", run.params), ("run result summary", run.result_summary)):
        if not isinstance(value, dict):
            raise BadInput(f"{name} must be a JSON object (dict), got {type(value).__name__}")
    params = json.loads(dump_json(run.params, "run params", MAX_RUN_JSON_BYTES))
    summary = json.loads(dump_json(run.result_summary, "run result summary", MAX_RUN_JSON_BYTES))
    created = run.created_at
    if created is not None:
        try:
            moment = datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise BadInput(f"run createdAt must be an ISO-8601 timestamp with a UTC offset "
                           f"(e.g. 2024-05-01T12:00:00Z) or null, got {created!r:.60}")
        created = iso_utc(moment)
    return replace(run, params=params, result_summary=summary, created_at=created)
