"""The HTTP API core (CONTRACT §6), independent of any web framework.

``Api.handle(method, path, body, headers)`` returns ``(status, json_dict)``; the ``api``
Cloud Function and the local stack wrap it. Every call carries an identity (an API key
mapped to a user locally, a verified Firebase ID token in production); a user never sees or
runs another user's strategy: foreign ids answer exactly like missing ones (404).
Long work answers at once with a job id (202); with the in-process bus the job has usually
finished by then and the result is included (200).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Protocol

from .errors import BadInput, NotFound, StratagemError
from .service import Services, submit_backtest, submit_generate, submit_screen

MAX_BODY = 64 * 1024


class Unauthorized(StratagemError):
    exit_code = 2
    http_status = 401
    code = "unauthorized"


class RateLimited(StratagemError):
    exit_code = 3
    http_status = 429
    code = "rate_limited"


class Authenticator(Protocol):
    def identify(self, headers: Mapping[str, str]) -> str:
        """The caller's user id; raises Unauthorized."""
        ...


class ApiKeyAuth:
    """Local/dev identity: ``Authorization: Bearer <key>`` or ``X-API-Key`` mapped to a user id."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = dict(keys)

    def identify(self, headers: Mapping[str, str]) -> str:
        h = {k.lower(): v for k, v in headers.items()}
        key = h.get("x-api-key") or (h.get("authorization", "")[7:] if h.get("authorization", "").startswith("Bearer ") else "")
        user = self.keys.get(key) if key else None
        if not user:
            raise Unauthorized("missing or unknown API key: send 'Authorization: Bearer <key>'")
        return user


class FirebaseAuth:
    """Production identity: a verified Firebase/Google ID token (google-auth); ``verify`` injectable."""

    def __init__(self, project: str, verify: Callable[[str], Mapping[str, Any]] | None = None) -> None:
        self.project = project
        self._verify = verify

    def identify(self, headers: Mapping[str, str]) -> str:
        h = {k.lower(): v for k, v in headers.items()}
        auth = h.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise Unauthorized("missing ID token: send 'Authorization: Bearer <Firebase ID token>'")
        verify = self._verify
        if verify is None:
            from google.auth.transport import requests as g_requests
            from google.oauth2 import id_token

            def verify(tok: str) -> Mapping[str, Any]:
                return id_token.verify_firebase_token(tok, g_requests.Request(), audience=self.project)
        try:
            claims = verify(auth[7:])
        except Exception:  # noqa: BLE001 - any verification failure is the same 401
            raise Unauthorized("invalid or expired ID token") from None
        uid = claims.get("sub") or claims.get("user_id") if claims else None
        if not uid:
            raise Unauthorized("the ID token names no user")
        return str(uid)


class RateLimiter:
    """Token bucket per user: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float = 20.0, burst: int = 40) -> None:
        self.rate, self.burst = rate, burst
        self._b: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, user: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._b.get(user, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._b[user] = (tokens, now)
                raise RateLimited(f"too many requests: at most {self.rate:g} per second (burst {self.burst})")
            self._b[user] = (tokens - 1, now)


def _ms_to_day(v: Any, name: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadInput(f"{name} must be a UTC timestamp in milliseconds (number), got {type(v).__name__}")
    return int(v // 86_400_000)


def _int(body: dict, name: str, *, required: bool = True, positive: bool = True) -> int | None:
    v = body.get(name)
    if v is None:
        if required:
            raise BadInput(f"missing field {name!r} (an integer)")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadInput(f"{name} must be an integer, got {type(v).__name__}")
    if positive and v <= 0:
        raise BadInput(f"{name} must be a positive integer, got {v}")
    return v


def _symbols(body: dict) -> list[str] | None:
    v = body.get("symbols")
    if v is None:
        return None
    from .universe import parse_symbols

    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadInput("symbols must be a list of ticker strings like ['AAPL', 'MSFT']")
    if len(v) > 10_000:
        raise BadInput("at most 10,000 symbols per request")
    return parse_symbols(v)


def _windows(body: dict, name: str = "returnWindows") -> list[int] | None:
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) and 0 < x <= 2520 for x in v):
        raise BadInput(f"{name} must be a non-empty list of positive integers (trading days), e.g. [1, 5, 10]")
    return sorted(set(v))


class Api:
    def __init__(self, svc: Services, auth: Authenticator, *, limiter: RateLimiter | None = None,
                 chats: Any = None) -> None:
        self.svc = svc
        self.auth = auth
        self.limiter = limiter or RateLimiter()
        # Telegram link codes: this directory, else the Telegram notifier's (the one that sends)
        self.chats = chats
        self.routes: dict[str, Callable[[str, dict], tuple[int, dict]]] = {
            "/api/createStrategyFromPrompt": self.create_strategy,
            "/api/getStrategies": self.get_strategies,
            "/api/getStrategy": self.get_strategy,
            "/api/getStrategyVersions": self.get_versions,
            "/api/setAlert": self.set_alert,
            "/api/runBacktest": self.run_backtest,
            "/api/runUnifiedStrategy": self.run_unified,
            "/api/getJob": self.get_job,
            "/api/getAlertLogs": self.get_alert_logs,
            "/api/getTrackRecord": self.get_track_record,
            "/api/createTelegramLink": self.create_telegram_link,
        }

    def handle(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
        try:
            route = self.routes.get(path)
            if route is None:
                raise NotFound(f"no such endpoint {path}; endpoints: {', '.join(sorted(self.routes))}")
            if method != "POST":
                return 405, {"error": {"code": "method_not_allowed", "message": "use POST with a JSON body"}}
            user = self.auth.identify(headers)
            self.limiter.check(user)
            if len(body) > MAX_BODY:
                return 413, {"error": {"code": "too_large", "message": f"request body over {MAX_BODY} bytes"}}
            try:
                doc = json.loads(body or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise BadInput("the request body must be a JSON object") from None
            if not isinstance(doc, dict):
                raise BadInput("the request body must be a JSON object")
            return route(user, doc)
        except StratagemError as exc:
            return exc.http_status, exc.to_json()

    # -- endpoints -----------------------------------------------------------------------
    def _job_reply(self, job_id: str, user: str, key: str | None = None) -> tuple[int, dict]:
        job = self.svc.jobs.get(user, job_id)
        if job.status == "done":
            return 200, {"jobId": job.id, "status": job.status, **({key: job.result[key]} if key else {"result": job.result})}
        if job.status == "failed":
            err = job.error or {"code": "failed", "message": "the job failed"}
            return 422, {"jobId": job.id, "status": job.status, "error": err}
        return 202, {"jobId": job.id, "status": job.status}

    def create_strategy(self, user: str, body: dict) -> tuple[int, dict]:
        q = body.get("query")
        if not isinstance(q, str) or not q.strip():
            raise BadInput("missing field 'query': the trading idea in plain English")
        if len(q) > 2000:
            raise BadInput("query must be at most 2000 characters")
        sid = body.get("strategyId", -1)
        if isinstance(sid, bool) or not isinstance(sid, int) or (sid != -1 and sid <= 0):
            raise BadInput("strategyId must be -1 (create) or the positive id of your strategy (new version)")
        if sid != -1:
            self.svc.store.get(user, sid)
        rid = body.get("requestId")
        if rid is not None and (not isinstance(rid, str) or not 0 < len(rid) <= 128):
            raise BadInput("requestId must be a string of 1-128 characters (an idempotency key)")
        job = submit_generate(self.svc, user, q.strip(), sid, rid)
        return self._job_reply(job.id, user)

    def get_strategies(self, user: str, body: dict) -> tuple[int, dict]:
        return 200, {"strategies": [r.to_json() for r in self.svc.store.list(user)]}

    def get_strategy(self, user: str, body: dict) -> tuple[int, dict]:
        sid = _int(body, "strategyId")
        ver = _int(body, "version", required=False)
        return 200, {"strategy": self.svc.store.get(user, sid, ver).to_json()}

    def get_versions(self, user: str, body: dict) -> tuple[int, dict]:
        sid = _int(body, "strategyId")
        return 200, {"versions": [v.to_json() for v in self.svc.store.versions(user, sid)]}

    def set_alert(self, user: str, body: dict) -> tuple[int, dict]:
        sid = _int(body, "strategyId")
        active = body.get("active")
        if not isinstance(active, bool):
            raise BadInput("active must be true or false")
        rec = self.svc.store.set_alert(user, sid, active, _symbols(body))
        return 200, {"strategy": rec.to_json()}

    def run_backtest(self, user: str, body: dict) -> tuple[int, dict]:
        sid = _int(body, "strategyId")
        job = submit_backtest(self.svc, user, sid, symbols=_symbols(body), start=_ms_to_day(body.get("start"), "start"),
                              end=_ms_to_day(body.get("end"), "end"), windows=_windows(body),
                              entry=body.get("entry", "close") if isinstance(body.get("entry", "close"), str) else "?")
        return self._job_reply(job.id, user)

    def run_unified(self, user: str, body: dict) -> tuple[int, dict]:
        mode = body.get("executionMode")
        if mode == "backtest":
            return self.run_backtest(user, body)
        if mode in ("screening", "alert"):
            sid = _int(body, "strategyId")
            limit = _int(body, "limit", required=False) or 20
            symbols = _symbols(body)
            if mode == "alert" and symbols is None:
                rec = self.svc.store.get(user, sid)
                symbols = rec.alert_universe or None
            job = submit_screen(self.svc, user, sid, symbols=symbols, limit=limit)
            return self._job_reply(job.id, user)
        raise BadInput(f"executionMode must be 'backtest', 'screening' or 'alert', got {mode!r}")

    def get_job(self, user: str, body: dict) -> tuple[int, dict]:
        jid = body.get("jobId")
        if not isinstance(jid, str) or not jid:
            raise BadInput("missing field 'jobId' (string)")
        return self._job_reply(jid, user)

    def get_alert_logs(self, user: str, body: dict) -> tuple[int, dict]:
        """The caller's alert log, newest bar first; filters: strategyId, since/until (bar time, UTC ms), limit."""
        sid = _int(body, "strategyId", required=False)
        if sid is not None:
            self.svc.store.get(user, sid)  # another user's strategy is a 404, like a missing one
        bounds = {}
        for name in ("since", "until"):
            v = body.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise BadInput(f"{name} must be a UTC timestamp in milliseconds (number), got {type(v).__name__}")
            bounds[name] = None if v is None else int(v)
        limit = _int(body, "limit", required=False) or 100
        log = self.svc.alert_log
        rows = [] if log is None else log.list(user, sid, limit, since=bounds["since"], until=bounds["until"])
        return 200, {"alerts": [_public_entry(e) for e in rows]}

    def get_track_record(self, user: str, body: dict) -> tuple[int, dict]:
        """Live forward returns of the strategy's alerts next to its backtest (``stratagem.trackrecord``)."""
        from .engines.metrics import nan_to_none
        from .trackrecord import track_record_for

        sid = _int(body, "strategyId")
        version = _int(body, "version", required=False)
        jid = body.get("backtestJobId")
        if jid is not None and (not isinstance(jid, str) or not jid):
            raise BadInput("backtestJobId must be the id (string) of a backtest job of this strategy")
        doc = track_record_for(self.svc, user, sid, version=version, backtest_job_id=jid)
        doc["alerts"] = [_public_entry(e) for e in doc["alerts"]]
        return 200, nan_to_none(doc)

    def create_telegram_link(self, user: str, body: dict) -> tuple[int, dict]:
        """A single-use code; sending ``/start CODE`` to the bot links that chat to the caller."""
        from .errors import InfraUnavailable

        chats = self.chats
        if chats is None:
            chats = next((getattr(n, "chats", None) for n in self.svc.notifiers if n.channel == "telegram"), None)
        if chats is None or not hasattr(chats, "new_link_code"):
            raise InfraUnavailable("Telegram is not configured on this server (STRATAGEM_TELEGRAM_TOKEN)")
        code = chats.new_link_code(user)
        return 200, {"code": code, "send": f"/start {code}", "expiresInSeconds": int(chats.code_ttl)}


def _public_entry(e: dict) -> dict:
    """An alert-log entry as the API shows it (the owner is the caller: not repeated)."""
    return {k: v for k, v in e.items() if k != "user_id"}
