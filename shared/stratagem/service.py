"""The service core behind the Cloud Functions: one handler per message type.

Functions stay thin: they decode the event and call one of these. Every handler is
idempotent under duplicate delivery (event ids and shard numbers are recorded), raises
only for transient failures (so Pub/Sub retries) and records permanent failures on the job.
The same code runs in-process (``InProcessBus``, SQLite/memory stores) and on Google Cloud
(Pub/Sub, Firestore, Redis).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from . import messages
from .bus import PublishIncomplete, publish_many
from .data.store import MarketData
from .engines.backtest import assemble_backtest, prepare_backtest
from .engines.common import iso, trading_days
from .engines.screen import rank_signals
from .errors import InfraUnavailable, StratagemError
from .jobs import Job, JobStore, new_job_id
from .sandbox.pool import EvalOutcome, Sandbox

log = logging.getLogger("stratagem.service")

TOPICS = {
    "generate": "stratagem-generate",
    "validate": "stratagem-validate",
    "backtest": "stratagem-backtest",
    "screen": "stratagem-screen",
    "tick": "stratagem-alert-tick",
    "bars": "stratagem-bars",
    "alerts": "stratagem-alerts",
    # Messages that failed on every delivery attempt (infra/stack.toml's dead-letter policy).
    "dead_letter": "stratagem-dead-letter",
}
SHARD_SYMBOLS = 250  # symbols per shard: big universes fan out over function instances


@dataclass
class Services:
    """Everything a handler needs, built lazily from settings by the function's factory."""

    store: Any
    jobs: JobStore
    bus: Any
    market: MarketData
    sandbox_factory: Any
    generator_factory: Any = None
    alert_log: Any = None
    notifiers: list = field(default_factory=list)
    # Live bars (stratagem.live.LiveBarStore; in memory when None) and the warm alert engines
    # (stratagem.alerting.AlertRunner, kept for the life of the function instance).
    live_bars: Any = None
    alert_runner: Any = field(default=None, repr=False)
    # Result cache shared by every function instance (stratagem.cache.LayeredCache: memory, then
    # Redis when configured; a Redis outage degrades to memory with one warning). None: no cache.
    cache: Any = None
    _sandbox: Sandbox | None = field(default=None, repr=False)

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = self.sandbox_factory()
        return self._sandbox


def _shards(symbols: list[str], size: int = SHARD_SYMBOLS) -> list[list[str]]:
    n = max(1, math.ceil(len(symbols) / size))
    return [symbols[k::n] for k in range(n)]


# -- submitting work ---------------------------------------------------------------------------
def _publish_or_fail(svc: Services, job: Job, topic: str, msg: dict) -> None:
    """Publish one message of ``job``; when the bus is unavailable, fail the job with the reason
    and re-raise (the API answers 503), so the job never sits ``queued`` with nothing queued.
    A shard published before the failure finds the job failed and is acknowledged unprocessed."""
    try:
        svc.bus.publish(topic, msg)
    except InfraUnavailable as exc:
        try:
            svc.jobs.finish(job.id, error={"code": exc.code, "message": f"the job could not be queued: {exc.message}; "
                                                                        "submit it again"})
        except StratagemError:  # the job store is down too: the job stays queued; the 503 says why
            log.warning("job %s: could not record the failed submission", job.id)
        raise


def submit_generate(svc: Services, user_id: str, prompt: str, strategy_id: int = -1, request_id: str | None = None) -> Job:
    job = svc.jobs.create(Job(new_job_id(), user_id, "generate", params={"prompt": prompt, "strategy_id": strategy_id}))
    msg = messages.make("stratagem.generate.v1", job_id=job.id, user_id=user_id, prompt=prompt,
                        strategy_id=strategy_id, **({"request_id": request_id} if request_id else {}))
    _publish_or_fail(svc, job, TOPICS["generate"], msg)
    return job


def _cache_key(svc: Services, mode: str, user_id: str, code: str, symbols: list[str], params: dict) -> str | None:
    """Result-cache key: strategy code, data version, universe and parameters - and the user,
    because a result names the user's strategy (same code, another user: another entry)."""
    if svc.cache is None:
        return None
    from .cache import result_key

    return result_key(mode, code, svc.market.version, symbols, {**params, "user": user_id})


