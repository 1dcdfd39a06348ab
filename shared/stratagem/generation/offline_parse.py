"""Prompt -> :class:`Spec`: recognisers over the normalised text, then and/or/not structure.

How a prompt is read:

1. :func:`offline_text.normalize` rewrites it into a canonical vocabulary.
2. A ranking request ("top 10 by 20-day momentum") is recognised first.
3. Every recogniser (a regex plus a builder) is run in priority order; a match is kept
   when it does not overlap a span already claimed (so "gap up by 4%" is a gap, not a
   4% return). Builders turn a match into a :class:`Condition` (or an ``AllOf`` for
   "between A and B" and size classes).
4. Qualitative defaults ("oversold", "high volume", "volume spike", "breakout") are *weak*:
   they are dropped when the prompt states the same family explicitly ("oversold ... RSI
   below 30" is one RSI condition). Exact duplicates are merged.
5. The text between consecutive conditions decides how they combine: "or" -> any-of,
   otherwise all-of ("and", "with", "but", commas). "and" binds tighter than "or"; a
   comma list takes the connector that ends it ("A, B or C" = any of the three).
   A negation ("not", "without", "isn't", "excluding") right before a condition negates it.
6. Leftover capitalised tickers restrict the symbols; sector words filter by sector;
   remaining substantive words are reported as ignored.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..data.reference import canonical_sector
from .offline_spec import AllOf, AnyOf, Condition, Node, Not, Ranking, Spec
from .offline_text import normalize

# --------------------------------------------------------------------------- defaults
GAP_DEFAULT_PCT = 2.0  # "gap up" with no size: at least 2%
MOMENTUM_DEFAULT_LOOKBACK = 20  # "momentum"/"return" with no period
RELATIVE_STRENGTH_DEFAULT_LOOKBACK = 63  # "outperforming X" with no period: 3 months
VOLUME_LOOKBACK = 20  # average volume window when none is given
HIGH_VOLUME = 1.5  # "high volume": > 1.5x the 20-day average (previous 20 sessions)
VOLUME_SPIKE = 2.0  # "volume spike"/"unusual volume": >= 2x
LOW_VOLUME = 0.75  # "low volume": < 0.75x
RSI_PERIOD = 14
OVERSOLD = 30.0
OVERBOUGHT = 70.0
BOLLINGER_PERIOD = 20
BOLLINGER_WIDTH = 2.0
ATR_PERIOD = 14
RANGE_LOOKBACK = 20
RANGE_EXPANSION = 2.0
NARROW_RANGE = 0.5
VOLATILITY_LOOKBACK = 20
LOW_VOLATILITY = 20.0  # annualised %, 20-day
HIGH_VOLATILITY = 40.0
ZSCORE_LOOKBACK = 20
NEW_HIGH_DEFAULT_LOOKBACK = 252  # "new highs" with no window: 52 weeks
BREAKOUT_DEFAULT_LOOKBACK = 20
NEAR_EXTREME_PCT = 5.0  # "near its 52-week high": within 5%
MA_DEFAULT_PERIOD = 50  # "above its moving average" with no period
MACD = (12, 26, 9)
PENNY_PRICE = 5.0

# --------------------------------------------------------------------------- regex kit
NUM = r"-?\d+(?:\.\d+)?"
CMP = r"(?:>=|<=|>|<|=|above|over|below|under|beneath|exactly)"
POST = (r"(?:\s*(?:\+|or\s+(?:more|higher|greater|above|better|bigger|larger|less|lower|below|fewer|smaller"
        r"|worse|under|over)))?")
NO_UNIT = r"(?![\d.]*\s*(?:%|x\b|d\b|std\b))"
PER_WORDS = r"(?:over|in|during|within|across|for|on|of|from)"
BACK = r"(?:the\s+|this\s+)?(?:past|last|prior|previous|trailing|latest|recent|preceding)?\s*"
ARTICLE = r"(?:(?:the|its|their|a|an|his|her)\s+)?"
FUND_TAIL = r"(?![\d.]*\s*(?:%|x\b|d\b))"
SHARES_TAIL = r"(?![\d.]*\s*(?:%|x\b|d\b))(?:\s*shares)?"

_CMP_OP = {">": ">", "above": ">", "over": ">", ">=": ">=", "=": ">=", "exactly": ">=",
           "<": "<", "below": "<", "under": "<", "beneath": "<", "<=": "<="}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def thr(unit: str = "", money: bool = False, tail: str = "", tag: str = "") -> str:
    """Regex for a threshold: ``CMP? NUM unit POST`` or ``between NUM and NUM``."""
    d = r"\$?" if money else ""
    return (rf"(?:between\s+{d}(?P<lo{tag}>{NUM})\s*{unit}\s+(?:and|to)\s+{d}(?P<hi{tag}>{NUM})\s*{unit}{tail}"
            rf"|(?:(?P<cmp{tag}>{CMP})\s*)?{d}(?P<num{tag}>{NUM})(?![\d.])\s*{unit}{tail}(?P<post{tag}>{POST}))")


def thresholds(m: re.Match, default_op: str = ">=", negate: bool = False, scale: float = 1.0,
               tag: str = "") -> list[tuple[str, float]]:
    """[(op, value)] from a :func:`thr` match; ``negate`` turns a magnitude into a signed bound
    ("down more than 5%" -> < -5)."""
    lo = m.groupdict().get("lo" + tag)
    if lo is not None:
        a, b = sorted((float(lo) * scale, float(m.group("hi" + tag)) * scale))
        out = [(">=", a), ("<=", b)]
    else:
        num = m.groupdict().get("num" + tag)
        if num is None:
            return []
        cmp = (m.groupdict().get("cmp" + tag) or "").strip()
        post = (m.groupdict().get("post" + tag) or "").strip()
        if cmp:
            op = _CMP_OP[cmp]
        elif post:
            op = ">=" if (post == "+" or any(w in post for w in ("more", "higher", "greater", "above", "better",
                                                                 "bigger", "larger", "over"))) else "<="
        else:
            op = default_op
        out = [(op, float(num) * scale)]
    if negate:
        out = [(_FLIP[op], -v) for op, v in out]
    return out


def directed(bounds: list[tuple[str, float]], down: bool) -> list[tuple[str, float]]:
    """Bounds of a move with a stated direction: "gap up under 1%" is 0 < gap < 1, not any gap
    below 1% (a gap down included); "down less than 3%" is -3 < change < 0."""
    if not bounds:
        return bounds
    if down and all(op in (">", ">=") for op, _ in bounds) and all(v <= 0 for _, v in bounds):
        return bounds + [("<", 0.0)]
    if not down and all(op in ("<", "<=") for op, _ in bounds) and all(v >= 0 for _, v in bounds):
        return [(">", 0.0)] + bounds
    return bounds


def cond_node(kind: str, params: dict, bounds: list[tuple[str, float]], text: str) -> Node | None:
    conds = [Condition(kind, dict(params), op, _clean(v), text) for op, v in bounds]
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else AllOf(tuple(conds))


def _clean(v: float) -> float:
    v = round(float(v), 10)
    return 0.0 if v == 0 else v


def _int(m: re.Match, *names: str, default: int | None = None) -> int | None:
    for n in names:
        v = m.groupdict().get(n)
        if v:
            return int(v)
    return default


# --------------------------------------------------------------------------- recognisers

@dataclass
class Hit:
    start: int
    end: int
    node: Node
    weak: frozenset = frozenset()  # kinds whose explicit presence makes this hit redundant
    note: str = ""  # default applied, in words


Builder = Callable[[re.Match], "Hit | Node | None"]
RECOGNISERS: list[tuple[str, re.Pattern, Builder]] = []


def rec(name: str, pattern: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        RECOGNISERS.append((name, re.compile(pattern), fn))
        return fn
    return deco


def weak(node: Node, kinds: set[str] | frozenset[str], note: str) -> Hit:
    return Hit(0, 0, node, frozenset(kinds), note)


def noted(node: Node | None, note: str) -> Hit | None:
    return None if node is None else Hit(0, 0, node, frozenset(), note)


UPV = (r"(?:up|gain(?:ed|s|ing)?|rose|rise[sn]?|rising|rall(?:y|ied|ies|ying)|climb(?:ed|s|ing)?|jump(?:ed|s|ing)?"
       r"|surg(?:e|ed|es|ing)|advanc(?:e|ed|es|ing)|increas(?:e|ed|es|ing)|soar(?:ed|s|ing)?|spik(?:e|ed|es|ing)"
       r"|popp(?:ed|ing)|higher|appreciat(?:e|ed|es|ing))")
DOWNV = (r"(?:down|fell|fall(?:s|ing|en)?|drop(?:ped|s|ping)?|declin(?:e|ed|es|ing)|lost|los(?:e|es|ing)"
         r"|sl(?:id|ide|ides|iding)|plung(?:e|ed|es|ing)|tumbl(?:e|ed|es|ing)|sank|sink(?:s|ing)?"
         r"|decreas(?:e|ed|es|ing)|crash(?:ed|es|ing)?|lower|sold off|sell(?:s|ing)? off|shed|dipp?(?:ed|s|ing)?)")
PERIOD = (rf"(?:\s+{PER_WORDS}?\s*{BACK}(?P<n>\d+)d(?!\s*(?:sma|ema|ma|high|low|average|avg|rsi|atr)\b)"
          r"|\s+(?P<today>today|on the day|this session|on the session|in 1d|since yesterday|since the previous close"
          r"|from the previous close|since the prior close|on the day))")


# ---- gaps ------------------------------------------------------------------------------
@rec("gap_full", r"\b(?:full\s+)?gap(?:s|ped|ping)?\s+(?:up\s+|down\s+)?(?P<side>above|over|below|under)\s+"
                 r"(?:the\s+)?(?:yesterday|prior day|previous day|prior|previous|last|prior session)\s+(?:day\s+)?"
                 r"(?P<ref>high|low)\b|\bopen(?:s|ed|ing)?\s+(?P<side2>above|over|below|under)\s+(?:the\s+)?"
                 r"(?:yesterday|prior day|previous day|prior|previous)\s+(?:day\s+)?(?P<ref2>high|low)\b"
                 r"|\bfull\s+gap\s+(?P<dir>up|down)\b")
def _gap_full(m: re.Match):
    ref = m.group("ref") or m.group("ref2") or ("high" if m.group("dir") == "up" else "low")
    if ref == "high":
        return Condition("gap", {"ref": "high"}, ">", 0.0, m.group(0))
    return Condition("gap", {"ref": "low"}, "<", 0.0, m.group(0))


@rec("open_vs_close", r"\bopen(?:s|ed|ing)?\s+(?P<dir>above|over|higher than|>|below|under|lower than|<)\s+(?:the\s+)?"
                      r"(?:previous|prior|yesterday|last)\s*(?:day|session)?\s+close\b")
def _open_vs_close(m: re.Match):
    up = m.group("dir") in ("above", "over", "higher than", ">")
    return Condition("gap", {}, ">" if up else "<", 0.0, m.group(0))


@rec("gap_open", rf"\bopen(?:s|ed|ing)?\s+(?:up\s+|down\s+)?{thr('%')}\s+(?P<dir>higher|lower|above|below|up|down|>|<)"
                 r"(?:\s+(?:the\s+)?(?:yesterday|prior|previous|last)(?:\s+day)?\s+close)?")
def _gap_open(m: re.Match):
    down = m.group("dir") in ("lower", "below", "down", "<")
    return cond_node("gap", {}, directed(thresholds(m, ">=", negate=down), down), m.group(0))


@rec("gap_pre", rf"{thr('%')}\s+(?:or more\s+)?(?:opening\s+)?gap(?:s|ped|ping)?(?:\s+(?P<dir>up|down|higher|lower))?")
def _gap_pre(m: re.Match):
    down = m.group("dir") in ("down", "lower")
    bounds = thresholds(m, ">=", negate=down)
    return cond_node("gap", {}, directed(bounds, down) if m.group("dir") else bounds, m.group(0))


@rec("gap", rf"\b(?:opening\s+)?gap(?:s|ped|ping)?(?:\s+(?P<dir>up|down|higher|lower))?(?:\s+(?:by|of|at))?"
            rf"(?:\s+(?:size\s+)?(?:is\s+)?{thr('%')})?")
def _gap(m: re.Match):
    down = m.group("dir") in ("down", "lower")
    if m.group("num") is None and m.group("lo") is None:
        if not m.group("dir"):
            return None
        t = -GAP_DEFAULT_PCT if down else GAP_DEFAULT_PCT
        return noted(Condition("gap", {}, "<=" if down else ">=", t, m.group(0)),
                     f"a gap with no size means at least {GAP_DEFAULT_PCT:g}% (open vs previous close)")
    bounds = thresholds(m, ">=", negate=down)
    return cond_node("gap", {}, directed(bounds, down) if m.group("dir") else bounds, m.group(0))


# ---- earnings surprise (before fundamentals: 'eps' appears in both) ------------------
_ESTIMATES = r"(?:(?:the|their|its|analyst|analysts|analyst's|consensus|wall street|street)\s+)*"
_EARN_WORDS = r"(?:earnings|eps|expectations|estimates|consensus|the street|forecasts?)"


@rec("earnings_beat", rf"\b(?P<verb>beat(?:s|ing)?|top(?:ped|s|ping)?|>|surpass(?:ed|es|ing)?|miss(?:ed|es|ing)?"
                      rf"|fell short of|came in below|came in above|fall(?:s|ing)? short of)\s+{_ESTIMATES}"
                      rf"{_EARN_WORDS}(?:\s+(?:estimates?|expectations?|consensus|forecasts?))?"
                      rf"(?:\s+(?:by|of)\s+{thr('%')})?")
def _earn_beat(m: re.Match):
    miss = m.group("verb").startswith(("miss", "fell", "fall", "came in below"))
    if m.group("num") is None and m.group("lo") is None:
        return Condition("earnings_surprise", {}, "<" if miss else ">", 0.0, m.group(0))
    return cond_node("earnings_surprise", {}, thresholds(m, ">=", negate=miss), m.group(0))


@rec("earnings_sign", r"\b(?P<sign>positive|negative)\s+(?:earnings|eps)\s+surprises?\b")
def _earn_sign(m: re.Match):
    return Condition("earnings_surprise", {}, ">" if m.group("sign") == "positive" else "<", 0.0, m.group(0))


@rec("earnings_noun", rf"\b(?:an?\s+)?(?:earnings|eps)\s+(?P<verb>beat|miss|surprise)(?:es)?"
                      rf"(?:\s+(?:of|by|is|was|above|over|below|under)?\s*{thr('%')})?")
def _earn_noun(m: re.Match):
    verb = m.group("verb")
    if m.group("num") is None and m.group("lo") is None:
        if verb == "surprise":
            return Condition("earnings_surprise", {}, ">", 0.0, m.group(0))
        return Condition("earnings_surprise", {}, "<" if verb == "miss" else ">", 0.0, m.group(0))
    return cond_node("earnings_surprise", {}, thresholds(m, ">=" if verb != "surprise" else ">",
                                                         negate=verb == "miss"), m.group(0))


@rec("earnings_pct", rf"\b(?:(?:a\s+)?positive\s+)?(?:(?:earnings|eps)\s+)?surprise(?:\s+%)?\s+(?:is\s+|of\s+)?{thr('%')}")
def _earn_pct(m: re.Match):
    return cond_node("earnings_surprise", {}, thresholds(m, ">"), m.group(0))


# ---- relative strength -----------------------------------------------------------------
BENCH = r"(?P<bench>sym_[a-z.]+|the market|the index|the benchmark)"


@rec("relative_strength", rf"\b(?P<verb>outperform(?:s|ed|ing)?|beat(?:s|ing)?|stronger than|better than"
                          rf"|underperform(?:s|ed|ing)?|weaker than|worse than|lagg(?:ing|ed)|lags?)\s+{BENCH}"
                          rf"(?:\s+by\s+{thr('%')})?(?P<period>\s+(?:{PER_WORDS}\s+)?{BACK}(?P<n>\d+)d)?")
def _rs(m: re.Match):
    bench = m.group("bench")
    bench = bench[4:].upper() if bench.startswith("sym_") else "SPY"
    n = _int(m, "n", default=RELATIVE_STRENGTH_DEFAULT_LOOKBACK)
    under = m.group("verb").startswith(("under", "weaker", "worse", "lag"))
    params = {"benchmark": bench, "lookback": n}
    if m.group("num") is None and m.group("lo") is None:
        node = Condition("relative_strength", params, "<" if under else ">", 0.0, m.group(0))
    else:
        node = cond_node("relative_strength", params, thresholds(m, ">=", negate=under), m.group(0))
    note = "" if m.group("n") else f"relative strength with no period is measured over {n} sessions (3 months)"
    if not m.group("bench").startswith("sym_"):
        note = (note + "; " if note else "") + "'the market' is SPY (must be in the dataset)"
    return noted(node, note)


@rec("relative_strength_noun", rf"\b(?P<sign>positive|negative|strong|weak)?\s*relative strength\s+(?:vs|against|to)\s+"
                               rf"{BENCH}(?:\s+(?:is\s+)?(?P<sign2>positive|negative|strong|weak))?"
                               rf"(?P<period>\s+{PER_WORDS}\s+{BACK}(?P<n>\d+)d)?")
def _rs_noun(m: re.Match):
    bench = m.group("bench")
    bench = bench[4:].upper() if bench.startswith("sym_") else "SPY"
    n = _int(m, "n", default=RELATIVE_STRENGTH_DEFAULT_LOOKBACK)
    neg = (m.group("sign") or m.group("sign2")) in ("negative", "weak")
    return Condition("relative_strength", {"benchmark": bench, "lookback": n}, "<" if neg else ">", 0.0, m.group(0))


# ---- fundamentals ------------------------------------------------------------------------
_FIELDS = {"pe": "pe_ratio", "eps": "eps", "mcap": "market_cap", "de": "debt_to_equity"}


@rec("fundamental", rf"\b(?:(?:the|a|an|its|their|trailing|ttm|current|forward)\s+)?(?P<field>pe|eps|mcap|de)"
                    rf"(?:\s+ratio)?\s+(?:is\s+|of\s+|at\s+|value\s+)?"
                    rf"{thr('', money=True, tail=FUND_TAIL)}")
def _fund(m: re.Match):
    return cond_node("fundamental", {"field": _FIELDS[m.group("field")]}, thresholds(m, ">="), m.group(0))


_SIZES = {"mega": [(">=", 200e9)], "large": [(">=", 10e9)], "big": [(">=", 10e9)],
          "mid": [(">=", 2e9), ("<", 10e9)], "medium": [(">=", 2e9), ("<", 10e9)],
          "small": [(">=", 300e6), ("<", 2e9)], "micro": [(">=", 50e6), ("<", 300e6)], "nano": [("<", 50e6)]}


@rec("size_class", r"\b(?P<size>mega|large|big|mid|medium|small|micro|nano)\s*-?\s*(?:mcap|caps?|capitalization)\b")
def _size(m: re.Match):
    size = m.group("size")
    node = cond_node("fundamental", {"field": "market_cap"}, _SIZES[size], m.group(0))
    return noted(node, "size classes by market cap: mega >= $200B, large >= $10B, mid $2B-$10B, "
                       "small $300M-$2B, micro $50M-$300M, nano < $50M")


_QUAL = {
    "profitable": ("eps", ">", 0.0), "positive eps": ("eps", ">", 0.0), "positive earnings": ("eps", ">", 0.0),
    "unprofitable": ("eps", "<", 0.0), "negative eps": ("eps", "<", 0.0), "negative earnings": ("eps", "<", 0.0),
    "losing money": ("eps", "<", 0.0), "money losing": ("eps", "<", 0.0),
    "low debt": ("debt_to_equity", "<", 0.5), "little debt": ("debt_to_equity", "<", 0.5),
    "no debt": ("debt_to_equity", "<", 0.1), "debt free": ("debt_to_equity", "<", 0.1),
    "high debt": ("debt_to_equity", ">", 2.0), "highly leveraged": ("debt_to_equity", ">", 2.0),
    "low pe": ("pe_ratio", "<", 15.0), "high pe": ("pe_ratio", ">", 30.0),
}


@rec("fundamental_words", r"\b(?P<q>profitable|unprofitable|(?:positive|negative)\s+(?:eps|earnings)(?!\s+surprise)"
                          r"|losing money|money losing|low debt|little debt|no debt|debt free|high debt"
                          r"|highly leveraged|low pe|high pe)\b")
def _fund_words(m: re.Match):
    q = re.sub(r"\s+", " ", m.group("q"))
    field, op, value = _QUAL[q]
    return noted(Condition("fundamental", {"field": field}, op, value, m.group(0)),
                 f"'{q}' means {field} {op} {value:g}")


VALUE_PE = 15.0  # "value stocks" / "undervalued": P/E below 15, the seed's value example


@rec("value_words", r"\b(?:undervalued|value\s+(?:stocks?|names|plays|picks|companies)|cheap\s+valuations?"
                    r"|cheaply\s+valued|attractively\s+valued|trading\s+cheap(?:ly)?\s+on\s+earnings)\b")
def _value_words(m: re.Match):
    return weak(Condition("fundamental", {"field": "pe_ratio"}, "<", VALUE_PE, m.group(0)), {"fundamental:pe_ratio"},
                f"'{m.group(0)}' means a P/E ratio below {VALUE_PE:g} (and above 0)")


# ---- MACD ------------------------------------------------------------------------------------
_MACD = r"macd(?:\s*\(\s*(?P<f>\d+)\s*,\s*(?P<s>\d+)\s*,\s*(?P<g>\d+)\s*\))?"


def _macd_params(m: re.Match) -> dict:
    f, s, g = (int(m.group("f")), int(m.group("s")), int(m.group("g"))) if m.group("f") else MACD
    return {"fast": f, "slow": s, "signal": g}


@rec("macd_cross", rf"\b{_MACD}(?:\s+line)?\s+(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing)|break(?:s|ing)?|broke)\s+"
                   rf"(?P<dir>above|over|below|under)\s+(?:the\s+|its\s+)?(?P<line>signal(?:\s+line)?|zero(?:\s+line)?|0)"
                   r"(?:\s+(?P<zside>below|under|above|over)\s+(?:the\s+)?(?:0|zero)(?:\s+line)?\b)?")
def _macd_cross(m: re.Match):
    p = _macd_params(m)
    cross = Condition("macd_cross", {**p, "direction": "up" if m.group("dir") in ("above", "over") else "down",
                                     "line": "zero" if m.group("line").startswith(("zero", "0")) else "signal"},
                      None, None, m.group(0))
    if not m.group("zside") or cross.params["line"] == "zero":
        return cross
    # "crossed above the signal line below the zero line": with the MACD line below zero
    below = m.group("zside") in ("below", "under")
    return AllOf((cross, Condition("macd", {**p, "line": "macd"}, "<" if below else ">", 0.0, m.group(0))))


@rec("macd_cross_word", rf"(?:\b(?P<dir>bullish|bearish)\s+{_MACD}\s+(?:cross(?:over)?|crossing|signal)\b"
                        rf"|\b{_MACD.replace('?P<', '?P<x')}\s+(?P<dir2>bullish|bearish)\s+(?:cross(?:over)?|crossing)\b)"
                        r"(?:\s+(?P<zside>below|under|above|over)\s+(?:the\s+)?(?:0|zero)(?:\s+line)?\b)?")
def _macd_word(m: re.Match):
    if m.group("f") or m.group("xf"):
        f, s, g = ((m.group("f"), m.group("s"), m.group("g")) if m.group("f")
                   else (m.group("xf"), m.group("xs"), m.group("xg")))
        p = {"fast": int(f), "slow": int(s), "signal": int(g)}
    else:
        p = dict(zip(("fast", "slow", "signal"), MACD))
    d = m.group("dir") or m.group("dir2")
    cross = Condition("macd_cross", {**p, "direction": "up" if d == "bullish" else "down", "line": "signal"}, None, None,
                      m.group(0))
    if not m.group("zside"):
        return cross
    # "a bullish crossover below zero": the cross, with the MACD line still below the zero line
    below = m.group("zside") in ("below", "under")
    return AllOf((cross, Condition("macd", {**p, "line": "macd"}, "<" if below else ">", 0.0, m.group(0))))


@rec("macd_turn", rf"\b{_MACD}\s+(?:histogram|hist)\s+(?:turn(?:s|ed|ing)?|flip(?:s|ped|ping)?|cross(?:es|ed|ing)?|went|goes|moved?)"
                  r"\s+(?:to\s+)?(?:above\s+)?(?P<sign>positive|negative|green|red|above\s+0|below\s+0|0)\b"
                  rf"|\b{_MACD.replace('?P<', '?P<z')}(?:\s+line)?\s+(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing))\s+(?:the\s+)?(?:zero|0)"
                  r"(?:\s+line)?\s+from\s+(?P<from>below|above)\b")
def _macd_turn(m: re.Match):
    g = m.groupdict()
    f, sl, sg = (g["f"], g["s"], g["g"]) if g.get("f") else (g.get("zf"), g.get("zs"), g.get("zg"))
    p = {"fast": int(f), "slow": int(sl), "signal": int(sg)} if f else dict(zip(("fast", "slow", "signal"), MACD))
    if m.group("from"):
        # the MACD line itself crosses zero
        p.update(direction="up" if m.group("from") == "below" else "down", line="zero")
        return Condition("macd_cross", p, None, None, m.group(0))
    up = m.group("sign") in ("positive", "green", "above 0")
    # the histogram (MACD minus signal) turning positive is MACD crossing above its signal line
    p.update(direction="up" if up else "down", line="signal")
    return Condition("macd_cross", p, None, None, m.group(0))


@rec("macd_state", rf"\b{_MACD}(?:\s+line)?\s+(?:is\s+)?(?P<side>above|over|below|under|>|<)\s+(?:the\s+|its\s+)?"
                   rf"(?P<line>signal(?:\s+line)?|zero(?:\s+line)?|0)\b|\b{_MACD.replace('?P<', '?P<y')}\s+"
                   rf"(?:histogram\s+)?(?:is\s+)?(?P<sign>positive|negative)\b")
def _macd_state(m: re.Match):
    if m.group("sign"):
        p = ({"fast": int(m.group("yf")), "slow": int(m.group("ys")), "signal": int(m.group("yg"))} if m.group("yf")
             else dict(zip(("fast", "slow", "signal"), MACD)))
        p["line"] = "histogram" if "histogram" in m.group(0) else "macd"
        return Condition("macd", p, ">" if m.group("sign") == "positive" else "<", 0.0, m.group(0))
    p = _macd_params(m)
    p["line"] = "macd" if m.group("line").startswith(("zero", "0")) else "histogram"
    return Condition("macd", p, ">" if m.group("side") in ("above", "over", ">") else "<", 0.0, m.group(0))


@rec("macd_hist_level", rf"\b{_MACD}\s+(?:histogram|hist)\s+(?:is\s+|reading\s+|value\s+|of\s+)?"
                        rf"(?:(?P<zside>above|over|below|under|>|<)\s+(?:the\s+)?zero(?:\s+line)?\b"
                        rf"|{thr('', tail=NO_UNIT)})")
def _macd_hist_level(m: re.Match):
    p = {**_macd_params(m), "line": "histogram"}
    if m.group("zside"):
        return Condition("macd", p, ">" if m.group("zside") in ("above", "over", ">") else "<", 0.0, m.group(0))
    return cond_node("macd", p, thresholds(m, ">"), m.group(0))


# ---- moving averages -------------------------------------------------------------------
def ma_ref(tag: str) -> str:
    return (rf"{ARTICLE}(?P<n{tag}>\d+)d(?:\s+(?P<t{tag}>sma|ema|ma))?(?:\s+line)?"
            r"(?!\s*(?:high|low|average|avg|volume|range|return|momentum|rsi|atr|std|mean|rvol|change|performance))")


def _ma_type(*types: str | None) -> str:
    for t in types:
        if t in ("sma", "ema"):
            return t
    return "sma"


_UP_WORDS = ("above", "over", "up through", "up over", "through", ">", "up")


@rec("golden_cross", r"\b(?:(?P<a>\d+)d?\s*/\s*(?P<b>\d+)d?\s+(?:(?P<t>sma|ema|ma)\s+)?)?(?P<kind>golden|death)\s+"
                     r"cross(?:es|ed|ing|over)?\b")
def _golden(m: re.Match):
    up = m.group("kind") == "golden"
    fast, slow = sorted((int(m.group("a")), int(m.group("b")))) if m.group("a") else (50, 200)
    if fast == slow:
        return None
    return Condition("ma_cross", {"fast": fast, "slow": slow, "ma": _ma_type(m.group("t")),
                                  "direction": "up" if up else "down"}, None, None, m.group(0))


_CROSS_VERB = (r"(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing)|break(?:s|ing)?|broke|cut(?:s|ting)?|pierc(?:es|ed|ing)"
               r"|drop(?:s|ped|ping)?|fall(?:s|ing)?|fell|dip(?:s|ped|ping)?|slip(?:s|ped|ping)?|sink(?:s|ing)?|sank"
               r"|ris(?:es|ing)|rose|climb(?:s|ed|ing)?|jump(?:s|ed|ing)?|go(?:es)?|went|pop(?:s|ped|ping)?)")
_CROSS_DIR = r"(?P<dir>up\s+through|up\s+over|down\s+through|above|over|through|below|under|beneath|<|>)"


@rec("ma_cross", rf"\b(?:fast(?:er)?\s+)?{ma_ref('f')}\s+(?:is\s+)?{_CROSS_VERB}\s+(?:back\s+)?(?:{_CROSS_DIR}\s+)?"
                 rf"(?:(?:the\s+)?slow(?:er)?\s+)?{ma_ref('s')}")
def _ma_cross(m: re.Match):
    fast, slow = int(m.group("nf")), int(m.group("ns"))
    up = m.group("dir") in _UP_WORDS or m.group("dir") is None  # "the 9 crosses the 21": the fast one rises through
    if fast > slow:
        fast, slow, up = slow, fast, not up
    if fast == slow:
        return None
    return Condition("ma_cross", {"fast": fast, "slow": slow, "ma": _ma_type(m.group("tf"), m.group("ts")),
                                  "direction": "up" if up else "down"}, None, None, m.group(0))


@rec("ma_cross_pair", r"\b(?P<nf>\d+)d?\s*(?:and|/|&)\s*(?P<ns>\d+)d\s*(?P<t>sma|ema|ma)?s?\s+(?:bullish\s+|bearish\s+)?"
                      r"(?:cross(?:over|es|ed|ing)?)(?:\s+(?P<dir>up|down|higher|lower|bullish|bearish))?"
                      r"|\b(?P<dir2>bullish|bearish)\s+(?:cross(?:over)?|crossing)\s+of\s+(?:the\s+)?(?P<nf2>\d+)d?\s*"
                      r"(?:and|/|&)\s*(?P<ns2>\d+)d\s*(?P<t2>sma|ema|ma)?s?")
def _ma_pair(m: re.Match):
    a, b = _int(m, "nf", "nf2"), _int(m, "ns", "ns2")
    d = m.group("dir") or m.group("dir2") or "up"
    if "bear" in m.group(0) or d in ("down", "lower", "bearish"):
        d = "down"
    else:
        d = "up"
    fast, slow = sorted((a, b))
    if fast == slow:
        return None
    return Condition("ma_cross", {"fast": fast, "slow": slow, "ma": _ma_type(m.group("t"), m.group("t2")),
                                  "direction": d}, None, None, m.group(0))


@rec("price_ma_cross", rf"\b(?:(?:price|close|stock|shares|it)\s+)?{_CROSS_VERB}\s+(?:back\s+)?{_CROSS_DIR}\s+"
                       rf"(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?(?P<t>sma|ema|ma)\b"
                       r"(?:\s+from\s+(?:below|above|under|beneath))?")  # "crossing above ... from below": the same cross
def _price_ma_cross(m: re.Match):
    n = _int(m, "n", default=MA_DEFAULT_PERIOD)
    node = Condition("ma_cross", {"fast": 1, "slow": n, "ma": _ma_type(m.group("t")),
                                  "direction": "up" if m.group("dir") in _UP_WORDS else "down"}, None, None, m.group(0))
    return node if m.group("n") else noted(node, f"a moving average with no period is the {n}-day")


@rec("ma_spread", rf"\b{ma_ref('f')}\s+(?:is\s+|are\s+|stays?\s+|remains?\s+|trades?\s+|trading\s+|still\s+)?"
                  rf"(?P<side>above|over|below|under|>|<)\s+{ma_ref('s')}")
def _ma_spread(m: re.Match):
    fast, slow = int(m.group("nf")), int(m.group("ns"))
    above = m.group("side") in ("above", "over", ">")
    if fast > slow:
        fast, slow, above = slow, fast, not above
    if fast == slow or not (m.group("tf") or m.group("ts") or "d " in m.group(0)):
        return None
    return Condition("ma_spread", {"fast": fast, "slow": slow, "ma": _ma_type(m.group("tf"), m.group("ts"))},
                     ">" if above else "<", 0.0, m.group(0))


@rec("ma_distance", rf"(?:\b(?:the\s+)?(?:close|closing price|price|stock|shares)\s+)?"
                    rf"(?:\b(?:clos(?:e|es|ed|ing)|trad(?:es|ed|ing)|is|are|was|stays?|remains?|(?:has|have|had)\s+been)\s+)?"
                    rf"(?:(?P<cmp>{CMP})\s*)?(?:(?P<num>{NUM})%(?P<post>{POST})\s+)?(?P<side>above|over|below|under|beneath|>|<)"
                    r"\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?(?P<t>sma|ema|ma)\b")
def _ma_distance(m: re.Match):
    n = _int(m, "n", default=MA_DEFAULT_PERIOD)
    above = m.group("side") in ("above", "over", ">")
    params = {"period": n, "ma": _ma_type(m.group("t"))}
    if m.group("num") is None:
        node: Node = Condition("ma_distance", params, ">" if above else "<", 0.0, m.group(0))
    else:
        node = cond_node("ma_distance", params, thresholds(m, ">=", negate=not above), m.group(0))
    return node if m.group("n") else noted(node, f"a moving average with no period is the {n}-day")


@rec("ma_distance_bare", r"(?:\b(?P<side>above|over|below|under|beneath)\s+(?:the\s+|its\s+|their\s+)"
                         r"|\b(?:price|close|closes|closed|closing|stock|shares|trading|trades)\s+(?:is\s+)?"
                         r"(?P<side2>above|over|below|under|beneath)\s+(?:the\s+|its\s+|their\s+)?)(?P<n>\d+)d\b"
                         r"(?!\s*(?:high|low|average|avg|volume|range|return|momentum|rsi|atr|std|mean|rvol|change))")
def _ma_distance_bare(m: re.Match):
    above = (m.group("side") or m.group("side2")) in ("above", "over")
    return noted(Condition("ma_distance", {"period": int(m.group("n")), "ma": "sma"}, ">" if above else "<", 0.0,
                           m.group(0)), "'the N-day' alone means the N-day simple moving average")


# ---- candle body (close vs open) ------------------------------------------------------------
@rec("body", rf"\b(?:clos(?:e|es|ed|ing)|finish(?:es|ed)?|(?:is\s+)?trad(?:es|ed|ing))\s+(?:is\s+|was\s+)?(?:(?P<cmp>{CMP})\s*)?(?:(?P<num>{NUM})%\s+)?(?P<side>above|over|higher than|>|below|under"
             r"|lower than|<)\s+(?:the\s+|its\s+|their\s+|today\s+|the day\s+)?open(?:ing price)?\b"
             r"|\b(?:(?:big|large|long|huge|strong|wide|tall)\s+)?(?P<color>green|white|bullish|red|black|bearish)\s+"
             r"(?:candles?|bars?|days?|candlesticks?)\b"
             r"|\b(?:clos(?:e|es|ed|ing)|finish(?:es|ed)?)\s+(?:the\s+day\s+)?(?P<color2>red|green)\b")
def _body(m: re.Match):
    if m.group("color") or m.group("color2"):
        up = (m.group("color") or m.group("color2")) in ("green", "white", "bullish")
        # "a big red candle: close more than 4% below the open" is one body condition
        return weak(Condition("body", {}, ">" if up else "<", 0.0, m.group(0)), {"body"}, "")
    up = m.group("side") in ("above", "over", "higher than", ">")
    pct = float(m.group("num") or 0.0)
    cmp = (m.group("cmp") or "").strip()
    if not pct or not cmp:
        return Condition("body", {}, ">" if up else "<", pct if up else -pct, m.group(0))
    # "closed more than 4% below the open": the comparator speaks of the distance
    op = _CMP_OP[cmp]
    return Condition("body", {}, op if up else _FLIP[op], pct if up else -pct, m.group(0))


# ---- RSI ------------------------------------------------------------------------------------
_RSI = r"rsi(?:\((?P<p>\d+)\))?"


@rec("rsi_cross_from", rf"\b{_RSI}\s+(?:line\s+)?cross(?:es|ed|ing)?\s+(?:the\s+)?(?P<num>{NUM})(?:\s+level)?\s+from\s+"
                       r"(?P<side>below|under|above|over)\b")
def _rsi_cross_from(m: re.Match):
    # "RSI crossing 50 from below": upward
    return Condition("rsi_cross", {"period": _int(m, "p", default=RSI_PERIOD),
                                   "direction": "up" if m.group("side") in ("below", "under") else "down",
                                   "level": float(m.group("num"))}, None, None, m.group(0))


@rec("rsi_cross", rf"\b{_RSI}\s+(?:line\s+)?(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing)|break(?:s|ing)?|broke"
                  rf"|climb(?:s|ed|ing)?|ris(?:es|ing)|rose|fall(?:s|ing)?|fell|drop(?:s|ped|ping)?|dipp?(?:s|ed|ing)?"
                  rf"|go(?:es)?|went|jump(?:s|ed|ing)?|pop(?:s|ped|ping)?|sink(?:s|ing)?|sank|slip(?:s|ped|ping)?)"
                  rf"\s+(?:back\s+)?(?P<dir>above|over|below|under)\s+(?P<num>{NUM})")
def _rsi_cross(m: re.Match):
    return Condition("rsi_cross", {"period": _int(m, "p", default=RSI_PERIOD),
                                   "direction": "up" if m.group("dir") in ("above", "over") else "down",
                                   "level": float(m.group("num"))}, None, None, m.group(0))


@rec("rsi", rf"\b{_RSI}\s+(?:(?:reading|value|level|is|was|of|at|currently|still|stays?|remains?|has|now)\s+)*"
            rf"{thr('', tail=NO_UNIT)}")
def _rsi(m: re.Match):
    return cond_node("rsi", {"period": _int(m, "p", default=RSI_PERIOD)}, thresholds(m, ">="), m.group(0))


@rec("rsi_state", rf"\b{_RSI}\s+(?:(?:is|in|shows?|signals?|reading|reads)\s+)*(?P<state>oversold|overbought)"
                  rf"(?:\s+territory)?(?:\s*\(\s*(?:<|>)?\s*(?P<lvl>\d+(?:\.\d+)?)\s*\))?"
                  rf"|\b(?P<state2>oversold|overbought)\s+(?:on|by|per|according to|using)\s+"
                  rf"(?:the\s+|its\s+)?{_RSI.replace('?P<p>', '?P<p2>')}")
def _rsi_state(m: re.Match):
    state = m.group("state") or m.group("state2")
    p = _int(m, "p", "p2", default=RSI_PERIOD)
    level = float(m.group("lvl")) if m.groupdict().get("lvl") else None  # "oversold (30)"
    if state == "oversold":
        return Condition("rsi", {"period": p}, "<", OVERSOLD if level is None else level, m.group(0))
    return Condition("rsi", {"period": p}, ">", OVERBOUGHT if level is None else level, m.group(0))


@rec("oversold_word", r"\b(?P<state>oversold|overbought)\b")
def _oversold(m: re.Match):
    if m.group("state") == "oversold":
        node = Condition("rsi", {"period": RSI_PERIOD}, "<", OVERSOLD, m.group(0))
        note = f"'oversold' means RSI({RSI_PERIOD}) < {OVERSOLD:g}"
    else:
        node = Condition("rsi", {"period": RSI_PERIOD}, ">", OVERBOUGHT, m.group(0))
        note = f"'overbought' means RSI({RSI_PERIOD}) > {OVERBOUGHT:g}"
    return weak(node, {"rsi", "rsi_cross", "bollinger", "zscore"}, note)


# ---- Bollinger bands ---------------------------------------------------------------------
@rec("bollinger_breakout", r"\bbollinger\s+(?P<w>breakout|breakdown)s?\b|\b(?P<w2>breakout|breakdown)\s+(?:above|below|from|of)\s+"
                           r"(?:the\s+)?bollinger\b")
def _bollinger_breakout(m: re.Match):
    up = (m.group("w") or m.group("w2")) == "breakout"
    return noted(Condition("bollinger", {"period": BOLLINGER_PERIOD, "width": BOLLINGER_WIDTH,
                                         "band": "upper" if up else "lower", "mode": "close"}, None, None, m.group(0)),
                 f"a Bollinger {'breakout' if up else 'breakdown'} is a close {'above the upper' if up else 'below the lower'}"
                 f" band ({BOLLINGER_PERIOD}, {BOLLINGER_WIDTH:g})")


@rec("bollinger", r"\b(?:(?P<verb>clos(?:e|es|ed|ing)|trad(?:es|ed|ing)|price|is|are|falls?|fell|drops?|dropped|moves?"
                  r"|moved|breaks?|broke|pierc(?:es|ed|ing)|touch(?:es|ed|ing)?|tag(?:s|ged|ging)?|hit(?:s|ting)?"
                  r"|reach(?:es|ed|ing)?|at|on|sits?|rides?|riding)\s+)?(?:(?P<side>below|under|beneath|outside|above"
                  r"|over|through|at|on|<|>)\s+)?(?:the\s+|its\s+|their\s+)?(?P<band>lower|upper|bottom|top)\s+"
                  r"(?:(?P<n>\d+)d\s+)?(?:(?P<k>\d+(?:\.\d+)?)\s*std\s+)?bollinger(?:\s+band)?"
                  r"(?:\s*\(\s*(?P<an>\d+)d?\s*,\s*(?P<ak>\d+(?:\.\d+)?)\s*(?:std)?\s*\))?"
                  r"(?:\s+(?:of|with|using)\s+(?P<n2>\d+)d(?:\s+and\s+(?P<k2>\d+(?:\.\d+)?)\s*std)?)?")
def _bollinger(m: re.Match):
    lower = m.group("band") in ("lower", "bottom")
    n = _int(m, "an", "n", "n2", default=BOLLINGER_PERIOD)
    k = float(m.group("ak") or m.group("k") or m.group("k2") or BOLLINGER_WIDTH)
    touch = (m.group("verb") or "").startswith(("touch", "tag", "hit", "reach", "at", "on", "sit", "ride")) or \
        m.group("side") in ("at", "on")
    return Condition("bollinger", {"period": n, "width": k, "band": "lower" if lower else "upper",
                                   "mode": "touch" if touch else "close"}, None, None, m.group(0))


# ---- volume ------------------------------------------------------------------------------------
_AVG = r"(?:average|mean|normal|usual|typical)"
_AVG_TAIL = rf"(?:\s+{PER_WORDS}\s+{BACK}(?P<n2>\d+)d)?"


def _vol_lookback(m: re.Match) -> int:
    return _int(m, "n", "n2", default=VOLUME_LOOKBACK)


def _rel_volume(m: re.Match, bounds: list[tuple[str, float]]):
    node = cond_node("relative_volume", {"lookback": _vol_lookback(m)}, bounds, m.group(0))
    if m.groupdict().get("n") or m.groupdict().get("n2"):
        return node
    return noted(node, f"average volume is over the previous {VOLUME_LOOKBACK} sessions (today excluded)")


@rec("rvol_multiple", rf"\b(?:today\s+|daily\s+|the\s+|trading\s+|current\s+)?volume\s+(?:today\s+)?(?:is\s+|was\s+|of\s+|at\s+|running\s+"
                      rf"|came in\s+)?{thr('x')}(?:\s+(?:the\s+|its\s+|their\s+|of\s+the\s+|of\s+its\s+)?(?:(?P<n>\d+)d\s+)?"
                      rf"{_AVG}(?:\s+(?:daily\s+)?(?:trading\s+)?volume)?)?{_AVG_TAIL}")  # "volume > 1.5x": of the average
def _rvol1(m: re.Match):
    return _rel_volume(m, thresholds(m, ">="))


@rec("rvol_multiple_pre", rf"{thr('x')}\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?{_AVG}\s+(?:daily\s+)?"
                          rf"(?:trading\s+)?volume{_AVG_TAIL}|{thr('x', tag='b')}\s+(?:the\s+|its\s+)?(?:rvol|volume)\b")
def _rvol2(m: re.Match):
    if m.group("numb") is not None or m.group("lob") is not None:
        return _rel_volume(m, thresholds(m, ">=", tag="b"))
    return _rel_volume(m, thresholds(m, ">="))


@rec("rvol", rf"\brvol(?:\((?P<n>\d+)\))?\s+(?:is\s+|of\s+|at\s+)?{thr('x?')}")
def _rvol3(m: re.Match):
    return _rel_volume(m, thresholds(m, ">="))


@rec("volume_pct_above", rf"\bvolume\s+(?:is\s+|was\s+)?(?:(?P<cmp>{CMP})\s*)?(?P<num>{NUM})%\s+(?P<side>above|over|>|below"
                         rf"|under|<)\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?{_AVG}(?:\s+volume)?{_AVG_TAIL}")
def _rvol4(m: re.Match):
    above = m.group("side") in ("above", "over", ">")
    pct = float(m.group("num")) / 100.0
    ratio = 1.0 + pct if above else 1.0 - pct
    op = _CMP_OP.get((m.group("cmp") or "").strip(), ">=")
    if not above:
        op = _FLIP[op]
    return _rel_volume(m, [(op, round(ratio, 10))])


@rec("volume_pct_of_average", rf"\b(?:today\s+)?volume\s+(?:is\s+|was\s+)?(?:(?P<cmp>{CMP})\s*)?(?P<num>{NUM})%\s+of\s+"
                              rf"(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?{_AVG}(?:\s+(?:daily\s+)?volume)?")
def _volume_pct_of_average(m: re.Match):
    # "volume greater than 150% of the 20-day average": 1.5x the average
    return _rel_volume(m, thresholds(m, ">=", scale=0.01))


@rec("volume_vs_average", rf"\b(?:today\s+)?volume\s+(?:is\s+|was\s+|has\s+been\s+|stays?\s+|remained\s+)?(?P<side>above|over|>|below|under|<)\s+(?:the\s+|its\s+|their\s+)?"
                          rf"(?:(?P<n>\d+)d\s+)?{_AVG}(?:\s+(?:daily\s+)?volume)?{_AVG_TAIL}")
def _rvol5(m: re.Match):
    above = m.group("side") in ("above", "over", ">")
    return _rel_volume(m, [(">" if above else "<", 1.0)])


@rec("volume_by_pct", rf"\b(?:today\s+)?volume\s+(?:is\s+|was\s+)?(?:>|above|over|exceeds?|exceeded|beats?)\s+(?:the\s+|its\s+)?"
                      rf"(?:(?P<n>\d+)d\s+)?{_AVG}(?:\s+(?:daily\s+)?volume)?{_AVG_TAIL}\s+by\s+(?:(?P<cmp>>=|>)\s*)?(?P<num>{NUM})%")
def _volume_by_pct(m: re.Match):
    ratio = round(1.0 + float(m.group("num")) / 100.0, 10)
    return _rel_volume(m, [((m.group("cmp") or ">").strip(), ratio)])


@rec("rising_volume", r"\b(?:on\s+|with\s+)?(?:rising|increasing|growing|higher|expanding)\s+volume\b|\bvolume\s+(?:is\s+)?"
                      r"(?:rising|increasing|growing|expanding|up)\b(?!\s+\d)")
def _rising_volume(m: re.Match):
    return noted(Condition("prev_bar", {"field": "volume", "ref": "volume"}, ">", 0.0, m.group(0)),
                 "'rising volume' means today's volume above yesterday's")


DOLLAR_VOLUME_LOOKBACK = 20


@rec("dollar_volume", rf"\b(?:(?P<n>\d+)d\s+)?(?:average\s+(?:daily\s+)?|daily\s+)?dollar\s+volume\s+(?:is\s+|of\s+)?"
                      rf"{thr('', money=True, tail=NO_UNIT)}")
def _dollar_volume(m: re.Match):
    n = _int(m, "n", default=DOLLAR_VOLUME_LOOKBACK)
    node = cond_node("dollar_volume", {"lookback": n}, thresholds(m, ">="), m.group(0))
    return node if m.group("n") else noted(
        node, f"dollar volume is the average of close x volume over the last {DOLLAR_VOLUME_LOOKBACK} sessions")


@rec("volume_level", rf"\b(?:(?P<n>\d+)d\s+)?(?P<avg>average\s+(?:daily\s+)?|daily\s+average\s+)?(?:trading\s+)?volume\s+"
                     rf"(?:is\s+|of\s+|at\s+)?{thr('', tail=SHARES_TAIL)}")
def _volume_level(m: re.Match):
    bounds = thresholds(m, ">=")
    if not bounds or min(abs(v) for _, v in bounds) < 1000:
        return None
    n = _int(m, "n", default=VOLUME_LOOKBACK if m.group("avg") else 1)
    return cond_node("volume", {"lookback": n}, bounds, m.group(0))


@rec("volume_words", r"\b(?:on\s+|with\s+)?(?P<q>high|heavy|big|strong|large|huge|elevated|massive|above average"
                     r"|higher than average|low|light|thin|weak|quiet|below average|lower than average)\s+"
                     r"(?:trading\s+)?(?:volume|rvol)\b|\b(?P<spike>volume\s+(?:spikes?|surges?|explosions?|bursts?|jumps?)"
                     r"|(?:spikes?|surges?|jumps?)\s+in\s+volume|unusual(?:ly\s+(?:high|heavy))?\s+volume)\b")
def _volume_words(m: re.Match):
    kinds = {"relative_volume"}
    q = (m.group("q") or "").replace("  ", " ")
    lb = {"lookback": VOLUME_LOOKBACK}
    if m.group("spike"):
        return weak(Condition("relative_volume", lb, ">=", VOLUME_SPIKE, m.group(0)), kinds,
                    f"'volume spike' means volume >= {VOLUME_SPIKE:g}x the average of the previous {VOLUME_LOOKBACK} sessions")
    if q in ("above average", "higher than average"):
        return weak(Condition("relative_volume", lb, ">", 1.0, m.group(0)), kinds,
                    f"'above-average volume' means volume > the average of the previous {VOLUME_LOOKBACK} sessions")
    if q in ("below average", "lower than average"):
        return weak(Condition("relative_volume", lb, "<", 1.0, m.group(0)), kinds,
                    f"'below-average volume' means volume < the average of the previous {VOLUME_LOOKBACK} sessions")
    if q in ("low", "light", "thin", "weak", "quiet"):
        return weak(Condition("relative_volume", lb, "<", LOW_VOLUME, m.group(0)), kinds,
                    f"'low volume' means volume < {LOW_VOLUME:g}x the average of the previous {VOLUME_LOOKBACK} sessions")
    return weak(Condition("relative_volume", lb, ">", HIGH_VOLUME, m.group(0)), kinds,
                f"'high volume' means volume > {HIGH_VOLUME:g}x the average of the previous {VOLUME_LOOKBACK} sessions")


# ---- new highs / lows, breakouts -----------------------------------------------------------
_EXT = r"(?:(?P<n>\d+)d|(?P<all>alltime|record))"


def _lookback_of(m: re.Match, default: int) -> int | None:
    if m.groupdict().get("all"):
        return None
    return _int(m, "n", default=default)


@rec("near_extreme", rf"(?:\b(?:close|closes|closed|closing|price|stock|shares|trading|trades)\s+(?:is\s+|was\s+)?)?"
                     rf"\b(?:within\s+(?P<num>{NUM})%\s+of|near|close to|nearing|approaching|just below|just above|around)"
                     rf"\s+(?:a\s+|the\s+|its\s+|their\s+)?(?:new\s+)?{_EXT}\s+(?P<side>high|low)s?\b")
def _near(m: re.Match):
    n = _lookback_of(m, NEW_HIGH_DEFAULT_LOOKBACK)
    pct = float(m.group("num") or NEAR_EXTREME_PCT)
    high = m.group("side") == "high"
    node = Condition("extreme_distance", {"lookback": n, "side": m.group("side")},
                     ">=" if high else "<=", -pct if high else pct, m.group(0))
    return node if m.group("num") else noted(node, f"'near' a high/low means within {NEAR_EXTREME_PCT:g}%")


RECENT_HIGH_LOOKBACK = 20  # "its recent high": the last 20 sessions


@rec("pullback_from_high", rf"(?:\b(?P<verb>pull(?:ed|s|ing)?\s+back|down|off|dropp?(?:ed|s|ing)?|fell|fall(?:s|ing|en)?"
                           rf"|declin(?:ed|es|ing)|retreat(?:ed|s|ing)?|slid|sold\s+off|corrected|is|are|trades?|trading)\s+)?"
                           rf"(?:by\s+)?{thr('%')}\s+(?P<noun>(?:pullback|pull back|drop|decline|correction|retreat|fall|selloff"
                           r"|sell off|dip|drawdown)\s+)?(?:from|off|below)\s+(?:the\s+|its\s+|their\s+|a\s+)?(?P<recent>recent\s+)?"
                           r"(?:(?P<n>\d+)d\s+)?(?P<all>alltime\s+|record\s+)?(?P<word>high|highs|peak|top)\b(?!\s+of\s+the\s+day)")
def _pullback(m: re.Match):
    moved = m.group("noun") or (m.group("verb") or "") not in ("", "is", "are", "trades", "trade", "trading")
    if not (m.group("n") or m.group("recent") or m.group("all") or moved or m.group("word") != "high"):
        return None  # "5% below the high": which high is not said
    if m.group("all"):
        n = None
    else:
        n = _int(m, "n", default=RECENT_HIGH_LOOKBACK if m.group("recent") else NEW_HIGH_DEFAULT_LOOKBACK)
    node = cond_node("extreme_distance", {"lookback": n, "side": "high"}, thresholds(m, ">=", negate=True), m.group(0))
    if m.group("n") or m.group("all") or node is None:
        return node
    return noted(node, f"a high with no window is the {n}-session high" + (" ('recent')" if m.group("recent") else ""))


@rec("off_extreme", rf"(?:\b(?:up|rallied|rose|risen|gained|climbed|bounced|down|fell|dropped)\s+)?{thr('%')}\s+"
                    rf"(?P<dir>below|off|from|under|beneath|above|over)\s+(?:the\s+|its\s+|their\s+)?"
                    rf"{_EXT}\s+(?P<side>high|low)s?\b")
def _off(m: re.Match):
    high = m.group("side") == "high"
    return cond_node("extreme_distance", {"lookback": _lookback_of(m, NEW_HIGH_DEFAULT_LOOKBACK), "side": m.group("side")},
                     thresholds(m, ">=", negate=high), m.group(0))


@rec("breakout_extreme", r"\b(?:clos(?:e|es|ed|ing)|break(?:s|ing)?|broke|mov(?:es|ed|ing)|trad(?:es|ed|ing)|price)\s+(?:is\s+)?"
                         r"(?P<dir>above|over|>|below|under|<)\s+(?:the\s+)?(?P<w>highest\s+high|lowest\s+low)\s+(?:of|in|over|for)\s+"
                         r"(?:the\s+)?(?:past|last|prior|previous)?\s*(?P<n>\d+)d\b"
                         r"|\bdonchian(?:\s+channels?)?\s+(?P<w2>breakout|breakdown)s?(?:\s*\(?\s*(?P<n2>\d+)d?\s*\)?)?")
def _breakout_extreme(m: re.Match):
    if m.group("w2"):
        up = m.group("w2") == "breakout"
        n = _int(m, "n2", default=BREAKOUT_DEFAULT_LOOKBACK)
    else:
        up = m.group("w").startswith("highest")
        if up != (m.group("dir") in ("above", "over", ">")):
            return None  # "below the highest high" is not a breakout
        n = int(m.group("n"))
    # the window is the previous n sessions: today's bar is what breaks out of it
    return Condition("breakout", {"lookback": n, "side": "high" if up else "low"}, None, None, m.group(0))


@rec("breakout", r"\b(?:break(?:s|ing)?\s*out|broke\s*out|breakout|closing\s+price|clos(?:e|es|ed|ing)|break(?:s|ing)?|broke|mov(?:es|ed|ing)"
                 r"|trad(?:es|ed|ing)|breakdown|breaking down|breaks down|broke down|drop(?:s|ped|ping)?|fall(?:s|ing)?|fell"
                 r"|sink(?:s|ing)?|sank|dip(?:s|ped|ping)?|ris(?:es|ing)|rose|jump(?:s|ed|ing)?|push(?:es|ed|ing)?)\s+(?P<dir>above|over|past|through|to|below"
                 r"|under|beneath)\s+(?:the\s+|its\s+|their\s+|a\s+)?(?:new\s+)?(?:prior\s+|previous\s+|recent\s+)?"
                 r"(?P<n>\d+)d\s+(?P<side>high|low|range)s?\b")
def _breakout(m: re.Match):
    up = m.group("dir") in ("above", "over", "past", "through", "to")
    side = "high" if up else "low"
    return Condition("breakout", {"lookback": int(m.group("n")), "side": side}, None, None, m.group(0))


@rec("breakout_word", r"\b(?P<w>breakout|breaking out|breaks out|broke out|breakdown|breaking down|breaks down|broke down)s?\b")
def _breakout_word(m: re.Match):
    up = "out" in m.group("w")
    node = Condition("breakout", {"lookback": BREAKOUT_DEFAULT_LOOKBACK, "side": "high" if up else "low"},
                     None, None, m.group(0))
    return weak(node, {"breakout", "new_extreme"},
                f"'breakout' means a close beyond the prior {BREAKOUT_DEFAULT_LOOKBACK} sessions' "
                + ("high" if up else "low"))


@rec("extreme_close", r"(?:\b(?:today\s+)?(?:close|closing price)\s+(?:is\s+|was\s+)?(?:the\s+|a\s+)?)?"
                      r"\b(?P<w>highest|lowest)\s+(?:close|closing price|closing level)\s+(?:in|of|over|for)\s+(?:the\s+)?"
                      r"(?:past|last|prior|previous)?\s*(?P<n>\d+)d\b")
def _extreme_close(m: re.Match):
    side = "high" if m.group("w") == "highest" else "low"
    return Condition("new_extreme", {"lookback": int(m.group("n")), "side": side, "price": "close"}, None, None, m.group(0))


@rec("new_extreme", rf"\b(?:(?P<close>clos(?:e|es|ed|ing))\s+(?:at\s+)?(?:a\s+|an\s+)?)?(?:(?:new|fresh)\s+)?{_EXT}\s+"
                    rf"(?P<close2>clos(?:e|es|ing)\s+)?(?P<side>high|low)s?(?P<close3>\s+clos(?:e|es|ing))?\b")
def _new_extreme(m: re.Match):
    price = "close" if (m.group("close") or m.group("close2") or m.group("close3")) else m.group("side")
    return Condition("new_extreme", {"lookback": _lookback_of(m, NEW_HIGH_DEFAULT_LOOKBACK), "side": m.group("side"),
                                     "price": price}, None, None, m.group(0))


@rec("new_extreme_plain", r"\b(?:(?:makes?|making|made|hit(?:s|ting)?|set(?:s|ting)?|reach(?:es|ed|ing)?|at|print(?:s|ing|ed)?)"
                          r"\s+(?:a\s+)?new\s+(?P<side>high|low)s?|new\s+(?P<side2>high|low)s)\b")
def _new_plain(m: re.Match):
    side = m.group("side") or m.group("side2")
    node = Condition("new_extreme", {"lookback": NEW_HIGH_DEFAULT_LOOKBACK, "side": side, "price": side},
                     None, None, m.group(0))
    return noted(node, f"a new high/low with no window is over {NEW_HIGH_DEFAULT_LOOKBACK} sessions (52 weeks)")


# ---- candlesticks -----------------------------------------------------------------------------
_CANDLES = (
    ("bullish_engulfing", r"\b(?:bullish|bull)\s+engulf(?:ing|s)?(?:\s+(?:pattern|candle|bar))?\b"),
    ("bearish_engulfing", r"\b(?:bearish|bear)\s+engulf(?:ing|s)?(?:\s+(?:pattern|candle|bar))?\b"),
    ("inside_day", r"\binside\s+(?:days?|bars?|candles?|sessions?)\b"),
    ("outside_day", r"\boutside\s+(?:days?|bars?|candles?|sessions?)\b|\boutside\s+reversal\b"),
    ("shooting_star", r"\binverted\s+hammers?\b|\bshooting\s+stars?\b"),
    ("hammer", r"\bhammers?(?:\s+(?:candles?|patterns?|bars?))?\b"),
    ("doji", r"\bdojis?\b"),
    ("morning_star", r"\bmorning\s+(?:doji\s+)?stars?(?:\s+(?:patterns?|formations?))?\b"),
    ("evening_star", r"\bevening\s+(?:doji\s+)?stars?(?:\s+(?:patterns?|formations?))?\b"),
    ("three_white_soldiers", r"\b3\s+(?:white|advancing)\s+soldiers\b"),
    ("three_black_crows", r"\b3\s+black\s+crows\b"),
    ("bullish_harami", r"\b(?:bullish|bull)\s+harami\b"),
    ("bearish_harami", r"\b(?:bearish|bear)\s+harami\b"),
    ("piercing_line", r"\bpiercing\s+(?:line|pattern|candle)s?\b"),
    ("dark_cloud_cover", r"\bdark\s+cloud(?:\s+cover)?\b"),
)
for _name, _pattern in _CANDLES:
    def _make(name: str) -> Builder:
        return lambda m: Condition("candle", {"pattern": name}, None, None, m.group(0))
    RECOGNISERS.append(("candle_" + _name, re.compile(_pattern), _make(_name)))


@rec("engulfing_word", r"\bengulf(?:ing|s)?(?:\s+(?:patterns?|candles?|bars?))?\b")
def _engulf(m: re.Match):
    return noted(Condition("candle", {"pattern": "bullish_engulfing"}, None, None, m.group(0)),
                 "'engulfing' with no direction means bullish engulfing")


@rec("narrow_range", r"\bnr(?P<n>\d+)\b|\bnarrowest\s+(?:daily\s+)?range\s+(?:in|of)\s+(?:the\s+)?(?:past|last)?\s*(?P<n2>\d+)d\b"
                     r"|\bnarrow(?:est)?\s+range\s+(?P<n3>\d+)\b(?:\s*\(\s*nr(?P=n3)\s*\))?"
                     r"|\b(?:today\s+|daily\s+)?range\s+(?:is\s+)?(?:the\s+)?(?:smallest|narrowest|tightest)\s+(?:in|of)\s+"
                     r"(?:the\s+)?(?:past|last)?\s*(?P<n4>\d+)d\b")
def _nr(m: re.Match):
    return Condition("candle", {"pattern": "narrow_range", "lookback": _int(m, "n", "n2", "n3", "n4", default=7)},
                     None, None, m.group(0))


# ---- ATR, range, volatility ----------------------------------------------------------------
_ATR = r"atr(?:\((?P<p>\d+)\))?"


@rec("atr_pct", rf"\b{_ATR}\s*%\s+(?:is\s+|of\s+)?{thr('%?')}|\b{_ATR.replace('?P<', '?P<y')}\s+(?:is\s+|of\s+)?{thr('%', tag='2')}(?:\s+of\s+(?:the\s+)?(?:price|close|closing price|share price"
                rf"|stock price|last price|the stock))?")
def _atr_pct(m: re.Match):
    if m.group("num") is None and m.group("lo") is None:  # the second spelling: "ATR(14) of 3% of the price"
        bounds = thresholds(m, ">", tag="2")
        return cond_node("atr_pct", {"period": _int(m, "yp", default=ATR_PERIOD)}, bounds, m.group(0))
    return cond_node("atr_pct", {"period": _int(m, "p", default=ATR_PERIOD)}, thresholds(m, ">"), m.group(0))


@rec("atr_abs", rf"\b{_ATR}\s+(?:is\s+|of\s+)?{thr('', money=True, tail=NO_UNIT)}")
def _atr_abs(m: re.Match):
    return cond_node("atr", {"period": _int(m, "p", default=ATR_PERIOD)}, thresholds(m, ">"), m.group(0))


_RANGE = r"\b(?:(?:daily|today|the day|intraday|trading|high low|true|day)\s+)*range"


@rec("range_ratio", rf"{_RANGE}\s+(?:is\s+|was\s+)?{thr('x')}\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?{_AVG}"
                    rf"(?:\s+(?:daily\s+)?range)?{_AVG_TAIL}")
def _range_ratio(m: re.Match):
    node = cond_node("range_ratio", {"lookback": _int(m, "n", "n2", default=RANGE_LOOKBACK)}, thresholds(m, ">="),
                     m.group(0))
    return node if (m.group("n") or m.group("n2")) else noted(
        node, f"average range is over the previous {RANGE_LOOKBACK} sessions")


# ---- oscillators: stochastic, Williams %R, CCI, MFI, ADX/DMI; Keltner channels; OBV ----------
STOCH_PERIOD, STOCH_D = 14, 3
STOCH_OVERSOLD, STOCH_OVERBOUGHT = 20.0, 80.0
WILLR_PERIOD = 14
WILLR_OVERSOLD, WILLR_OVERBOUGHT = -80.0, -20.0
CCI_PERIOD = 20
CCI_OVERSOLD, CCI_OVERBOUGHT = -100.0, 100.0
MFI_PERIOD = 14
MFI_OVERSOLD, MFI_OVERBOUGHT = 20.0, 80.0
ADX_PERIOD = 14
KELTNER = (20, 2.0, 10)  # EMA period, ATR multiple, ATR period (TradingView's defaults)
SQUEEZE_LOOKBACK = 126  # Bollinger's "Squeeze": BandWidth at its lowest in six months

_STOCH = (r"(?:(?P<kind>slow|fast|full)\s+)?stoch(?:\((?P<p>\d+)(?:,\s*(?P<s>\d+))?(?:,\s*(?P<d>\d+))?\))?"
          r"(?:\s+oscillator)?(?:\s+%(?P<line>k|d))?(?:\s+line)?")
_STATE = r"(?:(?:is|are|in|shows?|signals?|reading|reads|now|currently|still|gets?|turns?|turned)\s+)*"


def _stoch_params(m: re.Match, tag: str = "") -> dict:
    g = m.groupdict()
    smooth = int(g.get("s" + tag) or (3 if g.get("kind" + tag) in ("slow", "full") else 1))
    return {"period": int(g.get("p" + tag) or STOCH_PERIOD), "smooth": smooth,
            "d": int(g.get("d" + tag) or STOCH_D), "line": g.get("line" + tag) or "k"}


@rec("stoch_cross", rf"\b(?:{_STOCH}\s+)?%k\s+(?:line\s+)?(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing)|break(?:s|ing)?|broke)\s+"
                    r"(?P<dir>above|over|up through|through|below|under|down through)\s+(?:the\s+)?%d(?:\s+line)?\b"
                    rf"(?:\s+(?:while\s+|when\s+)?(?:(?P<zside>below|under|<|above|over|>)\s+(?P<zone>{NUM})\b"
                    r"|(?:in\s+(?:the\s+)?)?(?P<zword>oversold|overbought)(?:\s+(?:zone|territory|area|region))?\b))?")
def _stoch_cross(m: re.Match):
    p = _stoch_params(m)
    p.pop("line")
    p["direction"] = "down" if m.group("dir") in ("below", "under", "down through") else "up"
    node = Condition("stoch_cross", p, None, None, m.group(0))
    if not (m.group("zside") or m.group("zword")):
        return node
    # "%K crosses above %D below 20": the cross happens in that zone, read as %D beyond the level today
    if m.group("zword"):
        below, level = m.group("zword") == "oversold", STOCH_OVERSOLD if m.group("zword") == "oversold" else STOCH_OVERBOUGHT
    else:
        below, level = m.group("zside") in ("below", "under", "<"), float(m.group("zone"))
    line = {k: v for k, v in p.items() if k != "direction"} | {"line": "d"}
    zone = Condition("stochastic", line, "<" if below else ">", level, m.group(0))
    return noted(AllOf((node, zone)), f"a stochastic cross {'below' if below else 'above'} {level:g} means %D "
                                      f"{'<' if below else '>'} {level:g} on the day of the cross")


@rec("stoch_state", rf"\b{_STOCH}\s+{_STATE}(?P<state>oversold|overbought)\b|\b(?P<state2>oversold|overbought)\s+"
                    rf"(?:on|by|per|according to|using)\s+(?:the\s+|its\s+)?{_STOCH.replace('?P<', '?P<x')}")
def _stoch_state(m: re.Match):
    state = m.group("state") or m.group("state2")
    p = _stoch_params(m, "" if m.group("state") else "x")
    if state == "oversold":
        return noted(Condition("stochastic", p, "<", STOCH_OVERSOLD, m.group(0)),
                     f"'oversold' on the stochastic means %K < {STOCH_OVERSOLD:g}")
    return noted(Condition("stochastic", p, ">", STOCH_OVERBOUGHT, m.group(0)),
                 f"'overbought' on the stochastic means %K > {STOCH_OVERBOUGHT:g}")


@rec("stoch", rf"\b{_STOCH}\s+(?:(?:reading|value|level|is|was|at|currently|still|now)\s+)*{thr('', tail=NO_UNIT)}"
              rf"|(?<![\w%])%(?P<line2>k|d)\s+(?:line\s+)?(?:is\s+)?{thr('', tail=NO_UNIT, tag='b')}")
def _stoch(m: re.Match):
    if m.group("line2"):
        p = {"period": STOCH_PERIOD, "smooth": 1, "d": STOCH_D, "line": m.group("line2")}
        return cond_node("stochastic", p, thresholds(m, ">=", tag="b"), m.group(0))
    return cond_node("stochastic", _stoch_params(m), thresholds(m, ">="), m.group(0))


_WILLR = r"willr(?:\((?P<p>\d+)\))?"


def _willr_bounds(m: re.Match) -> list[tuple[str, float]]:
    bounds = thresholds(m, ">=")
    if bounds and all(v > 0 for _, v in bounds):
        # Written without the sign ("Williams %R above 80"): the unsigned reading of the
        # same scale, so "above 80" is %R < -80 (oversold), as charting sites display it.
        bounds = [(_FLIP[op], -v) for op, v in bounds]
    return bounds


@rec("willr_state", rf"\b{_WILLR}\s+{_STATE}(?P<state>oversold|overbought)\b")
def _willr_state(m: re.Match):
    p = {"period": _int(m, "p", default=WILLR_PERIOD)}
    if m.group("state") == "oversold":
        return noted(Condition("williams_r", p, "<", WILLR_OVERSOLD, m.group(0)),
                     f"'oversold' on Williams %R means %R < {WILLR_OVERSOLD:g}")
    return noted(Condition("williams_r", p, ">", WILLR_OVERBOUGHT, m.group(0)),
                 f"'overbought' on Williams %R means %R > {WILLR_OVERBOUGHT:g}")


@rec("willr", rf"\b{_WILLR}\s+(?:(?:reading|value|level|is|was|at|currently|still|now)\s+)*{thr('', tail=NO_UNIT)}")
def _willr(m: re.Match):
    bounds = _willr_bounds(m)
    node = cond_node("williams_r", {"period": _int(m, "p", default=WILLR_PERIOD)}, bounds, m.group(0))
    if node is not None and float(m.group("num") or m.group("lo") or 0) > 0:
        return noted(node, "Williams %R written without its minus sign is read on the usual -100..0 scale "
                           "(above 80 = below -80)")
    return node


def _osc_rule(kind: str, token: str, period: int, label: str, zones: tuple[float, float] | None = None) -> None:
    """Value recogniser of an oscillator written ``token(N)``, and its oversold/overbought one
    when it has ``zones`` (low, high)."""
    rx = rf"{token}(?:\((?P<p>\d+)\))?"

    def value(m: re.Match):
        return cond_node(kind, {"period": _int(m, "p", default=period)}, thresholds(m, ">="), m.group(0))

    def state(m: re.Match):
        low, high = zones
        p = {"period": _int(m, "p", default=period)}
        if m.group("state") == "oversold":
            return noted(Condition(kind, p, "<", low, m.group(0)), f"'oversold' on {label} means {label} < {low:g}")
        return noted(Condition(kind, p, ">", high, m.group(0)), f"'overbought' on {label} means {label} > {high:g}")

    if zones is not None:
        RECOGNISERS.append((kind + "_state", re.compile(rf"\b{rx}\s+{_STATE}(?P<state>oversold|overbought)\b"), state))
    RECOGNISERS.append((kind, re.compile(rf"\b{rx}\s+(?:(?:reading|value|level|is|was|at|currently|still|now)\s+)*"
                                         rf"{thr('', tail=NO_UNIT)}"), value))


_LEVEL_IND = r"(?P<ind>cci|mfi|adx|willr)(?:\((?P<p>\d+)\))?|(?P<stoch>stoch)(?:\s+%(?P<sline>k|d))?"


@rec("level_then_now", rf"\b(?:{_LEVEL_IND}|(?P<rsi>rsi)(?:\((?P<rp>\d+)\))?)\s+(?:was\s+)?(?P<d1>above|over|below|under)\s+"
                       rf"(?P<n1>{NUM})\s+yesterday\s*,?\s+(?:and|but)\s+(?:it\s+)?(?:is\s+|now\s+|closed\s+)*"
                       rf"(?P<d2>above|over|below|under)\s+(?P<n2>{NUM})(?![\d.])(?:\s+today|\s+now)?")
def _level_then_now(m: re.Match):
    # "RSI was below 30 yesterday and is above 30 today": the second level has the same subject
    if m.group("rsi"):
        kind, params = "rsi", {"period": _int(m, "rp", default=RSI_PERIOD)}
    else:
        kind, params = _indicator_measure(m)
    then = Condition(kind, params, ">" if m.group("d1") in ("above", "over") else "<", _clean(float(m.group("n1"))),
                     m.group(0))
    now = Condition(kind, params, ">" if m.group("d2") in ("above", "over") else "<", _clean(float(m.group("n2"))),
                    m.group(0))
    return AllOf((_prior(then), now))


_osc_rule("cci", "cci", CCI_PERIOD, "CCI", (CCI_OVERSOLD, CCI_OVERBOUGHT))
_osc_rule("mfi", "mfi", MFI_PERIOD, "MFI", (MFI_OVERSOLD, MFI_OVERBOUGHT))
_osc_rule("adx", "adx", ADX_PERIOD, "ADX")  # a trend strength: no oversold/overbought


@rec("dmi", rf"\bpdi(?:\((?P<p>\d+)\))?\s+(?:line\s+)?(?:is\s+)?(?P<verb>(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing))\s+)?"
            rf"(?P<dir>above|over|>|below|under|<)\s+(?:the\s+)?mdi\b"
            rf"|\bmdi(?:\((?P<p2>\d+)\))?\s+(?:line\s+)?(?:is\s+)?(?P<verb2>(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing))\s+)?"
            rf"(?P<dir2>above|over|>|below|under|<)\s+(?:the\s+)?pdi\b")
def _dmi(m: re.Match):
    if m.group("dir"):
        bull = m.group("dir") in ("above", "over", ">")
    else:
        bull = m.group("dir2") not in ("above", "over", ">")
    cross = bool(m.group("verb") or m.group("verb2"))
    return Condition("dmi", {"period": _int(m, "p", "p2", default=ADX_PERIOD), "side": "bull" if bull else "bear",
                             "mode": "cross" if cross else "state"}, None, None, m.group(0))


@rec("keltner", r"\b(?:(?:clos(?:e|es|ed|ing)|trad(?:es|ed|ing)|price|is|are|moves?|moved|breaks?|broke)\s+)?"
                r"(?P<side>below|under|beneath|outside|above|over|through|<|>)\s+(?:the\s+|its\s+|their\s+)?"
                r"(?P<band>lower|upper|bottom|top)\s+(?:(?P<n>\d+)d\s+)?keltner(?:\s+(?:channel|band)s?)?\b"
                r"|\b(?P<band2>lower|upper|bottom|top)\s+keltner(?:\s+(?:channel|band)s?)?\s+(?:is\s+)?"
                r"(?P<broken>broken|breached|pierced)\b")
def _keltner(m: re.Match):
    band = m.group("band") or m.group("band2")
    lower = band in ("lower", "bottom")
    n, mult, atr_n = KELTNER
    return noted(Condition("keltner", {"period": _int(m, "n", default=n), "mult": mult, "atr": atr_n,
                                       "band": "lower" if lower else "upper"}, None, None, m.group(0)),
                 f"Keltner channels are EMA({n}) of the close +/- {mult:g} x ATR({atr_n})")


@rec("obv_extreme", r"\bobv\s+(?:(?:is|at|hits?|hitting|makes?|making|made|reach(?:es|ed|ing)?|sets?|setting|prints?"
                    r"|printing)\s+)*(?:a\s+|an\s+)?(?:new\s+)?(?P<n>\d+)d\s+(?P<side>high|low)s?\b"
                    r"|\bobv\s+(?:(?:is|at|hits?|hitting|makes?|making|made|reach(?:es|ed|ing)?|sets?|setting)\s+)*"
                    r"(?:a\s+)?new\s+(?P<side2>high|low)s?\b")
def _obv(m: re.Match):
    side = m.group("side") or m.group("side2")
    n = _int(m, "n", default=NEW_HIGH_DEFAULT_LOOKBACK)
    node = Condition("obv_extreme", {"lookback": n, "side": side}, None, None, m.group(0))
    return node if m.group("n") else noted(node, f"a new OBV high/low with no window is over {n} sessions")


TTM_KELTNER_MULTIPLE = 1.5  # the TTM squeeze's Keltner channel: SMA(20) +/- 1.5 x mean true range(20)


@rec("ttm_squeeze", r"\bttm\s+squeeze(?:\s+(?:is\s+)?(?P<state>on|fired|fires|firing|released?|releases|releasing))?\b"
                    r"|\bsqueeze\s+(?:has\s+|just\s+)?(?P<fired>fired|fires|firing|released?|releases|releasing)\b"
                    r"|\bbollinger\s+(?:bands?\s+)?(?:are\s+|is\s+)?(?:inside|within)\s+(?:the\s+)?keltner\b")
def _ttm_squeeze(m: re.Match):
    on = Condition("kc_squeeze", {"period": BOLLINGER_PERIOD, "width": BOLLINGER_WIDTH, "mult": TTM_KELTNER_MULTIPLE},
                   None, None, m.group(0))
    note = (f"the TTM squeeze is on while the Bollinger bands ({BOLLINGER_PERIOD}, {BOLLINGER_WIDTH:g}) are inside the "
            f"Keltner channel (SMA {BOLLINGER_PERIOD} +/- {TTM_KELTNER_MULTIPLE:g} x mean true range)")
    state = m.group("state") or m.group("fired")
    if state in (None, "on"):
        return noted(on, note)
    # fired: on at the previous session, off today
    return noted(AllOf((Condition("prior", {"kind": "kc_squeeze", "params": tuple(sorted(on.params.items())), "op": None,
                                            "threshold": None}, None, None, m.group(0)), Not(on))),
                 note + "; it fires when it was on at the previous session and is off today")


@rec("bb_squeeze", r"\bbollinger\s+(?:band\s+)?squeeze\b|\bsqueeze\b|\bbollinger\s+(?:band\s*)?width\s+(?:is\s+)?"
                   r"(?:at|near|hits?|hitting|makes?|making|reach(?:es|ed|ing)?)\s+(?:a\s+|its\s+)?(?:new\s+)?"
                   r"(?:(?P<n>\d+)d\s+)?(?:low|lowest)\b")
def _squeeze(m: re.Match):
    n = _int(m, "n", default=SQUEEZE_LOOKBACK)
    node = Condition("bb_squeeze", {"period": BOLLINGER_PERIOD, "width": BOLLINGER_WIDTH, "lookback": n},
                     None, None, m.group(0))
    return node if m.group("n") else noted(
        node, f"a Bollinger squeeze is BandWidth (upper - lower band, over the middle band) at its lowest of the "
              f"last {SQUEEZE_LOOKBACK} sessions (six months)")


CLOSE_AT_EXTREME = 95.0  # "closes at the high": in the top 5% of the day's range
CLOSE_NEAR_EXTREME = 90.0  # "closes near the high": in the top 10%


@rec("close_location", r"\b(?:clos(?:e|es|ed|ing))\s+(?:(?P<w>at|near|on|in)\s+)?(?:the\s+|its\s+|their\s+)?"
                       r"(?:(?P<part>top|bottom|upper|lower)\s+(?:(?P<pct>\d+(?:\.\d+)?)%\s+of|(?P<frac>half|third|quarter)\s+of"
                       r"|0\.5x)\s+(?:the\s+|its\s+|their\s+)?"
                       r"(?:day\s+|daily\s+|today\s+|the day\s+)?(?:trading\s+)?range"
                       r"|(?P<side>high|low)s?(?:\s+of\s+(?:the\s+)?(?:day|session)|\s+of\s+its\s+range)"
                       r"|(?P<side2>high|low)s?(?=\s*(?:$|,|;|\.|and\b|with\b|on\b|but\b|or\b)))")
def _close_location(m: re.Match):
    if m.group("part"):
        top = m.group("part") in ("top", "upper")
        # "the upper half" (normalised to "upper 0.5x"), third, quarter, or N%
        pct = float(m.group("pct")) if m.group("pct") else {"half": 50.0, "third": 100 / 3, "quarter": 25.0}.get(
            m.group("frac") or "half")
        return Condition("close_location", {}, ">=" if top else "<=", 100.0 - pct if top else pct, m.group(0))
    high = (m.group("side") or m.group("side2")) == "high"
    level = CLOSE_NEAR_EXTREME if m.group("w") == "near" else CLOSE_AT_EXTREME
    words = "near" if m.group("w") == "near" else "at"
    node = Condition("close_location", {}, ">=" if high else "<=", level if high else 100.0 - level, m.group(0))
    return noted(node, f"'closes {words} the {'high' if high else 'low'}' means the close is in the "
                       f"{'top' if high else 'bottom'} {100 - level:g}% of the day's range")


@rec("volume_trend", rf"\b(?P<f>\d+)d\s+{_AVG}\s+(?:daily\s+)?volume\s+(?:is\s+|was\s+)?(?:(?P<cmp>>=|<=)\s*)?"
                     rf"(?:(?P<mult>{NUM})x\s+)?(?P<side>above|over|>|below|under|<|>=|<=)?\s*(?:the\s+|its\s+)?"
                     rf"(?P<s>\d+)d\s+{_AVG}(?:\s+(?:daily\s+)?volume)?")
def _volume_trend(m: re.Match):
    side = m.group("side") or m.group("cmp") or ">="
    op = {"above": ">", "over": ">", "below": "<", "under": "<"}.get(side, side)
    fast, slow = int(m.group("f")), int(m.group("s"))
    return Condition("volume_trend", {"fast": fast, "slow": slow}, op, float(m.group("mult") or 1.0), m.group(0))


@rec("return_multiple", rf"\b(?:price|stocks?|shares|it|that|which|has|have|had|value)\s+(?:has\s+|have\s+|had\s+)?"
                        rf"(?P<m>{NUM})x\s+{PER_WORDS}\s+{BACK}(?P<n>\d+)d\b(?!\s*(?:average|avg|mean))")
def _ret_multiple(m: re.Match):
    mult = float(m.group("m"))
    if mult <= 0:
        return None
    pct = (mult - 1.0) * 100.0
    # "doubled" = +100% or more; "halved" (0.5x) = -50% or worse
    return Condition("return", {"lookback": int(m.group("n"))}, ">=" if mult >= 1 else "<=", _clean(pct), m.group(0))


@rec("range_expansion_word", r"\batr\s+expansion\b")
def _range_expansion(m: re.Match):
    node = Condition("range_atr", {"period": ATR_PERIOD}, ">=", RANGE_EXPANSION, m.group(0))
    return weak(node, {"range_atr", "range_ratio"},
                f"'ATR expansion' means today's range >= {RANGE_EXPANSION:g}x the ATR({ATR_PERIOD}) as of yesterday")


@rec("range_atr", rf"{_RANGE}\s+(?:is\s+|was\s+)?{thr('x')}\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?"
                  rf"atr(?:\((?P<p>\d+)\))?")
def _range_atr(m: re.Match):
    return cond_node("range_atr", {"period": _int(m, "p", "n", default=ATR_PERIOD)}, thresholds(m, ">="), m.group(0))


@rec("gap_and_go", r"\bgapandgo\b")
def _gap_and_go(m: re.Match):
    node = AllOf((Condition("gap", {}, ">=", GAP_DEFAULT_PCT, m.group(0)), Condition("body", {}, ">", 0.0, m.group(0))))
    return weak(node, {"gap", "body"}, f"'gap and go' means a gap up of at least {GAP_DEFAULT_PCT:g}% and a close "
                                       "above the open")


NEAR_MA_PCT = 2.0  # "near its 200-day moving average": within 2%
MA_SLOPE_LOOKBACK = 5  # "the 50-day moving average is rising": higher than 5 sessions ago
TREND = (50, 200)  # "uptrend": close above the 50-day SMA, which is above the 200-day SMA


@rec("ma_list", r"\b(?P<side>above|over|below|under)\s+(?:all\s+(?:of\s+)?|both\s+)?(?:the\s+|its\s+|their\s+)?"
                r"(?P<list>\d+d?(?:\s*,\s*\d+d?)*\s*,?\s*(?:and|&)\s*\d+)d\s+(?P<t>sma|ema|ma)s?\b"
                r"|\b(?P<side3>above|over|below|under)\s+(?:all\s+(?:of\s+)?|both\s+)?(?:the\s+|its\s+|their\s+)?"
                r"(?P<typed>\d+d\s+(?:sma|ema|ma)(?:\s*(?:,\s*(?:and\s+)?|and\s+|&\s*)(?:the\s+)?\d+d\s+(?:sma|ema|ma))+)s?\b"
                # not "price above the 50 EMA and the 50 EMA above the 200 EMA": the last item is a subject
                r"(?!\s+(?:is\s+|are\s+|stays?\s+|remains?\s+)?(?:above|over|below|under|>|<|cross|slop|ris|fall|turn"
                r"|trend|point|head))"
                r"|\b(?P<side2>above|over|below|under)\s+(?:all\s+)?(?:the\s+|its\s+|their\s+)?(?:key|major|main)\s+ma\b")
def _ma_list(m: re.Match):
    above = (m.group("side") or m.group("side2") or m.group("side3")) in ("above", "over")
    if m.group("typed"):  # each average with its own type
        items = list(dict.fromkeys(re.findall(r"(\d+)d\s+(sma|ema|ma)", m.group("typed"))))
        if len(items) < 2:
            return None
        return AllOf(tuple(Condition("ma_distance", {"period": int(n), "ma": _ma_type(t)}, ">" if above else "<", 0.0,
                                     m.group(0)) for n, t in items))
    periods = [int(x) for x in re.findall(r"\d+", m.group("list"))] if m.group("list") else [20, 50, 200]
    ma = _ma_type(m.group("t"))
    node = AllOf(tuple(Condition("ma_distance", {"period": n, "ma": ma}, ">" if above else "<", 0.0, m.group(0))
                       for n in dict.fromkeys(periods)))
    return node if m.group("list") else noted(node, "the major moving averages are the 20-, 50- and 200-day SMAs")


@rec("ma_near", r"\b(?:near|nearing|close to|around|at|testing|tests|touching|pull(?:ed|s|ing)?\s*back\s+to|pullback\s+to"
                r"|retest(?:s|ing|ed)?)\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?(?P<t>sma|ema|ma)\b"
                r"|\b(?:pull(?:ed|s|ing)?\s*back\s+to|pullback\s+to|retest(?:s|ing|ed)?\s+(?:of\s+)?)\s*(?:the\s+|its\s+|their\s+)"
                r"(?P<n2>\d+)d\b(?!\s*(?:high|low|average|avg|volume|range|return|rsi|atr))")
def _ma_near(m: re.Match):
    n = _int(m, "n", "n2", default=MA_DEFAULT_PERIOD)
    params = {"period": n, "ma": _ma_type(m.group("t"))}
    node = AllOf((Condition("ma_distance", params, ">=", -NEAR_MA_PCT, m.group(0)),
                  Condition("ma_distance", dict(params), "<=", NEAR_MA_PCT, m.group(0))))
    return noted(node, f"near a moving average means within {NEAR_MA_PCT:g}% of it"
                       + ("" if m.group("n") or m.group("n2") else f"; with no period, the {n}-day"))


@rec("ma_slope", r"\b(?:the\s+|its\s+|their\s+)?(?P<n>\d+)d\s+(?P<t>sma|ema|ma)\s+(?:is\s+|are\s+)?(?:still\s+)?"
                 r"(?P<dir>rising|falling|turning up|turning down|sloping up|sloping down|trending up|trending down|"
                 r"pointing up|pointing down|increasing|decreasing|declining|up|down)\b"
                 r"|\b(?P<dir2>rising|falling|upward sloping|downward sloping|declining)\s+(?P<n2>\d+)d\s+(?P<t2>sma|ema|ma)\b")
def _ma_slope(m: re.Match):
    d = m.group("dir") or m.group("dir2")
    up = d in ("rising", "turning up", "sloping up", "trending up", "pointing up", "increasing", "up", "upward sloping")
    n = _int(m, "n", "n2")
    return noted(Condition("ma_slope", {"period": n, "ma": _ma_type(m.group("t"), m.group("t2")),
                                        "lookback": MA_SLOPE_LOOKBACK}, ">" if up else "<", 0.0, m.group(0)),
                 f"a rising / falling moving average is above / below its value {MA_SLOPE_LOOKBACK} sessions earlier")


@rec("trend_words", r"\b(?:(?:strong|clear|confirmed|established|long[\s-]?term)\s+)?(?P<w>up\s?trend(?:ing)?|down\s?trend(?:ing)?)s?\b"
                    r"|\btrending\s+(?P<w2>up|higher|down|lower)\b")
def _trend(m: re.Match):
    w = m.group("w") or m.group("w2")
    up = w.startswith("up") or w == "higher"
    fast, slow = TREND
    node = AllOf((Condition("ma_distance", {"period": fast, "ma": "sma"}, ">" if up else "<", 0.0, m.group(0)),
                  Condition("ma_spread", {"fast": fast, "slow": slow, "ma": "sma"}, ">" if up else "<", 0.0, m.group(0))))
    return noted(node, f"an {'up' if up else 'down'}trend means the close {'above' if up else 'below'} its {fast}-day SMA "
                       f"and the {fast}-day SMA {'above' if up else 'below'} the {slow}-day SMA")


@rec("band_cross", r"\b(?:closing\s+price\s+|closing\s+|price\s+|close\s+|stock\s+)?(?:cross(?:es|ed|ing)?|breaks?|broke|mov(?:es|ed))\s+(?P<side>above|over|below|under)"
                   r"\s+(?:the\s+)?(?P<band>upper|lower|top|bottom)\s+(?P<kind>bollinger|keltner)\b"
                   r"(?:\s*\(\s*(?P<an>\d+)d?\s*,\s*(?P<ak>\d+(?:\.\d+)?)\s*(?:std)?\s*\))?")
def _band_cross(m: re.Match):
    lower = m.group("band") in ("lower", "bottom")
    if m.group("kind") == "keltner":
        n, mult, atr_n = KELTNER
        cond = Condition("keltner", {"period": n, "mult": mult, "atr": atr_n, "band": "lower" if lower else "upper"},
                         None, None, m.group(0))
    else:
        cond = Condition("bollinger", {"period": _int(m, "an", default=BOLLINGER_PERIOD),
                                       "width": float(m.group("ak") or BOLLINGER_WIDTH),
                                       "band": "lower" if lower else "upper", "mode": "close"}, None, None, m.group(0))
    # crossing = beyond the band today, not beyond it yesterday
    return AllOf((cond, Not(_prior(cond))))


@rec("bb_width", rf"\bbollinger\s+(?:band\s*)?width\s+(?:is\s+)?{thr('%?')}")
def _bb_width(m: re.Match):
    return cond_node("bb_width", {"period": BOLLINGER_PERIOD, "width": BOLLINGER_WIDTH}, thresholds(m, ">="), m.group(0))


@rec("percent_b", rf"(?:\bbollinger\s+)?%b\s+(?:is\s+)?{thr('', tail=NO_UNIT)}")
def _percent_b(m: re.Match):
    return cond_node("percent_b", {"period": BOLLINGER_PERIOD, "width": BOLLINGER_WIDTH}, thresholds(m, ">="), m.group(0))


@rec("volume_dry", r"\bvolume\s+(?:has\s+|is\s+)?(?:dried|drying|dries)\s+up\b|\bdried[\s-]up\s+volume\b")
def _volume_dry(m: re.Match):
    return noted(Condition("relative_volume", {"lookback": VOLUME_LOOKBACK}, "<", LOW_VOLUME, m.group(0)),
                 f"volume drying up means volume < {LOW_VOLUME:g}x the average of the previous {VOLUME_LOOKBACK} sessions")


_LAST_N = r"(?:the\s+)?(?:last|past|previous|prior)\s+"
_COUNT_DIRS = {"up": ("return", ">"), "higher": ("return", ">"), "positive": ("return", ">"),
               "down": ("return", "<"), "lower": ("return", "<"), "negative": ("return", "<"),
               "green": ("body", ">"), "red": ("body", "<")}


@rec("count_days", rf"(?:>=\s*)?\b(?P<k>\d+)\s+(?P<dir>red|green|down|up|positive|negative|higher|lower)\s+"
                   rf"(?:days|sessions|closes|candles|bars)\s+(?:in|of|out of|over|during|within)\s+{_LAST_N}(?P<n>\d+)(?:d\b|\b)"
                   rf"|\b(?P<dir2>up|down|higher|lower)\s+(?:on\s+)?(?:>=\s*)?(?P<k2>\d+)\s+(?:of|out of)\s+{_LAST_N}"
                   rf"(?P<n2>\d+)(?:d\b|\b)"
                   rf"|(?:>=\s*)?\b(?P<k3>\d+)\s+(?:of|out of)\s+{_LAST_N}(?P<n3>\d+)d?\s+(?:closed|closes|closing|were|was"
                   rf"|ended|finished)\s+(?P<dir3>up|down|higher|lower|green|red)\b")
def _count_days(m: re.Match):
    k, n = int(m.group("k") or m.group("k2") or m.group("k3")), int(m.group("n") or m.group("n2") or m.group("n3"))
    if not 1 <= k <= n:
        return None
    kind, op = _COUNT_DIRS[m.group("dir") or m.group("dir2") or m.group("dir3")]
    params = (("lookback", 1),) if kind == "return" else ()
    node = Condition("count", {"kind": kind, "params": params, "op": op, "threshold": 0.0, "days": n}, ">=", float(k),
                     m.group(0))
    return noted(node, "an up / down day closes above / below the previous close" if kind == "return" else
                       "a green / red day closes above / below its open")


@rec("streak_days", r"\b(?:(?:a\s+)?(?:winning\s+|losing\s+)?streak\s+of\s+)?(?P<n>\d+)\s+(?P<dir>red|green|down|up|losing|winning)\s+"
                    r"(?:days|sessions|closes|candles)(?:\s+(?:in a row|straight|running|consecutively))?\b")
def _streak_days(m: re.Match):
    up = m.group("dir") in ("green", "up", "winning")
    n = int(m.group("n"))
    if n < 1:
        return None
    return Condition("streak", {"direction": "up" if up else "down"}, ">=", float(n), m.group(0))


_PREV = r"(?:the\s+)?(?:previous|prior|yesterday|last)\s*(?:day|session|bar|candle)?"


@rec("prev_bar", rf"\b(?P<f>clos(?:e|es|ed|ing)|price|high|low|volume)\s+(?:is\s+|was\s+)?(?P<dir>above|over|>|below|under|<)\s+"
                 rf"{_PREV}\s+(?P<ref>high|low|close|open|volume)\b"
                 rf"|\b(?P<dir2>higher|lower)\s+(?P<f2>high|low|close)\s+(?:than|>|<)?\s*{_PREV}(?:\s+(?P<ref2>high|low|close))?\b")
def _prev_bar(m: re.Match):
    if m.group("f"):
        field = "close" if m.group("f").startswith("clos") or m.group("f") == "price" else m.group("f")
        if (field == "volume") != (m.group("ref") == "volume"):
            return None  # volume against a price, or a price against volume
        up = m.group("dir") in ("above", "over", ">")
        ref = m.group("ref")
    else:
        field = m.group("f2")
        up = m.group("dir2") == "higher"
        ref = m.group("ref2") or field
    return Condition("prev_bar", {"field": field, "ref": ref}, ">" if up else "<", 0.0, m.group(0))


@rec("ma_within", rf"\bwithin\s+(?P<num>{NUM})%\s+of\s+(?:the\s+|its\s+|their\s+|a\s+)?(?:(?P<n>\d+)d\s+)?(?P<t>sma|ema|ma)\b")
def _ma_within(m: re.Match):
    pct = abs(float(m.group("num")))
    n = _int(m, "n", default=MA_DEFAULT_PERIOD)
    params = {"period": n, "ma": _ma_type(m.group("t"))}
    node = AllOf((Condition("ma_distance", params, ">=", _clean(-pct), m.group(0)),
                  Condition("ma_distance", dict(params), "<=", _clean(pct), m.group(0))))
    return node if m.group("n") else noted(node, f"a moving average with no period is the {n}-day")


@rec("on_volume", r"\bon\s+volume\b")
def _on_volume(m: re.Match):
    return weak(Condition("relative_volume", {"lookback": VOLUME_LOOKBACK}, ">", HIGH_VOLUME, m.group(0)),
                {"relative_volume"}, f"'on volume' means volume > {HIGH_VOLUME:g}x the average of the previous "
                                     f"{VOLUME_LOOKBACK} sessions")


@rec("atr_change", rf"\b{_ATR}\s+(?:is\s+|has\s+been\s+|are\s+)?(?:still\s+)?(?P<dir>rising|expanding|increasing|growing|climbing"
                   r"|falling|contracting|shrinking|declining|decreasing)\b"
                   r"|\b(?P<dir2>rising|expanding|increasing|growing|falling|contracting|shrinking|declining|decreasing)\s+"
                   r"atr(?:\((?P<p2>\d+)\))?")
def _atr_change(m: re.Match):
    up = (m.group("dir") or m.group("dir2")) in ("rising", "expanding", "increasing", "growing", "climbing")
    period = int(m.group("p") or m.group("p2") or ATR_PERIOD)
    node = Condition("atr_change", {"period": period, "lookback": MA_SLOPE_LOOKBACK}, ">" if up else "<", 0.0, m.group(0))
    return noted(node, f"a rising / falling ATR is above / below its value {MA_SLOPE_LOOKBACK} sessions earlier")


@rec("close_off_extreme", rf"\b(?:clos(?:e|es|ed|ing)|finish(?:es|ed|ing)?)\s+(?:is\s+|was\s+)?within\s+(?P<num>{NUM})%\s+of\s+"
                          r"(?:the\s+|its\s+|their\s+)?(?:day\s+|daily\s+|today\s+|session\s+|intraday\s+)?"
                          r"(?P<side>high|low)(?:\s+of\s+(?:the\s+)?(?:day|session))?\b(?!\s*(?:of\s+)?\d)")
def _close_off_extreme(m: re.Match):
    return Condition("close_off_extreme", {"side": m.group("side")}, "<=", _clean(float(m.group("num"))), m.group(0))


@rec("breakout_base", r"\b(?:break(?:s|ing)?\s*out|broke\s*out|breakout)\s+(?:of|from|above)\s+(?:a\s+|the\s+|its\s+|their\s+)?"
                      r"(?P<n>\d+)d\s+(?:base|range|consolidation|trading range|box|channel)\b")
def _breakout_base(m: re.Match):
    return noted(Condition("breakout", {"lookback": int(m.group("n")), "side": "high"}, None, None, m.group(0)),
                 "breaking out of an N-day base means closing above the highest high of the previous N sessions")


@rec("volume_spike_multiple", rf"\bvolume\s+(?:spikes?|surges?|explosions?|bursts?|jumps?)\s+(?:of\s+)?(?:>=\s*|>\s*)?"
                              rf"(?P<num>{NUM})\s*x\b(?:\s+(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?"
                              r"(?:average|avg|normal|usual)(?:\s+(?:daily\s+)?volume)?\b)?")
def _volume_spike_multiple(m: re.Match):
    return Condition("relative_volume", {"lookback": _int(m, "n", default=VOLUME_LOOKBACK)}, ">=",
                     _clean(float(m.group("num"))), m.group(0))


@rec("stoch_turn", rf"\b{_STOCH}\s+(?:is\s+)?(?:bullish\s+|bearish\s+)?(?:cross(?:es|ed|ing)?|turn(?:s|ed|ing)?|hook(?:s|ed|ing)?"
                   r"|curl(?:s|ed|ing)?)\s+(?P<dir>up|down|higher|lower)(?:\s+(?:from|out of|in|inside)\s+(?:the\s+)?"
                   r"(?P<zone>oversold|overbought)(?:\s+(?:zone|territory|area|region|levels?))?)?\b")
def _stoch_turn(m: re.Match):
    p = _stoch_params(m)
    p.pop("line")
    up = m.group("dir") in ("up", "higher")
    cross = Condition("stoch_cross", {**p, "direction": "up" if up else "down"}, None, None, m.group(0))
    note = "a stochastic turning up / down is %K crossing above / below %D"
    if not m.group("zone"):
        return noted(cross, note)
    low = m.group("zone") == "oversold"
    zone = Condition("stochastic", {**p, "line": "d"}, "<" if low else ">", STOCH_OVERSOLD if low else STOCH_OVERBOUGHT,
                     m.group(0))
    return noted(AllOf((cross, zone)), note + f"; from {m.group('zone')}: with %D {'below' if low else 'above'} "
                                              f"{STOCH_OVERSOLD if low else STOCH_OVERBOUGHT:g}")


@rec("higher_bar", r"\b(?P<d>higher|lower)\s+(?P<f>high|low)s?\b(?!\s*(?:than|of|in|>|<|for\s+the))")
def _higher_bar(m: re.Match):
    f = m.group("f")
    up = m.group("d") == "higher"
    return noted(Condition("prev_bar", {"field": f, "ref": f}, ">" if up else "<", 0.0, m.group(0)),
                 f"a {m.group('d')} {f} is today's {f} {'above' if up else 'below'} yesterday's {f}")


@rec("close_beats_closes", r"\bclos(?:e|es|ed|ing)\s+(?:is\s+|was\s+)?(?P<d>>|<|higher than|lower than|above|below)\s+"
                           r"(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:previous|prior|last|past)\s+(?P<n>\d+)\s+closes\b")
def _close_beats_closes(m: re.Match):
    up = m.group("d") in (">", "higher than", "above")
    # the previous N closes and today's: a new (N+1)-session closing high / low
    return Condition("new_extreme", {"lookback": int(m.group("n")) + 1, "side": "high" if up else "low", "price": "close"},
                     None, None, m.group(0))


@rec("volume_extreme", r"\b(?P<w>lowest|highest|smallest|largest|biggest|heaviest|lightest)\s+(?:daily\s+|trading\s+)?volume\s+"
                       r"(?:in|of|over|for)\s+(?:the\s+)?(?:last\s+|past\s+)?(?P<n>\d+)d\b")
def _volume_extreme(m: re.Match):
    high = m.group("w") in ("highest", "largest", "biggest", "heaviest")
    return Condition("new_extreme", {"lookback": int(m.group("n")), "side": "high" if high else "low", "price": "volume"},
                     None, None, m.group(0))


@rec("high_above_high", r"\b(?:today|intraday|daily|the\s+day)\s+(?P<f>high|low)\s+(?:is\s+)?(?P<d>above|over|>|below|under|<)\s+(?:the\s+|its\s+)?"
                        r"(?:prior\s+|previous\s+)?(?P<n>\d+)d\s+(?P=f)\b")
def _high_above_high(m: re.Match):
    high = m.group("f") == "high"
    if high != (m.group("d") in ("above", "over", ">")):
        return None
    return Condition("new_extreme", {"lookback": int(m.group("n")), "side": m.group("f"), "price": m.group("f")},
                     None, None, m.group(0))


_PREV_DAY = r"(?:yesterday|the\s+(?:previous|prior|last)\s+(?:day|session))"


@rec("volume_vs_yesterday", rf"\b(?:today\s+)?volume\s+(?:is\s+|was\s+)?(?P<cmp>>=|>|at\s+least)?\s*"
                            rf"(?P<m>double|twice|triple|(?P<x>{NUM})\s*x)\s+(?:that\s+of\s+|the\s+volume\s+of\s+|of\s+|vs\s+|over\s+|from\s+)?"
                            rf"{_PREV_DAY}(?:\s+volume)?\b"
                            rf"|\b(?:today\s+)?volume\s+(?:has\s+)?(?P<m2>doubled|tripled)\s+(?:vs|from|since|over|on)\s+{_PREV_DAY}\b")
def _volume_vs_yesterday(m: re.Match):
    word = m.group("m") or m.group("m2")
    mult = float(m.group("x")) if m.group("x") else (3.0 if word.startswith("tri") else 2.0)
    # prev_bar's value is today's volume over yesterday's, in percent above it
    op = ">" if m.group("cmp") in (">",) else ">="
    return Condition("prev_bar", {"field": "volume", "ref": "volume"}, op, _clean((mult - 1.0) * 100.0), m.group(0))


@rec("change_from_open", rf"\bchange\s+from\s+(?:the\s+)?open\s+(?:is\s+)?(?P<dir>up|down|higher|lower)?\s*{thr('%')}")
def _change_from_open(m: re.Match):
    down = m.group("dir") in ("down", "lower")
    return cond_node("body", {}, directed(thresholds(m, ">=", negate=down), down) if m.group("dir") else thresholds(m, ">="),
                     m.group(0))


@rec("performance_period", rf"\b(?:performance|perf)\s+(?P<n>\d+)d\s+(?P<dir>up|down|positive|negative)"
                           rf"(?:\s+{thr('%')})?")
def _performance_period(m: re.Match):
    down = m.group("dir") in ("down", "negative")
    n = int(m.group("n"))
    if m.group("num") or m.group("lo"):
        return cond_node("return", {"lookback": n}, directed(thresholds(m, ">=", negate=down), down), m.group(0))
    return Condition("return", {"lookback": n}, "<" if down else ">", 0.0, m.group(0))


@rec("extreme_within", rf"\b(?P<n>\d+)d\s+(?P<side>high|low)\s+(?:is\s+)?within\s+(?P<num>{NUM})%")
def _extreme_within(m: re.Match):
    high = m.group("side") == "high"
    pct = _clean(float(m.group("num")))
    # within X% of the N-day high: the close at most X% below it (above it, for the low)
    return Condition("extreme_distance", {"lookback": int(m.group("n")), "side": m.group("side")},
                     ">=" if high else "<=", -pct if high else pct, m.group(0))


# "distance from the 52 week high less than 10%": the same reading
rec("extreme_distance_words", rf"\b(?:distance|dist)\s+(?:from|to|off)\s+(?:the\s+|its\s+|their\s+)?(?P<n>\d+)d\s+"
                              rf"(?P<side>high|low)\s+(?:is\s+)?(?:<|less than|under|below|within|<=)\s+(?P<num>{NUM})%")(
    _extreme_within)


@rec("volume_at_extreme", r"\bvolume\s+(?:is\s+|was\s+)?(?:at|hits?|hitting|makes?|making|made|reach(?:es|ed|ing)?)\s+"
                          r"(?:a\s+|its\s+)?(?:new\s+)?(?P<n>\d+)d\s+(?P<side>high|low)\b")
def _volume_at_extreme(m: re.Match):
    return Condition("new_extreme", {"lookback": int(m.group("n")), "side": m.group("side"), "price": "volume"},
                     None, None, m.group(0))


# These read phrases that broader recognisers defined earlier would otherwise claim in part
# ("OBV making a new 20-day high" is not a price high; "the 10-day average volume is below the
# 50-day average volume" is not today's volume): they go first.
_FIRST = ("stoch_cross", "stoch_state", "stoch", "willr_state", "willr", "cci_state", "cci", "mfi_state", "mfi", "adx",
          "dmi", "keltner", "obv_extreme", "bb_squeeze", "close_location", "volume_trend", "return_multiple",
          "range_expansion_word", "range_atr", "prev_bar", "ma_within", "earnings_pct", "volume_by_pct", "dollar_volume",
          "bollinger_breakout", "gap_and_go", "extreme_close", "ma_list", "ma_near", "ma_slope", "band_cross", "bb_width",
          "percent_b", "volume_dry", "streak_days", "pullback_from_high", "macd_turn", "breakout_extreme", "open_vs_close",
          "count_days", "atr_change", "close_off_extreme", "breakout_base", "volume_spike_multiple", "stoch_turn",
          "close_beats_closes", "volume_extreme", "high_above_high", "ttm_squeeze", "volume_vs_yesterday",
          "level_then_now", "change_from_open", "performance_period", "extreme_within",
          "extreme_distance_words", "volume_at_extreme")
RECOGNISERS.sort(key=lambda r: r[0] not in _FIRST)


@rec("range_pct", rf"{_RANGE}\s+(?:is\s+|was\s+|of\s+)?{thr('%')}")
def _range_pct(m: re.Match):
    return cond_node("range_pct", {}, thresholds(m, ">="), m.group(0))


@rec("range_words", r"\b(?P<w>range expansion|expanding range|wide range|wide ranging|narrow range|range contraction)"
                    r"(?:\s+(?:days?|bars?|candles?))?\b")
def _range_words(m: re.Match):
    wide = m.group("w").startswith(("range exp", "expanding", "wide"))
    lb = {"lookback": RANGE_LOOKBACK}
    if wide:
        return weak(Condition("range_ratio", lb, ">=", RANGE_EXPANSION, m.group(0)), {"range_ratio", "range_atr"},
                    f"'range expansion' means today's range >= {RANGE_EXPANSION:g}x the average of the previous "
                    f"{RANGE_LOOKBACK} sessions")
    return weak(Condition("range_ratio", lb, "<=", NARROW_RANGE, m.group(0)), {"range_ratio"},
                f"'narrow range' means today's range <= {NARROW_RANGE:g}x the average of the previous "
                f"{RANGE_LOOKBACK} sessions")


@rec("volatility", rf"\b(?:(?P<n>\d+)d\s+)?(?P<mods>(?:(?:historical|realized|realised|annualized|annualised|daily|price"
                   rf"|return)\s+)*)(?:volatility|vol)(?:\s*\((?P<p>\d+)\))?(?:\s+{PER_WORDS}\s+{BACK}(?P<n2>\d+)d)?\s+"
                   rf"(?:is\s+)?{thr('%?')}")
def _volatility(m: re.Match):
    daily = "daily" in (m.group("mods") or "")
    n = _int(m, "n", "p", "n2", default=VOLATILITY_LOOKBACK)
    return cond_node("volatility", {"lookback": n, "annualized": not daily}, thresholds(m, ">"), m.group(0))


@rec("volatility_words", r"\b(?P<lvl>low|high|elevated|compressed|muted|subdued|extreme|rising)\s+(?:price\s+)?volatility\b"
                         r"|\bvolatility\s+(?:is\s+)?(?P<lvl2>low|high)\b|\b(?P<lvl3>volatile)\b")
def _volatility_words(m: re.Match):
    lvl = m.group("lvl") or m.group("lvl2") or "high"
    params = {"lookback": VOLATILITY_LOOKBACK, "annualized": True}
    if lvl in ("low", "compressed", "muted", "subdued"):
        return weak(Condition("volatility", params, "<", LOW_VOLATILITY, m.group(0)), {"volatility"},
                    f"'low volatility' means {VOLATILITY_LOOKBACK}-day annualised volatility < {LOW_VOLATILITY:g}%")
    return weak(Condition("volatility", params, ">", HIGH_VOLATILITY, m.group(0)), {"volatility"},
                f"'high volatility' means {VOLATILITY_LOOKBACK}-day annualised volatility > {HIGH_VOLATILITY:g}%")


# ---- streaks -----------------------------------------------------------------------------------
_SUP = r"(?:up|higher|green|positive|gain(?:ed|ing|s)?|ris(?:en|ing|e)|rose|advanc(?:ed|ing)|winning|white|rall(?:ied|ying|y))"
_SDOWN = r"(?:down|lower|red|negative|fall(?:en|ing)?|fell|declin(?:ed|ing)|los(?:t|ing)|losses|black|drop(?:ped|ping)?)"


_INDICATOR_BEFORE = re.compile(r"\b(?:rsi|cci|mfi|adx|willr|atr|obv|macd(?:\s+(?:histogram|hist|line))?|stoch(?:\s+%[kd])?"
                               r"|volume|volatility)(?:\(\d+\))?\s+(?:is\s+|has\s+been\s+)?$")


def _streak(m: re.Match):
    if _INDICATOR_BEFORE.search(m.string[:m.start()]):
        return None  # "RSI rising for 3 days": the RSI's trend, read with its subject
    g = m.groupdict()
    d = g.get("dir") or g.get("dir2") or g.get("dir3") or ""
    up = re.fullmatch(_SUP, d) is not None or d == "winning"
    n = _int(m, "n", "n2", "n3")
    if not n or n < 1:
        return None
    return Condition("streak", {"direction": "up" if up else "down"}, ">=", float(n), m.group(0))


RECOGNISERS.extend([
    ("streak_verb", re.compile(
        rf"\b(?:(?:closed?|closes|closing|finish(?:ed|es)?|been)\s+)?(?P<dir>{_SUP}|{_SDOWN})\s+(?:for\s+)?(?:(?:>=|at least)\s*)?"
        r"(?P<n>\d+)d?\s+(?:(?:days?|sessions?|bars?|closes)\s+)?(?:in a row|straight|consecutive(?:ly)?|running)\b"), _streak),
    ("streak_adj", re.compile(
        rf"\b(?:>=\s*)?(?P<n>\d+)d?\s+(?:consecutive|straight|successive)\s+(?P<dir>{_SUP}|{_SDOWN})"
        r"(?:\s+(?:days?|sessions?|closes?|bars?|candles?))?\b"
        rf"|\b(?:>=\s*)?(?P<n2>\d+)d?\s+(?P<dir2>{_SUP}|{_SDOWN})\s+(?:days?|sessions?|closes?|bars?|candles?)\s+"
        r"(?:in a row|straight|consecutive(?:ly)?|running)\b"), _streak),
    ("streak_noun", re.compile(
        r"\b(?P<n>\d+)d?\s+(?P<dir>winning|losing|up|down)\s+streak\b|\b(?P<dir2>winning|losing|up|down)\s+streak\s+of\s+"
        r"(?:>=\s*)?(?P<n2>\d+)d?\b|\bstreak\s+of\s+(?:>=\s*)?(?P<n3>\d+)d?\s+(?P<dir3>up|down|green|red|winning|losing)"
        r"(?:\s+(?:days?|sessions?|closes?))?\b"), _streak),
    ("streak_row_of", re.compile(
        rf"\b(?P<n>\d+)d?\s+(?:(?:days?|sessions?)\s+)?(?:in a row|straight)\s+(?:of\s+)?(?P<dir>gains|losses|{_SUP}|{_SDOWN})"
        r"(?:\s+closes)?\b"), _streak),
])


# ---- z-score --------------------------------------------------------------------------------
@rec("zscore_std", rf"(?:\b(?:the\s+)?(?:close|closes|closed|closing|closing price|price)\s+(?:is\s+|was\s+)?)?"
                   rf"(?:(?P<cmp>{CMP})\s*)?(?P<num>{NUM})\s*std\s+(?P<side>below|under|beneath|above|over)\s+"
                   rf"(?:the\s+|its\s+|their\s+)?(?:(?P<n>\d+)d\s+)?(?:mean|average|sma|ma|moving average|mean price"
                   rf"|average price|norm)(?:\s+price)?(?:\s+{PER_WORDS}\s+{BACK}(?P<n2>\d+)d)?")
def _zscore_std(m: re.Match):
    below = m.group("side") in ("below", "under", "beneath")
    node = cond_node("zscore", {"lookback": _int(m, "n", "n2", default=ZSCORE_LOOKBACK)},
                     thresholds(m, ">=", negate=below), m.group(0))
    return node if (m.group("n") or m.group("n2")) else noted(node, f"the mean is over {ZSCORE_LOOKBACK} sessions")


@rec("zscore", rf"\b(?:(?P<n>\d+)d\s+)?zscore(?:\s*\((?P<p>\d+)\))?(?:\s+{PER_WORDS}\s+{BACK}(?P<n2>\d+)d)?\s+(?:is\s+|of\s+)?"
               rf"{thr('', tail=NO_UNIT)}")
def _zscore(m: re.Match):
    n = _int(m, "n", "p", "n2", default=ZSCORE_LOOKBACK)
    return cond_node("zscore", {"lookback": n}, thresholds(m, ">="), m.group(0))


# ---- returns / momentum --------------------------------------------------------------------------
def _ret(m: re.Match, down: bool, default_lookback: int = 1, default_op: str = ">="):
    if m.groupdict().get("today"):
        n = 1
    else:
        n = _int(m, "n0", "n", default=default_lookback)
    bounds = thresholds(m, default_op, negate=down)
    # a stated direction ("up", "fell", "a drop of") bounds the move on that side of zero
    directional = bool({"verb", "dir"} & {k for k, v in m.groupdict().items() if v}) or m.groupdict().get("noun") not in (
        None, "return", "returns", "move", "change", "performance", "momentum", "price change", "rate of change", "roc")
    return cond_node("return", {"lookback": n}, directed(bounds, down) if directional else bounds, m.group(0))


@rec("return_metric", rf"\b(?:(?P<n0>\d+)d\s+|(?P<daily>daily|today|1d|one day|single day)\s+)?(?:price\s+)?"
                      rf"(?P<noun>momentum|returns?|performance|price change|change"
                      rf"|rate of change|roc|gain|move)(?:\s+{PER_WORDS}\s+{BACK}(?P<n>\d+)d)?\s+(?:is\s+|was\s+|of\s+)?"
                      rf"{thr('%?')}")
def _ret_metric(m: re.Match):
    if m.group("daily"):  # "daily change above 3%": the day's return
        return cond_node("return", {"lookback": 1}, thresholds(m, ">"), m.group(0))
    node = _ret(m, False, MOMENTUM_DEFAULT_LOOKBACK, ">")
    if m.group("n0") or m.group("n"):
        return node
    return noted(node, f"momentum/return with no period is over {MOMENTUM_DEFAULT_LOOKBACK} sessions")


_CLOSED = r"(?:\b(?:clos(?:e|es|ed|ing)|finish(?:es|ed|ing)?|end(?:s|ed|ing)?)\s+)?"  # "closed up 3%": the day's return


@rec("return_verb", rf"{_CLOSED}\b(?P<verb>{UPV}|{DOWNV})(?:\s+(?:by|over|at))?\s+{thr('%')}(?P<per>{PERIOD})?")
def _ret_verb(m: re.Match):
    down = re.fullmatch(DOWNV, m.group("verb")) is not None
    return _ret(m, down)


@rec("return_pre", rf"{_CLOSED}{thr('%')}\s+(?P<dir>higher|lower|up|down)(?P<per>{PERIOD})?")
def _ret_pre(m: re.Match):
    return _ret(m, m.group("dir") in ("lower", "down"))


@rec("return_noun", rf"{thr('%')}\s+(?:price\s+)?(?P<noun>gain|rise|increase|rally|jump|move up|advance|surge|pop|drop|decline"
                    rf"|loss|fall|move down|sell ?off|slide|plunge|decrease|return|move|change|pullback|correction)s?"
                    rf"(?P<per>{PERIOD})?")
def _ret_noun(m: re.Match):
    noun = m.group("noun").replace(" ", "")
    if noun in ("pullback", "correction") and not m.group("per"):
        # "a 10% pullback": off the recent high, not a one-day drop
        return noted(cond_node("extreme_distance", {"lookback": RECENT_HIGH_LOOKBACK, "side": "high"},
                               thresholds(m, ">=", negate=True), m.group(0)),
                     f"a pullback with no window is measured from the {RECENT_HIGH_LOOKBACK}-day high")
    down = noun in ("drop", "decline", "loss", "fall", "movedown", "selloff", "slide", "plunge", "decrease", "pullback",
                    "correction")
    return _ret(m, down)


@rec("return_sign", rf"\b(?P<sign>positive|negative)\s+(?:(?P<n0>\d+)d\s+)?(?:price\s+)?(?:momentum|returns?|performance)"
                    rf"(?:\s+{PER_WORDS}\s+{BACK}(?P<n>\d+)d)?|\b(?:(?P<n1>\d+)d\s+)?(?:momentum|returns?|performance)\s+"
                    r"(?:is\s+)?(?P<sign2>positive|negative)\b")
def _ret_sign(m: re.Match):
    neg = (m.group("sign") or m.group("sign2")) == "negative"
    n = _int(m, "n0", "n", "n1", default=MOMENTUM_DEFAULT_LOOKBACK)
    node = Condition("return", {"lookback": n}, "<" if neg else ">", 0.0, m.group(0))
    if m.group("n0") or m.group("n") or m.group("n1"):
        return node
    return noted(node, f"momentum/return with no period is over {MOMENTUM_DEFAULT_LOOKBACK} sessions")


@rec("return_direction", rf"\b(?P<dir>up|down|higher|lower)\s+(?:{PER_WORDS}\s+)?{BACK}(?P<n>\d+)d\b(?!\s*(?:high|low|sma|ema|ma))")
def _ret_direction(m: re.Match):
    up = m.group("dir") in ("up", "higher")
    return Condition("return", {"lookback": int(m.group("n"))}, ">" if up else "<", 0.0, m.group(0))


@rec("up_today", r"\b(?:is\s+|are\s+|closed?\s+|trading\s+)?(?P<dir>up|higher|green|down|lower|red)\s+(?:on the day|today)\b")
def _up_today(m: re.Match):
    up = m.group("dir") in ("up", "higher", "green")
    return Condition("return", {"lookback": 1}, ">" if up else "<", 0.0, m.group(0))


@rec("up_day", r"\b(?:an?\s+)?(?P<dir>up|down)\s+(?:day|session)\b(?!\s+(?:in a row|streak))"
               r"|\bclos(?:e|es|ed|ing)\s+(?P<dir2>higher|lower|up|down)\b(?!\s*(?:than|by|>|<|\d|from|over|on the day|today))"
               r"|\b(?P<dir3>higher|lower)\s+close\b(?!\s*(?:than|>|<))"
               r"|\b(?:price|stock|shares|it)\s+(?:is|was|are|were)\s+(?P<dir4>up|down|higher|lower)\b"
               r"(?!\s*(?:>|<|\d|by|more|less|over|from|on the day|today))")
def _up_day(m: re.Match):
    up = (m.group("dir") or m.group("dir2") or m.group("dir3") or m.group("dir4")) in ("up", "higher")
    return noted(Condition("return", {"lookback": 1}, ">" if up else "<", 0.0, m.group(0)),
                 f"{'an up' if up else 'a down'} day closes {'above' if up else 'below'} the previous close")


_UPWARD = ("rising", "increasing", "growing", "climbing", "improving", "turning up", "ticking up", "higher", "up", "rise",
           "increase", "climb", "improve", "hooking up", "curling up")
_TREND_WORDS = (r"rising|increasing|growing|climbing|improving|turning up|ticking up|hooking up|curling up|falling"
                r"|decreasing|declining|dropping|weakening|turning down|ticking down|hooking down|curling down"
                r"|rise|increase|climb|improve|fall|decrease|decline|drop|weaken|up(?=\s*(?:$|,|\.|;|and\b|with\b|but\b))"
                r"|down(?=\s*(?:$|,|\.|;|and\b|with\b|but\b))")
CHANGE_LOOKBACK = 1  # "RSI rising": higher than at the previous session


def _indicator(tag: str = "") -> str:
    return (rf"(?P<ind{tag}>rsi|cci|mfi|adx|willr)(?:\((?P<p{tag}>\d+)\))?"
            rf"|(?P<macd{tag}>macd)(?:\s+(?P<mline{tag}>histogram|hist|line))?"
            rf"|(?P<stoch{tag}>stoch)(?:\s+%(?P<sline{tag}>k|d))?")


def _indicator_measure(m: re.Match, tag: str = "") -> tuple[str, dict]:
    g = m.groupdict()
    if g.get("macd" + tag):
        return "macd", {"fast": MACD[0], "slow": MACD[1], "signal": MACD[2],
                        "line": "histogram" if g.get("mline" + tag) in ("histogram", "hist") else "macd"}
    if g.get("stoch" + tag):
        return "stochastic", {"period": STOCH_PERIOD, "smooth": 1, "d": STOCH_D, "line": g.get("sline" + tag) or "k"}
    ind = g["ind" + tag]
    kind, period = {"rsi": ("rsi", RSI_PERIOD), "cci": ("cci", CCI_PERIOD), "mfi": ("mfi", MFI_PERIOD),
                    "adx": ("adx", ADX_PERIOD), "willr": ("williams_r", WILLR_PERIOD)}[ind]
    return kind, {"period": int(g.get("p" + tag) or period)}


def change_node(kind: str, params: dict, up: bool, text: str) -> Condition:
    """``kind`` rising (``up``) or falling: today's value against the previous session's."""
    return Condition("change", {"kind": kind, "params": tuple(sorted(params.items())), "lookback": CHANGE_LOOKBACK},
                     ">" if up else "<", 0.0, text)


@rec("indicator_trend", rf"\b(?:{_indicator()})\s+(?:is\s+|are\s+|has\s+been\s+|was\s+)?(?:still\s+|now\s+)?"
                        r"(?:(?:starting|beginning|begins|starts|started|began)\s+to\s+(?:turn\s+(?=up|down))?)?"
                        rf"(?P<dir>{_TREND_WORDS})\b|\b(?P<dir2>rising|increasing|falling|declining|decreasing)\s+"
                        rf"(?:{_indicator('2')})\b")
def _indicator_trend(m: re.Match):
    tag = "" if m.group("dir") else "2"
    kind, params = _indicator_measure(m, tag)
    up = (m.group("dir") or m.group("dir2")) in _UPWARD
    return noted(change_node(kind, params, up, m.group(0)),
                 "a rising / falling indicator is above / below its value at the previous session")


@rec("middle_band", r"\b(?:price\s+|close\s+|closes\s+|closed\s+|closing\s+|trading\s+|is\s+)?(?P<side>above|over|below|under)\s+"
                    r"(?:the\s+)?(?:middle|mid|center|centre|basis)\s+(?:bollinger(?:\s+(?:band|line))?|band|line)\b")
def _middle_band(m: re.Match):
    above = m.group("side") in ("above", "over")
    return noted(Condition("ma_distance", {"period": BOLLINGER_PERIOD, "ma": "sma"}, ">" if above else "<", 0.0, m.group(0)),
                 f"the middle Bollinger band is the {BOLLINGER_PERIOD}-day SMA")


@rec("strong_close", r"\b(?P<q>strong|weak)\s+clos(?:e|ing)\b")
def _strong_close(m: re.Match):
    strong = m.group("q") == "strong"
    node = Condition("close_location", {}, ">=" if strong else "<=", CLOSE_NEAR_EXTREME if strong else 100.0 - CLOSE_NEAR_EXTREME,
                     m.group(0))
    return weak(node, {"close_location"}, f"a {m.group('q')} close is in the {'top' if strong else 'bottom'} "
                                          f"{100 - CLOSE_NEAR_EXTREME:g}% of the day's range")


@rec("level_cross", rf"\b(?:{_LEVEL_IND})\s+(?:line\s+)?(?:cross(?:es|ed|ing)?|mov(?:es|ed|ing)|break(?:s|ing)?|broke|ris(?:es|ing)"
                    rf"|rose|fall(?:s|ing)?|fell|drop(?:s|ped|ping)?)\s+(?:back\s+)?(?P<dir>above|over|below|under)\s+"
                    rf"(?P<num>{NUM})(?![\d.])")
def _level_cross(m: re.Match):
    kind, params = _indicator_measure(m)
    level = _clean(float(m.group("num")))
    up = m.group("dir") in ("above", "over")
    key = tuple(sorted(params.items()))
    # crossing a level: beyond it today, not beyond it at the previous session
    return noted(AllOf((Condition(kind, params, ">" if up else "<", level, m.group(0)),
                        Condition("prior", {"kind": kind, "params": key, "op": "<=" if up else ">=", "threshold": level},
                                  None, None, m.group(0)))),
                 "crossing a level means beyond it today and not at the previous session")


@rec("close_beyond_days", r"\bclos(?:e|es|ed|ing)\s+(?P<dir>above|over|below|under)\s+(?:the\s+)?(?P<side>high|low)s?\s+of\s+"
                          r"(?:the\s+)?(?:previous|prior|last|past)\s+(?P<n>\d+)d\b")
def _close_beyond_days(m: re.Match):
    up = m.group("dir") in ("above", "over")
    if up != (m.group("side") == "high"):
        return None
    return Condition("breakout", {"lookback": int(m.group("n")), "side": m.group("side")}, None, None, m.group(0))


@rec("close_vs_open_words", r"\b(?P<d>higher|lower)\s+clos(?:e|ing)\s+than\s+(?:the\s+|its\s+)?open(?:ing)?(?:\s+price)?\b")
def _close_vs_open_words(m: re.Match):
    return Condition("body", {}, ">" if m.group("d") == "higher" else "<", 0.0, m.group(0))


@rec("atr_ratio", r"\batr\((?P<a>\d+)\)\s+(?:is\s+)?(?P<d>above|over|>|below|under|<)\s+(?:the\s+|its\s+)?atr\((?P<b>\d+)\)")
def _atr_ratio(m: re.Match):
    a, b = int(m.group("a")), int(m.group("b"))
    if a == b:
        return None
    return Condition("atr_ratio", {"fast": a, "slow": b}, ">" if m.group("d") in ("above", "over", ">") else "<", 1.0,
                     m.group(0))


_GAIN_WORDS = ("gain", "gains", "rise", "advance", "jump", "rally", "move up", "up day", "increase")


@rec("return_extreme", r"\b(?:the\s+)?(?P<w>largest|biggest|best|strongest|worst|steepest|sharpest)\s+(?:daily|1d|single day|one day)\s+"
                       r"(?P<k>gains?|rise|advance|jump|rally|move up|up day|increase|drop|loss|decline|fall|move down|down day"
                       r"|selloff|sell off)\s+(?:in|of|over|for)\s+(?:the\s+)?(?:last\s+|past\s+)?(?P<n>\d+)d\b")
def _return_extreme(m: re.Match):
    up = m.group("k") in _GAIN_WORDS
    if int(m.group("n")) < 2 or (m.group("w") == "worst" and up):
        return None  # "the worst daily gain": not a phrase with one reading
    return Condition("return_extreme", {"lookback": int(m.group("n")), "side": "high" if up else "low"}, None, None,
                     m.group(0))


@rec("range_vs_yesterday", r"\b(?:today\s+)?range\s+(?:is\s+)?(?:<|smaller than|narrower than|below|tighter than)\s+"
                           r"(?:yesterday|the\s+(?:previous|prior)\s+(?:day|session))(?:\s+range)?\b")
def _range_vs_yesterday(m: re.Match):
    return noted(Condition("candle", {"pattern": "narrow_range", "lookback": 2}, None, None, m.group(0)),
                 "a range smaller than yesterday's is the narrowest of the last 2 sessions (NR2)")


@rec("rsi_quality", rf"\b(?P<q>low|depressed|weak|high|elevated|hot)\s+{_RSI}(?:\s+(?:readings?|values?|levels?))?\b")
def _rsi_quality(m: re.Match):
    low = m.group("q") in ("low", "depressed", "weak")
    p = {"period": _int(m, "p", default=RSI_PERIOD)}
    node = Condition("rsi", p, "<" if low else ">", OVERSOLD if low else OVERBOUGHT, m.group(0))
    return noted(node, f"a {m.group('q')} RSI means {'oversold' if low else 'overbought'}: "
                       f"RSI {'<' if low else '>'} {OVERSOLD if low else OVERBOUGHT:g}")


@rec("streak_consecutive_closes", r"\bconsecutive\s+(?P<dir>higher|lower|up|down)\s+closes\s+(?:for|over)\s+(?:the\s+)?"
                                  r"(?:last\s+|past\s+)?(?P<n>\d+)d\b")
def _streak_consecutive_closes(m: re.Match):
    return Condition("streak", {"direction": "up" if m.group("dir") in ("higher", "up") else "down"}, ">=",
                     float(int(m.group("n"))), m.group(0))


@rec("new_extreme_for", r"\b(?:a\s+)?new\s+(?P<side>high|low)s?\s+(?:for|of|in)\s+(?:the\s+)?(?P<n>\d+)d\b")
def _new_extreme_for(m: re.Match):
    # "a new high for the year" (the year normalised to 252 sessions)
    return Condition("new_extreme", {"lookback": int(m.group("n")), "side": m.group("side"), "price": m.group("side")},
                     None, None, m.group(0))


# ---- price level ------------------------------------------------------------------------------
@rec("price", rf"\b(?:share\s+|stock\s+|closing\s+|last\s+)?(?:price|close|closes|closed|closing|trad(?:es|ing|ed)(?:\s+at)?|priced)"
              rf"\s+(?:is\s+|at\s+)?{thr('', money=True, tail=NO_UNIT)}")
def _price(m: re.Match):
    return cond_node("price", {}, thresholds(m, ">="), m.group(0))


@rec("price_dollar", rf"(?:(?P<cmp>under|below|above|over|<|>|<=|>=)\s*)\$(?P<num>{NUM})(?![\d.])(?!\s*(?:%|x\b))"
                     rf"|between\s+\$(?P<lo>{NUM})\s+and\s+\$(?P<hi>{NUM})")
def _price_dollar(m: re.Match):
    return cond_node("price", {}, thresholds(m, ">="), m.group(0))


@rec("penny", r"\bpenny\s+stocks?\b")
def _penny(m: re.Match):
    return noted(Condition("price", {}, "<", PENNY_PRICE, m.group(0)), f"'penny stocks' means price < ${PENNY_PRICE:g}")


# --------------------------------------------------------------------------- ranking
_RANK_DIR_DESC = {"highest", "best", "strongest", "largest", "biggest", "most", "top", "greatest", "higher"}
_RANK_DIR_ASC = {"lowest", "worst", "weakest", "smallest", "least", "bottom", "cheapest", "fewest", "lower"}

_METRICS: tuple[tuple[str, Callable[[re.Match], tuple[str, dict, bool] | None]], ...] = (
    ((rf"(?:(?P<n0>\d+)d\s+)?(?:price\s+)?(?:momentum|returns?|performance|price change|change|rate of change|roc|gains?)"
      rf"(?:\s+{PER_WORDS}\s+{BACK}(?P<n>\d+)d)?"),
     lambda m: ("return", {"lookback": _int(m, "n0", "n", default=MOMENTUM_DEFAULT_LOOKBACK)}, True)),
    (r"(?:gap(?:\s+size)?(?:\s+up)?|gap\s+down)",
     lambda m: ("gap", {}, "down" not in m.group(0))),
    (rf"{_RSI}", lambda m: ("rsi", {"period": _int(m, "p", default=RSI_PERIOD)}, True)),
    (r"(?:rvol|volume\s+(?:spike|surge|ratio)|unusual volume)", lambda m: ("relative_volume", {"lookback": VOLUME_LOOKBACK}, True)),
    (r"(?:(?P<n>\d+)d\s+)?(?:average\s+(?:daily\s+)?)volume", lambda m: ("volume", {"lookback": _int(m, "n", default=VOLUME_LOOKBACK)}, True)),
    (r"(?:trading\s+)?volume", lambda m: ("volume", {"lookback": 1}, True)),
    (r"(?:mcap|size)", lambda m: ("fundamental", {"field": "market_cap"}, True)),
    (r"pe", lambda m: ("fundamental", {"field": "pe_ratio"}, True)),
    (r"eps", lambda m: ("fundamental", {"field": "eps"}, True)),
    (r"de", lambda m: ("fundamental", {"field": "debt_to_equity"}, True)),
    (r"(?:(?:earnings|eps)\s+)?surprise", lambda m: ("earnings_surprise", {}, True)),
    (r"(?:(?P<n>\d+)d\s+)?(?:historical\s+|realized\s+)?volatility", lambda m: ("volatility", {"lookback": _int(m, "n", default=VOLATILITY_LOOKBACK), "annualized": True}, True)),
    (rf"{_ATR}(?:\s*%)?", lambda m: ("atr_pct", {"period": _int(m, "p", default=ATR_PERIOD)}, True)),
    (r"(?:(?P<n>\d+)d\s+)?zscore", lambda m: ("zscore", {"lookback": _int(m, "n", default=ZSCORE_LOOKBACK)}, True)),
    (rf"relative strength(?:\s+(?:vs|against)\s+{BENCH})?(?:\s+{PER_WORDS}\s+{BACK}(?P<n>\d+)d)?",
     lambda m: ("relative_strength", {"benchmark": (m.group("bench")[4:].upper() if m.group("bench") and m.group("bench").startswith("sym_") else "SPY"),
                                      "lookback": _int(m, "n", default=RELATIVE_STRENGTH_DEFAULT_LOOKBACK)}, True)),
    (r"(?:distance|dist|gap)\s+(?:from|to|above|over)\s+(?:the\s+|its\s+)?(?:(?P<n>\d+)d\s+)?(?P<t>sma|ema|ma)",
     lambda m: ("ma_distance", {"period": _int(m, "n", default=MA_DEFAULT_PERIOD), "ma": _ma_type(m.group("t"))}, True)),
    (r"(?:proximity|closeness|distance)\s+to\s+(?:the\s+|its\s+|a\s+)?(?P<n>\d+)d\s+(?P<side>high|low)",
     lambda m: ("extreme_distance", {"lookback": int(m.group("n")), "side": m.group("side")}, m.group("side") == "high")),
    (r"(?:range|daily range)", lambda m: ("range_pct", {}, True)),
    (r"(?:share\s+)?price", lambda m: ("price", {}, True)),
)
_METRIC_RES = tuple((re.compile(p), f) for p, f in _METRICS)

_NOUNS = r"(?:stocks?|symbols?|names?|tickers?|companies|equities|shares|results?|picks?|ones)"
_RANK_HEAD = re.compile(
    rf"\b(?:(?:the\s+)?(?P<top>top|best|first|bottom|worst)\s+(?P<n>\d+)|(?P<n2>\d+)\s+(?:{_NOUNS}\s+)?(?=with|by|ranked|sorted|having))"
    rf"(?:\s+[a-z_]+){{0,3}}?\s*(?:(?:ranked|sorted|ordered|rank|sort|order)\s+)?(?:by|on|in terms of|with\s+(?:the\s+)?"
    rf"(?P<dir>highest|lowest|best|worst|strongest|weakest|largest|biggest|smallest|most|least|greatest|cheapest)|having\s+(?:the\s+)?"
    rf"(?P<dir3>highest|lowest|best|worst|strongest|weakest|largest|biggest|smallest|most|least|greatest))\s+"
    rf"(?:(?P<dir2>highest|lowest|best|worst|strongest|weakest|largest|biggest|smallest)\s+)?")
_RANK_BY = re.compile(
    rf"\b(?:ranked|sorted|ordered|rank(?:\s+(?:them|results|it|(?:the\s+|all\s+)?{_NOUNS}))?"
    rf"|sort(?:\s+(?:them|results|it|(?:the\s+|all\s+)?{_NOUNS}))?|order(?:\s+(?:them|results))?)"
    r"\s+(?:by|on)\s+(?:(?P<dir>highest|lowest|best|worst|strongest|weakest|largest|biggest|smallest)\s+)?"
    r"|\b(?:with|have|has|having|showing|show)\s+the\s+(?P<dir2>highest|lowest|best|worst|strongest|weakest|largest|biggest"
    r"|smallest|most|least|greatest)\s+")
_RANK_TOPN = re.compile(rf"\b(?:the\s+)?(?:top|best|first)\s+(?P<n>\d+)\b(?:\s+{_NOUNS})?")
_RANK_MOVERS = re.compile(
    rf"\b(?:(?:the\s+)?(?P<top>top|best|first|worst|bottom)\s+)?(?P<count>\d+)?\s*(?:{_NOUNS}\s+)?(?:that\s+are\s+)?(?:the\s+)?"
    r"(?:(?P<dir>biggest|largest|top|best|worst|most|strongest|weakest|greatest)\s+)?(?P<what>gainers|losers|performers|movers|"
    r"decliners|advancers|gap(?:s)?\s+ups?|gap(?:s)?\s+downs?|gappers|oversold|overbought)"
    rf"(?P<per>{PERIOD})?")


def _metric_at(text: str, pos: int) -> tuple[str, dict, bool, int] | None:
    for rx, fn in _METRIC_RES:
        m = rx.match(text, pos)
        if m and (m.end() == len(text) or not text[m.end()].isalnum()):
            out = fn(m)
            if out:
                return (*out, m.end())
    return None


def _direction(word: str | None, default_desc: bool) -> bool:
    if word in _RANK_DIR_ASC:
        return False
    if word in _RANK_DIR_DESC:
        return True
    return default_desc


def find_ranking(text: str) -> tuple[Ranking, list[tuple[int, int]], str] | None:
    """(ranking, claimed spans, note) or None."""
    m = _RANK_ADJECTIVE.search(text)
    if m:
        # "the 10 most volatile stocks", "5 least liquid names", "most oversold stocks (by RSI)"
        adj, most = m.group("adj"), m.group("dir") == "most"
        if adj == "volatile":
            kind, params, desc = "volatility", {"lookback": VOLATILITY_LOOKBACK, "annualized": True}, most
        elif adj in ("oversold", "overbought"):
            kind, params = "rsi", {"period": _int(m, "p", default=RSI_PERIOD)}
            desc = most == (adj == "overbought")
        else:  # liquid, active, traded
            kind, params, desc = "volume", {"lookback": VOLUME_LOOKBACK}, most
        return Ranking(kind, params, desc, _int(m, "n"), m.group(0)), [(m.start(), m.end())], ""
    m = next((x for x in _RANK_MOVERS.finditer(text) if x.group("top") or x.group("dir")), None)
    if m:
        what, d = m.group("what"), m.group("dir") or m.group("top")
        n = int(m.group("count")) if m.group("count") else None
        if what in ("oversold", "overbought"):
            kind, params, desc = "rsi", {"period": RSI_PERIOD}, what == "overbought"
        elif "gap" in what:
            kind, params, desc = "gap", {}, "down" not in what
        else:
            pm = re.search(r"(\d+)d", m.group("per") or "")
            lb = int(pm.group(1)) if pm else 1
            desc = what in ("gainers", "advancers", "movers") or (what == "performers" and d not in _RANK_DIR_ASC)
            kind, params = "return", {"lookback": lb}
        return Ranking(kind, params, desc, n, m.group(0)), [(m.start(), m.end())], ""
    m = _RANK_HEAD.search(text)
    if m:
        metric = _metric_at(text, m.end())
        if metric:
            kind, params, desc, end = metric
            d = m.group("dir") or m.group("dir2") or m.group("dir3")
            if m.group("top") in ("bottom", "worst") and not d:
                d = "lowest"
            order = _RANK_ORDER.match(text, end)  # "top 5 by RSI, lowest first"
            if order:
                d = "lowest" if order.group("asc") else "highest"
                end = order.end()
            n = _int(m, "n", "n2")
            return (Ranking(kind, params, _direction(d, desc), n, text[m.start():end]), [(m.start(), end)], "")
    m = _RANK_SUPERLATIVE.search(text)
    if m:
        metric = _metric_at(text, m.end())
        if metric:
            # "the 5 cheapest stocks by P/E", "largest companies by market cap"
            kind, params, desc, end = metric
            return (Ranking(kind, params, _direction(m.group("dir"), desc), _int(m, "n"), text[m.start():end]),
                    [(m.start(), end)], "")
    m = _RANK_PERFORMERS.search(text)
    if m:
        per = _RANK_LATER_PERIOD.search(text, m.end())
        lb = int(per.group("n")) if per else MOMENTUM_DEFAULT_LOOKBACK
        spans = [(m.start(), m.end())] + ([(per.start(), per.end())] if per else [])
        note = "" if per else f"the strongest / weakest stocks are ranked by their {MOMENTUM_DEFAULT_LOOKBACK}-session return"
        return (Ranking("return", {"lookback": lb}, m.group("dir") in ("strongest", "best"), _int(m, "n"), m.group(0)),
                spans, note)
    m = _RANK_TOP_METRIC.search(text)
    if m:
        metric = _metric_at(text, m.end())
        noun = re.compile(rf"\s+{_NOUNS}\b").match(text, metric[3]) if metric else None
        if metric and noun:
            # "the top 10 momentum stocks (over the past 3 months)"
            kind, params, desc, _ = metric
            end = noun.end()
            per = _RANK_PERIOD.match(text, end)
            if per and kind == "return":
                params, end = {"lookback": int(per.group("n"))}, per.end()
            d = "lowest" if m.group("top") in ("bottom", "worst") else None
            return (Ranking(kind, params, _direction(d, desc), int(m.group("n")), text[m.start():end]),
                    [(m.start(), end)], "")
    m = _RANK_SUPER_METRIC.search(text)
    if m:
        metric = _metric_at(text, m.end())
        noun = re.compile(rf"\s+{_NOUNS}\b").match(text, metric[3]) if metric else None
        if metric and noun:
            # "the lowest P/E stocks", "highest RSI names"
            kind, params, desc, _ = metric
            end = noun.end()
            return (Ranking(kind, params, _direction(m.group("dir"), desc), _int(m, "n"), text[m.start():end]),
                    [(m.start(), end)], "")
    m = _RANK_BY.search(text)
    if m:
        metric = _metric_at(text, m.end())
        if metric:
            kind, params, desc, end = metric
            top = _RANK_TOPN.search(text)
            d = m.group("dir") or m.group("dir2")
            order = _RANK_ORDER.match(text, end)  # "rank by RSI, lowest first"
            if order:
                d = "lowest" if order.group("asc") else "highest"
                end = order.end()
            spans = [(m.start(), end)]
            n = None
            if top:
                n = int(top.group("n"))
                spans.append((top.start(), top.end()))
            return (Ranking(kind, params, _direction(d, desc), n, text[m.start():end]), spans, "")
    return None


_RANK_ADJECTIVE = re.compile(
    r"\b(?:the\s+)?(?:top\s+)?(?:(?P<n>\d+)\s+)?(?P<dir>most|least)\s+(?P<adj>volatile|liquid|active|actively traded|traded|oversold"
    r"|overbought)\s+(?:stocks?|symbols?|names?|tickers?|companies|equities|shares)"
    r"(?:\s+(?:by|on|according to)\s+(?:the\s+)?rsi(?:\((?P<p>\d+)\))?)?\b")
_RANK_PERFORMERS = re.compile(
    r"\b(?:the\s+)?(?:(?P<n>\d+)\s+)?(?P<dir>strongest|weakest|best|worst)(?:\s+performing)?\s+"
    r"(?:stocks?|symbols?|names?|tickers?|companies|equities|shares)\b(?!\s+(?:by|on|in terms of|ranked by|sorted by)\b)")
_RANK_LATER_PERIOD = re.compile(r"\b(?:(?:over|in|during|for)\s+(?:the\s+)?(?:past|last|prior|previous)\s+|this\s+)(?P<n>\d+)d\b")
_RANK_TOP_METRIC = re.compile(r"\b(?:the\s+)?(?P<top>top|best|bottom|worst)\s+(?P<n>\d+)\s+")
_RANK_PERIOD = re.compile(rf"\s+(?:{PER_WORDS}\s+)?(?:{BACK})?(?P<n>\d+)d\b")
_RANK_SUPER_METRIC = re.compile(
    r"\b(?:the\s+)?(?:(?P<n>\d+)\s+)?(?P<dir>cheapest|largest|biggest|smallest|highest|lowest|strongest|weakest|best|worst)\s+")
_RANK_SUPERLATIVE = re.compile(
    r"\b(?:the\s+)?(?:(?P<n>\d+)\s+)?(?P<dir>cheapest|largest|biggest|smallest|highest|lowest|strongest|weakest|best|worst)"
    r"\s+(?:stocks?|symbols?|names?|tickers?|companies|equities|shares)\s+(?:by|on|in terms of|ranked by|sorted by)\s+")
_RANK_ORDER = re.compile(r"\s*,?\s*(?:(?P<asc>lowest|smallest|least|low to high|ascending)|(?P<desc>highest|largest|biggest|most"
                         r"|high to low|descending))(?:\s+(?:ones?\s+)?first)?\b")


# --------------------------------------------------------------------------- sectors
_SECTOR_WORDS = (
    r"information technology|info tech|technology|tech|semiconductors?|software|"
    r"health ?care|healthcare|biotech(?:nology)?|pharma(?:ceuticals?)?|medical|"
    r"financials?|financial services|finance|banks?|banking|insurance|"
    r"energy|oil and gas|oil|utilit(?:y|ies)|real estate|reits?|"
    r"consumer staples|staples|consumer defensive|consumer discretionary|discretionary|consumer cyclicals?|retail|"
    r"industrials?|materials|basic materials|communication services|communications?|telecom(?:munications?)?|media"
)
_SECTOR_RE = re.compile(rf"\b(?P<s>{_SECTOR_WORDS})(?:\s+(?:stocks?|sector|names|companies|shares|space|industry|plays))?\b")
_SECTOR_EXTRA = {"semiconductor": "Technology", "semiconductors": "Technology", "software": "Technology",
                 "biotech": "Healthcare", "biotechnology": "Healthcare", "pharma": "Healthcare",
                 "pharmaceutical": "Healthcare", "pharmaceuticals": "Healthcare", "medical": "Healthcare",
                 "bank": "Financials", "banks": "Financials", "banking": "Financials", "insurance": "Financials",
                 "oil": "Energy", "retail": "Consumer Discretionary"}


def sector_of(word: str) -> str | None:
    word = word.strip()
    return _SECTOR_EXTRA.get(word) or canonical_sector(word)


# --------------------------------------------------------------------------- combining
_NEG = re.compile(r"\b(?:not|no|without|never|excluding|exclude|except|isn't|aren't|wasn't|doesn't|don't|didn't|hasn't"
                  r"|haven't|hadn't|won't|neither|nor)\b|n't\b")
_OR = re.compile(r"\bor\b|\beither\b")
_AND = re.compile(r"\band\b|\bwith\b|\bbut\b|\bplus\b|\bwhile\b|\balso\b|\bwhere\b|\bthat\b|\bwhich\b|&|;|\bwithout\b"
                  r"|\bexcluding\b|\bexcept\b|\bon\b|\bafter\b|\bwhen\b|\bwhose\b|\bhaving\b")

_FILLER = frozenset(["find", "show", "list", "give", "get", "me", "my", "i", "we", "us", "our", "want", "wanted", "looking", "look", "for", "scan", "screen", "screener", "search", "identify", "alert", "alerts", "notify", "tell", "when", "whenever", "if", "where", "which", "that", "who", "whose", "stocks", "stock", "shares", "share", "companies", "company", "names", "name", "tickers", "ticker", "symbols", "symbol", "equities", "equity", "securities", "the", "a", "an", "with", "and", "or", "but", "not", "no", "of", "in", "on", "at", "by", "to", "from", "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "its", "their", "it", "they", "them", "there", "this", "these", "those", "any", "all", "some", "today", "day", "days", "session", "currently", "current", "now", "just", "recently", "recent", "still", "also", "both", "either", "neither", "nor", "than", "then", "so", "very", "pattern", "patterns", "signal", "signals", "setup", "setups", "candle", "candles", "candlestick", "bar", "bars", "trading", "trade", "trades", "traded", "please", "can", "could", "you", "would", "like", "need", "should", "etc", "sector", "sectors", "space", "industry", "plays", "play", "ones", "one", "having", "whose", "into", "onto", "after", "before", "while", "where", "what", "show", "screen", "flag", "flags", "triggered", "trigger", "triggers", "gives", "forming", "form", "formed", "forms", "print", "prints", "printed", "appear", "appears", "appearing", "daily", "market", "markets", "price", "prices", "strategy", "strategies", "idea", "ideas", "buy", "sell", "entry", "entries", "candidates", "candidate", "universe", "filter", "filters", "filtered", "day's", "sessions", "today's", "currently", "occurring", "occur", "occurs", "occurred", "happen", "happens", "happened", "make", "makes", "making", "made", "first",
                     "followed", "trendfollowing"])


def parse_text(prompt: str) -> Spec:
    """Parse ``prompt`` into a :class:`Spec` (no refusal checks here)."""
    text = normalize(prompt)
    claimed: list[tuple[int, int]] = []
    notes: list[str] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in claimed)

    ranking = None
    found = find_ranking(text)
    if found:
        ranking, spans, note = found
        claimed.extend(spans)
        if note:
            notes.append(note)

    hits: list[Hit] = []
    for _name, rx, build in RECOGNISERS:
        for m in rx.finditer(text):
            a, b = m.start(), m.end()
            # trim leading/trailing blanks from the span
            while a < b and text[a] == " ":
                a += 1
            while b > a and text[b - 1] == " ":
                b -= 1
            if a >= b or not free(a, b):
                continue
            out = build(m)
            if out is None:
                continue
            hit = out if isinstance(out, Hit) else Hit(0, 0, out)
            hit.start, hit.end = a, b
            hits.append(hit)
            claimed.append((a, b))
    hits.sort(key=lambda h: h.start)
    _chain_averages(text, hits)
    for h in hits:
        _yesterday(text, h, free)
        _and_trend(text, h, free)
        _within(text, h, free)
        _persist(text, h, free)
        _count(text, h, free)
        _first_time(text, h, free)
    _persist_pairs(text, hits)
    recognised = [(h.start, h.end) for h in hits]
    hits, title_end = _drop_title(text, hits)

    # weak defaults give way to explicit conditions of their family
    strong_kinds = {c.kind for h in hits if not h.weak for c in _leaves(h.node)}
    # fundamentals give way field by field ("value stocks with a market cap over $1B" keeps P/E < 15)
    strong_kinds |= {f"fundamental:{c.params['field']}" for h in hits if not h.weak for c in _leaves(h.node)
                     if c.kind == "fundamental"}
    hits = [h for h in hits if not (h.weak and h.weak & strong_kinds)]
    # exact duplicates of an earlier condition are merged (not in a sequence: "gap up, then an
    # inside day, then a gap up" asks for two gaps on different sessions)
    seen: list[Node] = []
    unique: list[Hit] = []
    sequenced = _THEN.search(text) is not None or _AFTER.search(text) is not None
    for h in hits:
        if h.node in seen and not sequenced:
            continue
        seen.append(h.node)
        unique.append(h)
    hits = unique
    notes.extend(h.note for h in hits if h.note)

    # leftovers: tickers, sectors, ignored words
    rest = list(text)
    for a, b in recognised:
        for i in range(a, b):
            rest[i] = " "
    leftover = "".join(rest)
    # "not" in "not in the tech sector" or "except AAPL" excludes a sector or a ticker; it negates
    # no condition, and it is no leftover word either
    excluding: list[tuple[int, int]] = []  # (start of the negation, end of the sector / ticker)
    sector_words: list[tuple[re.Match, str, bool]] = []  # (match, sector, excluded)
    for sm in _SECTOR_RE.finditer(leftover):
        sec = sector_of(sm.group("s"))
        if not sec:
            continue
        neg = _SECTOR_NEG.search(text[max(0, sm.start() - 30):sm.start()])
        sector_words.append((sm, sec, neg is not None))
        if neg is not None:
            excluding.append((max(0, sm.start() - 30) + neg.start(), sm.end()))
    excluded_tickers: list[str] = []
    last_excluded_end = -1
    for tm in re.finditer(r"\bsym_([a-z.]+)\b", leftover):
        before = text[max(0, tm.start() - 30):tm.start()]
        neg = _TICKER_NEG.search(before)
        if neg is not None:
            start = max(0, tm.start() - 30) + neg.start()
        elif last_excluded_end >= 0 and re.fullmatch(r"\s*(?:,|and|or|&|,\s*and|,\s*or)\s*", text[last_excluded_end:tm.start()]):
            start = last_excluded_end  # "except AAPL and MSFT"
        else:
            continue
        excluded_tickers.append(tm.group(1).upper())
        last_excluded_end = tm.end()
        excluding.append((start, tm.end()))
    combine_text = list(text)
    for a, b in excluding:
        combine_text[a:b] = " " * (b - a)
    expr, unsequenced = _combine("".join(combine_text), hits)

    # an index's members are the universe the strategy is run on: said, not checked
    for im in re.finditer(r"\bindex_(spy|qqq|dia)\b", leftover):
        name = {"spy": "S&P 500", "qqq": "Nasdaq-100", "dia": "Dow Jones"}[im.group(1)]
        notes.append(f"'{name} stocks' is the universe you run the strategy on (screen or backtest it on that list); "
                     "the strategy itself does not check index membership")
    leftover = re.sub(r"\bindex_(?:spy|qqq|dia)\b", lambda m: " " * len(m.group(0)), leftover)
    tickers: list[str] = []
    for tm in re.finditer(r"\bsym_([a-z.]+)\b", leftover):
        t = tm.group(1).upper()
        if t not in tickers and t not in excluded_tickers:
            tickers.append(t)
    # blanking keeps every position, so the ranking's spans below still line up
    leftover = re.sub(r"\bsym_[a-z.]+\b", lambda m: " " * len(m.group(0)), leftover)
    sectors: list[str] = []
    excluded: list[str] = []  # "non-tech", "not in the technology sector", "excluding banks"
    for _sm, sec, out in sector_words:
        if out:
            excluded.append(sec)
        elif sec not in sectors:
            sectors.append(sec)
    chars = list(_SECTOR_RE.sub(lambda m: " " * len(m.group(0)), leftover))
    for a, b in excluding:
        chars[a:b] = " " * (b - a)
    leftover = "".join(chars)
    if ranking is not None and found:
        chars = list(leftover)
        for a, b in found[1]:
            for i in range(a, b):
                chars[i] = " "
        leftover = "".join(chars)
    if title_end >= 0:  # the setup's name: its other words ("reversal") are no stated condition
        leftover = " " * title_end + leftover[title_end:]
    ignored = tuple(w for w in re.findall(r"[a-z][a-z'\-]*|\d+(?:\.\d+)?%?", leftover)
                    if w not in _FILLER and not _NEG.fullmatch(w) and (len(w) > 1 or w.isdigit()))
    # "tech stocks excluding semiconductors": a part of a sector cannot be left out of it (the
    # sector data has no finer level), and dropping either side would select what was excluded
    ignored = ignored + tuple(f"not-{sec.lower().replace(' ', '-')}" for sec in dict.fromkeys(excluded) if sec in sectors)
    ignored = ignored + unsequenced
    return Spec(prompt=prompt, expr=expr, tickers=tuple(tickers), excluded_tickers=tuple(dict.fromkeys(excluded_tickers)),
                sectors=tuple(sectors),
                excluded_sectors=tuple(dict.fromkeys(x for x in excluded if x not in sectors)), ranking=ranking,
                defaults=tuple(dict.fromkeys(notes)), ignored=ignored, normalized=text)


_TICKER_NEG = re.compile(r"(?:\bexcept\s+(?:for\s+)?|\bexcluding\s+|\bexclude\s+|\bother\s+than\s+|\bbut\s+not\s+"
                         r"|\bbesides\s+|\bapart\s+from\s+|\bwithout\s+|\bnot\s+|\bno\s+|\bex\s*-?\s*)$")
_SECTOR_NEG = re.compile(r"(?:\bnon\s*-?\s*|\bno\s+|\bnot\s+(?:in\s+)?(?:the\s+|a\s+)?|\bexcluding\s+(?:the\s+)?|\bexcept\s+(?:for\s+)?(?:the\s+)?"
                         r"|\bex\s*-?\s*|\bother\s+than\s+(?:the\s+)?|\boutside\s+(?:of\s+)?(?:the\s+)?|\bwithout\s+(?:the\s+)?)$")


#: Patterns that may be asked for "in the last N days" (a cross, a candle, a new high...)
#: levels "in the last N days" can follow: on one of those sessions. Not the measures whose own
#: window a trailing period would name (returns, average volume, volatility...).
WITHIN_VALUE_KINDS = frozenset(["rsi", "stochastic", "williams_r", "cci", "mfi", "adx", "gap", "body", "relative_volume",
                                "ma_distance", "ma_spread", "macd", "close_location", "percent_b",
                                "range_atr", "close_off_extreme", "zscore"])
WITHIN_KINDS = frozenset(["ma_cross", "macd_cross", "rsi_cross", "stoch_cross", "dmi", "candle", "new_extreme", "breakout",
                          "obv_extreme", "bb_squeeze", "keltner", "bollinger"])
_WITHIN_TAIL = re.compile(r"\s*(?:,\s*)?(?:at\s+some\s+point\s+)?(?:in|within|during|over)\s+(?:the\s+)?(?:past|last|prior|previous)"
                          r"\s+(?P<n>\d+)d\b|\s*(?:,\s*)?(?P<recent>recently|lately)\b")
RECENT_SESSIONS = 5  # "recently": on one of the last 5 sessions


def _within(text: str, h: Hit, free: Callable[[int, int], bool]) -> None:
    """Turn a pattern hit followed by "in the last N days" into "on any of the last N sessions"
    (a golden cross within a week is not a golden cross today)."""
    node = h.node
    if not isinstance(node, Condition) or node.kind not in (WITHIN_KINDS if node.op is None else WITHIN_VALUE_KINDS):
        return
    m = _WITHIN_TAIL.match(text, h.end)
    if m is None or not free(h.end, m.end()):
        return
    days = int(m.group("n")) if m.group("n") else RECENT_SESSIONS
    if days <= 1:
        return
    params = {"kind": node.kind, "params": tuple(sorted(node.params.items())), "days": days}
    if node.op is not None:  # "RSI below 30 in the last 3 days": the level on one of those sessions
        params.update(op=node.op, threshold=node.threshold)
    h.node = Condition("within", params, None, None, node.text + text[h.end:m.end()])
    if m.group("recent"):
        h.note = (h.note + "; " if h.note else "") + f"'recently' means on one of the last {RECENT_SESSIONS} sessions"
    h.end = m.end()


#: Conditions on other data than the symbol's own bars cannot be re-read "as of" earlier sessions
_NOT_PERSISTABLE = frozenset(["fundamental", "earnings_surprise", "relative_strength", "within", "persist", "streak",
                              "count", "first"])
_ORDINALS = {"second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10}
_PERSIST_ORDINAL = re.compile(rf"\s*(?:,\s*)?for\s+(?:the\s+|a\s+)?(?P<ord>{'|'.join(_ORDINALS)}|(?P<num>\d+)(?:st|nd|rd|th))\s+"
                              r"(?:(?:straight|consecutive)\s+(?:day|session|time)s?\b|(?:day|session|time)\s+(?:in a row|straight"
                              r"|running)\b)")
_PERSIST_TAIL = re.compile(r"\s*(?:,\s*)?(?:for|during)\s+(?:>=\s*|at\s+least\s+)?(?:(?:the|each\s+of\s+the|every\s+one\s+of\s+the)\s+)?"
                           r"(?:past|last|previous|prior)?\s*(?P<n>\d+)(?:d\b|\s+(?:straight|consecutive|running)\s+"
                           r"(?:days?|sessions?|closes?|bars?)\b)(?:\s+(?:in a row|straight|running|consecutively))?"
                           r"|\s*(?:,\s*)?(?P<n2>\d+)d\s+(?:in a row|straight|running|consecutively)\b")


def _drop_title(text: str, hits: list[Hit]) -> tuple[list[Hit], int]:
    """"Gap down then reversal: gap down at least 2% and close above yesterday's close": what comes
    before the colon names the setup that follows it. When every measure in the name is stated
    again after the colon, the name adds no condition (nor a sequence); otherwise it is kept
    ("new 52-week high: volume above 2x average" states two conditions). Returns the hits and
    where the dropped name ends (-1 when nothing was dropped)."""
    colon = text.find(":")
    if colon < 0:
        return hits, -1
    before = [h for h in hits if h.end <= colon]
    after = [h for h in hits if h.start > colon]
    if not before or not after:
        return hits, -1
    def kinds(hs: list[Hit]) -> set[str]:
        return {c.params["kind"] if c.kind in _WRAPPERS else c.kind for h in hs for c in _leaves(h.node)}

    return (after, colon) if kinds(before) <= kinds(after) else (hits, -1)


#: kinds that wrap another condition (its kind in params["kind"])
_WRAPPERS = frozenset(["prior", "within", "persist", "count", "first", "change"])


def _persist_pairs(text: str, hits: list[Hit]) -> None:
    """"Higher highs and higher lows for 3 days": a "for N days" after two conditions of the same
    kind joined by "and" holds for both (each on every one of those sessions)."""
    for a, b in itertools.pairwise(hits):
        na, nb = a.node, b.node
        if (isinstance(na, Condition) and isinstance(nb, Condition) and nb.kind == "persist"
                and na.kind == nb.params["kind"] and na.kind not in _NOT_PERSISTABLE
                and re.fullmatch(r"\s*(?:,\s*)?and\s+", text[a.end:b.start])):
            a.node = Condition("persist", {"kind": na.kind, "params": tuple(sorted(na.params.items())),
                                           "days": nb.params["days"], "op": na.op, "threshold": na.threshold},
                               None, None, na.text)


_PERSIST_HEAD = re.compile(r"\b(?P<n>\d+)\s+(?:consecutive|straight|successive)\s+$")
_PERSIST_HEAD_OF = re.compile(r"\b(?P<n>\d+)\s+(?:consecutive|straight|successive)\s+(?:days?|sessions?|d)\s+of\s+$"
                              r"|\b(?P<n2>\d+)d\s+(?:in a row\s+)?of\s+$")


def _persist(text: str, h: Hit, free: Callable[[int, int], bool]) -> None:
    """Turn a condition followed by "for N days" / "N days in a row" into "on each of the last
    N sessions" (ten closes above the 200-day average, not just today's)."""
    node = h.node
    if not isinstance(node, Condition) or node.kind in _NOT_PERSISTABLE:
        return
    ordinal = _PERSIST_ORDINAL.match(text, h.end)
    if ordinal is not None and free(h.end, ordinal.end()):  # "for the third day in a row"
        days = int(ordinal.group("num")) if ordinal.group("num") else _ORDINALS[ordinal.group("ord")]
        if days > 1:
            h.node = Condition("persist", {"kind": node.kind, "params": tuple(sorted(node.params.items())), "days": days,
                                           "op": node.op, "threshold": node.threshold}, None, None, node.text)
            h.end = ordinal.end()
        return
    m = _PERSIST_TAIL.match(text, h.end)
    head = _PERSIST_HEAD.search(text[:h.start])
    if head is None:  # "3 consecutive days of rising volume": any condition
        of = _PERSIST_HEAD_OF.search(text[:h.start])
        if of is not None and free(of.start(), h.start):
            h.node = Condition("persist", {"kind": node.kind, "params": tuple(sorted(node.params.items())),
                                           "days": int(of.group("n") or of.group("n2")), "op": node.op,
                                           "threshold": node.threshold}, None, None, node.text)
            h.start = of.start()
            return
    row = None
    if node.op is None and head is None:  # "3 inside days in a row": the count before, "in a row" after
        count = re.search(r"\b(?P<n>\d+)\s+$", text[:h.start])
        row = _IN_A_ROW.match(text, h.end)
        if count is not None and row is not None and free(count.start(), h.start) and free(h.end, row.end()):
            head = count
        else:
            row = None
    if m is not None and free(h.end, m.end()):
        days = int(m.group("n") or m.group("n2"))
    elif head is not None and free(head.start(), h.start):
        days = int(head.group("n"))
    else:
        return
    if days <= 1:
        return
    h.node = Condition("persist", {"kind": node.kind, "params": tuple(sorted(node.params.items())), "days": days,
                                   "op": node.op, "threshold": node.threshold}, None, None, node.text)
    if m is not None and free(h.end, m.end()):
        h.end = m.end()
    else:
        h.start = head.start()
        if row is not None:
            h.end = row.end()


