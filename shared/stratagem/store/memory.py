"""In-memory strategy store: thread-safe, for tests and the functions' fakes.

Same semantics as :class:`~stratagem.store.sqlite.SqliteStore`, checked by the same
parametrised tests. Parameters are kept as canonical JSON text, so records handed out
never share mutable state with the store or with each other.
"""

from __future__ import annotations

import builtins
import json
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from .base import (
    Clock,
    RunRecord,
    SaveDispatch,
    StrategyRecord,
    StrategyVersion,
    check_active,
    check_fields,
    check_request_id,
    check_run,
    check_strategy_id,
    check_universe,
    check_user_id,
    check_version,
    code_sha256,
    iso_utc,
    no_version,
    not_found,
    utc_now,
)


@dataclass
class _Version:
    name: str
    description: str
    prompt: str
    code: str
    parameters_json: str
    explanation: str
    created_at: str
    code_sha256: str


@dataclass
class _Strategy:
    id: int
    user_id: str
    created_at: str
    updated_at: str
    versions: builtins.list[_Version] = field(default_factory=builtins.list)
    is_alert_active: bool = False
    alert_universe: builtins.list[str] | None = None
    runs: dict[str, RunRecord] = field(default_factory=dict)  # insertion order = first recorded


class MemoryStore(SaveDispatch):
    """A :class:`~stratagem.store.base.StrategyStore` held in a dict behind one lock."""

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._strategies: dict[int, _Strategy] = {}
        self._requests: dict[tuple[str, str], tuple[int, int]] = {}
        self._last_id = 0

    # -- helpers (call with the lock held) --
    def _now(self) -> str:
        return iso_utc(self._clock())

    def _owned(self, user_id: str, strategy_id: int) -> _Strategy:
        s = self._strategies.get(strategy_id)
        if s is None or s.user_id != user_id:
            raise not_found(strategy_id)
        return s

    @staticmethod
    def _version_of(s: _Strategy, n: int) -> StrategyVersion:
        v = s.versions[n - 1]
        return StrategyVersion(
            id=s.id, version=n, name=v.name, description=v.description, prompt=v.prompt, code=v.code,
            parameters=json.loads(v.parameters_json), explanation=v.explanation,
            created_at=v.created_at, code_sha256=v.code_sha256,
        )

    def _record(self, s: _Strategy, version: int | None = None, include_versions: bool = False) -> StrategyRecord:
        latest = len(s.versions)
        n = latest if version is None else version
        if n > latest:
            raise no_version(s.id, n, latest)
        v = s.versions[n - 1]
        return StrategyRecord(
            id=s.id, user_id=s.user_id, name=v.name, description=v.description, prompt=v.prompt,
            code=v.code, parameters=json.loads(v.parameters_json), explanation=v.explanation,
            is_alert_active=s.is_alert_active,
            alert_universe=None if s.alert_universe is None else builtins.list(s.alert_universe),
            created_at=s.created_at, updated_at=s.updated_at if n == latest else v.created_at, version=n,
            versions=[self._version_of(s, i) for i in range(1, latest + 1)] if include_versions else None,
        )

    def _replay(self, user_id: str, request_id: str | None) -> StrategyRecord | None:
        if request_id is None or (user_id, request_id) not in self._requests:
            return None
        sid, n = self._requests[(user_id, request_id)]
        return self._record(self._strategies[sid], n)

    # -- the port --
    def create(self, user_id: str, *, name: str, code: str, description: str = "", prompt: str = "",
               parameters: Any = None, explanation: str = "",
               request_id: str | None = None) -> StrategyRecord:
        check_user_id(user_id)
        request_id = check_request_id(request_id)
        f = check_fields({"name": name, "code": code, "description": description, "prompt": prompt,
                          "parameters": parameters, "explanation": explanation}, partial=False)
        with self._lock:
            done = self._replay(user_id, request_id)
            if done is not None:
                return done
            now = self._now()
            self._last_id += 1
            s = _Strategy(id=self._last_id, user_id=user_id, created_at=now, updated_at=now)
            s.versions.append(_Version(created_at=now, code_sha256=code_sha256(f["code"]), **f))
            self._strategies[s.id] = s
            if request_id is not None:
                self._requests[(user_id, request_id)] = (s.id, 1)
            return self._record(s)

    def _append_version(self, user_id: str, strategy_id: int, fields: dict[str, Any],
                        request_id: str | None) -> StrategyRecord:
        with self._lock:
            s = self._owned(user_id, strategy_id)
            done = self._replay(user_id, request_id)
            if done is not None:
                return done
            now = self._now()
            v = replace(s.versions[-1], **fields, created_at=now)
            s.versions.append(replace(v, code_sha256=code_sha256(v.code)))
            s.updated_at = now
            if request_id is not None:
                self._requests[(user_id, request_id)] = (s.id, len(s.versions))
            return self._record(s)

    def get(self, user_id: str, strategy_id: int, version: int | None = None, *,
            include_versions: bool = False) -> StrategyRecord:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        if version is not None:
            check_version(version)
        with self._lock:
            return self._record(self._owned(user_id, strategy_id), version, include_versions)

    def list(self, user_id: str) -> builtins.list[StrategyRecord]:
        check_user_id(user_id)
        with self._lock:
            return [self._record(s) for sid, s in sorted(self._strategies.items()) if s.user_id == user_id]

    def versions(self, user_id: str, strategy_id: int) -> builtins.list[StrategyVersion]:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._lock:
            s = self._owned(user_id, strategy_id)
            return [self._version_of(s, n) for n in range(1, len(s.versions) + 1)]

    def set_alert(self, user_id: str, strategy_id: int, active: bool,
                  universe: builtins.list[str] | None = None) -> StrategyRecord:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        active = check_active(active)
        symbols = check_universe(universe)
        with self._lock:
            s = self._owned(user_id, strategy_id)
            s.is_alert_active = active
            if symbols is not None:
                s.alert_universe = symbols
            s.updated_at = self._now()
            return self._record(s)

    def active_alerts(self) -> builtins.list[StrategyRecord]:
        with self._lock:
            return [self._record(s) for _, s in sorted(self._strategies.items()) if s.is_alert_active]

    def record_run(self, run: RunRecord) -> RunRecord:
        run = check_run(run)
        with self._lock:
            s = self._owned(run.user_id, run.strategy_id)
            if run.version > len(s.versions):
                raise no_version(s.id, run.version, len(s.versions))
            old = s.runs.get(run.run_id)
            created = old.created_at if old is not None else (run.created_at or self._now())
            stored = replace(run, created_at=created)
            s.runs[run.run_id] = stored
            return self._copy_run(stored)

    @staticmethod
    def _copy_run(run: RunRecord) -> RunRecord:
        return replace(run, params=json.loads(json.dumps(run.params)),
                       result_summary=json.loads(json.dumps(run.result_summary)))

    def runs(self, user_id: str, strategy_id: int) -> builtins.list[RunRecord]:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._lock:
            s = self._owned(user_id, strategy_id)
            ordered = sorted(s.runs.values(), key=lambda r: r.created_at or "")  # stable: ties keep order
            return [self._copy_run(r) for r in ordered]

    def delete(self, user_id: str, strategy_id: int) -> None:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._lock:
            self._owned(user_id, strategy_id)
            del self._strategies[strategy_id]
            for key in [k for k, (sid, _) in self._requests.items() if sid == strategy_id]:
                del self._requests[key]
