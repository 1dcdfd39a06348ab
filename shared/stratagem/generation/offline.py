"""The offline generator: deterministic, transparent prompt -> strategy, no model, no network.

``OfflineGenerator().parse(prompt)`` returns the structured :class:`Spec` it understood
(conditions combined with and/or/not, tickers, sectors, ranking, the defaults it applied
and the words it ignored); ``generate(prompt)`` turns that spec into readable strategy
source from templates (see ``offline_emit``): a docstring stating the interpretation,
UPPER_CASE constants for every parameter, small helpers and ``classify_symbol``
returning ``{"signal", "score", <the values behind the signal>}`` (plus
``run_screening`` when a top-N ranking is asked for).

Requests that cannot be expressed honestly with daily bars and the data API (intraday,
options, news/sentiment, order book, crypto/forex, predictions, unknown data fields) and
prompts with no recognised condition raise :class:`GenerationRefused` with a short list
of what the generator can do. It never emits code it does not understand.

The vocabulary, defaults and conventions are documented in ``offline_parse`` (reading)
and ``offline_emit`` (code); the conventions follow the team's reference strategies:
gap = open[t]/close[t-1]-1, "high volume" = volume[t] > 1.5x the mean of the previous
20 sessions, a month = 21 sessions, 52 weeks = 252, RSI = Wilder's 14, Bollinger = 20-bar
SMA +/- 2 population std, golden cross = 50 SMA crossing above 200 SMA today.
"""

from __future__ import annotations

from .base import GeneratedStrategy, GenerationRefused
from .offline_emit import describe_condition, describe_node, emit
from .offline_parse import parse_text
from .offline_spec import AllOf, AnyOf, Condition, Not, Ranking, Spec
from .offline_text import CAPABILITIES, refusal

__all__ = [
    "CAPABILITIES",
    "AllOf",
    "AnyOf",
    "Condition",
    "Not",
    "OfflineGenerator",
    "Ranking",
    "Spec",
    "describe_condition",
    "describe_node",
]

MAX_PROMPT_CHARS = 2000


class OfflineGenerator:
    """Deterministic rule-based :class:`~stratagem.generation.base.Generator`."""

    name = "offline"

    def parse(self, prompt: str) -> Spec:
        """The structured spec of ``prompt``; raises :class:`GenerationRefused` when it cannot
        be expressed (see the module docstring)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise GenerationRefused("empty request: describe the condition to look for. " + CAPABILITIES)
        if len(prompt) > MAX_PROMPT_CHARS:
            raise GenerationRefused(f"request too long (more than {MAX_PROMPT_CHARS} characters): "
                                    "describe the conditions in a sentence or two. " + CAPABILITIES)
        reason = refusal(prompt)
        if reason:
            raise GenerationRefused(f"cannot build this honestly: {reason}. {CAPABILITIES}")
        spec = parse_text(prompt)
        if spec.expr is None and spec.ranking is None:
            raise GenerationRefused("no condition I can compute from daily bars or the data API was recognised in "
                                    f"this request. {CAPABILITIES}")
        return spec

    def generate(self, prompt: str, feedback: list[str] | None = None) -> GeneratedStrategy:
        """Strategy source for ``prompt``. ``feedback`` is accepted for the protocol; the output
        is deterministic (the templates are validated by the test-suite), so it is not used."""
        spec = self.parse(prompt)
        out = emit(spec)
        return GeneratedStrategy(name=out.name, description=out.description, code=out.code,
                                 parameters=out.parameters, explanation=out.explanation, generator=self.name)