_IN_A_ROW = re.compile(r"\s+(?:in a row|straight|consecutive(?:ly)?|running)\b")
_TREND_TAIL = re.compile(rf"\s*,?\s+and\s+(?:is\s+|still\s+|now\s+)*(?P<dir>{_TREND_WORDS})\b")
_STOCH_CROSS_TAIL = re.compile(r"\s*,?\s+and\s+(?:is\s+|now\s+)*(?:crossing|crosses|crossed|turning|turns|turned|hooking|hooks"
                               r"|hooked)\s+(?P<dir>up|down)\b")
#: measures "and rising" can follow ("ADX above 25 and rising")
CHANGE_KINDS = frozenset(["rsi", "cci", "mfi", "adx", "williams_r", "stochastic", "macd"])


def _and_trend(text: str, h: Hit, free: Callable[[int, int], bool]) -> None:
    """"ADX above 25 and rising": the level, and the indicator above its value at the previous
    session (the trend word has no subject of its own)."""
    node = h.node
    if isinstance(node, Condition) and node.kind == "ma_spread":
        m = _TREND_TAIL.match(text, h.end)
        if m is not None and free(h.end, m.end()):
            # "the 10-day EMA is above the 30-day EMA and rising": the subject, the faster average, rises
            up = m.group("dir") in _UPWARD
            h.node = AllOf((node, Condition("ma_slope", {"period": node.params["fast"], "ma": node.params["ma"],
                                                         "lookback": MA_SLOPE_LOOKBACK}, ">" if up else "<", 0.0,
                                            text[h.start:m.end()])))
            h.note = (h.note + "; " if h.note else "") + (f"a rising / falling moving average is above / below its value "
                                                          f"{MA_SLOPE_LOOKBACK} sessions earlier")
            h.end = m.end()
        return
    if not isinstance(node, Condition) or node.kind not in CHANGE_KINDS or node.op is None:
        return
    cross = _STOCH_CROSS_TAIL.match(text, h.end) if node.kind == "stochastic" else None
    if cross is not None and free(h.end, cross.end()):
        # "stochastic below 20 and crossing up": %K crossing %D, with the level
        p = {k: v for k, v in node.params.items() if k != "line"}
        up = cross.group("dir") == "up"
        h.node = AllOf((node, Condition("stoch_cross", {**p, "direction": "up" if up else "down"}, None, None,
                                        text[h.start:cross.end()])))
        h.end = cross.end()
        return
    m = _TREND_TAIL.match(text, h.end)
    if m is None or not free(h.end, m.end()):
        return
    h.node = AllOf((node, change_node(node.kind, node.params, m.group("dir") in _UPWARD, text[h.start:m.end()])))
    h.note = (h.note + "; " if h.note else "") + "a rising / falling indicator is above / below its value at the previous session"
    h.end = m.end()


