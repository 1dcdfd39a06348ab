"""Sandbox overhead: the seed's gap-up strategy over every symbol-day of the bundled data,
2005-01-01..2012-12-31, sandboxed vs plain Python in-process, side by side in one run.

* ``plain``      - the strategy compiled with plain ``compile`` and real builtins, called in
                   this process on the same point-in-time data functions, same order.
                   (Unsafe by design: a baseline only.)
* ``sandboxed``  - the real path: validation, RestrictedPython, forked worker with rlimits
                   and seccomp, plan sent over the socket, results back as JSON.

Also reported: zygote start-up (once per process), and per-run worker cost (fork + load +
handshake). Run: ``python bench/sandbox.py [--repeat 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from stratagem.data.catalog import ensure_sample
from stratagem.data.pit import PointInTime
from stratagem.data.store import iso_to_day
from stratagem.engines.common import trading_days
from stratagem.sandbox.pool import Sandbox
from stratagem.settings import SandboxLimits, Settings

SEED_GAP_UP = '''
def classify_symbol(symbol):
    data = get_price_data(symbol, timeframe='1d', days=5)
    if not data['close'] or len(data['close']) < 2:
        return False
    prev_close = data['close'][-2]
    today_open = data['open'][-1]
    gap = (today_open - prev_close) / prev_close
    avg_volume = sum(data['volume'][:-1]) / len(data['volume'][:-1])
    volume_ratio = data['volume'][-1] / avg_volume if avg_volume > 0 else 0.0
    return gap > 0.03 and volume_ratio > 1.5
'''


def run_plain(pit: PointInTime, plan) -> tuple[float, int]:
    g = {"__builtins__": __builtins__}
    g.update(pit.functions())
    exec(compile(SEED_GAP_UP, "<plain>", "exec"), g)  # noqa: S102 - the unsafe baseline, by design
    fn = g["classify_symbol"]
    t0 = time.perf_counter()
    hits = 0
    for day, syms in plan:
        pit.set_asof(day)
        for s in syms:
            if fn(s):
                hits += 1
    return time.perf_counter() - t0, hits


def run_sandboxed(sbx: Sandbox, plan, workers: int) -> tuple[float, int]:
    # Steady state: spare workers are forked and warmed between runs, as in a live service.
    sbx.wait_ready()
    t0 = time.perf_counter()
    out = sbx.run(SEED_GAP_UP, plan, workers=workers)
    assert not out.errors, out.errors[:3]
    return time.perf_counter() - t0, len(out.signals)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="stratagem-bench-"))
    market = ensure_sample(Settings(home=home))
    plan = list(trading_days(market, market.symbols, iso_to_day("2005-01-01"), iso_to_day("2012-12-31")).items())
    n = sum(len(s) for _, s in plan)

    t0 = time.perf_counter()
    sbx = Sandbox(market.path, SandboxLimits(), workers=2)
    sbx.start()
    zygote = time.perf_counter() - t0
    worker_costs = []  # a cold fork from the zygote, warmed, plus loading the strategy
    spare_costs = []   # taking a pre-forked warm spare plus loading the strategy (what a run pays)
    for _ in range(10):
        t = time.perf_counter()
        w = sbx._fork()
        w.load(SEED_GAP_UP)
        worker_costs.append(time.perf_counter() - t)
        w.close()
        sbx.wait_ready()
        t = time.perf_counter()
        w = sbx.spawn()
        w.load(SEED_GAP_UP)
        spare_costs.append(time.perf_counter() - t)
        sbx.release(w)

    # The baseline gets the same warm data layer the sandbox zygote prepares for its workers.
    plain_pit = PointInTime(market)
    plain_pit.prewarm()
    rows: dict[str, list[float]] = {"plain": [], "sandboxed_1_worker": [], "sandboxed_2_workers": []}
    hits = {}
    for _ in range(args.repeat):
        # Interleaved so that machine noise hits every variant alike.
        sbx.wait_ready()
        dt, hits["plain"] = run_plain(plain_pit, plan)
        rows["plain"].append(dt)
        dt, hits["sandboxed_1_worker"] = run_sandboxed(sbx, plan, 1)
        rows["sandboxed_1_worker"].append(dt)
        dt, hits["sandboxed_2_workers"] = run_sandboxed(sbx, plan, 2)
        rows["sandboxed_2_workers"].append(dt)
    sbx.close()
    assert len(set(hits.values())) == 1, f"variants disagree on signals: {hits}"
    med = {k: statistics.median(v) for k, v in rows.items()}
    result = {
        "symbol_days": n, "signals": hits["plain"], "repeat": args.repeat,
        "seconds_median": med,
        "symbol_days_per_second": {k: n / v for k, v in med.items()},
        "ratio_vs_plain": {k: v / med["plain"] for k, v in med.items()},
        "zygote_startup_seconds": zygote,
        "worker_fork_load_ms_median": statistics.median(worker_costs) * 1000,
        "spare_take_load_ms_median": statistics.median(spare_costs) * 1000,
    }
    print(f"gap-up over {n} symbol-days (2005-2012), {hits['plain']} signals, median of {args.repeat}")
    print(f"{'variant':<22} {'seconds':>8} {'symbol-days/s':>14} {'x plain':>8}")
    for k in rows:
        print(f"{k:<22} {med[k]:>8.3f} {n / med[k]:>14,.0f} {med[k] / med['plain']:>8.2f}")
    print(f"zygote start-up (once per process): {zygote * 1000:.0f} ms; cold worker fork+warm-up+load: "
          f"{result['worker_fork_load_ms_median']:.1f} ms (done in the background between runs); "
          f"warm spare take+load (what a run pays): {result['spare_take_load_ms_median']:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
