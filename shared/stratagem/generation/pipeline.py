"""Generate -> validate -> smoke-run, with a bounded repair loop.

Each attempt's exact failure (validator findings with line numbers, the strategy's load
error, the first run-time errors) is fed back to the generator for the next attempt.
Every attempt is reported. Nothing is saved unless an attempt passes all three steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..data.store import MarketData
from ..errors import StrategyFailed, StrategyRejected
from ..sandbox.policy import check
from ..sandbox.pool import Sandbox
from .base import GeneratedStrategy, GenerationFailed, Generator

SMOKE_SESSIONS = 30
SMOKE_SYMBOLS = 5


@dataclass
class Creation:
    strategy: GeneratedStrategy
    attempts: list[dict] = field(default_factory=list)
    back_translation: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**self.strategy.to_json(), "back_translation": self.back_translation, "attempts": self.attempts,
                "smoke_run": self.smoke}


def smoke_plan(market: MarketData, sessions: int = SMOKE_SESSIONS, symbols: int = SMOKE_SYMBOLS) -> list[tuple[int, list[str]]]:
    """The last ``sessions`` sessions for the symbols with the longest histories."""
    syms = sorted(market.symbols, key=lambda s: -(market.range(s)[1] - market.range(s)[0]))[:symbols]
    cal = [int(d) for d in market.calendar()[-sessions:]]
    return [(d, syms) for d in cal]


def back_translate(code: str) -> dict:
    """A plain-English reading of the code itself (never of the prompt)."""
    try:
        from .explain import explain_code
    except ImportError:  # pragma: no cover - explain ships with the package
        return {"summary": "", "parameters": [], "data": [], "conditions": []}
    try:
        return explain_code(code)
    except Exception as exc:  # noqa: BLE001 - an explanation failure must not lose a valid strategy
        return {"summary": f"(could not explain the code: {type(exc).__name__})", "parameters": [], "data": [],
                "conditions": []}


def check_candidate(gen: GeneratedStrategy, sandbox: Sandbox, market: MarketData) -> tuple[str, str | None, dict]:
    """(stage, error, smoke) for a candidate: validator first, then a smoke run on real data.
    ``error`` is None when the candidate is accepted."""
    findings = check(gen.code)
    if findings:
        msg = "; ".join(f"line {f.line}: {f.message}" for f in findings[:10])
        return "validate", f"the code was rejected by the validator: {msg}", {}
    try:
        out = sandbox.run(gen.code, smoke_plan(market))
    except (StrategyRejected, StrategyFailed) as exc:
        return "smoke_run", f"the code failed when loaded: {exc.message}", {}
    smoke = {"evaluated": out.evaluated, "signals": len(out.signals), "errors": len(out.errors),
             "error_examples": [m for _s, _d, m in out.errors[:3]]}
    if out.evaluated and len(out.errors) * 2 > out.evaluated:
        first = "; ".join(f"{s}: {m}" for s, _d, m in out.errors[:3])
        return "smoke_run", f"the code raised errors when run on real data: {first}", smoke
    return "accepted", None, smoke


def check_prompt(prompt: str) -> str:
    from ..errors import BadInput

    prompt = (prompt or "").strip()
    if not prompt:
        raise BadInput("the prompt is empty; describe a trading idea, e.g. 'stocks that gap up more than 3% on high volume'")
    if len(prompt) > 2000:
        raise BadInput(f"the prompt is {len(prompt)} characters; keep it under 2000")
    return prompt


def create(prompt: str, generator: Generator, sandbox: Sandbox, market: MarketData, *,
           max_attempts: int = 3) -> Creation:
    """Run the pipeline; raises GenerationRefused at once, GenerationFailed after ``max_attempts``."""
    prompt = check_prompt(prompt)
    feedback: list[str] = []
    attempts: list[dict] = []
    for n in range(1, max_attempts + 1):
        t0 = time.perf_counter()
        record: dict[str, Any] = {"attempt": n, "generator": getattr(generator, "name", "?")}
        try:
            gen = generator.generate(prompt, feedback or None)
        except GenerationFailed as exc:
            record.update(stage="generate", ok=False, error=exc.message)
            attempts.append(record)
            feedback.append(f"attempt {n}: the answer was unusable: {exc.message}")
            continue
        stage, error, smoke = check_candidate(gen, sandbox, market)
        record.update(stage=stage, ok=error is None, seconds=round(time.perf_counter() - t0, 3))
        if error is not None:
            record["error"] = error
            attempts.append(record)
            feedback.append(f"attempt {n}: {error}")
            continue
        attempts.append(record)
        return Creation(gen, attempts, back_translate(gen.code), smoke)
    raise GenerationFailed(f"no valid strategy after {max_attempts} attempts; last problem: "
                           f"{attempts[-1].get('error', 'unknown') if attempts else 'none'}",
                           details={"attempts": attempts})
