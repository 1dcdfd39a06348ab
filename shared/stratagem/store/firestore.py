"""The strategy store in Cloud Firestore (Native mode), or its emulator.

Same behaviour as :class:`~stratagem.store.sqlite.SqliteStore`, checked by the same tests
(``tests/integration/test_firestore_store.py`` reruns ``tests/unit/test_store.py`` against
the emulator). Documents, under an optional collection-name ``prefix``::

    counters/strategies           {next}              the next id to hand out
    strategies/{id}               the latest version's fields + userId, version, isAlertActive,
                                  alertUniverse, createdAt, updatedAt, codeSha256
    strategies/{id}/versions/{n}  one StrategyVersion each (append-only)
    strategies/{id}/runs/{runId}  one RunRecord each (upserted by runId)
    requests/~{sha256(user, requestId)}  {userId, requestId, strategyId, version}

Parameters, run params and summaries are kept as canonical JSON text (``parametersJson``,
``paramsJson``, ``resultSummaryJson``): Firestore cannot store nested arrays, and text
round-trips exactly.

**Writes are optimistic transactions.** Each write reads what it depends on, then commits
one atomic batch whose preconditions re-check those reads: the counter update carries the
counter's last update time, a new strategy/version/request document is a ``create`` (fails
if it exists), a strategy update carries the strategy's update time. If another writer got
there first the batch fails as a whole and the write starts again (jittered backoff) until
``timeout_s``. So an id is allocated exactly when its strategy is created, ids are never
shared or reused, and a request id creates at most once. (Server-side read-write
transactions would give the same guarantees, but the emulator serialises contended ones
with a 2-second lock timeout each, firebase/firebase-tools#2452: 4 threads x 25 creates
took over ten minutes, against ~3 s this way.)

Reads need no composite index: ``list`` filters on ``userId`` and ``active_alerts`` on
``isAlertActive`` (single-field indexes) and sort by id in memory.

``delete`` removes the strategy document atomically (that is what makes it gone), then
removes its versions, runs and request documents in batches. If that clean-up is cut
short the leftovers are unreachable: ids are never reused, and a request document whose
strategy is gone is ignored and overwritten.

Errors: Firestore being down or overloaded (``ServiceUnavailable``, ``DeadlineExceeded``,
``Aborted``, exhausted retries, ...) is :class:`~stratagem.errors.InfraUnavailable`; other
refusals (permission, invalid database) are :class:`~stratagem.errors.StratagemError`.

The client is built on first use from ``project`` (``FIRESTORE_EMULATOR_HOST`` makes the
client library talk to the emulator), never at import; pass ``client=`` to share one.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from ..errors import BadInput, InfraUnavailable, StratagemError
from .base import (
    MAX_RUN_JSON_BYTES,
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
    dump_json,
    iso_utc,
    no_version,
    not_found,
    utc_now,
)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 20.0
"""How long one store call may keep retrying (Firestore unreachable, or write conflicts)."""

BATCH_WRITES = 400  # per clean-up commit (Firestore allows 500)

_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,64}")
_SAFE_DOC_ID = re.compile(r"[A-Za-z0-9_.:@+=-]{1,200}")


def doc_id(text: str) -> str:
    """A Firestore document id for ``text``: itself when it is plainly safe (letters, digits,
    ``_.:@+=-``, at most 200 characters, not ``.``/``..``/``__x__``), else ``~`` + its SHA-256
    (``~`` never appears in a plain id, so the two forms cannot collide)."""
    if _SAFE_DOC_ID.fullmatch(text) and text not in (".", "..") and not (text.startswith("__")
                                                                          and text.endswith("__")):
        return text
    return "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def firestore_client(project: str | None = None) -> Any:
    """A ``google.cloud.firestore.Client`` for ``project`` (the emulator when
    ``FIRESTORE_EMULATOR_HOST`` is set), with errors that say how to fix the setup."""
    try:
        from google.cloud import firestore
    except ImportError as exc:
        raise StratagemError("the Firestore backend needs the google-cloud-firestore package: "
                             "pip install google-cloud-firestore") from exc
    from google.auth import exceptions as auth_errors

    try:
        return firestore.Client(project=project)
    except auth_errors.GoogleAuthError as exc:
        raise InfraUnavailable(
            f"cannot reach Firestore for project {project or '(default)'}: {exc}. Run `gcloud auth "
            "application-default login`, or set FIRESTORE_EMULATOR_HOST=host:port to use the emulator") from exc


class WriteConflict(Exception):
    """A conditional commit lost to a concurrent writer (internal: ``_optimistic`` runs the
    attempt again; ``already_exists`` tells a refused create from a changed document)."""

    def __init__(self, cause: Exception, *, already_exists: bool) -> None:
        super().__init__(str(cause))
        self.already_exists = already_exists


class FirestoreBackend:
    """What the Firestore adapters share: a lazily built client, prefixed collection names,
    bounded retries, optimistic commits, and Google API errors mapped to Stratagem's.

    ``prefix`` is put in front of every top-level collection name (``t1a2b_strategies``),
    so tests and environments sharing one database never see each other's documents.
    ``timeout_s`` bounds each call: retries of an unreachable Firestore, and re-runs of a
    write that lost to concurrent writers, stop there with ``InfraUnavailable``.
    """

    def __init__(self, client: Any = None, project: str | None = None, prefix: str = "", *,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise BadInput(f"Firestore collection prefix must be at most 64 letters, digits, '_' or '-', "
                           f"got {prefix!r}")
        if not timeout_s > 0:
            raise BadInput(f"timeout_s must be positive, got {timeout_s!r}")
        self._client = client
        self.project = project if client is None else getattr(client, "project", project)
        self.prefix = prefix
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._retries: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project={self.project!r}, prefix={self.prefix!r})"

    # -- client and collections --
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = firestore_client(self.project)
        return self._client

    def collection(self, name: str) -> Any:
        return self.client.collection(self.prefix + name)

    def _retry(self, *, write: bool) -> Any:
        if self._retries is None:
            from google.api_core import exceptions as gex
            from google.api_core import retry as gretry

            def make(*errors: type[Exception]) -> Any:
                return gretry.Retry(predicate=gretry.if_exception_type(*errors), initial=0.1, maximum=2.0,
                                    multiplier=2.0, timeout=self.timeout_s)

            # A read is always safe to repeat. A commit is repeated only when it cannot have
            # been applied (UNAVAILABLE: not delivered; RESOURCE_EXHAUSTED: refused).
            self._retries = (make(gex.ServiceUnavailable, gex.DeadlineExceeded, gex.InternalServerError,
                                  gex.ResourceExhausted),
                             make(gex.ServiceUnavailable, gex.ResourceExhausted))
        return self._retries[1 if write else 0]

    # -- bounded calls --
    def _get(self, ref: Any) -> Any:
        return ref.get(retry=self._retry(write=False), timeout=self.timeout_s)

    def _get_all(self, refs: Iterable[Any]) -> dict[str, Any]:
        """Snapshots by document path (missing ones too, with ``exists`` false)."""
        refs = builtins.list(refs)
        if not refs:
            return {}
        snaps = self.client.get_all(refs, retry=self._retry(write=False), timeout=self.timeout_s)
        return {s.reference.path: s for s in snaps}

    def _stream(self, query: Any) -> builtins.list[Any]:
        return builtins.list(query.stream(retry=self._retry(write=False), timeout=self.timeout_s))

    def _where(self, collection: str, field: str, op: str, value: Any) -> Any:
        col = self.collection(collection)  # builds the client first: its errors say what to install
        from google.cloud.firestore_v1 import FieldFilter

        return col.where(filter=FieldFilter(field, op, value))

    def _list_refs(self, collection: Any) -> builtins.list[Any]:
        """Every document reference in ``collection`` (reads no document data)."""
        return builtins.list(collection.list_documents(retry=self._retry(write=False), timeout=self.timeout_s))

    def _count(self, query: Any) -> int:
        result = query.count().get(retry=self._retry(write=False), timeout=self.timeout_s)
        return int(result[0][0].value)

    def _batch(self) -> Any:
        return self.client.batch()

    def _if_unchanged(self, snapshot: Any) -> Any:
        """A write option: apply only if the document is still as ``snapshot`` saw it."""
        return self.client.write_option(last_update_time=snapshot.update_time)

    def _commit(self, batch: Any) -> None:
        from google.api_core import exceptions as gex

        try:
            batch.commit(retry=self._retry(write=True), timeout=self.timeout_s)
        except gex.AlreadyExists as exc:
            raise WriteConflict(exc, already_exists=True) from exc
        except (gex.FailedPrecondition, gex.Aborted) as exc:
            raise WriteConflict(exc, already_exists=False) from exc

    def _optimistic(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (reads, then one conditional commit) until it commits without a
        conflict; a conflict means another writer won, so read again after a short random wait."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.005
        while True:
            try:
                return attempt()
            except WriteConflict as exc:
                if time.monotonic() + delay > deadline:
                    raise InfraUnavailable(f"Firestore: {what} kept conflicting with concurrent writers for "
                                           f"{self.timeout_s:g} s; retrying may help ({exc})") from exc
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 0.25)

    def _delete_all(self, refs: Iterable[Any]) -> None:
        batch, n = self._batch(), 0
        for ref in refs:
            batch.delete(ref)
            n += 1
            if n == BATCH_WRITES:
                batch.commit(retry=self._retry(write=True), timeout=self.timeout_s)
                batch, n = self._batch(), 0
        if n:
            batch.commit(retry=self._retry(write=True), timeout=self.timeout_s)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Google API errors as Stratagem errors (``what`` says which call failed)."""
        try:
            yield
        except StratagemError:
            raise
        except Exception as exc:
            mapped = _translate(exc, what)
            if mapped is None:
                raise
            raise mapped from exc


