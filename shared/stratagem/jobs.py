"""Jobs: long work (generation, sharded backtests and screens) tracked in a job document.

A job knows how many shards it has; each shard's result is stored under its shard number
exactly once (a redelivered or retried shard overwrites nothing and counts once), and the
job is finalised exactly once when the last shard lands (a compare-and-set on the job).
Event ids of processed messages are recorded so duplicate deliveries do nothing.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from .errors import NotFound


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Job:
    id: str
    user_id: str
    kind: str  # generate | backtest | screen
    status: str = "queued"  # queued | running | done | failed
    shards: int = 1
    params: dict = field(default_factory=dict)
    result: Any = None
    error: dict | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def to_json(self, shards_done: int | None = None) -> dict:
        d = asdict(self)
        out = {"jobId": d["id"], "userId": d["user_id"], "kind": d["kind"], "status": d["status"],
               "shards": d["shards"], "params": d["params"], "result": d["result"], "error": d["error"],
               "createdAt": d["created_at"], "updatedAt": d["updated_at"]}
        if shards_done is not None:
            out["shardsDone"] = shards_done
        return out


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore(Protocol):
    def create(self, job: Job) -> Job: ...

    def get(self, user_id: str, job_id: str) -> Job: ...

    def get_any(self, job_id: str) -> Job: ...

    def put_shard(self, job_id: str, shard: int, result: Any) -> bool:
        """Store a shard's result once; False when it was already stored (duplicate)."""
        ...

    def shard_results(self, job_id: str) -> dict[int, Any]: ...

    def try_finalize(self, job_id: str) -> bool:
        """True for exactly one caller once all shards are stored."""
        ...

    def finish(self, job_id: str, *, result: Any = None, error: dict | None = None) -> None: ...

    def mark_event(self, event_id: str) -> bool:
        """Record a processed event id; False if it was already recorded."""
        ...

    def seen_event(self, event_id: str) -> bool:
        """Whether ``event_id`` was recorded (read only: handlers check it first and record
        the event only once their work succeeded, so a delivery that failed half-way is
        redone by Pub/Sub's retry instead of being taken for a duplicate)."""
        ...

    def release_event(self, event_id: str) -> None:
        """Forget a recorded event id (a claim whose effect could not be carried out, e.g. an
        alert claimed and then refused by Pub/Sub: released, a re-evaluation publishes it)."""
        ...


class MemoryJobStore:
    """Thread-safe in-memory jobs (embedded default and test fake)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._shards: dict[str, dict[int, Any]] = {}
        self._final: set[str] = set()
        self._events: set[str] = set()
        self._lock = threading.Lock()

    def create(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            self._shards[job.id] = {}
        return job

    def get_any(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def get(self, user_id: str, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            raise NotFound(f"job {job_id} not found")
        return job

    def put_shard(self, job_id: str, shard: int, result: Any) -> bool:
        with self._lock:
            if job_id not in self._jobs:
                raise NotFound(f"job {job_id} not found")
            got = self._shards[job_id]
            if shard in got:
                return False
            got[shard] = result
            job = self._jobs[job_id]
            job.status = "running"
            job.updated_at = now_iso()
            return True

    def shard_results(self, job_id: str) -> dict[int, Any]:
        with self._lock:
            return dict(self._shards.get(job_id, {}))

    def try_finalize(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs[job_id]
            if job_id in self._final or len(self._shards[job_id]) < job.shards:
                return False
            self._final.add(job_id)
            return True

    def finish(self, job_id: str, *, result: Any = None, error: dict | None = None) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job.result = result
            job.error = error
            job.status = "failed" if error else "done"
            job.updated_at = now_iso()

    def mark_event(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._events:
                return False
            self._events.add(event_id)
            return True

    def seen_event(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._events

    def release_event(self, event_id: str) -> None:
        with self._lock:
            self._events.discard(event_id)
