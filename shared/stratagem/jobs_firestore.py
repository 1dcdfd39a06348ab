"""Jobs in Cloud Firestore (or its emulator): the :class:`~stratagem.jobs.JobStore` port.

Documents, under an optional collection-name ``prefix``::

    jobs/{jobId}                     userId, kind, status, shards, paramsJson, errorJson,
                                     result {encoding, data, chunks, gen}, finalized, createdAt, updatedAt
    jobs/{jobId}/shards/{n}          one shard's result, created once: {shard, result, claim, createdAt}
    jobs/{jobId}/chunks/{gen}-{k}    pieces of a result too big for its document
    jobs/{jobId}/shards/{n}/chunks/{gen}-{k}   (the same, for a shard's result)
    events/{eventId}                 {eventId, claim, at, expireAt}: processed event ids

(An id that is not a plain document id, e.g. one with a ``/``, is stored under ``~`` + its
SHA-256; see :func:`stratagem.store.firestore.doc_id`.)

Once-only, without server-side transactions (the emulator serialises contended ones with a
2-second lock timeout each; see :mod:`stratagem.store.firestore`):

* ``put_shard`` *creates* ``shards/{n}``; Firestore refuses a second create, so a retried or
  redelivered shard stores nothing and returns False. The first shard also moves the job
  from ``queued`` to ``running`` in the same atomic commit (conditional on the job document
  being unchanged); later shards leave the job document alone, so shards landing together
  do not contend on it (``updatedAt`` is the last status change, not the last shard) and a
  late shard never turns a ``done``/``failed`` job back to ``running``. Shard numbers must be
  ``0..shards-1`` (BadInput otherwise), so a stray number cannot complete the count early.
* ``try_finalize`` reads the job and counts its shards, then flips ``finalized`` from false
  to true with a commit conditional on the job document being unchanged since that read.
  Of any number of concurrent callers exactly one commits and gets True.
* ``mark_event`` creates ``events/{id}``. Its ``expireAt`` (now + ``event_ttl``) is for a
  Firestore TTL policy on the ``events`` collection group, which deletes it within a day or so
  of expiry.

A create that was applied but whose answer was lost is retried by the client library and
then refused as "already exists"; a random ``claim`` written with the document tells our
own earlier write from another caller's, so that case still returns True.

Results (job and shard) are stored as JSON text when that is at most 512 KiB, else
zlib-compressed and base64-encoded; if that is still over 512 KiB it is split into
``chunks/{gen}-{k}`` documents of at most 900 KB each (Firestore's limit is 1 MiB a
document), written before the document that points at them (``result.gen``,
``result.chunks``), and reassembled by ``get``/``shard_results``. A new result gets a new
``gen`` and the previous generation's chunks are removed after the switch.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import BadInput, InfraUnavailable, NotFound, StratagemError
from .jobs import Job, now_iso
from .store.firestore import DEFAULT_TIMEOUT_S, FirestoreBackend, WriteConflict, doc_id

INLINE_MAX_BYTES = 512 * 1024
CHUNK_CHARS = 900_000
CHUNKS_PER_COMMIT = 4  # ~3.6 MB a commit, well under Firestore's 10 MiB request limit
DEFAULT_EVENT_TTL = timedelta(days=7)


def encode_result(value: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """``(result field, chunk texts)`` for ``value`` (no chunks when it fits inline)."""
    if value is None:
        return None, []
    try:
        text = json.dumps(value, separators=(",", ":"))  # ASCII: no lone surrogate reaches Firestore
    except (TypeError, ValueError) as exc:
        raise BadInput(f"a job result must be JSON-serialisable: {exc}") from None
    raw = text.encode("ascii")
    if len(raw) <= INLINE_MAX_BYTES:
        return {"encoding": "json", "data": text, "chunks": 0, "gen": None}, []
    # Level 1: a 3 MB result of 18,000 instances packs in 0.03 s instead of 0.13 s at level 6,
    # on the merge's critical path; the chunks it saves at 6 are not worth that.
    packed = base64.b64encode(zlib.compress(raw, 1)).decode("ascii")
    if len(packed) <= INLINE_MAX_BYTES:
        return {"encoding": "zlib+base64", "data": packed, "chunks": 0, "gen": None}, []
    parts = [packed[i:i + CHUNK_CHARS] for i in range(0, len(packed), CHUNK_CHARS)]
    return {"encoding": "zlib+base64", "data": None, "chunks": len(parts), "gen": uuid.uuid4().hex[:12]}, parts


def decode_result(meta: dict[str, Any] | None, chunks: list[str] | None = None) -> Any:
    if meta is None:
        return None
    data = "".join(chunks or []) if meta["chunks"] else meta["data"]
    if meta["encoding"] == "json":
        return json.loads(data)
    if meta["encoding"] == "zlib+base64":
        return json.loads(zlib.decompress(base64.b64decode(data)).decode("ascii"))
    raise StratagemError(f"stored result has unknown encoding {meta['encoding']!r}; expected json or zlib+base64")


class _StaleChunks(Exception):
    """The chunks a read pointed at were replaced meanwhile; read the pointer again."""


class FirestoreJobStore(FirestoreBackend):
    """A :class:`~stratagem.jobs.JobStore` in Firestore (see the module docstring).

    >>> jobs = FirestoreJobStore(project="my-project")                # doctest: +SKIP
    >>> jobs = FirestoreJobStore(client=emulator.client(), prefix="t1_")  # doctest: +SKIP
    """

    def __init__(self, client: Any = None, project: str | None = None, prefix: str = "", *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, event_ttl: timedelta = DEFAULT_EVENT_TTL) -> None:
        super().__init__(client, project, prefix, timeout_s=timeout_s)
        self.event_ttl = event_ttl

    # -- references and helpers --
    def _job_ref(self, job_id: object) -> Any:
        if not isinstance(job_id, str) or not job_id:
            raise NotFound(f"job {job_id!r} not found")
        return self.collection("jobs").document(doc_id(job_id))

    def _job_snapshot(self, job_id: str) -> Any:
        snap = self._get(self._job_ref(job_id))
        if not snap.exists:
            raise NotFound(f"job {job_id} not found")
        return snap

    def _write_chunks(self, parent: Any, meta: dict[str, Any] | None, parts: list[str]) -> None:
        if not parts:
            return
        assert meta is not None
        col = parent.collection("chunks")
        for start in range(0, len(parts), CHUNKS_PER_COMMIT):
            batch = self._batch()
            for k in range(start, min(start + CHUNKS_PER_COMMIT, len(parts))):
                batch.set(col.document(f"{meta['gen']}-{k}"), {"gen": meta["gen"], "k": k, "data": parts[k]})
            batch.commit(retry=self._retry(write=True), timeout=self.timeout_s)

    def _drop_chunks(self, parent: Any, meta: dict[str, Any] | None) -> None:
        if meta and meta.get("chunks"):
            col = parent.collection("chunks")
            self._delete_all(col.document(f"{meta['gen']}-{k}") for k in range(meta["chunks"]))

    def _read(self, parent: Any, meta: dict[str, Any] | None) -> Any:
        if not meta or not meta.get("chunks"):
            return decode_result(meta)
        col = parent.collection("chunks")
        refs = [col.document(f"{meta['gen']}-{k}") for k in range(meta["chunks"])]
        snaps = self._get_all(refs)
        if not all(snaps.get(r.path) is not None and snaps[r.path].exists for r in refs):
            raise _StaleChunks(parent.path)
        return decode_result(meta, [snaps[r.path].get("data") for r in refs])

    def _job(self, snap: Any) -> Job:
        d = snap.to_dict()
        error = d.get("errorJson")
        return Job(id=d["jobId"], user_id=d["userId"], kind=d["kind"], status=d["status"], shards=d["shards"],
                   params=json.loads(d["paramsJson"]), result=self._read(snap.reference, d.get("result")),
                   error=None if error is None else json.loads(error),
                   created_at=d["createdAt"], updated_at=d["updatedAt"])

    def _load(self, job_id: str) -> Job:
        for _ in range(5):  # a result replaced between reading the job and reading its chunks
            try:
                return self._job(self._job_snapshot(job_id))
            except _StaleChunks:
                continue
        raise InfraUnavailable(f"job {job_id}'s result kept changing while it was read; retrying may help")

    def _claimed(self, ref: Any, claim: str) -> bool:
        """After "already exists": was it our own write (applied, answer lost, retried)?"""
        snap = self._get(ref)
        return bool(snap.exists and snap.get("claim") == claim)

    # -- the port --
    def create(self, job: Job) -> Job:
        """Store ``job`` (replacing a job with the same id, as MemoryJobStore does)."""
        meta, parts = encode_result(job.result)
        with self._errors(f"creating job {job.id}"):
            ref = self._job_ref(job.id)
            try:
                params_json = json.dumps(job.params, separators=(",", ":"))
                error_json = None if job.error is None else json.dumps(job.error)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"job params and error must be JSON-serialisable: {exc}") from None
            self._write_chunks(ref, meta, parts)
            ref.set({"jobId": job.id, "userId": job.user_id, "kind": job.kind, "status": job.status,
                     "shards": job.shards, "paramsJson": params_json, "errorJson": error_json, "result": meta,
                     "finalized": False, "createdAt": job.created_at, "updatedAt": job.updated_at},
                    retry=self._retry(write=True), timeout=self.timeout_s)
        return job

    def get_any(self, job_id: str) -> Job:
        with self._errors(f"reading job {job_id}"):
            return self._load(job_id)

    def get(self, user_id: str, job_id: str) -> Job:
        job = self.get_any(job_id)
        if job.user_id != user_id:
            raise NotFound(f"job {job_id} not found")
        return job

    def put_shard(self, job_id: str, shard: int, result: Any) -> bool:
        """Store shard ``shard``'s result once; False when it was already stored."""
        if isinstance(shard, bool) or not isinstance(shard, int) or shard < 0:
            raise BadInput(f"shard must be a non-negative integer, got {shard!r}")
        meta, parts = encode_result(result)
        claim = uuid.uuid4().hex
        with self._errors(f"storing shard {shard} of job {job_id}"):
            job_ref = self._job_ref(job_id)
            ref = job_ref.collection("shards").document(str(shard))

            def attempt() -> bool:
                job = self._job_snapshot(job_id)
                if shard >= job.get("shards"):
                    raise BadInput(f"job {job_id} has shards 0..{job.get('shards') - 1}, got shard {shard}")
                batch = self._batch()
                batch.create(ref, {"shard": shard, "result": meta, "claim": claim, "createdAt": now_iso()})
                if job.get("status") == "queued":
                    batch.update(job_ref, {"status": "running", "updatedAt": now_iso()},
                                 option=self._if_unchanged(job))
                try:
                    self._commit(batch)
                except WriteConflict as exc:
                    if exc.already_exists:
                        return self._claimed(ref, claim)
                    raise
                return True

            if parts:
                self._job_snapshot(job_id)  # NotFound before writing any chunk
                self._write_chunks(ref, meta, parts)
            stored = self._optimistic(f"storing shard {shard} of job {job_id}", attempt)
            if not stored:
                self._drop_chunks(ref, meta)  # ours, unused: the first delivery's result stays
            return stored

    def shard_results(self, job_id: str) -> dict[int, Any]:
        with self._errors(f"reading the shards of job {job_id}"):
            shards = self._job_ref(job_id).collection("shards")
            out: dict[int, Any] = {}
            for snap in self._stream(shards):
                out[int(snap.get("shard"))] = self._read(snap.reference, snap.get("result"))
            return dict(sorted(out.items()))

    def try_finalize(self, job_id: str) -> bool:
        """True for exactly one caller, once every shard is stored."""
        with self._errors(f"finalising job {job_id}"):
            ref = self._job_ref(job_id)

            def attempt() -> bool:
                job = self._job_snapshot(job_id)
                if job.get("finalized") or self._count(ref.collection("shards")) < job.get("shards"):
                    return False
                batch = self._batch()
                batch.update(ref, {"finalized": True}, option=self._if_unchanged(job))
                self._commit(batch)
                return True

            return self._optimistic(f"finalising job {job_id}", attempt)

    def finish(self, job_id: str, *, result: Any = None, error: dict | None = None) -> None:
        meta, parts = encode_result(result)
        try:
            error_json = None if error is None else json.dumps(error)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"a job error must be JSON-serialisable: {exc}") from None
        with self._errors(f"finishing job {job_id}"):
            ref = self._job_ref(job_id)
            self._job_snapshot(job_id)  # NotFound before writing any chunk
            self._write_chunks(ref, meta, parts)

            def attempt() -> Any:
                job = self._job_snapshot(job_id)
                batch = self._batch()
                batch.update(ref, {"result": meta, "errorJson": error_json, "status": "failed" if error else "done",
                                   "updatedAt": now_iso()}, option=self._if_unchanged(job))
                self._commit(batch)
                return job.get("result")

            previous = self._optimistic(f"finishing job {job_id}", attempt)
            if previous and previous.get("gen") != (meta or {}).get("gen"):
                self._drop_chunks(ref, previous)

    def mark_event(self, event_id: str) -> bool:
        """Record a processed event id; False if it was already recorded."""
        if not isinstance(event_id, str) or not event_id:
            raise BadInput(f"event id must be a non-empty string, got {event_id!r}")
        claim = uuid.uuid4().hex
        now = datetime.now(UTC)
        with self._errors(f"recording event {event_id!r:.80}"):
            ref = self.collection("events").document(doc_id(event_id))
            from google.api_core import exceptions as gex

            try:
                ref.create({"eventId": event_id, "claim": claim, "at": now, "expireAt": now + self.event_ttl},
                           retry=self._retry(write=True), timeout=self.timeout_s)
            except gex.AlreadyExists:
                return self._claimed(ref, claim)
            return True

    def seen_event(self, event_id: str) -> bool:
        """Whether ``event_id`` was recorded by :meth:`mark_event` (one document read)."""
        if not isinstance(event_id, str) or not event_id:
            raise BadInput(f"event id must be a non-empty string, got {event_id!r}")
        with self._errors(f"reading event {event_id!r:.80}"):
            return bool(self._get(self.collection("events").document(doc_id(event_id))).exists)

    def release_event(self, event_id: str) -> None:
        """Delete ``events/{id}`` (no error when it is already gone)."""
        if not isinstance(event_id, str) or not event_id:
            raise BadInput(f"event id must be a non-empty string, got {event_id!r}")
        with self._errors(f"releasing event {event_id!r:.80}"):
            self.collection("events").document(doc_id(event_id)).delete(retry=self._retry(write=True),
                                                                        timeout=self.timeout_s)
