"""The red-team suite: every attack in ``tests/redteam/attacks/<class>/`` contained, proven from outside.

For each attack:

- ``stratagem validate --json`` (the real CLI) answers one JSON document with line/column findings;
- an attack the validator accepts runs through ``stratagem screen`` (and ``backtest`` when its header
  says so) with the canary, both secrets, the port and leftover processes checked. CI calls the
  CLI's entry point in-process (its sandbox zygote is still a fresh process with a clean
  environment); ``STRATAGEM_REDTEAM_FULL=1`` spawns ``python -m stratagem.cli`` for validate,
  screen and backtest of every attack;
- an attack the validator refuses runs again with the validator switched off, so RestrictedPython
  and the runtime guards must contain it on their own (see ``harness.run_unvalidated``).

Per-class counts (tried / contained, and which layer stopped each attack) are written to
``$STRATAGEM_REDTEAM_REPORT`` (default ``<tmp>/redteam-report.json``) and printed at the end.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.redteam import harness

ATTACKS = harness.all_attacks()
FULL = os.environ.get("STRATAGEM_REDTEAM_FULL") == "1"
# CI calls the CLI's entry point in-process (no interpreter start per run); the full run spawns
# `python -m stratagem.cli` for every command, like tests/sandbox/test_attacks.py.
RUN_CLI = harness.run_cli if FULL else harness.run_cli_inprocess
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def pit(market):
    from stratagem.data.pit import PointInTime
    from stratagem.data.reference import ReferenceData

    view = PointInTime(market, ReferenceData.load_default())
    return view


@pytest.fixture(scope="module")
def asof(market) -> int:
    return int(market.calendar()[-1])


def _record(path: Path, **info: object) -> None:
    key = f"{path.parent.name}/{path.name}"
    RESULTS.setdefault(key, {"class": path.parent.name}).update(info)


@pytest.mark.parametrize("path", ATTACKS, ids=[f"{p.parent.name}/{p.stem}" for p in ATTACKS])
def test_attack_contained(path: Path, tmp_path: Path, settings, market, pit, asof) -> None:
    arena = harness.Arena(tmp_path)
    home = tmp_path / "home"
    try:
        src = arena.source(path)
        strategy = tmp_path / "strategy.py"
        strategy.write_text(src)
        env = harness.cli_env(arena, home, settings.data_dir / "sample")
        layers: list[str] = []

        proc = RUN_CLI("validate", strategy, env, tmp_path)
        doc, outcome = harness.check_cli_document("validate", proc)
        assert not arena.violations(proc.stdout, proc.stderr, home=home)
        layers.append(outcome)
        if doc["valid"]:
            commands = [c.strip() for c in harness.header(src, "run", "screen").split(",")]
            if FULL:
                commands = ["screen", "backtest"]
            for command in commands:
                proc = RUN_CLI(command, strategy, env, tmp_path)
                bad = arena.violations(proc.stdout, proc.stderr, home=home)
                assert not bad, (command, bad, proc.stdout[-1500:], proc.stderr[-1500:])
                cdoc, outcome = harness.check_cli_document(command, proc)
                if harness.header(src, "assert") == "no_signals":
                    assert harness.signals_of(cdoc) == 0, f"{command}: the attack signalled (it saw what it must not)"
                layers.append(f"{command}: {outcome}")
            stopped_by = "validator accepted; " + "; ".join(layers[1:])
        else:
            # Defence in depth: the same attack without the validator meets the next layers alone.
            rep = harness.run_unvalidated(src, pit, asof, arena.env_secret)
            bad = arena.violations(rep["raw"])
            assert not bad, (bad, rep["raw"][-2000:])
            assert not rep["survivors"], "a process started by the strategy outlived it"
            stopped_by = "validator; without it: " + harness.unvalidated_outcome(rep)
        _record(path, contained=True, stopped_by=stopped_by, technique=harness.header(src, "technique"))
    except BaseException:
        _record(path, contained=False, stopped_by="NOT CONTAINED (see the failure)")
        raise
    finally:
        arena.close()


def test_harness_notices_escapes(tmp_path: Path, pit, asof) -> None:
    """Positive controls: with the guards deliberately weakened the harness must report the escape,
    and a secret in the output must be flagged (so a passing suite means something)."""
    arena = harness.Arena(tmp_path)
    try:
        src = f"def classify_symbol(symbol):\n    open({str(arena.canary)!r}, 'w').write('x')\n    return True\n"
        rep = harness.run_unvalidated(src, pit, asof, arena.env_secret)
        assert rep["stage"] == "ran" and not arena.violations(rep["raw"])  # no open() in the sandbox
        rep = harness.run_unvalidated(src, pit, asof, arena.env_secret, weaken_guards=True)
        assert "canary written: a file was created outside the sandbox" in arena.violations(rep["raw"])
        assert arena.violations(f"... {arena.env_secret} ...")
        assert arena.violations(f"... {arena.file_secret} ...")
    finally:
        arena.close()


def test_state_tampering_does_not_reach_the_next_strategy(sandbox, market) -> None:
    """Each state attack runs, then a benign strategy in the same sandbox gives the baseline result."""
    from stratagem.engines.common import trading_days

    benign = ("def classify_symbol(symbol):\n"
              "    d = get_price_data(symbol, days=20)\n"
              "    c = np.array(d['close'], dtype=float)\n"
              "    f = get_fundamental_data(symbol)\n"
              "    return {'signal': True, 'score': float(np.mean(c) + math.sqrt(c[-1]) + np.pi),\n"
              "            'pe': f.get('pe_ratio'), 'n': len(get_earnings_data(symbol))}\n")
    last = int(market.calendar()[-1])
    plan = list(trading_days(market, ["AAPL", "MSFT"], last - 30, last).items())
    baseline = sandbox.run(benign, plan)
    state_attacks = [p for p in ATTACKS if harness.header(p.read_text(), "state") == "true"]
    assert len(state_attacks) >= 5
    for path in state_attacks:
        src = path.read_text()
        try:
            sandbox.run(src, plan)
        except Exception:  # noqa: BLE001, S110 - rejected or failed attacks are fine; what follows matters
            pass
        after = sandbox.run(benign, plan)
        assert after.signals == baseline.signals, f"{path.name} changed a later strategy's results"
        assert not after.errors


def teardown_module(module: object) -> None:
    """Write the per-class counts (tried, contained, stopping layer) for docs/security.md."""
    if not RESULTS:
        return
    by_class: dict[str, Counter] = defaultdict(Counter)
    layers: dict[str, Counter] = defaultdict(Counter)
    for info in RESULTS.values():
        c = info["class"]
        by_class[c]["tried"] += 1
        by_class[c]["contained"] += int(bool(info.get("contained")))
        layers[c][info["stopped_by"].split(";")[0] if "validator;" in info["stopped_by"] else "validator accepted"] += 1
    summary = {
        "classes": {c: {"name": harness.CLASSES[c], **by_class[c], "layers": dict(layers[c])} for c in harness.CLASSES
                    if c in by_class},
        "total": {"tried": sum(v["tried"] for v in by_class.values()),
                  "contained": sum(v["contained"] for v in by_class.values())},
        "attacks": RESULTS,
    }
    out = Path(os.environ.get("STRATAGEM_REDTEAM_REPORT", Path(os.environ.get("TMPDIR", "/tmp")) / "redteam-report.json"))
    out.write_text(json.dumps(summary, indent=1, sort_keys=True))
    lines = [f"{c:14s} tried {v['tried']:3d} contained {v['contained']:3d}" for c, v in summary["classes"].items()]
    print("\nred-team summary (" + str(out) + "):\n" + "\n".join(lines)
          + f"\n{'total':14s} tried {summary['total']['tried']:3d} contained {summary['total']['contained']:3d}")