def _cached_job(svc: Services, user_id: str, kind: str, params: dict) -> Job | None:
    """A job answered from the result cache (done at once, nothing published), or None."""
    key = params.get("cache_key")
    if not key:
        return None
    try:
        hit = svc.cache.get_json(key)
    except Exception as exc:  # noqa: BLE001 - a damaged entry is a miss, never a failed request
        log.warning("result cache entry %s unreadable (%s): recomputing", key[:16], exc)
        hit = None
    if hit is None:
        return None
    job = svc.jobs.create(Job(new_job_id(), user_id, kind, shards=1, params={**params, "cached": True}))
    svc.jobs.finish(job.id, result=hit)
    return job


def _cache_result(svc: Services, job: Job, result: dict) -> None:
    key = job.params.get("cache_key")
    if key and svc.cache is not None:
        try:
            svc.cache.set_json(key, result)
        except Exception as exc:  # noqa: BLE001 - the result is in the job store; the cache is optional
            log.warning("could not cache the result of job %s: %s", job.id, exc)


def submit_backtest(svc: Services, user_id: str, strategy_id: int, *, symbols: list[str] | None = None,
                    start: int | None = None, end: int | None = None, windows: list[int] | None = None,
                    entry: str = "close", shard_size: int = SHARD_SYMBOLS) -> Job:
    rec = svc.store.get(user_id, strategy_id)  # NotFound for other users' strategies
    spec = prepare_backtest(svc.market, symbols or svc.market.symbols, start=start, end=end, windows=windows, entry=entry)
    parts = _shards(spec.symbols, shard_size)
    params = {"strategy_id": rec.id, "version": rec.version, "symbols": spec.symbols, "start": spec.start,
              "end": spec.end, "windows": spec.windows, "entry": spec.entry}
    key = _cache_key(svc, "backtest", user_id, rec.code, spec.symbols,
                     {k: params[k] for k in ("start", "end", "windows", "entry")} | {"probe": 2, "name": rec.name})
    if key:
        params["cache_key"] = key
        cached = _cached_job(svc, user_id, "backtest", params)
        if cached is not None:
            return cached
    job = svc.jobs.create(Job(new_job_id(), user_id, "backtest", shards=len(parts), params=params))
    for k, syms in enumerate(parts):
        _publish_or_fail(svc, job, TOPICS["backtest"], messages.make(
            "stratagem.backtest_shard.v1", job_id=job.id, shard=k, shards=len(parts), user_id=user_id,
            strategy_id=rec.id, version=rec.version, symbols=syms, start=spec.start, end=spec.end,
            params={"windows": spec.windows, "entry": spec.entry}))
    return job


def submit_screen(svc: Services, user_id: str, strategy_id: int, *, symbols: list[str] | None = None,
                  asof: int | None = None, limit: int = 20, shard_size: int = SHARD_SYMBOLS) -> Job:
    from .engines.common import last_session

    rec = svc.store.get(user_id, strategy_id)
    syms = symbols or svc.market.symbols
    day = last_session(svc.market, syms, asof)
    if day is None:
        from .errors import BadInput

        raise BadInput("no data on or before the as-of date for the requested symbols")
    parts = _shards(syms, shard_size)
    params = {"strategy_id": rec.id, "version": rec.version, "asof": day, "limit": limit, "symbols": syms}
    key = _cache_key(svc, "screen", user_id, rec.code, syms, {"asof": day, "limit": limit})
    if key:
        params["cache_key"] = key
        cached = _cached_job(svc, user_id, "screen", params)
        if cached is not None:
            return cached
    job = svc.jobs.create(Job(new_job_id(), user_id, "screen", shards=len(parts), params=params))
    for k, part in enumerate(parts):
        _publish_or_fail(svc, job, TOPICS["screen"], messages.make(
            "stratagem.screen_shard.v1", job_id=job.id, shard=k, shards=len(parts), user_id=user_id,
            strategy_id=rec.id, version=rec.version, symbols=part, asof=day, limit=limit))
    return job


