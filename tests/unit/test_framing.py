"""Frames between the engine and its workers: pre-encoded members, and overlay deltas that
are encoded once per tick and shared by every session sending the same change."""

from __future__ import annotations

import json
import socket

from stratagem.sandbox.pool import Session
from stratagem.sandbox.worker import recv_msg, send_msg


def test_raw_members_are_spliced_into_the_frame() -> None:
    a, b = socket.socketpair()
    try:
        send_msg(a, {"op": "eval", "plan": [[1, ["A"]]]}, raw={"overlay": '{"reset":true,"symbols":{}}'})
        assert recv_msg(b) == {"op": "eval", "plan": [[1, ["A"]]], "overlay": {"reset": True, "symbols": {}}}
        send_msg(a, {}, raw={"x": "[1,2]"})
        assert recv_msg(b) == {"x": [1, 2]}
        send_msg(a, {"op": "exit"})
        assert recv_msg(b) == {"op": "exit"}
    finally:
        a.close()
        b.close()


def _session() -> Session:
    s = Session.__new__(Session)  # only the overlay bookkeeping is exercised
    return s


def _delta(sess: Session, worker: object, overlay: dict) -> dict | None:
    reset, text = sess._overlay_delta(worker, overlay)
    return None if text is None else json.loads(text)


def test_overlay_deltas_per_worker_and_shared_encoding() -> None:
    w1, w2 = object(), object()
    s1, s2 = _session(), _session()
    tick1 = {"AAA": [[1, 1.0, 2.0, 0.5, 1.5, 100.0]], "BBB": [[1, 5.0, 6.0, 4.0, 5.5, 10.0]]}
    assert _delta(s1, w1, tick1) == {"reset": True, "symbols": {"AAA": {"keep": 0, "bars": tick1["AAA"]},
                                                                "BBB": {"keep": 0, "bars": tick1["BBB"]}}}
    assert _delta(s2, w2, tick1)["symbols"]["AAA"] == {"keep": 0, "bars": tick1["AAA"]}
    # Next tick: new lists with one more bar each; both sessions send only the new bar.
    tick2 = {k: v + [[2, 1.0, 1.0, 1.0, 1.0, 1.0]] for k, v in tick1.items()}
    d1, d2 = _delta(s1, w1, tick2), _delta(s2, w2, tick2)
    assert d1 == d2 == {"reset": False, "symbols": {"AAA": {"keep": 1, "bars": [[2, 1.0, 1.0, 1.0, 1.0, 1.0]]},
                                                    "BBB": {"keep": 1, "bars": [[2, 1.0, 1.0, 1.0, 1.0, 1.0]]}}}
    # Nothing new: nothing to send.
    assert _delta(s1, w1, tick2) is None
    # A correction of an earlier bar: keep stops before it.
    fixed = {"AAA": [[1, 1.0, 2.0, 0.5, 1.6, 100.0], tick2["AAA"][1]], "BBB": tick2["BBB"]}
    assert _delta(s1, w1, fixed) == {"reset": False, "symbols": {"AAA": {"keep": 0, "bars": fixed["AAA"]}}}
    # Session 2 still holds the uncorrected bars: its delta is its own, not session 1's.
    assert _delta(s2, w2, fixed) == {"reset": False, "symbols": {"AAA": {"keep": 0, "bars": fixed["AAA"]}}}
    # A new worker for session 1 gets everything again.
    assert _delta(s1, object(), fixed)["symbols"]["BBB"] == {"keep": 0, "bars": fixed["BBB"]}
