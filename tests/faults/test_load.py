"""The short load run in CI: 10 concurrent API clients for 10 s on the embedded adapters
(``bench/load.py``; the 50-client, 60-second run on the emulators is in docs/reliability.md).
Asserts outcomes, never durations: zero errors, no job failed or left unfinished, and every
strategy a client created listed exactly once."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ten_clients_for_ten_seconds(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    r = load.run_load(clients=10, seconds=10, mode="embedded", home=tmp_path)
    print(load.markdown(r))
    assert r["mode"] == "local"
    assert r["total"]["errors"] == 0, r["error_examples"]
    assert r["client_problems"] == [] and r["listed_exactly_once"]
    assert r["strategies_created"] >= 10  # at least one per client
    assert r["jobs"]["failed"] == 0 and r["jobs"]["timed_out"] == 0 and r["jobs"]["done"] >= r["strategies_created"]
    assert {"createStrategyFromPrompt", "getStrategies", "runBacktest", "runUnifiedStrategy"} <= set(r["endpoints"])