# -- handlers ----------------------------------------------------------------------------------
def _first_delivery(svc: Services, event_id: str, what: str) -> bool:
    """False (log and skip) when ``event_id`` was already handled to the end.

    Only a read: the event is recorded by :func:`_once` after the handler succeeded. Recording
    it first would turn Pub/Sub's retry of a delivery that failed half-way (Firestore or the
    model unavailable, the instance killed) into a "duplicate", losing the shard, the job or
    the generation. Two deliveries running at once both do the work; every step is idempotent
    (shards stored once by number, one finaliser, strategies created once per request id,
    alerts claimed once per key)."""
    if event_id and svc.jobs.seen_event(event_id):
        log.info("duplicate delivery of %s (event %s): ignored", what, event_id)
        return False
    return True


def _once(what: str) -> Any:
    """Decorator: skip already-handled events; record the event once the handler returned."""
    import functools

    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def handler(svc: Services, msg: dict, event_id: str = "") -> None:
            if not _first_delivery(svc, event_id, what):
                return
            fn(svc, msg, event_id)
            if event_id:
                svc.jobs.mark_event(event_id)
        return handler
    return wrap


MAX_GENERATION_ATTEMPTS = 3


def _check_owner(svc: Services, msg: dict, kind: str) -> Any:
    """The job a message names must belong to the user it names, and be of its kind; a forged
    or crossed message is malformed (acknowledged, never retried) and changes nothing."""
    from .errors import NotFound

    try:
        job = svc.jobs.get_any(msg["job_id"])
    except NotFound:
        raise messages.MalformedMessage(f"{kind}: job {msg['job_id']!r} does not exist") from None
    if job.user_id != msg["user_id"] or job.kind != kind:
        raise messages.MalformedMessage(f"{kind}: job {job.id} belongs to another user or is not a {kind} job")
    p = job.params or {}
    if kind in ("backtest", "screen") and (msg["strategy_id"], msg["version"]) != (p.get("strategy_id"), p.get("version")):
        raise messages.MalformedMessage(f"{kind}: shard names another strategy than job {job.id}")
    if kind == "generate" and msg.get("strategy_id", -1) != p.get("strategy_id", -1):
        raise messages.MalformedMessage(f"generate: message names another strategy than job {job.id}")
    return job


@_once("generate")
def handle_generate(svc: Services, msg: dict, event_id: str = "") -> None:
    """Generation function: one attempt; the candidate goes to the validation function."""
    from .generation.base import GenerationFailed, GenerationRefused, GeneratorUnavailable

    _check_owner(svc, msg, "generate")
    attempt = msg.get("attempt", 1)
    feedback = list(msg.get("feedback", []))
    attempts = list(msg.get("attempts", []))
    gen_name = getattr(svc.generator_factory(), "name", "?")
    try:
        gen = svc.generator_factory().generate(msg["prompt"], feedback or None)
    except GenerationRefused as exc:
        svc.jobs.finish(msg["job_id"], error=exc.to_json()["error"])
        return
    except GenerationFailed as exc:
        attempts.append({"attempt": attempt, "generator": gen_name, "stage": "generate", "ok": False, "error": exc.message})
        _retry_or_fail(svc, msg, attempt, feedback + [f"attempt {attempt}: the answer was unusable: {exc.message}"], attempts)
        return
    except GeneratorUnavailable as exc:
        # The generator already retried with backoff (honouring Retry-After). A redelivery would
        # repeat that a few times and then dead-letter the message, leaving the job queued
        # forever: fail it now with the reason; the user submits again.
        attempts.append({"attempt": attempt, "generator": gen_name, "stage": "generate", "ok": False,
                         "error": exc.message})
        svc.jobs.finish(msg["job_id"], error={"code": exc.code, "message": exc.message,
                                              "details": {"attempts": attempts}})
        return
    except InfraUnavailable:
        raise  # transient: let Pub/Sub retry this message
    svc.bus.publish(TOPICS["validate"], messages.make(
        "stratagem.validate.v1", job_id=msg["job_id"], user_id=msg["user_id"], prompt=msg["prompt"],
        strategy_id=msg["strategy_id"], attempt=attempt, feedback=feedback, attempts=attempts,
        candidate=gen.to_json(), **({"request_id": msg["request_id"]} if msg.get("request_id") else {})))


