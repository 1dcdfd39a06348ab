"""Scale-out of sharded backtests over worker PROCESSES on the real Firestore + Pub/Sub emulators.

What it shows (on the SYNTHETIC 500-symbol dataset from ``synthetic.py``: random walks, NOT
real prices):

* a backtest submitted with ``submit_backtest`` over a ``PubSubBus`` is split into shards
  (``--shards``, default 8) published to ``stratagem-backtest``; K "function instances"
  (K = 1, 2 by default), each its own Python process with its own ``Services``
  (``FirestoreStore`` / ``FirestoreJobStore`` / ``PubSubBus`` on the emulators, its own
  ``Sandbox(workers=1)``), pull from one PULL subscription (one message at a time), call
  ``handle_backtest_shard`` and ack on success; the instance that lands the last shard merges;
* the merged result (``instances``, ``performance_metrics``, and also ``equity``) equals an
  in-process ``run_backtest`` on the same data (compared as canonical JSON);
* duplicate delivery: a job whose shard 0 is published twice (two Pub/Sub messages, so two
  event ids) plus once more after the job is done still merges to the same result.

Timed: wall time from the call to ``submit_backtest`` (publishing included) until the job
document reads ``done`` (polled every 50 ms). Not timed: emulator start-up, instance start-up
(each instance starts its sandbox zygote and pre-forks a warm worker before it reports ready,
like a warm function instance), the reference run. Run ``python bench/shards.py [--repeat N] [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Self

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stratagem import messages
from stratagem.data.store import MarketData, day_to_iso
from stratagem.emulator import (
    EmulatorMissing,
    FirestoreEmulator,
    PubSubEmulator,
    find_firestore_emulator,
    find_pubsub_emulator,
)
from stratagem.engines.backtest import run_backtest
from stratagem.engines.common import trading_days
from stratagem.service import TOPICS, Services, submit_backtest
from synthetic import DESCRIPTION, LABEL, synthetic_market

PROJECT = "stratagem-bench"
SUBSCRIPTION = "stratagem-backtest-bench-pull"
USER = "bench-user"
STRATEGY_FILE = HERE / "strategies" / "momentum.py"  # +10% over 20 sessions (21 bars)
COMPARED = ("instances", "performance_metrics", "equity")


def canon(x: object) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


# -- one function instance (its own process) ------------------------------------------------
def instance_main(idx: int, fs_host: str, ps_host: str, prefix: str, dataset: str, ready: mp.Event,
                  stop: mp.Event, events: mp.Queue) -> None:
    os.environ["FIRESTORE_EMULATOR_HOST"] = fs_host
    os.environ["PUBSUB_EMULATOR_HOST"] = ps_host
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1
    from stratagem.bus import PubSubBus
    from stratagem.errors import InfraUnavailable, StratagemError
    from stratagem.jobs_firestore import FirestoreJobStore
    from stratagem.sandbox.pool import Sandbox
    from stratagem.service import handle_backtest_shard
    from stratagem.store.firestore import FirestoreStore

    market = MarketData(Path(dataset))
    svc = Services(store=FirestoreStore(project=PROJECT, prefix=prefix),
                   jobs=FirestoreJobStore(project=PROJECT, prefix=prefix), bus=PubSubBus(PROJECT),
                   market=market, sandbox_factory=lambda: Sandbox(dataset, workers=1))
    # Warm like a live instance: zygote up, one spare worker forked and warmed, clients built.
    svc.sandbox.start()
    svc.sandbox.check("def classify_symbol(symbol):\n    return False\n")
    svc.sandbox.wait_ready(120)
    svc.jobs.mark_event(f"warmup-{uuid.uuid4().hex}")
    sub = pubsub_v1.SubscriberClient()
    path = sub.subscription_path(PROJECT, SUBSCRIPTION)
    ready.set()
    while not stop.is_set():
        try:
            resp = sub.pull(request={"subscription": path, "max_messages": 1}, timeout=1.0, retry=None)
        except (gexc.DeadlineExceeded, gexc.ServiceUnavailable):
            continue
        for rm in resp.received_messages:
            t0 = time.perf_counter()
            try:
                msg = messages.decode(rm.message.data)
                handle_backtest_shard(svc, msg, rm.message.message_id)
            except InfraUnavailable as exc:  # transient: let Pub/Sub redeliver
                sub.modify_ack_deadline(request={"subscription": path, "ack_ids": [rm.ack_id], "ack_deadline_seconds": 0})
                events.put(("nack", idx, None, str(exc)))
                continue
            except StratagemError as exc:  # permanent (incl. malformed): acknowledged, as the functions do
                events.put(("rejected", idx, None, str(exc)))
            sub.acknowledge(request={"subscription": path, "ack_ids": [rm.ack_id]})
            events.put(("handled", idx, msg.get("shard"), time.perf_counter() - t0))
    svc.sandbox.close()


class Instances:
    """K instance processes (spawned: a fresh interpreter each, like separate function instances)."""

    def __init__(self, k: int, fs_host: str, ps_host: str, prefix: str, dataset: str) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.events = ctx.Queue()
        self.ready = [ctx.Event() for _ in range(k)]
        self.procs = [ctx.Process(target=instance_main, daemon=True,
                                  args=(i, fs_host, ps_host, prefix, dataset, self.ready[i], self.stop, self.events))
                      for i in range(k)]
        self.log: list[tuple] = []

    def __enter__(self) -> Self:
        for p in self.procs:
            p.start()
        for i, r in enumerate(self.ready):
            if not r.wait(180):
                raise RuntimeError(f"instance {i} did not become ready")
        return self

    def drain(self) -> list[tuple]:
        while True:
            try:
                self.log.append(self.events.get_nowait())
            except Exception:  # noqa: BLE001 - queue.Empty
                return self.log

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join(5)


# -- driver -------------------------------------------------------------------------------
class DuplicatingBus:
    """Publishes every message once and the message of shard ``dup`` a second time."""

    def __init__(self, bus: object, dup: int = 0) -> None:
        self.bus, self.dup = bus, dup
        self.sent: list[dict] = []

    def publish(self, topic: str, message: dict) -> str:
        mid = self.bus.publish(topic, message)
        self.sent.append(message)
        if message.get("shard") == self.dup:
            self.bus.publish(topic, message)
        return mid


def wait_done(jobs: object, job_id: str, timeout: float) -> object:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = jobs.get(USER, job_id)
        if job.status in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise RuntimeError(f"job {job_id} not done after {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default="1,2", help="comma-separated K values (default 1,2)")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1, help="timed jobs per K (median reported)")
    ap.add_argument("--sessions", type=int, default=252, help="sessions in the backtest (default 252: a year)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = ap.parse_args()
    ks = [int(x) for x in args.instances.split(",")]

    missing = [n for n, f in (("Firestore", find_firestore_emulator), ("Pub/Sub", find_pubsub_emulator)) if f() is None]
    if missing or shutil.which("java") is None:
        what = " and ".join([f"the {n} emulator" for n in missing] + ([] if shutil.which("java") else ["Java"]))
        print(f"SKIPPED: {what} not installed here: install the Google Cloud SDK components "
              "cloud-firestore-emulator and pubsub-emulator and Java 17+. Nothing was measured.")
        return

    t_all = time.perf_counter()
    market = synthetic_market(500, 2520)
    cal = market.calendar()
    # One year of sessions, ending a year before the data ends so every forward window is known.
    start, end = int(cal[-2 * args.sessions]), int(cal[-args.sessions - 1])
    symbols = market.symbols
    shard_size = -(-len(symbols) // args.shards)
    symbol_days = sum(len(v) for v in trading_days(market, symbols, start, end).values())
    code = STRATEGY_FILE.read_text()
    print(f"{LABEL} data ({DESCRIPTION}): {len(symbols)} symbols, {day_to_iso(start)}..{day_to_iso(end)}, "
          f"{symbol_days:,} symbol-days; strategy momentum-21; shard_size {shard_size} -> {args.shards} shards; "
          f"{os.cpu_count()} CPUs", flush=True)

    from stratagem.sandbox.pool import Sandbox

    try:
        fs, ps = FirestoreEmulator(project=PROJECT), PubSubEmulator()
        fs.start()
        ps.start()
    except EmulatorMissing as exc:
        print(f"SKIPPED: {exc}. Nothing was measured.")
        return
    rows: list[dict] = []
    try:
        os.environ["FIRESTORE_EMULATOR_HOST"] = fs.host
        os.environ["PUBSUB_EMULATOR_HOST"] = ps.host
        from google.cloud import pubsub_v1
        from stratagem.bus import PubSubBus
        from stratagem.jobs_firestore import FirestoreJobStore
        from stratagem.store.firestore import FirestoreStore

        pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = pub.topic_path(PROJECT, TOPICS["backtest"])
        pub.create_topic(name=topic)
        sub.create_subscription(request={"name": sub.subscription_path(PROJECT, SUBSCRIPTION), "topic": topic,
                                         "ack_deadline_seconds": 600})
        prefix = f"b{uuid.uuid4().hex[:8]}_"
        svc = Services(store=FirestoreStore(project=PROJECT, prefix=prefix),
                       jobs=FirestoreJobStore(project=PROJECT, prefix=prefix), bus=PubSubBus(PROJECT),
                       market=market, sandbox_factory=lambda: None)
        rec = svc.store.create(USER, name="momentum-21", code=code, description="close +10% over 20 sessions")
        info = {"id": rec.id, "version": rec.version, "name": rec.name}

        # Reference: the single-process run, in this process (sandbox with one worker).
        sbx = Sandbox(market.path, workers=1)
        sbx.start()
        sbx.check("def classify_symbol(symbol):\n    return False\n")
        sbx.wait_ready(120)
        t0 = time.perf_counter()
        single = run_backtest(sbx, market, code, symbols, start=start, end=end, probe=2, universe_label="request",
                              strategy_info=info)
        single_s = time.perf_counter() - t0
        sbx.close()
        ref = {k: canon(single[k]) for k in COMPARED}
        print(f"single-process run_backtest (Sandbox workers=1, no bus): {single_s:.2f} s, "
              f"{len(single['instances']):,} instances", flush=True)

        def check(result: dict) -> dict[str, bool]:
            return {k: canon(result[k]) == ref[k] for k in COMPARED}

        for k in ks:
            with Instances(k, fs.host, ps.host, prefix, str(market.path)) as inst:
                times, equal, per_instance, shard_s, merge_s = [], True, {}, [], []
                for r in range(args.repeat):
                    n0 = len(inst.drain())
                    t0 = time.perf_counter()
                    job = submit_backtest(svc, USER, rec.id, symbols=symbols, start=start, end=end,
                                          shard_size=shard_size)
                    done = wait_done(svc.jobs, job.id, 600)
                    dt = time.perf_counter() - t0
                    assert job.shards == args.shards, job.shards
                    if done.status != "done":
                        raise RuntimeError(f"job failed: {done.error}")
                    same = check(done.result)
                    equal = equal and all(same.values())
                    times.append(dt)
                    time.sleep(0.3)
                    handled = [e for e in inst.drain()[n0:] if e[0] == "handled"]
                    per_instance = {i: sum(1 for e in handled if e[1] == i) for i in range(k)}
                    shard_s += [e[3] for e in handled]
                    merge_s.append(max(e[3] for e in handled))
                    print(f"  K={k} run {r + 1}: {dt:.2f} s, equal={same}, shards per instance {per_instance}, "
                          f"handler s per delivery {sorted(round(e[3], 2) for e in handled)}",
                          flush=True)
                bad = [e for e in inst.drain() if e[0] != "handled"]
                if bad:
                    print(f"  K={k}: non-handled deliveries: {bad}", flush=True)
                rows.append({"k": k, "seconds": statistics.median(times), "runs": times, "equal": equal,
                             "shards_per_instance": per_instance,
                             "handler_s_median": statistics.median(shard_s), "merge_s_median": statistics.median(merge_s)})
        # Duplicate delivery: shard 0 published twice with the job, then once more after it is done.
        kd = max(ks)
        with Instances(kd, fs.host, ps.host, prefix, str(market.path)) as inst:
            dbus = DuplicatingBus(svc.bus, dup=0)
            dsvc = Services(store=svc.store, jobs=svc.jobs, bus=dbus, market=market, sandbox_factory=lambda: None)
            job = submit_backtest(dsvc, USER, rec.id, symbols=symbols, start=start, end=end, shard_size=shard_size)
            done = wait_done(svc.jobs, job.id, 600)
            before = canon(done.result)
            svc.bus.publish(TOPICS["backtest"], dbus.sent[0])  # a late redelivery under a new event id
            t0 = time.monotonic()
            while (len([e for e in inst.drain() if e[0] == "handled"]) < args.shards + 2
                   and time.monotonic() - t0 < 120):
                time.sleep(0.1)
            handled = [e for e in inst.log if e[0] == "handled"]
            after = svc.jobs.get(USER, job.id)
            dup = {"deliveries": len(handled), "shard0_deliveries": sum(1 for e in handled if e[2] == 0),
                   "unchanged_after_late_duplicate": canon(after.result) == before and after.status == "done",
                   "equal_to_single_run": all(check(after.result).values()),
                   "shards_stored": len(svc.jobs.shard_results(job.id))}
            print(f"duplicate delivery (K={kd}): {dup}", flush=True)
    finally:
        fs.stop()
        ps.stop()

    base = next((r["seconds"] for r in rows if r["k"] == 1), None)
    head = (f"{LABEL} data ({DESCRIPTION}): {len(symbols)} symbols x {args.sessions} sessions "
            f"({day_to_iso(start)}..{day_to_iso(end)}), {symbol_days:,} symbol-days, momentum-21, "
            f"{args.shards} shards of <= {shard_size} symbols, {os.cpu_count()} CPUs, "
            f"median of {args.repeat} job(s) per K")
    lines = [head, "",
             ("| K instances | seconds (submit -> done) | symbol-days/s | speed-up vs K=1 | median s per shard delivery "
              "| slowest delivery s (the merging one) | equal to single run |"),
             "|---|---|---|---|---|---|---|",
             (f"| single process, `run_backtest` in-process (no bus, no Firestore) | {single_s:.2f} | "
              f"{symbol_days / single_s:,.0f} | - | - | - | (reference) |")]
    for r in rows:
        sp = f"{base / r['seconds']:.2f}x" if base else "-"
        lines.append(f"| {r['k']} | {r['seconds']:.2f} | {symbol_days / r['seconds']:,.0f} | {sp} | "
                     f"{r['handler_s_median']:.2f} | {r['merge_s_median']:.2f} | {'yes' if r['equal'] else 'NO'} |")
    lines += ["", (f"Duplicate delivery (K={kd}; shard 0 published twice with the job and once more after it was "
                   f"done): {dup['deliveries']} deliveries handled ({dup['shard0_deliveries']} of shard 0), "
                   f"{dup['shards_stored']} shard results stored, merged result equal to the single run: "
                   f"{'yes' if dup['equal_to_single_run'] else 'NO'}, unchanged by the late duplicate: "
                   f"{'yes' if dup['unchanged_after_late_duplicate'] else 'NO'}")]
    print("\n" + "\n".join(lines))
    print(f"\ntotal bench time {time.perf_counter() - t_all:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({
            "label": LABEL, "description": DESCRIPTION, "symbols": len(symbols), "start": day_to_iso(start),
            "end": day_to_iso(end), "symbol_days": symbol_days, "shards": args.shards, "shard_size": shard_size,
            "cpus": os.cpu_count(), "single_process_s": single_s, "rows": rows, "duplicate": dup}, indent=2) + "\n")
    if not all(r["equal"] for r in rows) or not (dup["equal_to_single_run"] and dup["unchanged_after_late_duplicate"]):
        sys.exit("MISMATCH: a sharded result differs from the single-process run")


if __name__ == "__main__":
    main()
