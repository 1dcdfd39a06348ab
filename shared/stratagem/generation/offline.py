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
of what the generator can do. It never emits code it does not understand, and it never
drops a stated condition: when a number, a price or volume word, a comparison or an
indicator name is left over after reading the prompt (the part of the request it could not
place), it refuses and names that part instead of building a looser strategy.

The vocabulary, defaults and conventions are documented in ``offline_parse`` (reading)
and ``offline_emit`` (code); the conventions follow the team's reference strategies:
gap = open[t]/close[t-1]-1, "high volume" = volume[t] > 1.5x the mean of the previous
20 sessions, a month = 21 sessions, 52 weeks = 252, RSI = Wilder's 14, Bollinger = 20-bar
SMA +/- 2 population std, golden cross = 50 SMA crossing above 200 SMA today.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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

# Left over after reading a prompt, these words mean a stated condition was not understood
# ("gapped down yesterday but closed above yesterday's high", "close more than 4% below the
# open" before that phrasing was known): building from the rest would give a different
# strategy than the one asked for, so the generator refuses and names them. Qualitative words
# ("downtrend", "momentum stocks") are only reported, since they add no testable condition.
UNPLACED_TERMS = frozenset("""
open opens opened opening close closes closed closing high highs low lows volume volumes average averages mean
yesterday yesterdays week weeks month months prior previous above below over under cross crosses crossed crossing
higher lower rise rises rising rose fall falls falling fell up down gap gaps gapped gapping range ratio return returns
sma ema ma rsi macd atr bollinger bandwidth stoch willr cci adx mfi obv keltner pdi mdi stochrsi ichimoku sar parabolic
aroon trix supertrend pivot pivots fibonacci fib donchian vortex ppo tsi kama hma wma dema tema chaikin heikin renko
vwap std zscore pe eps mcap de dividend dividends yield float shares outstanding last past within since straight
consecutive row bounce bounced bounces bouncing rebound rebounds rebounded rebounding divergence diverging pullback
pulled earnings yeartodate each growth then increasing decreasing declining growing expanding contracting
accelerating decelerating shrinking widening narrowing improving worsening strengthening weakening
gravestone dragonfly marubozu tweezer tweezers hanging spinning abandoned wick wicks shadow shadows
""".split())
_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")


# normalised spellings shown to users as they would write them
_READABLE = {"yeartodate": "year to date", "willr": "Williams %R", "stoch": "stochastic", "stochrsi": "stochastic RSI",
             "pdi": "+DI", "mdi": "-DI", "ma": "moving average", "de": "debt to equity", "mcap": "market cap",
             "pe": "P/E", "std": "standard deviations", "gapandgo": "gap and go"}


def _readable(words: Iterable[str]) -> str:
    return " ".join(_READABLE.get(w, "not in " + w[4:].replace("-", " ") + " (only a whole sector can be excluded, and "
                                  "it is also the sector asked for)" if w.startswith("not-") else w) for w in words)


def unplaced(ignored: tuple[str, ...]) -> list[str]:
    """The ignored words that stand for a condition the prompt stated (see ``UNPLACED_TERMS``);
    numbers count, years (1900-2100) do not."""
    out = []
    for w in ignored:
        year = w.isdigit() and len(w) == 4 and 1900 <= int(w) <= 2100  # "12.5" or "150%" is no year (and no int)
        if w in UNPLACED_TERMS or w.startswith("not-") or (_NUMBER.fullmatch(w) and not year):
            out.append(w)
        elif _TICKER_LIKE.fullmatch(w):
            out.append(w)  # "when crwd gaps up": a ticker in lower case, not a word to drop
    return out


# two to five letters without a vowel: a ticker written in lower case, not an English word
_TICKER_LIKE = re.compile(r"[b-df-hj-np-tv-xz]{2,5}")


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
        left = unplaced(spec.ignored)
        if spec.expr is None and spec.ranking is None:
            named = (f" (not understood: {', '.join(repr(_readable([w])) for w in dict.fromkeys(left))})" if left else "")
            raise GenerationRefused("no condition I can compute from daily bars or the data API was recognised in "
                                    f"this request{named}. {CAPABILITIES}")
        if left:
            understood = describe_node(spec.expr) if spec.expr is not None else "a ranking only"
            raise GenerationRefused(
                f"part of this request was not understood: {_readable(spec.ignored)!r} (it mentions "
                f"{', '.join(repr(_readable([w])) for w in dict.fromkeys(left))}). Building from the rest would drop a condition "
                f"you stated; what was understood: {understood}. Rephrase that part, or leave it out"
                + (" (write tickers in capitals or as $TICKER)" if any(_TICKER_LIKE.fullmatch(w) for w in left) else "")
                + f". {CAPABILITIES}")
        return spec

    def generate(self, prompt: str, feedback: list[str] | None = None) -> GeneratedStrategy:
        """Strategy source for ``prompt``. ``feedback`` is accepted for the protocol; the output
        is deterministic (the templates are validated by the test-suite), so it is not used."""
        spec = self.parse(prompt)
        out = emit(spec)
        return GeneratedStrategy(name=out.name, description=out.description, code=out.code,
                                 parameters=out.parameters, explanation=out.explanation, generator=self.name)
