"""FirestoreJobStore against the official emulator: once-only shards, exactly-once
finalisation and duplicate events under concurrent callers, big results through chunks,
and an emulator outage (stopped, then started again on the same port)."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from stratagem.errors import BadInput, InfraUnavailable, NotFound
from stratagem.jobs import Job, JobStore, new_job_id
from stratagem.jobs_firestore import (
    CHUNK_CHARS,
    FirestoreJobStore,
    decode_result,
    encode_result,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def jobs(firestore_client, prefix):
    return FirestoreJobStore(client=firestore_client, prefix=prefix)


def other_clients(emulator, prefix, n):
    """``n`` stores on two separate clients: like separate function instances."""
    clients = [emulator.client() for _ in range(2)]
    return [FirestoreJobStore(client=clients[k % 2], prefix=prefix) for k in range(n)]


def race(n, work):
    """Run ``work(k)`` in ``n`` threads released together; their results in order."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def worker(k):
        try:
            barrier.wait()
            results[k] = work(k)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_a_job_round_trips(jobs):
    port = [name for name in vars(JobStore) if not name.startswith("_")]
    assert len(port) == 10 and all(callable(getattr(jobs, name)) for name in port)  # not runtime_checkable
    job = jobs.create(Job(new_job_id(), "alice", "backtest", shards=2, params={"symbols": ["A"], "w": [[1, 2]]}))
    got = jobs.get("alice", job.id)
    assert got == job and got.status == "queued" and got.params == {"symbols": ["A"], "w": [[1, 2]]}
    assert jobs.get_any(job.id) == job
    for call in (lambda: jobs.get("mallory", job.id), lambda: jobs.get_any("nope"), lambda: jobs.try_finalize("nope"),
                 lambda: jobs.put_shard("nope", 0, 1), lambda: jobs.finish("nope", result=1)):
        with pytest.raises(NotFound, match="not found"):
            call()
    assert jobs.shard_results("nope") == {}


def test_shards_status_finalize_and_finish(jobs):
    job = jobs.create(Job(new_job_id(), "alice", "screen", shards=2))
    assert jobs.try_finalize(job.id) is False
    assert jobs.put_shard(job.id, 1, {"signals": [1.5, float("nan")]}) is True
    assert jobs.get_any(job.id).status == "running"
    assert jobs.put_shard(job.id, 1, {"other": "payload"}) is False  # redelivered: nothing stored
    assert jobs.try_finalize(job.id) is False  # one shard missing
    assert jobs.put_shard(job.id, 0, [1, 2]) is True
    results = jobs.shard_results(job.id)
    assert list(results) == [0, 1] and results[0] == [1, 2] and results[1]["signals"][0] == 1.5
    assert jobs.try_finalize(job.id) is True and jobs.try_finalize(job.id) is False
    jobs.finish(job.id, result={"ranked": [1, 2]})
    done = jobs.get("alice", job.id)
    assert (done.status, done.result, done.error) == ("done", {"ranked": [1, 2]}, None)
    assert done.to_json(shards_done=2)["shardsDone"] == 2
    jobs.finish(job.id, error={"code": "boom", "message": "failed"})
    failed = jobs.get_any(job.id)
    assert (failed.status, failed.result, failed.error) == ("failed", None, {"code": "boom", "message": "failed"})


@pytest.mark.parametrize("shard,message", [(-1, "non-negative integer"), (True, "non-negative integer"),
                                           ("0", "non-negative integer"), (2, r"has shards 0..1, got shard 2")])
def test_bad_shard_numbers(jobs, shard, message):
    job = jobs.create(Job(new_job_id(), "alice", "backtest", shards=2))
    with pytest.raises(BadInput, match=message):
        jobs.put_shard(job.id, shard, {})
    assert jobs.shard_results(job.id) == {}


def test_concurrent_put_shard_stores_each_shard_once(firestore_emulator, prefix):
    stores = other_clients(firestore_emulator, prefix, 8)
    job = stores[0].create(Job(new_job_id(), "alice", "backtest", shards=4))
    # Eight callers each deliver all four shards, in their own order, with their own payload.
    orders = [random.Random(k).sample(range(4), 4) for k in range(8)]
    won = race(8, lambda k: [(s, stores[k].put_shard(job.id, s, {"from": k})) for s in orders[k]])
    winners = {s: k for k, outcomes in enumerate(won) for s, ok in outcomes if ok}
    assert sum(ok for outcomes in won for _, ok in outcomes) == 4 and sorted(winners) == [0, 1, 2, 3]
    assert stores[0].shard_results(job.id) == {s: {"from": k} for s, k in winners.items()}
    assert stores[0].get_any(job.id).status == "running"


