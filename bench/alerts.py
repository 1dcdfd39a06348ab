"""Real-time alerts at 1 Hz on a SYNTHETIC universe: the live path vs the seed's naive loop.

Scenario (defaults): 100 active strategies x 500 SYNTHETIC symbols (``bench/synthetic.py``:
deterministic random walks, NOT real prices), one new bar per symbol every second for 60 s.
The dataset holds ``--history`` sessions; the bars of the following ``--seconds`` sessions
arrive as live ``stratagem.bars.v1`` events, one message per second carrying one bar per
symbol, so they go through the whole live path: validation, the live bar store, the overlay
beyond the dataset, the sandbox, the alert claim, the alerts topic and the notify handler.

Variants, each on its own sandbox (2 workers unless ``--workers``):

* ``live``  - what Stratagem runs: ``service.handle_alert_bars`` on each bars message, warm
  workers kept across ticks (``alerting.AlertRunner``), the tenant's strategies batched in
  even chunks of at most 32 per worker (decision 0006), only symbols with new bars
  evaluated, one pipelined exchange per batch per tick, every batch at once, each
  strategy's alerts published as its evaluation lands (decision 0008). The bus keeps its
  last 10,000 messages, as a running service's does.
* ``naive`` - the seed's ``processAlerts``: every second, every active strategy on every symbol,
  each strategy loaded afresh (a cold sandbox session: fork + load, as ``evaluate_alerts`` did
  before warm sessions), the live bars sent whole each time.

Measured per variant: the seconds each tick took, whether the variant kept up with 1 Hz (the
backlog at the end), evaluations per second sustained, and the latency from a bar's scheduled
arrival to the notifier receiving its alert (p50, p99, max). A publisher thread puts each
second's message on a queue at its scheduled time; one consumer (one function instance)
handles them in order, so a slow tick delays the next ones and shows up as latency. The two
variants must produce the same alerts for the ticks both handled (checked).

Run: ``python bench/alerts.py`` (about 3 minutes: 60 s per variant plus set-up),
``--seconds 10 --strategies 20 --symbols 100`` for a quick look.
Results: a table on stdout and ``bench/results-alerts.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import LABEL, synthetic_market  # noqa: E402

from stratagem import factory, messages  # noqa: E402
from stratagem.alerting import _Deduper  # noqa: E402
from stratagem.bus import InProcessBus  # noqa: E402
from stratagem.data.store import build_store, day_to_iso  # noqa: E402
from stratagem.data.store import MarketData  # noqa: E402
from stratagem.engines.alerts import AlertEngine  # noqa: E402
from stratagem.jobs import MemoryJobStore  # noqa: E402
from stratagem.live import MemoryLiveBars, bars_message, history_bars  # noqa: E402
from stratagem.notify import MemoryAlertLog  # noqa: E402
from stratagem.sandbox.pool import Sandbox  # noqa: E402
from stratagem.service import TOPICS, Services, handle_alert_bars  # noqa: E402
from stratagem.settings import SandboxLimits  # noqa: E402
from stratagem.store import MemoryStore  # noqa: E402

# Strategy files and the constant varied to make distinct strategies (scale factors).
FAMILIES = [("gap_up.py", "GAP_MIN"), ("momentum.py", "THRESHOLD"), ("rsi.py", "THRESHOLD"),
            ("bollinger.py", "WIDTH"), ("sma_cross.py", "FAST"), ("high_52w.py", None)]


def strategies(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (name, source) pairs: the bench strategies with their threshold varied."""
    out = []
    k = 0
    while len(out) < n:
        fname, const = FAMILIES[k % len(FAMILIES)]
        variant = k // len(FAMILIES)
        src = (HERE / "strategies" / fname).read_text()
        if const is not None:
            m = re.search(rf"^{const} = ([0-9.]+)$", src, re.MULTILINE)
            assert m, (fname, const)
            v = float(m.group(1)) * (1 + 0.05 * variant)
            v = round(v) if const == "FAST" else round(v, 4)
            src = src.replace(m.group(0), f"{const} = {v}")
        else:
            src += f"\n# variant {variant}\n"
        out.append((f"{fname[:-3]}#{variant}", src))
        k += 1
    return out