def _retry_or_fail(svc: Services, msg: dict, attempt: int, feedback: list[str], attempts: list[dict]) -> None:
    if attempt >= MAX_GENERATION_ATTEMPTS:
        svc.jobs.finish(msg["job_id"], error={"code": "generation_failed",
                                              "message": f"no valid strategy after {attempt} attempts; last problem: "
                                                         f"{attempts[-1].get('error') if attempts else 'unknown'}",
                                              "details": {"attempts": attempts}})
        return
    svc.bus.publish(TOPICS["generate"], messages.make(
        "stratagem.generate.v1", job_id=msg["job_id"], user_id=msg["user_id"], prompt=msg["prompt"],
        strategy_id=msg["strategy_id"], attempt=attempt + 1, feedback=feedback, attempts=attempts,
        **({"request_id": msg["request_id"]} if msg.get("request_id") else {})))


@_once("validate")
def handle_validate(svc: Services, msg: dict, event_id: str = "") -> None:
    """Validation function: validator + smoke run; store the strategy or send feedback back."""
    from .generation.base import GeneratedStrategy, Parameter
    from .generation.pipeline import back_translate, check_candidate

    _check_owner(svc, msg, "generate")  # validation continues a generate job
    c = msg["candidate"]
    try:
        gen = GeneratedStrategy(name=str(c["name"]), description=str(c["description"]), code=str(c["code"]),
                                parameters=[Parameter(**p) for p in c.get("parameters", [])],
                                explanation=str(c.get("explanation", "")), generator=str(c.get("generator", "")))
    except (KeyError, TypeError) as exc:
        raise messages.MalformedMessage(f"validate: candidate is malformed ({exc})") from None
    attempt = msg["attempt"]
    stage, error, smoke = check_candidate(gen, svc.sandbox, svc.market)
    attempts = list(msg["attempts"]) + [{"attempt": attempt, "generator": gen.generator, "stage": stage,
                                         "ok": error is None, **({"error": error} if error else {})}]
    if error is not None:
        _retry_or_fail(svc, msg, attempt, list(msg["feedback"]) + [f"attempt {attempt}: {error}"], attempts)
        return
    user = msg["user_id"]
    params = {p.name: {"value": p.value, "meaning": p.meaning} for p in gen.parameters}
    fields = dict(name=gen.name, description=gen.description, prompt=msg["prompt"], code=gen.code, parameters=params,
                  explanation=gen.explanation, request_id=msg.get("request_id") or msg["job_id"])
    if msg["strategy_id"] == -1:
        rec = svc.store.create(user, **fields)
    else:
        rec = svc.store.save(user, msg["strategy_id"], **fields)
    svc.jobs.finish(msg["job_id"], result={"strategy": rec.to_json(), "back_translation": back_translate(gen.code),
                                           "attempts": attempts, "smoke_run": smoke})


def _outcome_json(out: EvalOutcome) -> dict:
    return {"signals": [list(x) for x in out.signals], "errors": [list(x) for x in out.errors],
            "evaluated": out.evaluated, "demo": out.demo_data_used, "restarts": out.worker_restarts}


def _merge(parts: dict[int, dict]) -> EvalOutcome:
    total = EvalOutcome()
    for k in sorted(parts):
        p = parts[k]
        total.signals.extend(tuple(x) for x in p["signals"])
        total.errors.extend(tuple(x) for x in p["errors"])
        total.evaluated += p["evaluated"]
        total.demo_data_used = total.demo_data_used or p["demo"]
        total.worker_restarts += p.get("restarts", 0)
    total.signals.sort(key=lambda r: (r[1], r[0]))
    total.errors.sort(key=lambda r: (r[1], r[0]))
    return total


def _job_closed(job: Job, msg: dict) -> bool:
    """A shard of a job that is already done or failed (a late duplicate, or a shard published
    before the rest of its submission failed) changes nothing."""
    if job.status in ("done", "failed"):
        log.info("shard %s of job %s arrived after the job was %s: ignored", msg["shard"], job.id, job.status)
        return True
    return False


