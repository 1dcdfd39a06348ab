"""Prompt set -> generator -> pipeline (validate + smoke run) -> backtest: pass rate.

Runs every prompt of a JSONL file (default: the sample prompts in tests/samples/prompts.jsonl;
lines like ``{"id", "prompt", "expect"?: "reject"}``) through a generator and the creation
pipeline, backtests each produced strategy on the bundled data, and reports per prompt:
accepted / refused / failed, signals, and whether the outcome matches the expectation
(refuse when ``expect == "reject"``, otherwise produce a strategy that runs without errors).

Run: ``python bench/generation.py [PROMPTS.jsonl] [--generator offline|gemini] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from stratagem.data.catalog import ensure_sample
from stratagem.engines.backtest import run_backtest
from stratagem.errors import StratagemError
from stratagem.generation import make_generator
from stratagem.generation.base import GenerationRefused
from stratagem.generation.pipeline import create
from stratagem.sandbox.pool import Sandbox
from stratagem.settings import Settings

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "samples" / "prompts.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("prompts", nargs="?", default=str(DEFAULT))
    ap.add_argument("--generator", default="offline", choices=("offline", "gemini"))
    ap.add_argument("--json")
    args = ap.parse_args()
    settings = Settings.from_env(generator=args.generator, home=Path(tempfile.mkdtemp(prefix="stratagem-gen-")))
    market = ensure_sample(settings)
    sandbox = Sandbox(market.path, settings.sandbox, settings.workers)
    gen = make_generator(settings)
    rows = []
    for line in Path(args.prompts).read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        expect_reject = item.get("expect") == "reject"
        t0 = time.perf_counter()
        row = {"id": item.get("id"), "prompt": item["prompt"], "expect": "reject" if expect_reject else "strategy"}
        try:
            made = create(item["prompt"], gen, sandbox, market)
            bt = run_backtest(sandbox, market, made.strategy.code, market.symbols, probe=0)
            row.update(outcome="strategy", name=made.strategy.name, attempts=len(made.attempts),
                       signals=bt["performance_metrics"]["signals"], errors=bt["errors"]["count"],
                       evaluated=bt["performance_metrics"]["evaluated"])
            row["pass"] = not expect_reject and bt["errors"]["count"] == 0
        except GenerationRefused as exc:
            row.update(outcome="refused", message=exc.message[:200])
            row["pass"] = expect_reject
        except StratagemError as exc:
            row.update(outcome="failed", message=exc.message[:200])
            row["pass"] = False
        row["seconds"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
        print(f"{'PASS' if row['pass'] else 'FAIL'} {row['id']:<10} {row['outcome']:<9} "
              f"{row.get('signals', ''):>6} {row['prompt'][:70]}", file=sys.stderr)
    sandbox.close()
    passed = sum(r["pass"] for r in rows)
    summary = {"generator": args.generator, "prompts": len(rows), "passed": passed,
               "pass_rate": passed / len(rows) if rows else None, "rows": rows}
    print(f"{args.generator}: {passed}/{len(rows)} prompts passed ({summary['pass_rate']:.0%})")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
