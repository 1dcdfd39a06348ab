"""The short load run in CI: 10 concurrent API clients for 10 s on the embedded adapters
(``bench/load.py``; the 50-client, 60-second run on the emulators is in docs/reliability.md).
Asserts outcomes, never durations: zero errors, no job failed or left unfinished, and every
strategy a client created listed exactly once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ten_clients_for_ten_seconds(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    r = load.run_load(clients=10, seconds=10, mode="embedded", home=tmp_path)
    print(load.markdown(r))
    why = json.dumps({k: r[k] for k in ("total", "jobs", "strategies_created", "listed_exactly_once",
                                         "client_problems", "error_examples")}, default=str)[:4000]
    assert r["mode"] == "local"
    assert r["total"]["errors"] == 0, why
    assert r["client_problems"] == [] and r["listed_exactly_once"], why
    assert r["strategies_created"] >= 10, why  # at least one per client
    assert r["jobs"]["failed"] == 0 and r["jobs"]["timed_out"] == 0, why
    assert r["jobs"]["done"] >= r["strategies_created"], why
    assert {"createStrategyFromPrompt", "getStrategies", "runBacktest", "runUnifiedStrategy"} <= set(r["endpoints"])
