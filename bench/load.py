"""Load: N concurrent API clients against the local stack, for a bounded time.

Each client is one user (its own API key, so the per-user rate limit applies per client as in
production) and loops over what a user does: create a strategy from a prompt, list strategies,
run a backtest and a screen, and poll jobs until they finish. Loopback only: the stack is
``emulators/stack.py``'s :class:`Stack` (the Firestore and Pub/Sub emulators when installed,
every function in its own Functions Framework process; else the embedded adapters behind the
API function). At the end every client checks that each strategy it created is listed
exactly once.

    python bench/load.py                          # 50 clients x 60 s, emulators when present
    python bench/load.py --clients 10 --seconds 10 --mode embedded --out /tmp/load.json

Prints a markdown table (requests/s, p50, p99 and errors per endpoint, jobs completed) and
writes the same figures as JSON (default ``bench/results-load.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

PROMPTS = ["stocks up more than 2% today", "stocks that gap up more than 3% on high volume", "RSI below 30",
           "close above the 50-day moving average", "5-day momentum above 5%", "stocks down more than 3% today",
           "volume more than twice the 20-day average", "new 52-week high"]
BACKTEST = {"start": 1325376000000, "returnWindows": [1, 5]}  # 2012-01-01 .. end of data, every symbol
JOB_TIMEOUT_S = 300.0


@dataclass
class Tally:
    """Latencies and outcomes, per endpoint, shared by all clients."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=lambda: {"done": 0, "failed": 0, "timed_out": 0})
    job_seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.setdefault(endpoint, []).append(seconds)
            if error:
                self.errors.setdefault(endpoint, []).append(error)


class Client(threading.Thread):
    """One user: create, list, backtest, screen, poll; until the deadline."""

    def __init__(self, n: int, base: str, key: str, deadline: float, tally: Tally) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.base, self.key, self.deadline, self.tally = n, base, key, deadline, tally
        self.created: list[int] = []
        self.listed_ok: bool | None = None
        self.problem: str | None = None

    def call(self, path: str, body: dict) -> tuple[int, dict]:
        endpoint = path.rsplit("/", 1)[-1]
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, doc = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, doc = e.code, json.loads(e.read() or b"{}")
        except (OSError, ValueError) as e:
            self.tally.record(endpoint, time.perf_counter() - t0, f"{type(e).__name__}: {e}")
            return 0, {}
        # 422 on a job means the job failed (counted with the jobs); anything else >= 400 is an error
        error = None if status < 400 or (status == 422 and "jobId" in doc) else f"{status}: {json.dumps(doc)[:200]}"
        self.tally.record(endpoint, time.perf_counter() - t0, error)
        return status, doc

    def job(self, status: int, doc: dict, t0: float) -> dict | None:
        """Follow a job to its end (getJob while 202); count it."""
        while status == 202 and time.monotonic() - t0 < JOB_TIMEOUT_S:
            time.sleep(0.25)
            status, doc = self.call("/api/getJob", {"jobId": doc["jobId"]})
        with self.tally.lock:
            if status == 200:
                self.tally.jobs["done"] += 1
                self.tally.job_seconds.append(time.monotonic() - t0)
            elif status == 422:
                self.tally.jobs["failed"] += 1
            elif status == 202:
                self.tally.jobs["timed_out"] += 1
        return doc if status == 200 else None

    def create(self, k: int) -> None:
        t0 = time.monotonic()
        status, doc = self.call("/api/createStrategyFromPrompt", {
            "query": PROMPTS[(self.n + k) % len(PROMPTS)], "requestId": f"load-{self.n}-{k}"})
        if status in (200, 202):
            done = self.job(status, doc, t0)
            if done is not None:
                self.created.append(int(done["result"]["strategy"]["id"]))

    def run(self) -> None:
        try:
            k = 0
            self.create(k)
            while time.monotonic() < self.deadline:
                k += 1
                self.call("/api/getStrategies", {})
                if self.created:
                    sid = self.created[k % len(self.created)]
                    t0 = time.monotonic()
                    status, doc = self.call("/api/runBacktest", {"strategyId": sid, **BACKTEST})
                    if status in (200, 202):
                        self.job(status, doc, t0)
                    if time.monotonic() >= self.deadline:
                        break
                    t0 = time.monotonic()
                    status, doc = self.call("/api/runUnifiedStrategy", {"strategyId": sid, "executionMode": "screening",
                                                                        "limit": 5})
                    if status in (200, 202):
                        self.job(status, doc, t0)
                if k % 4 == 0 and time.monotonic() < self.deadline:
                    self.create(k)
            status, doc = self.call("/api/getStrategies", {})
            ids = [s["id"] for s in doc.get("strategies", [])]
            self.listed_ok = status == 200 and sorted(ids) == sorted(self.created) and len(ids) == len(set(ids))
            if not self.listed_ok:
                self.problem = f"created {sorted(self.created)}, listed {sorted(ids)}"
        except Exception as exc:  # noqa: BLE001 - a client crash is a failed run, reported
            self.problem = f"{type(exc).__name__}: {exc}"
            self.listed_ok = False


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 values is the 99th smallest)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))]


