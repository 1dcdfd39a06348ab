"""FirestoreStore against the official emulator: the port's behaviour tests, rerun, plus
what only a shared database shows (concurrent writers, layout, clean-up, outages).

Every ``test_*`` of ``tests/unit/test_store.py`` that takes the ``store`` fixture runs here
against Firestore (the ``store`` fixture below replaces the memory/SQLite one), so a
behaviour test added there is checked here too.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
from stratagem.emulator import free_port
from stratagem.errors import BadInput, InfraUnavailable, NotFound
from stratagem.store.base import RunRecord, StrategyStore
from stratagem.store.firestore import FirestoreStore, doc_id

pytestmark = pytest.mark.integration


def _behaviour() -> ModuleType:
    """tests/unit/test_store.py, as pytest imports it (``unit.test_store`` in the default
    "prepend" import mode, where ``tests/`` is on sys.path), else loaded from its path."""
    try:
        from unit import test_store  # type: ignore[import-not-found]

        return test_store
    except ImportError:
        path = Path(__file__).resolve().parents[1] / "unit" / "test_store.py"
        spec = importlib.util.spec_from_file_location("stratagem_store_behaviour", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


behaviour = _behaviour()
CODE_V1, CODE_V2, TickClock, make = behaviour.CODE_V1, behaviour.CODE_V2, behaviour.TickClock, behaviour.make

NOT_RERUN = {
    # 8 threads x 25 creates + lists on one store; replaced by the cross-client test below.
    "test_concurrent_threads_never_share_an_id",
}
for _name, _test in vars(behaviour).copy().items():
    if (_name.startswith("test_") and callable(_test) and _name not in NOT_RERUN
            and "store" in inspect.signature(_test).parameters):
        globals()[_name] = _test
del _name, _test


@pytest.fixture
def store(firestore_client, prefix):
    return FirestoreStore(client=firestore_client, prefix=prefix, clock=TickClock())


def test_the_behaviour_suite_is_rerun_here():
    rerun = [n for n in globals() if n.startswith("test_") and getattr(behaviour, n, None) is globals()[n]]
    assert len(rerun) >= 15 and "test_other_users_strategy_looks_exactly_like_a_missing_one" in rerun


# --- concurrency: several clients, like several function instances ------------------------
def run_threads(n: int, work) -> list:
    results: list = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def worker(k: int) -> None:
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


def test_four_threads_creating_concurrently_get_ids_1_to_100(firestore_emulator, prefix):
    clients = [firestore_emulator.client() for _ in range(2)]
    stores = [FirestoreStore(client=clients[k % 2], prefix=prefix) for k in range(4)]
    per_thread = run_threads(4, lambda k: [stores[k].create(f"user{k}", name=f"s{i}", code=CODE_V1).id
                                           for i in range(25)])
    assert sorted(i for ids in per_thread for i in ids) == list(range(1, 101))
    assert all(ids == sorted(ids) for ids in per_thread)  # each writer sees its ids rise
    for k, ids in enumerate(per_thread):
        assert [r.id for r in stores[0].list(f"user{k}")] == ids


def test_one_request_id_raced_from_four_clients_creates_once(firestore_emulator, prefix):
    stores = [FirestoreStore(client=firestore_emulator.client(), prefix=prefix) for _ in range(4)]
    made = run_threads(4, lambda k: stores[k].create("alice", name=f"from {k}", code=CODE_V1, request_id="msg-1"))
    assert len({r.id for r in made}) == 1 and len({r.name for r in made}) == 1
    assert [r.id for r in stores[0].list("alice")] == [made[0].id]


def test_concurrent_saves_append_distinct_consecutive_versions(firestore_emulator, prefix):
    stores = [FirestoreStore(client=firestore_emulator.client(), prefix=prefix) for _ in range(4)]
    s = stores[0].create("alice", name="Gap up", code=CODE_V1)
    saved = run_threads(4, lambda k: [stores[k].save("alice", s.id, description=f"{k}-{i}").version
                                      for i in range(5)])
    assert sorted(v for vs in saved for v in vs) == list(range(2, 22))
    versions = stores[0].versions("alice", s.id)
    assert [v.version for v in versions] == list(range(1, 22))
    assert stores[0].get("alice", s.id).description == versions[-1].description


# --- what is stored where --------------------------------------------------------------------
def test_documents_are_laid_out_as_documented(store, firestore_client, prefix):
    s = store.save("alice", -1, name="Gap up", code=CODE_V1, parameters=[[1, 2], {"a": None}], request_id="r/1")
    store.save("alice", s.id, code=CODE_V2)
    store.record_run(RunRecord("run/1", s.id, 1, "alice", "backtest", {"w": [[1]]}, {"n": 1}))
    col = lambda name: firestore_client.collection(prefix + name)
    assert col("counters").document("strategies").get().to_dict() == {"next": 2}
    doc = col("strategies").document("1").get().to_dict()
    assert (doc["userId"], doc["version"], doc["code"], doc["isAlertActive"]) == ("alice", 2, CODE_V2, False)
    assert doc["parametersJson"] == '[[1,2],{"a":null}]'  # nested arrays: kept as JSON text
    versions = col("strategies").document("1").collection("versions")
    assert [d.id for d in versions.stream()] == ["1", "2"]
    assert versions.document("1").get().get("code") == CODE_V1
    runs = list(col("strategies").document("1").collection("runs").stream())
    assert [(d.id, d.get("runId")) for d in runs] == [(doc_id("run/1"), "run/1")] and doc_id("run/1").startswith("~")
    (req,) = list(col("requests").stream())
    assert req.id.startswith("~") and req.to_dict() | {"createdAt": None} == {
        "userId": "alice", "requestId": "r/1", "strategyId": 1, "version": 1, "createdAt": None}
    assert store.get("alice", 1, version=1).parameters == [[1, 2], {"a": None}]


def test_delete_removes_versions_runs_and_request_documents(store, firestore_client, prefix):
    s = make(store, request_id="req-1")
    store.save("alice", s.id, code=CODE_V2, request_id="req-2")
    store.record_run(RunRecord("r1", s.id, 2, "alice", "screen"))
    make(store, request_id="req-3")  # another strategy's request survives
    store.delete("alice", s.id)
    ref = firestore_client.collection(prefix + "strategies").document(str(s.id))
    assert not ref.get().exists
    assert list(ref.collection("versions").list_documents()) == []
    assert list(ref.collection("runs").list_documents()) == []
    assert [d.get("strategyId") for d in firestore_client.collection(prefix + "requests").stream()] == [2]


def test_a_request_left_by_an_interrupted_delete_is_ignored(store, firestore_client, prefix):
    make(store, request_id="req")
    firestore_client.collection(prefix + "strategies").document("1").delete()  # clean-up never ran
    again = make(store, request_id="req")
    assert again.id == 2 and make(store, request_id="req") == again


def test_prefixes_keep_stores_apart(firestore_client, prefix):
    a = FirestoreStore(client=firestore_client, prefix=prefix + "a_")
    b = FirestoreStore(client=firestore_client, prefix=prefix + "b_")
    assert a.create("alice", name="x", code=CODE_V1).id == 1
    assert b.create("alice", name="y", code=CODE_V1).id == 1
    assert [r.name for r in a.list("alice")] == ["x"] and [r.name for r in b.active_alerts()] == []
    with pytest.raises(NotFound):
        b.get("alice", 1, version=2)


# --- construction and outages ------------------------------------------------------------------
def test_client_is_built_on_first_use_not_in_init(monkeypatch):
    import stratagem.store.firestore as mod

    built: list[str | None] = []
    monkeypatch.setattr(mod, "firestore_client", lambda project: built.append(project) or None)
    store = FirestoreStore(project="demo-project")
    assert built == [] and isinstance(store, StrategyStore)
    assert store.client is None and built == ["demo-project"]


@pytest.mark.parametrize("prefix_", ["a/b", "x" * 65, "dot.ted", 3])
def test_bad_prefix_says_what_is_allowed(prefix_):
    with pytest.raises(BadInput, match="prefix must be at most 64 letters, digits"):
        FirestoreStore(project="p", prefix=prefix_)


def test_unreachable_firestore_is_infra_unavailable(monkeypatch):
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    store = FirestoreStore(client=firestore.Client(project="demo-unreachable"), timeout_s=1.0)
    started = time.monotonic()
    for call in (lambda: store.list("alice"), lambda: store.create("alice", name="x", code=CODE_V1),
                 lambda: store.get("alice", 1)):
        with pytest.raises(InfraUnavailable, match="Firestore is unavailable") as err:
            call()
        assert err.value.exit_code == 3
    assert time.monotonic() - started < 15