_YESTERDAY_TAIL = re.compile(r"\s*(?:,\s*)?(?:yesterday|on\s+the\s+(?:previous|prior)\s+(?:day|session))\b")


def _yesterday(text: str, h: Hit, free: Callable[[int, int], bool]) -> None:
    """"A gap up yesterday": the condition as of the previous session (the same as "after a gap up")."""
    node = h.node
    if not isinstance(node, Condition) or node.kind in _NOT_PRIOR:
        return
    m = _YESTERDAY_TAIL.match(text, h.end)
    if m is None or not free(h.end, m.end()):
        return
    h.node = _prior(node)
    h.end = m.end()


_COUNT_TAIL = re.compile(r"\s*(?:,\s*)?(?:(?:on|in|during|for)\s+)?(?:>=\s*)?(?P<k>\d+)\s+(?:of|out of)\s+"
                         r"(?:the\s+)?(?:last|past|previous|prior)\s+(?P<n>\d+)(?:d\b|\b)")


_COUNT_HEAD = re.compile(r"\b(?:on\s+|in\s+)?(?:>=\s*)?(?P<k>\d+)\s+(?:of|out of)\s+(?:the\s+)?(?:last|past|previous|prior)\s+"
                         r"(?P<n>\d+)d?\s*,?\s+(?:(?:the\s+)?(?:stock|price|it|shares)\s+)?$")