def _finaliser_lost(svc: Services, job: Job) -> bool:
    """For a redelivered shard (its result was already stored): every shard is in, the job was
    claimed for finalising (``try_finalize`` said no) but is still not done. Its finaliser
    failed half-way (a transient error, a killed instance); finalise again. The merge is
    deterministic and ``finish`` overwrites, so a finaliser still running meanwhile writes the
    same result."""
    if len(svc.jobs.shard_results(job.id)) < job.shards:
        return False
    return svc.jobs.get_any(job.id).status not in ("done", "failed")


@_once("backtest shard")
def handle_backtest_shard(svc: Services, msg: dict, event_id: str = "") -> None:
    job = _check_owner(svc, msg, "backtest")  # a forged user, job or strategy: rejected, never retried
    if _job_closed(job, msg):
        return
    stored = False
    if msg["shard"] not in svc.jobs.shard_results(job.id):
        rec = svc.store.get(msg["user_id"], msg["strategy_id"], msg["version"])
        plan = trading_days(svc.market, msg["symbols"], msg["start"], msg["end"])
        # tenant: the instance keeps the user's strategy loaded for their next run of it
        out = svc.sandbox.run(rec.code, list(plan.items()), tenant=msg["user_id"])
        stored = svc.jobs.put_shard(job.id, msg["shard"], _outcome_json(out))
    if svc.jobs.try_finalize(job.id) or (not stored and _finaliser_lost(svc, job)):
        p = job.params
        rec = svc.store.get(job.user_id, p["strategy_id"], p["version"])
        spec = prepare_backtest(svc.market, p["symbols"], start=p["start"], end=p["end"], windows=p["windows"],
                                entry=p["entry"])
        result = assemble_backtest(svc.sandbox, svc.market, rec.code, spec, _merge(svc.jobs.shard_results(job.id)),
                                   strategy_info={"id": rec.id, "version": rec.version, "name": rec.name},
                                   universe_label="request", probe=2)
        svc.jobs.finish(job.id, result=result)
        _cache_result(svc, job, result)


@_once("screen shard")
def handle_screen_shard(svc: Services, msg: dict, event_id: str = "") -> None:
    job = _check_owner(svc, msg, "screen")  # a forged user, job or strategy: rejected, never retried
    if _job_closed(job, msg):
        return
    stored = False
    if msg["shard"] not in svc.jobs.shard_results(job.id):
        rec = svc.store.get(msg["user_id"], msg["strategy_id"], msg["version"])
        out = svc.sandbox.run(rec.code, [(msg["asof"], msg["symbols"])], tenant=msg["user_id"])
        stored = svc.jobs.put_shard(job.id, msg["shard"], _outcome_json(out))
    if svc.jobs.try_finalize(job.id) or (not stored and _finaliser_lost(svc, job)):
        p = job.params
        merged = _merge(svc.jobs.shard_results(job.id))
        ranked = rank_signals([{"symbol": s, "score": sc, "values": v} for s, _d, sc, v in merged.signals])
        result = {
            "asof": iso(p["asof"]), "ranked_results": ranked[:p["limit"]], "evaluated": merged.evaluated,
            "errors": [{"symbol": s, "date": iso(d), "message": m} for s, d, m in merged.errors],
            "demo_data": merged.demo_data_used}
        svc.jobs.finish(job.id, result=result)
        _cache_result(svc, job, result)


