"""FirestoreAlertLog and FirestoreChatDirectory on the official emulator.

Every ``test_*`` of ``tests/unit/test_alertlog.py`` taking the ``alert_log`` fixture is rerun
here against Firestore (the fixture below replaces the memory/SQLite one); skipped with a
loud reason when the emulator is absent (tests/integration/conftest.py)."""

from __future__ import annotations

import threading

import pytest

from tests.integration.reuse import adopt_tests
from stratagem.alertlog_firestore import FirestoreAlertLog

pytestmark = pytest.mark.integration


behaviour = adopt_tests("test_alertlog", "alert_log", globals())


@pytest.fixture
def alert_log(firestore_client, prefix):
    return FirestoreAlertLog(client=firestore_client, prefix=prefix, clock=behaviour.TickClock())


def test_the_behaviour_suite_is_rerun_here():
    rerun = [n for n in globals() if n.startswith("test_") and getattr(behaviour, n, None) is globals()[n]]
    assert len(rerun) >= 6 and "test_users_see_only_their_own_alerts" in rerun


def test_documents_follow_the_declared_layout(firestore_client, prefix):
    log = FirestoreAlertLog(client=firestore_client, prefix=prefix)
    a = behaviour.make()
    log.add("alice", a)
    log.set_delivery(a["dedup_key"], "telegram", {"status": "sent", "message_id": 7})
    doc = firestore_client.collection(prefix + "alertLogs").document(a["dedup_key"]).get().to_dict()
    assert doc["userId"] == "alice" and doc["strategyId"] == "1" and doc["timestamp"] == a["timestamp"]
    assert isinstance(doc["createdAt"], int) and doc["delivery"]["telegram"] == '{"message_id": 7, "status": "sent"}'


def test_two_clients_racing_a_delivery_stub_log_once(firestore_emulator, prefix):
    """The gateway's stub and several notify instances at once: exactly one add wins."""
    a = behaviour.make()
    logs = [FirestoreAlertLog(client=firestore_emulator.client("stratagem-it"), prefix=prefix) for _ in range(4)]
    logs[0].set_delivery(a["dedup_key"], "websocket", {"status": "sent", "connections": 1})
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def worker(k: int) -> None:
        barrier.wait()
        results.append(logs[k].add("alice", a))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert logs[1].get("alice", a["dedup_key"])["delivery"] == {"websocket": {"status": "sent", "connections": 1}}


def test_firestore_chat_directory_links_once(firestore_client, prefix):
    from stratagem.telegram_firestore import FirestoreChatDirectory

    now = [1000.0]
    replies: list[tuple] = []
    d = FirestoreChatDirectory(client=firestore_client, prefix=prefix, clock=lambda: now[0], code_ttl=60,
                               responder=lambda chat, text: replies.append((chat, text)))
    code = d.new_link_code("alice")
    other = FirestoreChatDirectory(client=firestore_client, prefix=prefix, clock=lambda: now[0])  # another instance
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": f"/start {code}",
                                          "chat": {"id": 4242, "type": "private"}}}
    assert d.handle_update(update) == "alice"
    assert other.chat_for("alice") == 4242 and other.links() == {"alice": 4242}
    assert other.redeem(code, 5555) is None  # single use
    late = d.new_link_code("bob")
    now[0] += 61
    assert d.redeem(late, 1) is None and d.chat_for("bob") is None  # expired
    assert d.unlink("alice") is True and d.chat_for("alice") is None