def _count(text: str, h: Hit, free: Callable[[int, int], bool]) -> None:
    """Turn a condition followed by "on (at least) K of the last N days" (or preceded by "K of
    the last N days") into "on at least K of the last N sessions", each evaluated on the bars as
    they stood that day."""
    node = h.node
    if not isinstance(node, Condition) or node.kind in _NOT_PERSISTABLE:
        return
    m = _COUNT_TAIL.match(text, h.end)
    if m is not None and free(h.end, m.end()):
        start, end = h.start, m.end()
    else:
        m = _COUNT_HEAD.search(text[:h.start])
        if m is None or not free(m.start(), h.start):
            return
        start, end = m.start(), h.end
    k, n = int(m.group("k")), int(m.group("n"))
    if not 1 <= k <= n:
        return
    h.node = Condition("count", {"kind": node.kind, "params": tuple(sorted(node.params.items())), "op": node.op,
                                 "threshold": node.threshold, "days": n}, ">=", float(k), node.text)
    h.start, h.end = start, end


_FIRST_TAIL = re.compile(r"\s*(?:,\s*)?(?:for\s+)?(?:the\s+)?first\s+time\s+(?:in|since)\s+(?:over\s+|>\s*)?"
                         r"(?:the\s+)?(?:last\s+|past\s+)?(?P<n>\d+)d\b")