def test_try_finalize_is_true_exactly_once_under_concurrency(firestore_emulator, prefix):
    stores = other_clients(firestore_emulator, prefix, 8)
    job = stores[0].create(Job(new_job_id(), "alice", "backtest", shards=8))

    def shard_then_finalize(k):  # the handler's shape: store my shard, then try to finalise
        stores[k].put_shard(job.id, k, {"k": k})
        return stores[k].try_finalize(job.id)

    assert sorted(race(8, shard_then_finalize)) == [False] * 7 + [True]
    assert race(8, lambda k: stores[k].try_finalize(job.id)) == [False] * 8  # and never again


def test_mark_event_duplicates(firestore_emulator, firestore_client, prefix):
    jobs = FirestoreJobStore(client=firestore_client, prefix=prefix, event_ttl=timedelta(days=2))
    assert jobs.mark_event("msg-1") is True
    assert jobs.mark_event("msg-1") is False
    for odd in ("alert:7:AAPL:2024-01-02", "a/b", "__reserved__", ".", "x" * 600):
        assert jobs.mark_event(odd) is True and jobs.mark_event(odd) is False
    stores = other_clients(firestore_emulator, prefix, 8)
    assert sorted(race(8, lambda k: stores[k].mark_event("raced"))) == [False] * 7 + [True]
    (doc,) = [d for d in firestore_client.collection(prefix + "events").stream() if d.get("eventId") == "msg-1"]
    expire = doc.get("expireAt")
    assert abs(expire - (datetime.now(UTC) + timedelta(days=2))) < timedelta(minutes=5)
    with pytest.raises(BadInput, match="event id must be a non-empty string"):
        jobs.mark_event("")


def test_a_3_mb_result_round_trips_through_chunks(jobs, firestore_client, prefix):
    rng = random.Random(7)
    # ~3 MB of JSON that compresses only ~2x, so it must be split into several documents.
    result = {"rows": [{"id": i, "token": f"{rng.getrandbits(128):032x}"} for i in range(52_000)]}
    assert len(json.dumps(result)) > 3_000_000
    job = jobs.create(Job(new_job_id(), "alice", "backtest", shards=1))
    assert jobs.put_shard(job.id, 0, result) is True  # a shard's result may be as big
    jobs.finish(job.id, result=result)
    assert jobs.get("alice", job.id).result == result
    assert jobs.shard_results(job.id) == {0: result}
    chunks = list(firestore_client.collection(prefix + "jobs").document(job.id).collection("chunks").stream())
    assert len(chunks) >= 2 and all(len(c.get("data")) <= CHUNK_CHARS for c in chunks)
    # A new result replaces the chunks; the old generation is removed.
    jobs.finish(job.id, result={"small": True})
    assert jobs.get_any(job.id).result == {"small": True}
    assert list(firestore_client.collection(prefix + "jobs").document(job.id).collection("chunks").stream()) == []


def test_result_encodings():
    small, _ = encode_result({"a": 1})
    assert small["encoding"] == "json" and decode_result(small) == {"a": 1}
    compressible = {"x": "a" * 2_000_000}
    meta, parts = encode_result(compressible)
    assert (meta["encoding"], meta["chunks"], parts) == ("zlib+base64", 0, [])
    assert decode_result(meta) == compressible
    assert encode_result(None) == (None, [])
    with pytest.raises(BadInput, match="JSON-serialisable"):
        encode_result({"s": {1}})


def test_emulator_restart(firestore_emulator, firestore_client, prefix):
    """Stopped: calls fail with InfraUnavailable (bounded by timeout_s). Started again on the
    same port: the same client works again (the emulator comes back empty)."""
    down = FirestoreJobStore(client=firestore_client, prefix=prefix, timeout_s=1.0)
    job = down.create(Job(new_job_id(), "alice", "backtest", shards=1))
    port = firestore_emulator.port
    firestore_emulator.stop()
    try:
        started = time.monotonic()
        for call in (lambda: down.get_any(job.id), lambda: down.put_shard(job.id, 0, {}),
                     lambda: down.mark_event("e-1")):
            with pytest.raises(InfraUnavailable, match="Firestore is unavailable") as err:
                call()
            assert err.value.exit_code == 3 and err.value.http_status == 503
        assert time.monotonic() - started < 12
    finally:
        firestore_emulator.start()
    assert firestore_emulator.port == port
    up = FirestoreJobStore(client=firestore_client, prefix=prefix, timeout_s=30.0)  # grpc reconnects with backoff
    with pytest.raises(NotFound):
        up.get_any(job.id)
    again = up.create(Job(new_job_id(), "alice", "backtest", shards=1))
    assert up.put_shard(again.id, 0, {"ok": 1}) is True and up.try_finalize(again.id) is True
    assert up.mark_event("e-1") is True