def percentile(xs: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs), q)) if xs else None


class Clocked:
    """The notifier: records when each alert reached it (the Telegram fake's receive time)."""

    channel = "bench"

    def __init__(self) -> None:
        self.got: list[tuple[float, dict]] = []

    def send(self, user_id: str, alert: dict) -> dict:
        self.got.append((time.monotonic(), alert))
        return {"status": "sent"}


def build_datasets(n_symbols: int, history: int, seconds: int, cache: Path) -> tuple[MarketData, MarketData]:
    """(the cut dataset strategies start from, the full one whose tail is replayed live)."""
    full = synthetic_market(n_symbols, history + seconds, cache)
    cut_day = int(full.calendar()[history - 1])
    dest = cache / f"{full.path.name}-cut{history}"
    if not (dest / "meta.json").exists():
        build_store({s: full.bars(s, until_day=cut_day) for s in full.symbols}, dest, source="synthetic", demo=True,
                    description=f"{LABEL}: {full.path.name} cut after {history} sessions")
    return MarketData(dest), full


def run_variant(kind: str, cut: MarketData, full: MarketData, codes: list[tuple[str, str]], seconds: int,
                workers: int, budget: float, parallel: int | None = None) -> dict:
    symbols = cut.symbols
    live_days = [int(d) for d in full.calendar()[-seconds:]]
    sessions = history_bars(full, symbols, live_days[0], live_days[-1])
    msgs = [bars_message(day_bars, "bench") for day_bars in sessions]
    by_symbol: dict[str, list] = {}
    for day_bars in sessions:
        for b in day_bars:
            by_symbol.setdefault(b.symbol, []).append(b)
    sandbox = Sandbox(cut.path, SandboxLimits(), workers)
    sandbox.start()
    notifier = Clocked()
    svc = Services(store=MemoryStore(), jobs=MemoryJobStore(), bus=InProcessBus(history=10_000), market=cut,
                   sandbox_factory=lambda: sandbox, alert_log=MemoryAlertLog(), notifiers=[notifier],
                   live_bars=MemoryLiveBars())
    factory.wire_in_process(svc)
    recs = []
    for name, src in codes:
        rec = svc.store.create("bench", name=name, code=src)
        svc.store.set_alert("bench", rec.id, True, None)
        recs.append(rec)
    # Warm-up (not timed): the live variant loads every strategy once, as a running instance has.
    t = time.perf_counter()
    if kind == "live":
        from stratagem import alerting

        alerting.runner(svc).parallel = parallel
        alerting.runner(svc).evaluate(svc, [(int(cut.calendar()[-1]), symbols[0])])
    sandbox.wait_ready()
    warmup = time.perf_counter() - t

    arrivals: dict[int, float] = {}
    q: queue.Queue = queue.Queue()
    t0 = time.monotonic() + 0.5

    def publisher() -> None:
        for k, msg in enumerate(msgs):
            wait = t0 + k - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            arrivals[live_days[k]] = time.monotonic()
            q.put((k, msg))
        q.put(None)

    pub = threading.Thread(target=publisher, daemon=True)
    pub.start()
    ticks: list[dict] = []
    deadline = t0 + seconds * budget
    handled = 0
    while True:
        item = q.get()
        if item is None:
            break
        k, msg = item
        if time.monotonic() > deadline:
            break  # the variant cannot keep up: stop measuring, report the backlog
        start = time.monotonic()
        if kind == "live":
            handle_alert_bars(svc, msg, f"bench-{k}")
        else:
            # The seed's processAlerts: every strategy, every symbol, fresh session each time.
            day = live_days[k]
            overlay = {s: bars[:k + 1] for s, bars in by_symbol.items()}
            for rec in recs:
                with AlertEngine(sandbox, cut, rec.code, strategy_id=rec.id, name=rec.name, version=rec.version,
                                 deduper=_Deduper(svc.jobs)) as engine:
                    for alert in engine.tick(day, symbols, overlay):
                        svc.bus.publish(TOPICS["alerts"], messages.make("stratagem.alert.v1", alert=alert,
                                                                        user_id="bench"))
        end = time.monotonic()
        ticks.append({"k": k, "start_lag": start - arrivals[live_days[k]], "seconds": end - start})
        handled += 1
    backlog = len(msgs) - handled
    wall = (time.monotonic() - t0)
    latencies = [tn - arrivals[_day(a)] for tn, a in notifier.got]
    evals = handled * len(symbols) * len(recs)
    runner = svc.alert_runner
    if runner is not None:
        runner.close()
    sandbox.close()
    tick_s = [t["seconds"] for t in ticks]
    return {
        "variant": kind, "ticks_scheduled": len(msgs), "ticks_handled": handled, "backlog_at_end": backlog,
        "kept_up": backlog == 0 and (not ticks or max(t["start_lag"] for t in ticks) < 1.0),
        "warmup_seconds": round(warmup, 3), "wall_seconds": round(wall, 2),
        "evaluations": evals, "evaluations_per_second": round(evals / wall, 1) if wall > 0 else None,
        "tick_seconds": {"p50": percentile(tick_s, 50), "p99": percentile(tick_s, 99), "max": max(tick_s or [0])},
        "tick_seconds_each": [round(t, 3) for t in tick_s],
        "alerts": len(notifier.got),
        "latency_seconds": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
                            "max": max(latencies) if latencies else None},
        "alert_keys": sorted((a["strategy_id"], a["symbol"], a["date"]) for _, a in notifier.got),
    }