_FIRST_HEAD = re.compile(r"\b(?:the\s+|for\s+the\s+)?first\s+(?:time\s+)?(?:(?:that|when|it|price|the\s+stock)\s+)*$")
_FIRST_HEAD_TAIL = re.compile(r"\s+(?:in|since)\s+(?:over\s+|>\s*)?(?:the\s+)?(?:last\s+|past\s+)?(?P<n>\d+)d\b")


def _first_time(text: str, h: Hit, free: Callable[[int, int], bool]) -> None:
    """"RSI above 50 for the first time in 20 days" / "the first close above the 200-day average
    in 3 months": the condition holds today and held on none of the N sessions before."""
    node = h.node
    if not isinstance(node, Condition) or node.kind in _NOT_PERSISTABLE:
        return
    m = _FIRST_TAIL.match(text, h.end)
    if m is not None and free(h.end, m.end()):
        start, end = h.start, m.end()
    else:
        head = _FIRST_HEAD.search(text[:h.start])
        m = _FIRST_HEAD_TAIL.match(text, h.end)
        if head is None or m is None or not free(head.start(), h.start) or not free(h.end, m.end()):
            return
        start, end = head.start(), m.end()
    days = int(m.group("n"))
    if days < 1:
        return
    h.node = Condition("first", {"kind": node.kind, "params": tuple(sorted(node.params.items())), "op": node.op,
                                 "threshold": node.threshold, "days": days}, None, None, node.text)
    h.start, h.end = start, end