# -- alerts ------------------------------------------------------------------------------------
class _JobsDeduper:
    """Claims alert keys through the job store's event records (a Firestore create / SET NX)."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def claim(self, key: str) -> bool:
        return self.jobs.mark_event("alert:" + key)


def _publish_alerts(svc: Services, fired: list[tuple[Any, dict]]) -> None:
    """Publish each fired ``(strategy record, alert)`` to the alerts topic (the notify function),
    all of them in flight at once (``bus.publish_many``).

    Each alert was claimed when it fired. When Pub/Sub refuses some, their claims are released
    before the error propagates (the delivery is retried, the sweep cursor stays put), so a
    re-evaluation publishes them instead of finding them claimed: the alert is delayed, never
    lost, and the ones Pub/Sub took are not sent twice."""
    from . import alerting

    if not fired:
        return
    msgs = [messages.make("stratagem.alert.v1", alert=alert, user_id=rec.user_id) for rec, alert in fired]
    try:
        publish_many(svc.bus, TOPICS["alerts"], msgs)
    except PublishIncomplete as exc:
        alerting.release_claims(svc, [a for (_, a), ok in zip(fired, exc.accepted) if not ok])
        raise


def evaluate_alerts(svc: Services, day: int, symbols_with_bars: list[str]) -> list[dict]:
    """Evaluate every active strategy on ``symbols_with_bars`` as of ``day`` (bars already in
    the dataset or the live store); publish each alert that fires for the first time
    (strategy x version x symbol x bar). Arriving bars go through :func:`handle_alert_bars`."""
    from . import alerting

    fired = alerting.evaluate_items(svc, [(int(day), s.upper()) for s in symbols_with_bars],
                                    lambda f: _publish_alerts(svc, f))
    return [a for _, a in fired]


def _on_bars(svc: Services, msg: dict) -> None:
    from . import alerting

    if msg["schema"] != "stratagem.bars.v1":
        raise messages.MalformedMessage(f"expected a stratagem.bars.v1 message, got {msg['schema']}")
    out = alerting.on_bars(svc, msg, lambda fired: _publish_alerts(svc, fired))
    alerting.mark_evaluated(svc, out["evaluated"])  # only once published: else the sweep redoes them
    log.info("bars: %s; %d alert(s)", out["counts"], len(out["fired"]))


@_once("alert bars")
def handle_alert_bars(svc: Services, msg: dict, event_id: str = "") -> None:
    """Bars function (event-driven half of second-level alerting): store the bars of a
    ``stratagem.bars.v1`` message (new / corrected / duplicate / conflict, see
    :mod:`stratagem.live`), evaluate the new and corrected ones at their own dates, and
    publish what fires."""
    _on_bars(svc, msg)


@_once("alert tick")
def handle_alert_tick(svc: Services, msg: dict, event_id: str = "") -> None:
    """Alert tick: a ``stratagem.tick.v1`` (the scheduler's, once a minute) sweeps the live
    bar store every second for ``sweep_seconds`` (one pass when absent), evaluating bars that
    arrived since the durable cursor and publishing what fires at once; a ``stratagem.bars.v1``
    is handled as by the bars function."""
    from . import alerting

    if msg["schema"] == "stratagem.bars.v1":
        _on_bars(svc, msg)
        return
    out = alerting.sweep(svc, msg.get("sweep_seconds", 0), lambda fired: _publish_alerts(svc, fired))
    log.info("sweep: %d pass(es), %d bar(s), %d alert(s)", out["passes"], out["bars"], len(out["alerts"]))


# The job a dead-lettered message belongs to, by schema (generation and validation are one job),
# and what the user is told failed.
_DEAD_LETTER_JOBS = {"stratagem.generate.v1": ("generate", "generating the strategy"),
                     "stratagem.validate.v1": ("generate", "validating the generated strategy"),
                     "stratagem.backtest_shard.v1": ("backtest", "evaluating a part of the backtest"),
                     "stratagem.screen_shard.v1": ("screen", "evaluating a part of the screen")}
DEAD_LETTER_CODE = "dead_lettered"


@_once("dead letter")
def handle_dead_letter(svc: Services, msg: dict, event_id: str = "") -> None:
    """Dead-letter function: ``msg`` failed on every delivery attempt of its subscription and
    Pub/Sub set it aside. Its effect is made visible instead of silently missing:

    - a job's message (generation, validation, a backtest or screen shard): the job can no
      longer finish, so it is failed with the reason (a job already finished is left alone);
    - an alert's notification: the alert is logged if it was not, and each channel without an
      outcome is recorded as failed, so the alert log shows it and why;
    - bars: stored in the live bar store if they were not, so the next sweep evaluates them;
    - the scheduler's tick: logged (the next minute's tick sweeps again).

    The message also stays in the dead-letter hold subscription for inspection. A failure here
    (a store still down) propagates: this function's subscription has no dead-letter policy,
    so Pub/Sub retries until the store is back. A forged message (a job of another user) is
    rejected like on every other topic."""
    schema = msg["schema"]
    if schema in _DEAD_LETTER_JOBS:
        kind, step = _DEAD_LETTER_JOBS[schema]
        job = _check_owner(svc, msg, kind)
        if job.status in ("done", "failed"):
            return
        svc.jobs.finish(job.id, error={
            "code": DEAD_LETTER_CODE,
            "message": (f"{step} failed on every delivery attempt (a dependency kept failing), so the message "
                        "was set aside and kept for inspection; nothing was half-saved. Submit the request again."),
            "details": {"schema": schema, **({"shard": msg["shard"]} if "shard" in msg else {})}})
        log.error("dead letter: job %s failed (%s)", job.id, schema)
        return
    if schema == "stratagem.alert.v1":
        alert, user = msg["alert"], msg["user_id"]
        log_ = svc.alert_log
        if log_ is None:
            log.error("dead letter: alert %s was not delivered (no alert log)", alert.get("dedup_key"))
            return
        key = alert["dedup_key"]
        log_.add(user, alert)
        entry = log_.get(user, key)
        if entry is None:
            raise messages.MalformedMessage("dead letter: the alert is logged for another user")
        delivery = entry.get("delivery", {})
        for n in svc.notifiers:
            if delivery.get(n.channel, {}).get("status") in (None, "sending"):
                log_.set_delivery(key, n.channel, {"status": "failed", "error": "not delivered: the notify function "
                                                   "failed on every delivery attempt (dead-lettered)"})
        log.error("dead letter: alert %s recorded as not delivered", key)
        return
    if schema == "stratagem.bars.v1":
        from . import alerting, live

        report = live.ingest(alerting.live_store(svc), svc.market, live.bars_from_message(msg))
        log.error("dead letter: bars stored for the next sweep: %s", report.counts())
        return
    log.error("dead letter: %s message set aside (nothing to repair)", schema)


NOTIFY_STALE_SENDING_S = 300  # a "sending" mark older than this is a crashed attempt: deliver again


def handle_notify(svc: Services, msg: dict, event_id: str = "") -> None:
    """Notification: record the alert once in the alert log, deliver on every channel,
    record each channel's outcome (a failed channel never loses the alert).

    The call that logs the alert claims every channel (``sending``) in the same write, so a
    concurrent duplicate delivery finds them all claimed and sends nothing. A later duplicate
    (Pub/Sub redelivers after a crash or a missed ack) sends only on channels with no recorded
    outcome whose ``sending`` mark is older than :data:`NOTIFY_STALE_SENDING_S` (the process died
    mid-send). So nothing is lost, and nothing is sent twice short of a crash between a send and
    its record (or two redeliveries racing on the same stale mark)."""
    import time

    alert, user = msg["alert"], msg["user_id"]
    log_ = svc.alert_log
    key = alert["dedup_key"]
    channels = [n.channel for n in svc.notifiers]
    todo = set(channels)
    if log_ is not None and not log_.add(user, alert, sending=channels):
        entry = log_.get(user, key)
        if entry is None:
            return  # logged for another user: a forged or corrupt message, nothing of this user's to send
        now_ms = int(getattr(log_, "clock", time.time)() * 1000)  # the clock that stamped the claims
        done = {ch for ch, r in entry.get("delivery", {}).items()
                if r.get("status") != "sending" or now_ms - int(r.get("at", 0)) < NOTIFY_STALE_SENDING_S * 1000}
        todo -= done
        if not todo:
            return  # this alert was already logged and delivered (or is being delivered)
        for ch in todo:  # re-claim the channels of the crashed attempt
            log_.set_delivery(key, ch, {"status": "sending", "at": now_ms})
    for n in svc.notifiers:
        if n.channel not in todo:
            continue
        try:
            result = n.send(user, alert)
        except Exception as exc:  # noqa: BLE001 - recorded; the alert stays in the log
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
        if log_ is not None:
            log_.set_delivery(key, n.channel, result)