def _day(alert: dict) -> int:
    return int(alert["timestamp"]) // 86_400_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", type=int, default=100)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=60, help="length of the live run (one bar per symbol per second)")
    ap.add_argument("--history", type=int, default=300, help="sessions in the dataset before the live bars")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--budget", type=float, default=1.5,
                    help="stop a variant that is still busy after budget x seconds (it did not keep up)")
    ap.add_argument("--variants", default="live,naive")
    ap.add_argument("--parallel", type=int, default=None,
                    help="batches the live path evaluates at once (default: all of them)")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "stratagem-bench")
    ap.add_argument("--out", type=Path, default=HERE / "results-alerts.json")
    args = ap.parse_args()
    cut, full = build_datasets(args.symbols, args.history, args.seconds, args.cache_dir)
    codes = strategies(args.strategies)
    print(f"{LABEL} universe: {args.symbols} symbols, {args.history} sessions of history "
          f"(..{day_to_iso(int(cut.calendar()[-1]))}), {args.seconds} live bars per symbol at 1 Hz; "
          f"{args.strategies} active strategies; {args.workers} sandbox workers", file=sys.stderr)
    results = []
    for kind in args.variants.split(","):
        print(f"running {kind} ...", file=sys.stderr)
        results.append(run_variant(kind, cut, full, codes, args.seconds, args.workers, args.budget, args.parallel))
    both = [r for r in results]
    if len(both) == 2:
        handled = min(r["ticks_handled"] for r in both)
        days = {int(d) for d in full.calendar()[-args.seconds:][:handled]}
        from stratagem.data.store import iso_to_day

        same = [sorted(k for k in r["alert_keys"] if iso_to_day(k[2]) in days) for r in both]
        assert same[0] == same[1], "the variants fired different alerts on the ticks both handled"
    for r in results:
        r["alert_keys"] = len(r["alert_keys"])
    doc = {"label": LABEL, "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
           "params": vars(args) | {"cache_dir": str(args.cache_dir), "out": str(args.out)}, "results": results}
    args.out.write_text(json.dumps(doc, indent=1))
    print("| variant | ticks handled / scheduled | kept up at 1 Hz | evaluations/s | tick p50 / p99 (s) | "
          "alerts | latency p50 / p99 / max (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ts, lat = r["tick_seconds"], r["latency_seconds"]
        fmt = (lambda x: "-" if x is None else f"{x:.3f}")
        print(f"| {r['variant']} | {r['ticks_handled']} / {r['ticks_scheduled']} | {'yes' if r['kept_up'] else 'no'} | "
              f"{r['evaluations_per_second']:,.0f} | {fmt(ts['p50'])} / {fmt(ts['p99'])} | {r['alerts']} | "
              f"{fmt(lat['p50'])} / {fmt(lat['p99'])} / {fmt(lat['max'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