def _chain_averages(text: str, hits: list[Hit]) -> None:
    """"EMA(8) > EMA(21) > EMA(55)": the second comparison's subject is the 21-day EMA, not the
    close (a moving average compared with nothing before it reads as the close otherwise)."""
    for a, b in zip(hits, hits[1:]):
        na, nb = a.node, b.node
        if not (isinstance(na, Condition) and isinstance(nb, Condition) and na.kind == "ma_spread"
                and nb.kind == "ma_distance" and nb.threshold == 0 and text[a.end:b.start].strip() == ""
                and re.match(r"\s*(?:>|<|(?:above|below|over|under)\b)", text[b.start:])):
            continue
        # the right-hand average of the first comparison, as written
        fast, slow = int(re.findall(r"(\d+)d", text[a.start:a.end])[-1]), nb.params["period"]
        above = nb.op in (">", ">=")
        if fast == slow:
            continue
        if fast > slow:
            fast, slow, above = slow, fast, not above
        b.node = Condition("ma_spread", {"fast": fast, "slow": slow, "ma": nb.params["ma"]}, ">" if above else "<", 0.0,
                           nb.text)
    for a, b in itertools.pairwise(hits):
        na, nb = a.node, b.node
        # "close above the 20-day EMA, which is above the 50-day EMA": the second subject is the 20-day EMA
        if not (isinstance(na, Condition) and isinstance(nb, Condition) and na.kind == nb.kind == "ma_distance"
                and na.threshold == 0 and nb.threshold == 0
                and re.fullmatch(r"\s*,?\s*(?:which|that|itself)\s+(?:is|are|sits|stays|remains|itself)?\s*",
                                 text[a.end:b.start])):
            continue
        fast, slow, above = na.params["period"], nb.params["period"], nb.op in (">", ">=")
        if fast == slow or na.params["ma"] != nb.params["ma"]:
            continue
        if fast > slow:
            fast, slow, above = slow, fast, not above
        b.node = Condition("ma_spread", {"fast": fast, "slow": slow, "ma": nb.params["ma"]}, ">" if above else "<", 0.0,
                           nb.text)