def _translate(exc: Exception, what: str) -> StratagemError | None:
    try:
        from google.api_core import exceptions as gex
        from google.auth import exceptions as auth_errors
    except ImportError:  # pragma: no cover - no client library, so not a Firestore error
        return None
    detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    transient = (gex.ServiceUnavailable, gex.DeadlineExceeded, gex.Aborted, gex.InternalServerError,
                 gex.ResourceExhausted, gex.Unknown, gex.RetryError, auth_errors.TransportError)
    if isinstance(exc, transient):
        return InfraUnavailable(f"Firestore is unavailable ({what}): {detail}; retrying may help")
    if isinstance(exc, auth_errors.GoogleAuthError):
        return InfraUnavailable(f"cannot authenticate to Firestore ({what}): {detail}")
    if isinstance(exc, gex.GoogleAPICallError):
        return StratagemError(f"Firestore refused {what}: {detail}")
    return None


# --- the strategy store --------------------------------------------------------------------
def _version_doc(sid: int, n: int, f: dict[str, Any], now: str) -> dict[str, Any]:
    return {"id": sid, "version": n, "name": f["name"], "description": f["description"], "prompt": f["prompt"],
            "code": f["code"], "parametersJson": f["parameters_json"], "explanation": f["explanation"],
            "createdAt": now, "codeSha256": code_sha256(f["code"])}


