"""FirestoreLiveBars against the official emulator: the live-bar store behaviour tests of
``tests/unit/test_live.py`` rerun here (new / corrected / duplicate, out of order, arrival
cursor, named cursors, concurrent writers), plus what only a shared database shows: several
clients (like several function instances) writing the same bars at once, and the cursor
never skipping a bar that commits late.
"""

from __future__ import annotations

import threading

import pytest

from tests.integration.reuse import adopt_tests

pytestmark = pytest.mark.integration


behaviour = adopt_tests("test_live", "bars_store", globals())
bar, D0 = behaviour.bar, behaviour.D0


@pytest.fixture
def bars_store(firestore_client, prefix):
    from stratagem.live_firestore import FirestoreLiveBars

    return FirestoreLiveBars(client=firestore_client, prefix=prefix)


def test_the_behaviour_suite_is_rerun_here():
    rerun = [n for n in globals() if n.startswith("test_") and getattr(behaviour, n, None) is globals()[n]]
    assert len(rerun) >= 6 and "test_new_duplicate_and_corrected_bars" in rerun


def test_several_clients_store_each_bar_once_and_the_cursor_sees_all(firestore_emulator, prefix):
    from stratagem.live_firestore import FirestoreLiveBars

    clients = [FirestoreLiveBars(client=firestore_emulator.client("stratagem-it"), prefix=prefix) for _ in range(4)]
    barrier = threading.Barrier(4)
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            barrier.wait()
            for i in range(3):  # three batches each, all overlapping on the shared bars
                results.setdefault(k, []).extend(
                    clients[k].put([bar(day=D0 + i), bar(f"S{k}", day=D0 + i, close=100 + i)]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    shared = [results[k][0::2] for k in range(4)]
    assert sum(s.count("new") for s in shared) == 3  # each shared bar stored by exactly one client
    assert all(results[k][1::2] == ["new"] * 3 for k in range(4))
    got, _ = clients[0].since(0)
    assert len(got) == 15 and len({b.key for b in got}) == 15
    seqs_seen = clients[1].since(0, limit=7)
    assert len(seqs_seen[0]) == 7 and clients[1].since(seqs_seen[1])[0] == got[7:]
    assert clients[2].bars_after({"AAPL": D0 - 1})["AAPL"] == [bar(day=D0 + i) for i in range(3)]