_AFTER = re.compile(r"\bafter\b|\bfollowing\b")
_THEN = re.compile(r"\bthen\b|\bfollowed\s+by\b")
_NOT_PRIOR = frozenset(["fundamental", "earnings_surprise", "relative_strength", "prior"])


def _prior(node: Node) -> Node:
    """``node`` as of the session before today (conditions on the symbol's own bars only)."""
    if isinstance(node, Condition) and node.kind not in _NOT_PRIOR:
        return Condition("prior", {"kind": node.kind, "params": tuple(sorted(node.params.items())),
                                   "op": node.op, "threshold": node.threshold}, None, None, node.text)
    if isinstance(node, AllOf):
        return AllOf(tuple(_prior(n) for n in node.items))
    if isinstance(node, AnyOf):
        return AnyOf(tuple(_prior(n) for n in node.items))
    if isinstance(node, Not):
        return Not(_prior(node.item))
    return node


def _leaves(node: Node) -> list[Condition]:
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return _leaves(node.item)
    return [c for item in node.items for c in _leaves(item)]


def _combine(text: str, hits: list[Hit]) -> tuple[Node | None, tuple[str, ...]]:
    """The condition tree of ``hits`` (connectors, negations, "after" / "then" sequencing) and
    the sequencing words it could not place ("A then B then C" needs two sessions back)."""
    if not hits:
        return None, ()
    nodes: list[Node] = []
    conns: list[str] = []
    unplaced: list[str] = []
    shifted: set[int] = set()
    prev_end = 0
    for i, h in enumerate(hits):
        gap = text[prev_end:h.start]
        if i > 0 and _THEN.search(gap):
            # "A then B" / "A followed by B": A held on the session before B (today)
            if i - 2 in shifted and _THEN.search(text[hits[i - 2].end:hits[i - 1].start]):
                unplaced.append("then")  # a chain of three sessions: not expressible here
            nodes[-1] = _prior(nodes[-1])
            shifted.add(i - 1)
        if i > 0:
            if _OR.search(gap):
                conns.append("or")
            elif _AND.search(gap):
                conns.append("and")
            else:
                conns.append("")
        # negation: a negation word after the last connector in the gap
        tail = gap
        last = None
        for cm in re.finditer(r"\band\b|\bor\b|\bbut\b|\bwith\b|,|;|\bplus\b|\bwhile\b", gap):
            last = cm
        if last is not None:
            tail = gap[last.end():]
        if i == 0:
            tail = gap[-40:]
        node = h.node
        if _AFTER.search(gap) and (i > 0 or len(hits) > 1):
            # "A after B" / "after B, A": B held on the session before today, not on the same day
            node = _prior(node)
        if _NEG.search(tail) or (last is not None and re.search(r"\bwithout\b|\bexcluding\b|\bexcept\b", gap)):
            node = Not(node)
        nodes.append(node)
        prev_end = h.end
    # neutral connectors take the next explicit one ("A, B or C"), else "and"
    resolved: list[str] = []
    for i, c in enumerate(conns):
        if c:
            resolved.append(c)
            continue
        nxt = next((x for x in conns[i + 1:] if x), "and")
        resolved.append(nxt)
    groups: list[list[Node]] = [[nodes[0]]]
    for c, node in zip(resolved, nodes[1:]):
        if c == "or":
            groups.append([node])
        else:
            groups[-1].append(node)
    terms: list[Node] = [g[0] if len(g) == 1 else AllOf(tuple(g)) for g in groups]
    return (terms[0] if len(terms) == 1 else AnyOf(tuple(terms))), tuple(unplaced)