_CURRENT = ("name", "description", "prompt", "code", "parametersJson", "explanation", "codeSha256")


def _as_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The strategy fields of a strategy or version document, in ``check_fields`` form."""
    return {"name": doc["name"], "description": doc["description"], "prompt": doc["prompt"], "code": doc["code"],
            "parameters_json": doc["parametersJson"], "explanation": doc["explanation"]}


def _version(doc: dict[str, Any]) -> StrategyVersion:
    return StrategyVersion(
        id=doc["id"], version=doc["version"], name=doc["name"], description=doc["description"],
        prompt=doc["prompt"], code=doc["code"], parameters=json.loads(doc["parametersJson"]),
        explanation=doc["explanation"], created_at=doc["createdAt"], code_sha256=doc["codeSha256"])


def _record(s: dict[str, Any], v: dict[str, Any] | None = None,
            versions: builtins.list[StrategyVersion] | None = None) -> StrategyRecord:
    """The strategy ``s`` at version ``v`` (default: its latest, whose fields ``s`` holds)."""
    src = s if v is None else v
    latest = v is None or v["version"] == s["version"]
    universe = s.get("alertUniverse")
    return StrategyRecord(
        id=s["id"], user_id=s["userId"], name=src["name"], description=src["description"], prompt=src["prompt"],
        code=src["code"], parameters=json.loads(src["parametersJson"]), explanation=src["explanation"],
        is_alert_active=bool(s["isAlertActive"]),
        alert_universe=None if universe is None else builtins.list(universe),
        created_at=s["createdAt"], updated_at=s["updatedAt"] if latest else src["createdAt"],
        version=src["version"], versions=versions)


def _run(doc: dict[str, Any]) -> RunRecord:
    return RunRecord(run_id=doc["runId"], strategy_id=doc["strategyId"], version=doc["version"],
                     user_id=doc["userId"], mode=doc["mode"], params=json.loads(doc["paramsJson"]),
                     result_summary=json.loads(doc["resultSummaryJson"]), created_at=doc["createdAt"])


class FirestoreStore(FirestoreBackend, SaveDispatch):
    """A :class:`~stratagem.store.base.StrategyStore` in Firestore (see the module docstring).

    >>> store = FirestoreStore(project="my-project")               # doctest: +SKIP
    >>> store = FirestoreStore(client=emulator.client(), prefix="t1_")  # doctest: +SKIP
    """

    def __init__(self, client: Any = None, project: str | None = None, prefix: str = "", *,
                 clock: Clock = utc_now, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(client, project, prefix, timeout_s=timeout_s)
        self._clock = clock

    # -- references --
    def _now(self) -> str:
        return iso_utc(self._clock())

    def _strategy_ref(self, sid: int) -> Any:
        return self.collection("strategies").document(str(sid))

    def _counter_ref(self) -> Any:
        return self.collection("counters").document("strategies")

    def _request_ref(self, user_id: str, request_id: str) -> Any:
        key = hashlib.sha256(json.dumps([user_id, request_id]).encode()).hexdigest()
        return self.collection("requests").document("~" + key)

    # -- helpers --
    def _owned(self, user_id: str, sid: int) -> Any:
        snap = self._get(self._strategy_ref(sid))
        if not snap.exists or snap.get("userId") != user_id:
            raise not_found(sid)
        return snap

    def _at_version(self, s: dict[str, Any], n: int) -> StrategyRecord:
        if n == s["version"]:
            return _record(s)
        v = self._get(self._strategy_ref(s["id"]).collection("versions").document(str(n))) \
            if n < s["version"] else None
        if v is None or not v.exists:
            raise no_version(s["id"], n, s["version"])
        return _record(s, v.to_dict())

    def _versions(self, sid: int) -> builtins.list[StrategyVersion]:
        query = self._strategy_ref(sid).collection("versions").order_by("version")
        return [_version(d.to_dict()) for d in self._stream(query)]

    def _replay(self, user_id: str, request: Any | None) -> StrategyRecord | None:
        """The record an earlier request made, or None (no such request, or its strategy is gone)."""
        if request is None or not request.exists:
            return None
        s = self._get(self._strategy_ref(request.get("strategyId")))
        if not s.exists or s.get("userId") != user_id or request.get("version") > s.get("version"):
            return None
        return self._at_version(s.to_dict(), request.get("version"))

    def _remember(self, batch: Any, ref: Any, request: Any | None, user_id: str, request_id: str | None,
                  sid: int, n: int, now: str) -> None:
        if ref is None:
            return
        doc = {"userId": user_id, "requestId": request_id, "strategyId": sid, "version": n, "createdAt": now}
        if request is not None and request.exists:  # left by a deleted strategy: reuse it
            batch.update(ref, doc, option=self._if_unchanged(request))
        else:
            batch.create(ref, doc)

    # -- the port --
    def create(self, user_id: str, *, name: str, code: str, description: str = "", prompt: str = "",
               parameters: Any = None, explanation: str = "",
               request_id: str | None = None) -> StrategyRecord:
        check_user_id(user_id)
        request_id = check_request_id(request_id)
        f = check_fields({"name": name, "code": code, "description": description, "prompt": prompt,
                          "parameters": parameters, "explanation": explanation}, partial=False)
        req_ref = None if request_id is None else self._request_ref(user_id, request_id)

        def attempt() -> StrategyRecord:
            request = None if req_ref is None else self._get(req_ref)
            done = self._replay(user_id, request)
            if done is not None:
                return done
            counter = self._get(self._counter_ref())
            sid = int(counter.get("next")) if counter.exists else 1
            now = self._now()
            v = _version_doc(sid, 1, f, now)
            s = {**v, "userId": user_id, "isAlertActive": False, "alertUniverse": None, "updatedAt": now}
            batch = self._batch()
            if counter.exists:
                batch.update(self._counter_ref(), {"next": sid + 1}, option=self._if_unchanged(counter))
            else:
                batch.create(self._counter_ref(), {"next": sid + 1})
            batch.create(self._strategy_ref(sid), s)
            batch.create(self._strategy_ref(sid).collection("versions").document("1"), v)
            self._remember(batch, req_ref, request, user_id, request_id, sid, 1, now)
            self._commit(batch)
            return _record(s)

        with self._errors("creating a strategy"):
            return self._optimistic("creating a strategy", attempt)

    def _append_version(self, user_id: str, strategy_id: int, fields: dict[str, Any],
                        request_id: str | None) -> StrategyRecord:
        req_ref = None if request_id is None else self._request_ref(user_id, request_id)

        def attempt() -> StrategyRecord:
            snap = self._owned(user_id, strategy_id)
            request = None if req_ref is None else self._get(req_ref)
            done = self._replay(user_id, request)
            if done is not None:
                return done
            old = snap.to_dict()
            n, now = old["version"] + 1, self._now()
            v = _version_doc(strategy_id, n, {**_as_fields(old), **fields}, now)
            current = {k: v[k] for k in _CURRENT}
            batch = self._batch()
            batch.update(snap.reference, {**current, "version": n, "updatedAt": now},
                         option=self._if_unchanged(snap))
            batch.create(snap.reference.collection("versions").document(str(n)), v)
            self._remember(batch, req_ref, request, user_id, request_id, strategy_id, n, now)
            self._commit(batch)
            return _record({**old, **current, "version": n, "updatedAt": now})

        with self._errors(f"saving strategy {strategy_id}"):
            return self._optimistic(f"saving strategy {strategy_id}", attempt)

    def get(self, user_id: str, strategy_id: int, version: int | None = None, *,
            include_versions: bool = False) -> StrategyRecord:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        if version is not None:
            check_version(version)
        with self._errors(f"reading strategy {strategy_id}"):
            s = self._owned(user_id, strategy_id).to_dict()
            rec = self._at_version(s, s["version"] if version is None else version)
            if not include_versions:
                return rec
            return replace(rec, versions=[v for v in self._versions(strategy_id) if v.version <= s["version"]])

    def list(self, user_id: str) -> builtins.list[StrategyRecord]:
        check_user_id(user_id)
        with self._errors("listing strategies"):
            query = self._where("strategies", "userId", "==", user_id)
            return sorted((_record(d.to_dict()) for d in self._stream(query)), key=lambda r: r.id)

    def versions(self, user_id: str, strategy_id: int) -> builtins.list[StrategyVersion]:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._errors(f"reading the versions of strategy {strategy_id}"):
            latest = self._owned(user_id, strategy_id).get("version")
            return [v for v in self._versions(strategy_id) if v.version <= latest]

    def set_alert(self, user_id: str, strategy_id: int, active: bool,
                  universe: builtins.list[str] | None = None) -> StrategyRecord:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        active = check_active(active)
        symbols = check_universe(universe)

        def attempt() -> StrategyRecord:
            snap = self._owned(user_id, strategy_id)
            change: dict[str, Any] = {"isAlertActive": active, "updatedAt": self._now()}
            if symbols is not None:
                change["alertUniverse"] = symbols
            batch = self._batch()
            batch.update(snap.reference, change, option=self._if_unchanged(snap))
            self._commit(batch)
            return _record({**snap.to_dict(), **change})

        with self._errors(f"setting the alert of strategy {strategy_id}"):
            return self._optimistic(f"setting the alert of strategy {strategy_id}", attempt)

    def active_alerts(self) -> builtins.list[StrategyRecord]:
        with self._errors("listing active alerts"):
            query = self._where("strategies", "isAlertActive", "==", True)
            return sorted((_record(d.to_dict()) for d in self._stream(query)), key=lambda r: r.id)

    def record_run(self, run: RunRecord) -> RunRecord:
        run = check_run(run)
        doc = {"runId": run.run_id, "strategyId": run.strategy_id, "version": run.version, "userId": run.user_id,
               "mode": run.mode, "paramsJson": dump_json(run.params, "run params", MAX_RUN_JSON_BYTES),
               "resultSummaryJson": dump_json(run.result_summary, "run result summary", MAX_RUN_JSON_BYTES)}

        def attempt() -> RunRecord:
            snap = self._owned(run.user_id, run.strategy_id)
            if run.version > snap.get("version"):
                raise no_version(run.strategy_id, run.version, snap.get("version"))
            ref = snap.reference.collection("runs").document(doc_id(run.run_id))
            old = self._get(ref)
            batch = self._batch()
            if old.exists:  # recorded again: keep the first createdAt
                stored = {**doc, "createdAt": old.get("createdAt")}
                batch.update(ref, stored, option=self._if_unchanged(old))
            else:
                stored = {**doc, "createdAt": run.created_at or self._now()}
                batch.create(ref, stored)
            self._commit(batch)
            return _run(stored)

        with self._errors(f"recording run {run.run_id!r:.60}"):
            return self._optimistic(f"recording run {run.run_id!r:.60}", attempt)

    def runs(self, user_id: str, strategy_id: int) -> builtins.list[RunRecord]:
        check_user_id(user_id)
        check_strategy_id(strategy_id)
        with self._errors(f"reading the runs of strategy {strategy_id}"):
            snap = self._owned(user_id, strategy_id)
            docs = self._stream(snap.reference.collection("runs"))
            # Oldest first; a tie keeps the order of first recording (a document's create time).
            docs.sort(key=lambda d: (d.get("createdAt"), d.create_time))
            return [_run(d.to_dict()) for d in docs]

    def delete(self, user_id: str, strategy_id: int) -> None:
        check_user_id(user_id)
        check_strategy_id(strategy_id)

        def attempt() -> Any:
            snap = self._owned(user_id, strategy_id)
            batch = self._batch()
            batch.delete(snap.reference, option=self._if_unchanged(snap))
            self._commit(batch)
            return snap.reference

        with self._errors(f"deleting strategy {strategy_id}"):
            ref = self._optimistic(f"deleting strategy {strategy_id}", attempt)
            # The strategy is gone; what follows only frees space (see the module docstring).
            leftovers = [d.reference for d in self._stream(self._where("requests", "strategyId", "==", strategy_id))]
            for sub in ("versions", "runs"):
                leftovers += self._list_refs(ref.collection(sub))
            self._delete_all(leftovers)
