"""The strategy store port: one behaviour, checked on both adapters (memory and SQLite).

Ids are positive integers (CONTRACT §6), ``save(-1)`` creates, saving an existing id
appends a version, a user never sees another user's strategy, and concurrent creates
from several threads and processes never share an id.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from stratagem.errors import BadInput, InfraUnavailable, NotFound, StratagemError
from stratagem.store.base import (
    MAX_CODE_BYTES,
    RunRecord,
    StrategyRecord,
    StrategyStore,
    StrategyVersion,
)
from stratagem.store.memory import MemoryStore
from stratagem.store.sqlite import SCHEMA_VERSION, SqliteStore

CODE_V1 = "def classify_symbol(symbol):\n    return False\n"
CODE_V2 = "def classify_symbol(symbol):\n    return True\n"
RECORD_KEYS = {"id", "userId", "name", "description", "prompt", "code", "parameters", "explanation",
               "isAlertActive", "alertUniverse", "createdAt", "updatedAt", "version"}
VERSION_KEYS = {"id", "version", "code", "parameters", "name", "description", "prompt", "explanation",
                "createdAt", "codeSha256"}


class TickClock:
    """Each reading is one second after the last, from 2024-01-02T00:00:00Z."""

    def __init__(self) -> None:
        self.t = datetime(2024, 1, 2, tzinfo=UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.t += timedelta(seconds=1)
            return self.t


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore(clock=TickClock())
    else:
        s = SqliteStore(tmp_path / "home" / "strategies.sqlite3", clock=TickClock())
        yield s
        s.close()


def make(store, user="alice", name="Gap up", code=CODE_V1, **kw) -> StrategyRecord:
    fields = {"description": "gaps up on volume", "prompt": "find gap ups", "parameters": {"gap": 0.02},
              "explanation": "why it works"}
    fields.update(kw)
    return store.create(user, name=name, code=code, **fields)


# --- create / get / list / versions --------------------------------------------------------
def test_adapters_satisfy_the_port(store):
    assert isinstance(store, StrategyStore)


def test_create_then_get_list_versions(store):
    s = make(store)
    assert (s.id, s.version, s.user_id, s.code, s.parameters) == (1, 1, "alice", CODE_V1, {"gap": 0.02})
    assert s.is_alert_active is False and s.alert_universe is None
    doc = s.to_json()
    assert set(doc) == RECORD_KEYS
    assert doc["createdAt"] == doc["updatedAt"] == "2024-01-02T00:00:01.000000Z"
    assert json.loads(json.dumps(doc)) == doc
    assert store.get("alice", 1) == s
    t = make(store, name="Momentum")
    assert t.id == 2
    assert [r.id for r in store.list("alice")] == [1, 2]
    (v,) = store.versions("alice", 1)
    assert isinstance(v, StrategyVersion) and set(v.to_json()) == VERSION_KEYS
    assert (v.id, v.version, v.code, v.created_at) == (1, 1, CODE_V1, s.created_at)
    assert v.code_sha256 == s.code_sha256 and len(v.code_sha256) == 64


def test_defaults_and_returned_records_are_copies(store):
    s = store.create("alice", name="Bare", code=CODE_V1)
    assert (s.description, s.prompt, s.explanation, s.parameters) == ("", "", "", {})
    t = make(store, parameters={"windows": [1, 5]})
    t.parameters["windows"].append(99)
    assert store.get("alice", t.id).parameters == {"windows": [1, 5]}


def test_save_minus_one_creates_and_save_id_appends_a_version(store):
    s = store.save("alice", -1, name="Gap up", code=CODE_V1, parameters={"gap": 0.02}, prompt="gap ups")
    assert (s.id, s.version) == (1, 1)
    s2 = store.save("alice", 1, code=CODE_V2, parameters={"gap": 0.03})
    assert (s2.id, s2.version, s2.code, s2.parameters) == (1, 2, CODE_V2, {"gap": 0.03})
    assert (s2.name, s2.prompt) == ("Gap up", "gap ups")  # carried over from v1
    assert s2.created_at == s.created_at and s2.updated_at > s.updated_at
    old = store.get("alice", 1, version=1)
    assert (old.version, old.code, old.parameters) == (1, CODE_V1, {"gap": 0.02})
    assert old.updated_at == s.created_at
    assert store.get("alice", 1) == s2 and store.get("alice", 1, version=2) == s2
    assert [(v.version, v.code) for v in store.versions("alice", 1)] == [(1, CODE_V1), (2, CODE_V2)]
    assert [r.version for r in store.list("alice")] == [2]
    full = store.get("alice", 1, include_versions=True)
    assert [v["version"] for v in full.to_json()["versions"]] == [1, 2]
    assert StrategyRecord.from_json(full.to_json()) == full


def test_save_unknown_id_is_not_found_and_does_not_create(store):
    with pytest.raises(NotFound, match="strategy 5 not found"):
        store.save("alice", 5, code=CODE_V2)
    assert store.list("alice") == []


def test_get_missing_version(store):
    make(store)
    with pytest.raises(NotFound, match="strategy 1 has no version 3; versions are 1..1"):
        store.get("alice", 1, version=3)


def test_delete_removes_everything_and_ids_are_not_reused(store):
    make(store)
    make(store)
    store.record_run(RunRecord("r1", 2, 1, "alice", "backtest"))
    store.delete("alice", 2)
    for call in (lambda: store.get("alice", 2), lambda: store.runs("alice", 2), lambda: store.delete("alice", 2)):
        with pytest.raises(NotFound, match="strategy 2 not found"):
            call()
    assert make(store).id == 3
    assert [r.id for r in store.list("alice")] == [1, 3]


# --- cross-user isolation ------------------------------------------------------------------
ISOLATION_CALLS = {
    "get": lambda st, sid: st.get("mallory", sid),
    "get_version": lambda st, sid: st.get("mallory", sid, version=1),
    "save": lambda st, sid: st.save("mallory", sid, code=CODE_V2),
    "versions": lambda st, sid: st.versions("mallory", sid),
    "set_alert": lambda st, sid: st.set_alert("mallory", sid, True, ["AAPL"]),
    "record_run": lambda st, sid: st.record_run(RunRecord("r-x", sid, 1, "mallory", "screen")),
    "runs": lambda st, sid: st.runs("mallory", sid),
    "delete": lambda st, sid: st.delete("mallory", sid),
}


@pytest.mark.parametrize("method", sorted(ISOLATION_CALLS))
def test_other_users_strategy_looks_exactly_like_a_missing_one(store, method):
    s = make(store)
    call = ISOLATION_CALLS[method]
    with pytest.raises(NotFound) as theirs:
        call(store, s.id)
    with pytest.raises(NotFound) as missing:
        call(store, 999)
    assert str(theirs.value) == str(missing.value).replace("999", str(s.id))
    # ... and alice's strategy is untouched.
    assert store.get("alice", s.id) == s
    assert store.versions("alice", s.id)[-1].version == 1 and store.runs("alice", s.id) == []


def test_list_and_request_ids_are_per_user(store):
    make(store, request_id="req-1")
    assert store.list("mallory") == []
    theirs = store.create("mallory", name="Mine", code=CODE_V1, request_id="req-1")
    assert theirs.id == 2 and theirs.user_id == "mallory"
    assert [r.id for r in store.list("alice")] == [1] and [r.id for r in store.list("mallory")] == [2]


# --- alerts ----------------------------------------------------------------------------------
def test_set_alert_and_active_alerts_across_users(store):
    a1, a2 = make(store), make(store)
    b = make(store, user="bob")
    on = store.set_alert("alice", a2.id, True, [" aapl", "MSFT", "AAPL"])
    assert on.is_alert_active is True and on.alert_universe == ["AAPL", "MSFT"]
    assert on.updated_at > a2.updated_at and on.version == 1
    store.set_alert("bob", b.id, True)
    assert [(r.id, r.user_id) for r in store.active_alerts()] == [(2, "alice"), (3, "bob")]
    assert store.get("bob", b.id).alert_universe is None  # alert tick uses its default universe
    off = store.set_alert("alice", a2.id, False)
    assert off.is_alert_active is False and off.alert_universe == ["AAPL", "MSFT"]  # None keeps
    assert [r.id for r in store.active_alerts()] == [3]
    assert store.set_alert("alice", a1.id, True, []).alert_universe == []
    # Saving a new version keeps the alert flag; active_alerts shows the latest code.
    store.save("bob", b.id, code=CODE_V2)
    (alert,) = [r for r in store.active_alerts() if r.id == b.id]
    assert (alert.version, alert.code, alert.is_alert_active) == (2, CODE_V2, True)


# --- runs ------------------------------------------------------------------------------------
def test_runs_record_the_version_they_used(store):
    s = make(store)
    r1 = store.record_run(RunRecord("run-1", s.id, 1, "alice", "backtest", {"start": "2012-01-03"},
                                    {"instances": 4}))
    assert r1.created_at and r1.version == 1
    store.save("alice", s.id, code=CODE_V2)
    store.record_run(RunRecord("run-2", s.id, 2, "alice", "screen", {"limit": 5}, {"evaluated": 5}))
    store.record_run(RunRecord("run-3", s.id, 1, "alice", "replay"))  # an old version may be re-run
    runs = store.runs("alice", s.id)
    assert [(r.run_id, r.version, r.mode) for r in runs] == [("run-1", 1, "backtest"), ("run-2", 2, "screen"),
                                                             ("run-3", 1, "replay")]
    assert runs[0] == r1 and runs[0].params == {"start": "2012-01-03"}
    assert store.get("alice", s.id, version=runs[0].version).code == CODE_V1
    assert RunRecord.from_json(runs[1].to_json()) == runs[1]
    with pytest.raises(NotFound, match="no version 3"):
        store.record_run(RunRecord("run-4", s.id, 3, "alice", "backtest"))


def test_recording_a_run_again_updates_it_and_keeps_created_at(store):
    s = make(store)
    first = store.record_run(RunRecord("run-1", s.id, 1, "alice", "backtest", {"n": 1}, {"status": "started"}))
    again = store.record_run(RunRecord("run-1", s.id, 1, "alice", "backtest", {"n": 1}, {"status": "done"}))
    assert again.created_at == first.created_at and again.result_summary == {"status": "done"}
    assert store.runs("alice", s.id) == [again]


def test_run_created_at_is_normalised_to_utc(store):
    s = make(store)
    r = store.record_run(RunRecord("run-1", s.id, 1, "alice", "screen", created_at="2024-03-01T10:00:00+02:00"))
    assert r.created_at == "2024-03-01T08:00:00.000000Z"


# --- input validation ------------------------------------------------------------------------
BAD_INPUTS = [
    (lambda st: st.create("", name="x", code=CODE_V1), "user id must be a non-empty string"),
    (lambda st: st.create("   ", name="x", code=CODE_V1), "user id must be a non-empty string"),
    (lambda st: st.create("u" * 129, name="x", code=CODE_V1), "user id must be at most 128 characters, got 129"),
    (lambda st: st.list(7), "user id must be a non-empty string, got 7"),
    (lambda st: st.get("alice", 0), "strategy id must be a positive integer, got 0"),
    (lambda st: st.get("alice", -1), "strategy id must be a positive integer, got -1"),
    (lambda st: st.get("alice", "1"), "strategy id must be a positive integer, got '1'"),
    (lambda st: st.get("alice", True), "strategy id must be a positive integer, got True"),
    (lambda st: st.get("alice", 1.0), "strategy id must be a positive integer, got 1.0"),
    (lambda st: st.save("alice", -2, code=CODE_V1), r"strategy id must be a positive integer \(or -1 to create\)"),
    (lambda st: st.save("alice", -1.0, name="x", code=CODE_V1), r"\(or -1 to create\), got -1.0"),
    (lambda st: st.get("alice", 1, version=0), "version must be a positive integer, got 0"),
    (lambda st: st.create("alice", name="", code=CODE_V1), "name must be a non-empty string"),
    (lambda st: st.create("alice", name="n" * 201, code=CODE_V1), "name must be at most 200 characters, got 201"),
    (lambda st: st.create("alice", name=None, code=CODE_V1), "name must be a string, got NoneType"),
    (lambda st: st.create("alice", name="x", code=""), "code must be a non-empty string of Python source"),
    (lambda st: st.create("alice", name="x", code=b"x=1"), "code must be a string of Python source, got bytes"),
    (lambda st: st.create("alice", name="x", code="#" * (MAX_CODE_BYTES + 1)),
     f"code must be at most 200 KB, got {MAX_CODE_BYTES + 1} bytes"),
    (lambda st: st.create("alice", name="x", code="s = '\ud800'"), "code must be valid Unicode text"),
    (lambda st: st.create("alice", name="x", code=CODE_V1, parameters={"s": {1, 2}}),
     "parameters must be JSON-serialisable .*set"),
    (lambda st: st.create("alice", name="x", code=CODE_V1, parameters={"x": float("nan")}),
     "parameters must be JSON-serialisable"),
    (lambda st: st.create("alice", name="x", code=CODE_V1, parameters=["p" * 70_000]),
     "parameters must be at most 65536 bytes as JSON"),
    (lambda st: st.create("alice", name="x", code=CODE_V1, description=3), "description must be a string, got int"),
    (lambda st: st.create("alice", name="x", code=CODE_V1, request_id=""), "request id must be a non-empty string"),
    (lambda st: st.save("alice", -1, code=CODE_V1), r"a new strategy \(strategyId -1\) needs name"),
    (lambda st: st.save("alice", 1, cod=CODE_V1), "unknown strategy field.*'cod'; expected some of name, description"),
    (lambda st: st.set_alert("alice", 1, "yes"), "alert 'active' must be true or false, got 'yes'"),
    (lambda st: st.set_alert("alice", 1, True, "AAPL"), "alert universe must be a list of ticker symbols, got str"),
    (lambda st: st.set_alert("alice", 1, True, ["AAPL", ""]), "alert universe symbols must be non-empty strings"),
    (lambda st: st.record_run({"runId": "r"}), "expected a RunRecord, got dict"),
    (lambda st: st.record_run(RunRecord("", 1, 1, "alice", "backtest")), "run id must be a non-empty string"),
    (lambda st: st.record_run(RunRecord("r", 1, 1, "alice", "screening")),
     "run mode must be one of backtest, screen, replay, got 'screening'"),
    (lambda st: st.record_run(RunRecord("r", 1, 0, "alice", "screen")), "version must be a positive integer, got 0"),
    (lambda st: st.record_run(RunRecord("r", 1, 1, "alice", "screen", params=[1])),  # type: ignore[arg-type]
     "run params must be a JSON object"),
    (lambda st: st.record_run(RunRecord("r", 1, 1, "alice", "screen", result_summary={"f": object()})),
     "run result summary must be JSON-serialisable"),
    (lambda st: st.record_run(RunRecord("r", 1, 1, "alice", "screen", created_at="yesterday")),
     "run createdAt must be an ISO-8601 timestamp with a UTC offset"),
    (lambda st: st.record_run(RunRecord("r", 1, 1, "alice", "screen", created_at="2024-01-01T00:00:00")),
     "run createdAt must be an ISO-8601 timestamp with a UTC offset"),
]


@pytest.mark.parametrize("call,message", BAD_INPUTS, ids=[m[:40] for _, m in BAD_INPUTS])
def test_bad_input_says_what_was_expected(store, call, message):
    make(store)
    with pytest.raises(BadInput, match=message) as err:
        call(store)
    assert not isinstance(err.value, NotFound) and err.value.exit_code == 2
    # Nothing was written by a rejected call.
    assert [(r.id, r.version, r.is_alert_active) for r in store.list("alice")] == [(1, 1, False)]
    assert store.runs("alice", 1) == []


# --- idempotence ------------------------------------------------------------------------------
def test_same_request_id_returns_the_created_record(store):
    first = make(store, request_id="pubsub-msg-1")
    again = make(store, request_id="pubsub-msg-1", name="different payload, same request")
    assert again == first and [r.id for r in store.list("alice")] == [1]
    assert make(store, request_id="pubsub-msg-2").id == 2
    assert make(store).id == 3 and make(store).id == 4  # no request id: always new
    via_save = store.save("alice", -1, name="x", code=CODE_V1, request_id="pubsub-msg-1")
    assert via_save == first


def test_same_request_id_on_save_appends_one_version(store):
    s = make(store)
    v2 = store.save("alice", s.id, code=CODE_V2, request_id="edit-1")
    assert store.save("alice", s.id, code=CODE_V2, request_id="edit-1") == v2
    assert len(store.versions("alice", s.id)) == 2
    store.save("alice", s.id, name="Renamed")
    # A late duplicate replays the version it made, not the newest one.
    assert store.save("alice", s.id, code=CODE_V2, request_id="edit-1") == v2
    assert len(store.versions("alice", s.id)) == 3


def test_deleting_forgets_request_ids(store):
    make(store, request_id="req")
    store.delete("alice", 1)
    assert make(store, request_id="req").id == 2


# --- concurrency --------------------------------------------------------------------------------
def test_concurrent_threads_never_share_an_id(store):
    ids: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                ids.append(store.create(f"user{n % 3}", name=f"s{n}-{i}", code=CODE_V1).id)
                store.list(f"user{n % 3}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(ids) == list(range(1, 201))
    assert sum(len(store.list(f"user{k}")) for k in range(3)) == 200


CHILD = textwrap.dedent("""
    import json, sys
    from stratagem.store.sqlite import SqliteStore
    store = SqliteStore(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()                     # all processes start creating together
    user = "proc" + sys.argv[2]
    ids = [store.create(user, name=f"s{i}", code="x = 1\\n").id for i in range(50)]
    print(json.dumps(ids), flush=True)
""")


def test_four_processes_creating_concurrently_get_distinct_ids(tmp_path):
    path = tmp_path / "strategies.sqlite3"
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(4)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:  # pragma: no cover - only on failure
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    per_process = [json.loads(out) for out, _ in results]
    all_ids = [i for ids in per_process for i in ids]
    assert sorted(all_ids) == list(range(1, 201))
    assert all(ids == sorted(ids) for ids in per_process)  # each process sees its ids rise
    with SqliteStore(path) as store:
        for n, ids in enumerate(per_process):
            assert [r.id for r in store.list(f"proc{n}")] == ids
    # The four also raced to create the schema and switch the fresh file to WAL.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


# --- SQLite specifics -----------------------------------------------------------------------------
def test_sqlite_persists_across_reopen(tmp_path):
    path = tmp_path / "home" / "strategies.sqlite3"
    with SqliteStore(path) as first:
        s = first.save("alice", -1, name="Gap up", code=CODE_V1, parameters=[{"name": "gap", "value": 0.02}],
                       request_id="req-1")
        first.save("alice", s.id, code=CODE_V2)
        first.set_alert("alice", s.id, True, ["AAPL"])
        first.record_run(RunRecord("run-1", s.id, 1, "alice", "backtest", {"a": 1}, {"b": [1, 2]}))
        before = (first.get("alice", s.id, include_versions=True), first.runs("alice", s.id))
    with SqliteStore(path) as second:
        assert (second.get("alice", s.id, include_versions=True), second.runs("alice", s.id)) == before
        assert second.get("alice", s.id, version=1).code == CODE_V1
        assert [r.id for r in second.active_alerts()] == [s.id]
        assert second.create("alice", name="dup", code=CODE_V1, request_id="req-1").id == s.id
        assert second.create("alice", name="next", code=CODE_V1).id == 2


def test_sqlite_schema_wal_and_version_table(tmp_path):
    path = tmp_path / "new" / "dir" / "s.sqlite3"
    store = SqliteStore(path)
    assert not path.exists()  # nothing happens before first use
    store.list("alice")
    store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"strategies", "strategy_versions", "runs", "requests", "schema_version"} <= tables
    finally:
        conn.close()
    assert SqliteStore.in_home(tmp_path).path == tmp_path / "strategies.sqlite3"


def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "s.sqlite3"
    with SqliteStore(path) as store:
        store.list("alice")
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StratagemError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        SqliteStore(path).list("alice")


def test_sqlite_unreadable_or_unopenable_file(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StratagemError, match="unreadable.*move it aside"):
        SqliteStore(junk).list("alice")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InfraUnavailable, match="cannot open the strategy store"):
        SqliteStore(blocker / "sub" / "s.sqlite3").list("alice")
    with pytest.raises(BadInput, match="use MemoryStore"):
        SqliteStore(":memory:")


def test_sqlite_connection_is_reopened_after_fork(tmp_path):
    import os

    if not hasattr(os, "fork"):  # pragma: no cover
        pytest.skip("needs fork")
    store = SqliteStore(tmp_path / "s.sqlite3")
    make(store)
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's connection
        code = 0
        try:
            code = 0 if make(store).id == 2 else 1
        except Exception:  # noqa: BLE001 - any failure is the child's exit code
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r.id for r in store.list("alice")] == [1, 2]
    store.close()


def test_records_round_trip_through_json():
    v = StrategyVersion(1, 2, "n", "d", "p", CODE_V1, {"a": 1}, "e", "2024-01-01T00:00:00.000000Z", "ab")
    assert StrategyVersion.from_json(json.loads(json.dumps(v.to_json()))) == v
    r = RunRecord("r", 1, 2, "u", "replay", {"a": 1}, {"b": None}, "2024-01-01T00:00:00.000000Z")
    assert RunRecord.from_json(json.loads(json.dumps(r.to_json()))) == r
    assert replace(r, created_at=None).to_json()["createdAt"] is None