def run_load(clients: int = 50, seconds: float = 60.0, mode: str = "auto", home: Path | None = None) -> dict:
    """Start the stack, run the clients for ``seconds``, stop the stack; the figures as a dict."""
    from stratagem.data.catalog import ensure_sample
    from stratagem.emulator import find_firestore_emulator, find_pubsub_emulator
    from stratagem.settings import Settings

    from emulators.stack import Stack

    home = Path(home or tempfile.mkdtemp(prefix="stratagem-load-"))
    ensure_sample(Settings(home=home))
    use_emulators = mode != "embedded"
    if mode == "emulators" and not (find_firestore_emulator() and find_pubsub_emulator()):
        raise SystemExit("--mode emulators: the Firestore/Pub/Sub emulators are not installed")
    keys = {f"load-key-{i}": f"load-user-{i}" for i in range(clients)}
    stack = Stack(home, extra_api_keys=keys)
    tally = Tally()
    started = time.time()
    try:
        stack.start(use_emulators=use_emulators)
        backend = ("Firestore + Pub/Sub emulators, one Functions Framework process per function" if stack.mode == "gcp"
                   else "embedded adapters (SQLite, in-process bus) behind the API function")
        base = f"http://127.0.0.1:{stack.ports['api']}"
        t0 = time.monotonic()
        deadline = t0 + seconds
        threads = [Client(i, base, key, deadline, tally) for i, key in enumerate(keys)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + JOB_TIMEOUT_S + 60)
        elapsed = time.monotonic() - t0
    finally:
        stack.stop()
    endpoints = {}
    for ep, lat in sorted(tally.latencies.items()):
        endpoints[ep] = {"requests": len(lat), "per_second": len(lat) / elapsed,
                         "p50_ms": percentile(lat, 0.50) * 1000, "p99_ms": percentile(lat, 0.99) * 1000,
                         "max_ms": max(lat) * 1000, "errors": len(tally.errors.get(ep, []))}
    all_lat = [x for lat in tally.latencies.values() for x in lat]
    created = sum(len(t.created) for t in threads)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "backend": backend, "mode": stack.mode,
        "clients": clients, "seconds": seconds, "elapsed_s": elapsed, "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "total": {"requests": len(all_lat), "per_second": len(all_lat) / elapsed,
                  "p50_ms": percentile(all_lat, 0.5) * 1000, "p99_ms": percentile(all_lat, 0.99) * 1000,
                  "errors": sum(len(v) for v in tally.errors.values())},
        "endpoints": endpoints, "jobs": dict(tally.jobs),
        "job_p50_s": percentile(tally.job_seconds, 0.5), "job_p99_s": percentile(tally.job_seconds, 0.99),
        "strategies_created": created,
        "listed_exactly_once": all(t.listed_ok for t in threads),
        "client_problems": [f"{t.name}: {t.problem}" for t in threads if t.problem],
        "error_examples": {ep: v[:3] for ep, v in tally.errors.items()},
    }


def markdown(r: dict) -> str:
    lines = [f"Load: {r['clients']} clients x {r['seconds']:g} s on {r['backend']} ({r['cpus']} CPUs, {r['date']})", "",
             "| endpoint | requests | req/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for ep, e in r["endpoints"].items():
        lines.append(f"| {ep} | {e['requests']} | {e['per_second']:.1f} | {e['p50_ms']:.0f} | {e['p99_ms']:.0f} | "
                     f"{e['errors']} |")
    t = r["total"]
    lines.append(f"| **all** | {t['requests']} | {t['per_second']:.1f} | {t['p50_ms']:.0f} | {t['p99_ms']:.0f} | "
                 f"{t['errors']} |")
    j = r["jobs"]
    lines += ["", (f"Jobs: {j['done']} done, {j['failed']} failed, {j['timed_out']} unfinished after "
                   f"{JOB_TIMEOUT_S:g} s; submit-to-result p50 {r['job_p50_s']:.2f} s, p99 {r['job_p99_s']:.2f} s. "
                   f"Strategies created: {r['strategies_created']}; each listed exactly once: "
                   f"{'yes' if r['listed_exactly_once'] else 'NO'}.")]
    if r["client_problems"]:
        lines.append("Problems: " + "; ".join(r["client_problems"][:5]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--mode", choices=("auto", "emulators", "embedded"), default="auto",
                   help="auto: the emulators when installed, else the embedded adapters")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results-load.json")
    a = p.parse_args(argv)
    result = run_load(a.clients, a.seconds, a.mode)
    print(markdown(result))
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten to {a.out}", file=sys.stderr)
    return 0 if result["total"]["errors"] == 0 and result["listed_exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
