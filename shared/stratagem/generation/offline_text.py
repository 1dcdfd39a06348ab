"""Text normalisation and refusal rules of the offline generator.

:func:`normalize` rewrites a prompt into a small canonical vocabulary that the recognisers
in ``offline_parse`` match against:

* tickers written in capitals (``AAPL``) or as cashtags (``$aapl``) become ``sym_aapl``;
* number words become digits ("three" -> 3, "twenty-five" -> 25), multiples become ``Nx``
  ("twice" -> 2x, "1.5 times" -> 1.5x, "half" -> 0.5x), percent words become ``%``;
* money units become plain numbers ("$1B" -> $1000000000, "1.5 billion", "500M", "2 trillion");
* durations become bar counts ``Nd``: day/session/bar = 1, week = 5 (52 weeks = 252),
  month = 21, quarter = 63, year = 252 ("over the past month" -> "over the past 21d");
* indicator names get one spelling (``sma``/``ema``/``ma``, ``rsi(N)``, ``atr(N)``,
  ``bollinger``, ``std``, ``zscore``, ``pe``, ``eps``, ``mcap``, ``de``);
* comparison phrases become symbols ("more than" -> ``>``, "at least" -> ``>=``,
  "less than" -> ``<``, "at most"/"no more than" -> ``<=``); the words above/over/below/under
  stay words (they also mean positions: "above its 200-day moving average").

:func:`refusal` says why a request cannot be expressed honestly with daily bars and the
data API (intraday, options, news/sentiment, order book, crypto/forex, predictions, data
fields that do not exist), or returns ``None``.
"""

from __future__ import annotations

import re
import unicodedata

# ----------------------------------------------------------------------------- refusals

CAPABILITIES = (
    "The offline generator builds daily-bar strategies (evaluated at each session's close) from: "
    "opening gaps; returns and momentum over N days; price versus moving averages and SMA/EMA "
    "crosses (golden/death cross); MACD; RSI (any period); Bollinger bands; volume spikes "
    "relative to an average, rising volume, volume and dollar-volume levels and short vs long average "
    "volume; new N-day/52-week highs and lows and breakouts; candlestick patterns (inside/outside "
    "day, engulfing, hammer, shooting star, doji, NR7, morning/evening star, three white soldiers/black "
    "crows, harami, piercing line, dark cloud cover), today's bar vs yesterday's, and where the close "
    "sits in the day's range or how far it is from the day's high or low; any pattern 'in the last N "
    "days', and any condition 'for N days in a row', 'on K of the last N days' or 'for the first time "
    "in N days'; ATR (level, rising or falling), the day's range vs ATR, daily "
    "range and volatility; stochastic (%K/%D and their cross), Williams %R, CCI, MFI, ADX and "
    "+DI/-DI; Keltner channels; Bollinger and TTM squeezes; on-balance volume highs and lows; "
    "up/down streaks; z-scores versus a moving mean; "
    "relative strength versus another symbol; price levels; fundamentals (P/E, EPS, market cap, "
    "debt to equity); sector filters (in or out of a sector); latest earnings surprise; a ticker restriction; "
    "and/or/not combinations; and top-N rankings by any of these measures."
)

_REFUSALS: tuple[tuple[str, str], ...] = (
    ("intraday data (minutes, hours, ticks, pre/after-market, VWAP) is not available: only daily bars",
     (r"\bintra-?day\b(?!\s+(?:range|high|low|swing|move|volatility))|\bminutes?\b|\bmins?\s+(?:bars?|candles?|chart)"
     r"|\b\d+\s*-?\s*(?:m|min|mins|minute|h|hr|hour)\s*(?:bars?|candles?|charts?|timeframe|candlesticks?)\b"
     r"|\bhourly\b|\bhours?\b|\b\d+h\b|\bticks?\b|\btick[- ]by[- ]tick\b|\bpre-?market\b|\bpost-?market\b"
     r"|\bafter-?hours\b|\bextended[- ]hours\b|\bopening range\b|\bvwap\b|\bseconds\b|\blast (?:\d+|few) mins?\b")),
    ("options data (option chains, implied volatility, greeks, open interest) is not available",
     (r"\boptions?\b|\bcalls? and puts?\b|\bputs? and calls?\b|\bput/call\b|\bcall/put\b|\bimplied vol\w*|\biv\b"
     r"|\biv (?:rank|percentile)\b|\bgreeks?\b|\bdelta\b|\bgamma\b|\btheta\b|\bvega\b|\bopen interest\b"
     r"|\bstrike(?: price)?s?\b|\bexpir(?:y|ation|ing)\b|\bstraddles?\b|\bstrangles?\b|\biron condors?\b"
     r"|\bcovered calls?\b|\bbuy(?:ing)? (?:calls|puts)\b")),
    ("news, sentiment, social media, analyst and insider data are not available",
     (r"\bnews\b|\bheadlines?\b|\bsentiment\b|\btweets?\b|\btwitter\b|\breddit\b|\bwallstreetbets\b|\bwsb\b"
     r"|\bsocial media\b|\bstocktwits\b|\bpress releases?\b|\banalysts?\b|\bupgrade[sd]?\b|\bdowngrade[sd]?\b"
     r"|\bprice targets?\b|\brumou?rs?\b|\bfda\b|\blawsuits?\b|\bceo\b|\binsiders?\b|\b13f\b|\bcongress\w*"
     r"|\bhype\b|\bviral\b|\bearnings calls?\b|\bconference calls?\b|\btranscripts?\b|\bmacro\b|\bfed\b"
     r"|\binterest rates?\b|\bcpi\b|\beconomic (?:data|calendar|news)\b")),
    ("order-book data (level 2, bid/ask, order flow, dark pools, time and sales) is not available",
     (r"\border ?books?\b|\blevel (?:2|ii|two)\b|\bl2\b|\bdepth of (?:book|market)\b|\bmarket depth\b"
     r"|\bbid[- /]?ask\b|\bbid and ask\b|\bbids? and offers?\b|\border flow\b|\bdark pools?\b|\btime and sales\b"
     r"|\btape reading\b|\bblock trades?\b|\bbid size\b|\bask size\b|\bspread between (?:the )?bid")),
    ("crypto, forex, futures and commodities are not in the data (US stocks only)",
     (r"\bcrypto\w*|\bbitcoin\b|\bbtc\b|\bethereum\b|\beth\b|\bdogecoin\b|\bdoge\b|\bsolana\b|\baltcoins?\b"
     r"|\bnfts?\b|\bforex\b|\bfx\b|\bcurrency pairs?\b|\bcurrencies\b|\b(?:eur|usd|gbp|jpy|aud|cad|chf)/?"
     r"(?:usd|jpy|eur|gbp|chf|cad|aud)\b|\bfutures\b|\bcommodit(?:y|ies)\b(?!\s+channel)|\bstablecoins?\b|\bdefi\b")),
    ("predictions and promises of profit cannot be expressed: a strategy states conditions on past data",
     (r"\bmake (?:me|us|you)? ?(?:rich|money|a fortune|millions)\b|\bget rich\b|\bgetting rich\b"
     r"|\b(?:will|going to|gonna|about to|likely to|expected to|predicted to|poised to|set to|sure to|bound to)"
     r" (?:go up|go down|rise|rally|moon|explode|double|triple|skyrocket|soar|pop|outperform|beat|increase"
     r"|gain|climb|surge|crash|drop|fall|decline|break ?out|recover|bounce|be (?:a )?winners?|win|make money)\b"
     r"|\bpredict\w*|\bforecast(?:s|ing|ed)? (?:the |future |which |what |tomorrow|price|returns?|stocks?)"
     r"|\bguarantee\w*|\bcan'?t lose\b|\bcannot lose\b|\bnever lose\b|\brisk[- ]free\b|\bsure (?:thing|bet)\b"
     r"|\bno[- ]brainer\b|\bto the moon\b|\bmoonshots?\b|\bnext (?:big thing|amazon|apple|tesla|nvidia|bitcoin)\b"
     r"|\bmulti-?baggers?\b|\b10-?baggers?\b|\bbest stocks? to (?:buy|own|hold)\b|\bwhat (?:should|to) (?:i )?buy\b"
     r"|\bstocks? to buy (?:now|today)\b|\beasy money\b|\bfree money\b|\btomorrow\b|\bnext (?:week|month|year|quarter)\b"
     r"|\bin the future\b|\bfuture (?:price|prices|returns?|performance)\b|\bwinning stocks?\b|\bhot stocks?\b"
     r"|\bstocks? that will\b|\bwill (?:go|be) (?:up|higher)\b")),
    ("weekly or monthly bars are not available: strategies run on daily bars",
     (r"\b(?:weekly|monthly) (?:bars?|candles?|charts?|closes?|rsi|macd|timeframe|candlesticks?)\b")),
    (("that data field is not available; fundamentals are limited to P/E, EPS, market cap, debt to equity, "
      "sector/industry and earnings reports (EPS actual/estimate, surprise, revenue)"),
     (r"\bdividends?\b|\byields?\b|\bshort interest\b|\bshort squeeze\b|\bdays to cover\b|\bshort float\b"
     r"|\bfloat\b|\binstitutional\b|\bownership\b|\broe\b|\broa\b|\breturn on (?:equity|assets|capital)\b"
     r"|\bfree cash flow\b|\bfcf\b|\bcash flow\b|\bbook value\b|\bprice[- ]to[- ]book\b|\bp/b\b|\bpeg\b"
     r"|\bev/ebitda\b|\bebitda\b|\b(?:gross|profit|operating|net) margins?\b|\bguidance\b|\bbeta\b"
     r"|\bprice[- ]to[- ]sales\b|\bp/s\b|\bbuybacks?\b|\bcredit rating\b|\besg\b")),
)
_REFUSAL_RES = tuple((reason, re.compile(pattern)) for reason, pattern in _REFUSALS)


def refusal(prompt: str) -> str | None:
    """Why ``prompt`` cannot be expressed with daily bars and the data API, or ``None``."""
    text = _basic(prompt).lower()
    for reason, rx in _REFUSAL_RES:
        if rx.search(text):
            return reason
    return None


# ----------------------------------------------------------------------------- tickers

#: Capitalised words that are not tickers (indicator names, units, shouting).
NOT_TICKERS = frozenset(["RSI", "SMA", "EMA", "MA", "DMA", "ATR", "MACD", "BB", "EPS", "PE", "PEG", "ROE", "ROA", "EV", "EBITDA", "FCF", "IPO", "CEO", "CFO", "NYSE", "NASDAQ", "AMEX", "SEC", "GDP", "CPI", "FOMC", "FED", "API", "OHLC", "OHLCV", "VWAP", "RVOL", "ADV", "AVG", "MAX", "MIN", "STD", "SD", "YTD", "MTD", "QTD", "TTM", "YOY", "QOQ", "EOD", "ATH", "ATL", "HV", "IV", "ETF", "ETFS", "USD", "US", "USA", "UK", "EU", "AND", "OR", "NOT", "BUT", "WITH", "WHEN", "THE", "FOR", "ALL", "ANY", "TOP", "BUY", "SELL", "LONG", "SHORT", "ME", "MY", "AN", "IT", "IS", "ON", "IN", "OF", "AT", "BY", "TO", "IF", "SO", "NO", "OK", "UP", "DOWN", "GAP", "HIGH", "LOW", "NEW", "DAY", "DAYS", "TA", "NR", "DE", "AM", "PM", "OTC", "AUM", "AI", "ESG", "GICS", "PCT", "DCF", "ADR", "REIT", "REITS", "BTC", "ETH", "FX", "NFT", "NFTS", "TECH", "IT", "LOL", "PLS", "PLEASE", "FIND", "SHOW", "ALERT", "STOCKS", "STOCK", "SCAN", "TRUE", "FALSE", "NULL", "NONE", "ID", "OTM", "ITM", "ATM", "DTE", "IVR", "CAGR", "MOM", "ROC", "OBV", "ADX", "CCI", "MFI", "DI", "DMI", "PDI", "MDI", "KC", "WR", "STOCH", "SAR", "PSAR", "PPO", "TRIX", "TSI", "WMA", "HMA", "KAMA", "VIX", "ALSO", "THAT", "THEN", "THAN", "ARE", "WAS", "HAS", "HAVE", "FROM", "INTO", "ONLY", "JUST", "LIKE", "OVER", "UNDER", "ABOVE", "BELOW", "MORE", "LESS"])

_TICKER_RE = re.compile(r"(?<![A-Za-z0-9_$/&.'\-])(\$?)([A-Z]{1,5}(?:\.[A-Z]{1,2})?)(?![A-Za-z0-9_/&'])")
_CASHTAG_RE = re.compile(r"\$([A-Za-z]{1,5}(?:\.[A-Za-z]{1,2})?)\b")


#: Company names traders use for well-known US listings -> their tickers (unambiguous names
#: only: "Target", "Visa" or "Ford" are also plain words).
COMPANY_TICKERS = {
    "apple": "AAPL", "microsoft": "MSFT", "google": "GOOG", "alphabet": "GOOG", "ibm": "IBM", "facebook": "FB",
    "meta platforms": "META", "amazon": "AMZN", "tesla": "TSLA", "nvidia": "NVDA", "netflix": "NFLX",
    "intel": "INTC", "salesforce": "CRM", "adobe": "ADBE", "paypal": "PYPL", "walmart": "WMT", "disney": "DIS",
    "boeing": "BA", "exxon": "XOM", "exxonmobil": "XOM", "exxon mobil": "XOM", "chevron": "CVX", "pfizer": "PFE",
    "jpmorgan": "JPM", "jp morgan": "JPM", "goldman sachs": "GS", "coca-cola": "KO", "coca cola": "KO",
    "pepsico": "PEP", "mcdonald's": "MCD", "mcdonalds": "MCD", "starbucks": "SBUX", "costco": "COST",
    "qualcomm": "QCOM", "broadcom": "AVGO", "berkshire hathaway": "BRK.B", "johnson & johnson": "JNJ",
    "johnson and johnson": "JNJ", "procter & gamble": "PG", "procter and gamble": "PG", "home depot": "HD",
    "verizon": "VZ", "cisco": "CSCO", "oracle": "ORCL", "uber": "UBER", "airbnb": "ABNB", "alibaba": "BABA",
    "palantir": "PLTR", "shopify": "SHOP", "spotify": "SPOT", "caterpillar": "CAT", "mastercard": "MA",
    "unitedhealth": "UNH", "merck": "MRK", "nike": "NKE", "amd": "AMD", "micron": "MU",
}
_COMPANY_RE = re.compile(r"(?<![\w$])(" + "|".join(re.escape(k) for k in sorted(COMPANY_TICKERS, key=len, reverse=True))
                         + r")(?:'s)?(?:\s+(?:inc|corp|corporation|co)\b\.?)?(?![\w-])", re.IGNORECASE)


# Well-known tickers written in lower case ("alert me when nvda gaps up"); not ones that are also
# English words ("cost", "ma", "cat", "shop", "spot", "hd", "ko", "pg", "gs", "ba", "dis", "mu").
_LOWER_TICKERS = ("aapl", "msft", "goog", "googl", "ibm", "fb", "amzn", "tsla", "nvda", "nflx", "intc", "amd", "adbe",
                  "pypl", "wmt", "xom", "cvx", "pfe", "jpm", "pep", "mcd", "sbux", "qcom", "avgo", "jnj", "csco",
                  "orcl", "abnb", "baba", "pltr", "unh", "mrk", "nke", "spy", "qqq", "iwm", "meta", "brk.b")
# any case: in an all-capitals prompt ("AAPL MSFT RSI BELOW 30") these are still tickers
_LOWER_TICKER_RE = re.compile(r"(?<![\w$])(" + "|".join(re.escape(t) for t in _LOWER_TICKERS) + r")(?:'s)?(?![\w-])",
                              re.IGNORECASE)


def _mark_companies(text: str) -> str:
    text = _COMPANY_RE.sub(lambda m: " $" + COMPANY_TICKERS[m.group(1).lower()] + " ", text)
    return _LOWER_TICKER_RE.sub(lambda m: " $" + m.group(1).upper() + " ", text)


def _mark_tickers(text: str) -> str:
    words = re.findall(r"[A-Za-z]{2,}", text)
    upper = [w for w in words if w.isupper()]
    # All in capitals ("FIND STOCKS WITH RSI BELOW 30"): capitals say nothing about tickers. A
    # prompt of mostly tickers and indicator names with some lower-case words ("AAPL RSI above
    # 70") is not shouting.
    lower = [w for w in words if w.islower()]
    shouting = len(words) >= 3 and (not lower or len(upper) >= 0.8 * len(words))

    def repl(m: re.Match) -> str:
        cash, tok = m.group(1), m.group(2)
        if not cash and (shouting or len(tok) < 2 or tok in NOT_TICKERS):
            return m.group(0)
        return " sym_" + tok.lower() + " "

    text = _TICKER_RE.sub(repl, text)
    return _CASHTAG_RE.sub(lambda m: " sym_" + m.group(1).lower() + " ", text)


# ----------------------------------------------------------------------------- numbers

_ONES = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])}
_UNITS = {"trillion": 1e12, "tn": 1e12, "t": 1e12, "billion": 1e9, "bn": 1e9, "b": 1e9, "bil": 1e9,
          "million": 1e6, "mln": 1e6, "mm": 1e6, "mn": 1e6, "m": 1e6, "mil": 1e6,
          "thousand": 1e3, "k": 1e3}


def fmt_number(x: float) -> str:
    """Plain decimal text for a number (no exponent): 1e9 -> '1000000000', 1.5 -> '1.5'."""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def _number_words(text: str) -> str:
    def tens(m: re.Match) -> str:
        return str(_TENS[m.group(1)] + (_ONES[m.group(2)] if m.group(2) else 0))

    ones_alt = "|".join(w for w in _ONES if _ONES[w] < 10 and w != "zero")
    text = re.sub(rf"\b({'|'.join(_TENS)})(?:[\s-]+({ones_alt}))?\b", tens, text)
    text = re.sub(rf"\b({'|'.join(sorted(_ONES, key=len, reverse=True))})\b", lambda m: str(_ONES[m.group(1)]), text)
    text = re.sub(r"\ba hundred\b", "100", text)
    text = re.sub(r"\b(\d+) hundred\b", lambda m: str(int(m.group(1)) * 100), text)
    text = re.sub(r"\b(\d+) and a half\b", r"\1.5", text)
    text = re.sub(r"\b(?:a )?(?:one )?and a half times\b", "1.5x", text)
    text = re.sub(r"\btwice\b|\bdouble\b|\bdoubled\b", "2x", text)
    text = re.sub(r"\bthrice\b|\btriple\b|\btripled\b", "3x", text)
    text = re.sub(r"\bhalf(?: of)?\b|\bhalved\b", "0.5x", text)
    text = re.sub(r"\b(\d+(?:\.\d+)?)\s*(?:-\s*)?(?:times|fold|x)\b", r"\1x", text)
    return text


def _money(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)

    def unit(m: re.Match) -> str:
        dollar = "$" if m.group(1) else ""
        return dollar + fmt_number(round(float(m.group(2)) * _UNITS[m.group(3)], 6))

    long_units = "trillion|billion|million|thousand|tn|bn|bil|mln|mil|mm|mn"
    # "between 1 and 10 billion": the unit belongs to both numbers
    text = re.sub(rf"\bbetween\s+(\$?)\s*(\d+(?:\.\d+)?)\s+(and|to)\s+(\$?)\s*(\d+(?:\.\d+)?)\s*({long_units}|t|b|m|k)\b",
                  r"between \1\2 \6 \3 \4\5 \6", text)
    text = re.sub(rf"(?:(\$)\s*)?\b(\d+(?:\.\d+)?)\s*({long_units})\b(?:\s+dollars)?", unit, text)
    text = re.sub(r"(?:(\$)\s*)?\b(\d+(?:\.\d+)?)\s?(t|b|m|k)\b(?!-)", unit, text)
    text = re.sub(r"\b(\d+(?:\.\d+)?)\s+(?:dollars|usd)\b", r"$\1", text)
    return text


def _weeks(n: int) -> int:
    return {52: 252, 26: 126, 13: 63}.get(n, 5 * n)


def _durations(text: str) -> str:
    text = re.sub(r"\b(\d+)\s*-?\s*(?:trading\s+|market\s+|calendar\s+)?(?:days?|sessions?|bars?|candles?|d)\b",
                  r"\1d", text)
    text = re.sub(r"\b(\d+)\s*-?\s*(?:weeks?|wks?|w)\b", lambda m: f"{_weeks(int(m.group(1)))}d", text)
    text = re.sub(r"\b(\d+)\s*-?\s*(?:months?|mos?|mths?)\b", lambda m: f"{21 * int(m.group(1))}d", text)
    text = re.sub(r"\b(\d+)\s*-?\s*(?:quarters?|qtrs?)\b", lambda m: f"{63 * int(m.group(1))}d", text)
    text = re.sub(r"\b(\d+)\s*-?\s*(?:years?|yrs?|y)\b", lambda m: f"{252 * int(m.group(1))}d", text)
    single = {"week": "5d", "month": "21d", "quarter": "63d", "year": "252d"}
    text = re.sub(r"\b(?:a|an)\s+(week|month|quarter|year)\b", lambda m: single[m.group(1)], text)
    # not "the top quarter of the range" (a part of the range, not 63 sessions)
    text = re.sub(r"(?<!top )(?<!bottom )(?<!upper )(?<!lower )\b(week|month|quarter|year)\b", lambda m: single[m.group(1)],
                  text)
    text = re.sub(r"\b(?:yearly|annual|12-month)\b", "252d", text)
    text = re.sub(r"\bmonthly\b", "21d", text)
    text = re.sub(r"\bquarterly\b", "63d", text)
    text = re.sub(r"\bweekly\b", "5d", text)
    return text


# ----------------------------------------------------------------------------- terms

_TERMS: tuple[tuple[str, str], ...] = (
    (r"(\w)'s\b", r"\1"),
    (r"\bexp(?:onential)?\.?\s+moving\s+averages?\b", "ema"),
    (r"\bsimple\s+moving\s+averages?\b", "sma"),
    (r"\bmoving\s+averages?\b|\bmov(?:ing)?\.?\s+avgs?\b", "ma"),
    (r"\bdmas?\b|\bmas\b", "ma"),
    (r"\bsmas\b", "sma"),
    (r"\bemas\b", "ema"),
    (r"\b(\d+)\s*-?\s*(?:day|d|period|session|bar)?\s*-?\s*(sma|ema|ma)\b", r"\1d \2"),
    (r"\b(sma|ema|ma)\s*[\(\[]\s*(\d+)\s*[\)\]]", r"\2d \1"),
    (r"\b(sma|ema|ma)\s*-?\s*(\d+)\b", r"\2d \1"),
    (r"\brelative\s+strength\s+index\b", "rsi"),
    (r"\baverage\s+true\s+ranges?\b", "atr"),
    # oscillators and bands with one spelling each (see offline_parse's oscillator recognisers)
    (r"\bstoch(?:astic)?s?[\s-]*rsi\b|\bstochrsi\b", "stochrsi"),
    (r"\bwilliams?\s*%\s*r\b|\bwilliams?\s+(?:percent\s+)?r\b|\bw\s*%\s*r\b|(?<![\w%])%\s*r\b", "willr"),
    (r"\bstochastics?(?:\s+oscillators?)?\b|\bstoch\b", "stoch"),
    (r"\bstoch\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", r"stoch(\1,\2)"),
    (r"\bstoch\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", r"stoch(\1,\2,\3)"),
    (r"\bcommodity\s+channel\s+index\b", "cci"),
    (r"\bmoney\s+flow\s+index\b", "mfi"),
    (r"\baverage\s+directional\s+(?:index|movement(?:\s+index)?)\b", "adx"),
    (r"(?<![\w+-])\+\s*di\b|\bplus\s+di\b|\bpositive\s+directional\s+(?:indicator|index|movement)\b|\bdi\s*\+", " pdi "),
    (r"(?<![\w+-])-\s*di\b|\bminus\s+di\b|\bnegative\s+directional\s+(?:indicator|index|movement)\b|\bdi\s*-(?!\w)", " mdi "),
    (r"\bkeltner(?:\s+(?:channels?|bands?))?\b|\bkc\b", "keltner"),
    (r"\bkeltner\s+(upper|lower|top|bottom)(?:\s+(?:channels?|bands?|lines?))?\b", r"\1 keltner"),
    (r"\bon[\s-]*balance[\s-]+volume\b", "obv"),
    (r"\bmean[\s-]+reversion\b", "reversion"),
    (r"\b(rsi|atr|cci|adx|mfi|willr|stoch)\s*[\(\[]\s*(\d+)\s*[\)\]]", r"\1(\2)"),
    (r"\b(rsi|atr|cci|adx|mfi|willr|stoch)\s*-\s*(\d+)\b", r"\1(\2)"),
    (r"\b(rsi|atr|cci|adx|mfi)(\d+)\b", r"\1(\2)"),
    (r"\b(rsi|atr|cci|adx|mfi|willr|stoch)\s+(\d+)\s*-?\s*(?:periods?|days?|d)\b(?!\s+ago)", r"\1(\2)"),
    (r"\b(\d+)\s*-?\s*(?:days?|d|periods?|sessions?|bars?)?\s*-?\s*(rsi|atr|cci|adx|mfi|willr|stoch)\b", r"\2(\1)"),
    ((r"\b(rsi|atr|cci|adx|mfi|willr|stoch)\s+(\d+)(?=\s+(?:is\s+|was\s+)?(?:above|below|over|under|cross|crosses|crossing|"
     r"falls|fell|rises|rose|reading|value|level|of|at|<|>|=|greater|less|more|%|percent))"), r"\1(\2)"),
    (r"\bbollinger'?s?(?:\s+bands?)?\b|\bb-?bands?\b|\bbb\b", "bollinger"),
    (r"\bbollinger\s+(lower|upper|bottom|top|middle)(?:\s+bands?)?\b", r"\1 bollinger"),
    (r"\bstandard\s+deviations?\b|\bstd\.?\s*devs?\.?\b|\bstdevs?\b|\bsigmas?\b|\bsd\b|\bstds\b", "std"),
    (r"\bz[\s-]?scores?\b", "zscore"),
    (r"\bearnings\s+per\s+share\b", "eps"),
    ((r"\bprice[\s/-]*to[\s/-]*earnings(?:\s+ratios?)?\b|\bp\s*/\s*e(?:\s+ratios?)?s?\b|\bpe\s+ratios?\b|\bp/e\b"
     r"|\bpe's\b|\bpes\b"), "pe"),
    (r"\bdebt[\s-]*to[\s-]*equity(?:\s+ratios?)?\b|\bd\s*/\s*e(?:\s+ratios?)?\b|\bdebt\s*/\s*equity\b", "de"),
    (r"\bmarket\s+cap(?:italization|italisation|s)?\b|\bmkt\.?\s*caps?\b|\bmarket\s+value\b", "mcap"),
    (r"\ball[\s-]+time\b", "alltime"),
    (r"\bavg\.?(?=\s|$)", "average"),
    (r"\brelative\s+volume\b|\brel\.?\s+vol(?:ume)?\b", "rvol"),
    (r"\bper\s*cent(?:age)?(?:\s+points?)?\b|\bpercent(?:age)?(?:\s+points?)?\b|\bpct\b", "%"),
    (r"\bvs\.?(?=\s|$)|\bversus\b|\bcompared\s+(?:to|with)\b|\brelative\s+to\b", "vs"),
    (r"\bcross-?overs?\b", "crossover"),
    (r"\bbreak-?outs?\b", "breakout"),
    (r"\bbreak-?downs?\b", "breakdown"),
    (r"\bs\s*&\s*p(?:\s*-?\s*500)?\b|\bsp500\b|\bspx\b", "sym_spy"),
    (r"\bnasdaq(?:\s*-?\s*100)?\b|\bndx\b", "sym_qqq"),
    (r"\bthe\s+dow(?:\s+jones)?\b|\bdjia\b", "sym_dia"),
)
_TERM_RES = tuple((re.compile(p), r) for p, r in _TERMS)

_COMPARATORS: tuple[tuple[str, str], ...] = (
    ((r"\b(?:greater|more|higher|bigger|larger)\s+than\s+or\s+equal\s+to\b|\bequal\s+to\s+or\s+(?:greater|more|higher)\s+than\b"
     r"|>=|=>|\bat\s+least\b|\bno\s+less\s+than\b|\bnot\s+less\s+than\b|\bno\s+lower\s+than\b|\b(?:a\s+)?minimum\s+of\b"),
     " >= "),
    ((r"\b(?:less|lower|smaller|fewer)\s+than\s+or\s+equal\s+to\b|<=|=<|\bat\s+most\b|\bno\s+more\s+than\b"
     r"|\bnot\s+more\s+than\b|\bno\s+higher\s+than\b|\bno\s+greater\s+than\b|\b(?:a\s+)?maximum\s+of\b|\bup\s+to\b"),
     " <= "),
    ((r"\b(?:more|greater|higher|bigger|larger)\s+than\b|\bin\s+excess\s+of\b|\bexceed(?:s|ed|ing)?\b|\bupwards\s+of\b"),
     " > "),
    (r"\b(?:less|lower|smaller|fewer)\s+than\b", " < "),
)
_COMPARATOR_RES = tuple((re.compile(p), r) for p, r in _COMPARATORS)


def _basic(prompt: str) -> str:
    text = unicodedata.normalize("NFKC", str(prompt))
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2013", "-"),
                 ("\u2014", " - "), ("\u2265", ">="), ("\u2264", "<="), ("\u00d7", "x")):
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text).strip()


def _shorthand(text: str) -> str:
    """Trader shorthand, before money units ("1M" next to a return is a month, not a million)."""
    # "1M return", "3M momentum", "1Y performance": months and years
    text = re.sub(r"\b(\d+)\s*(m|y)\b(?=\s+(?:returns?|momentum|performance|change|gains?|losses|relative strength|rs)\b)",
                  lambda m: f"{m.group(1)} {'months' if m.group(2) == 'm' else 'years'}", text)
    # comparison signs written without spaces ("rsi14<30", "gap>3%")
    text = re.sub(r"\s*(<=|>=|<|>)\s*(?=[\d$+\-.a-z])", r" \1 ", text)
    text = re.sub(r"\broc\s*\(\s*(\d+)\s*\)", r"\1 day roc", text)  # "ROC(10)": the 10-day rate of change
    text = re.sub(r"\b(\d+(?:\.\d+)?)\s*\*\s*(?=(?:the\s+)?(?:avg|average)\b)", r"\1x ", text)  # "1.5 * avg volume"
    text = re.sub(r"\bpx\b", "price", text)
    text = re.sub(r"\btrend[\s-]+following\b", "trendfollowing", text)  # a style, not "after"
    # "just crossed", "has just broken": the event is today's either way
    text = re.sub(r"\b(?:has\s+|have\s+)?just\s+(?=(?:crossed|crosses|broke|broken|made|hit|turned|flipped|gapped|closed|moved))",
                  "", text)
    text = re.sub(r"\bprev\.?(?=\s)", "previous", text)
    text = re.sub(r"\bath\b|\balltime\s+highs?\b", "all time high", text)
    text = re.sub(r"\batl\b", "all time low", text)
    # "vol" is volume when a multiple or an average follows it ("vol > 2x avg", "vol 3x average")
    text = re.sub(r"\bvol\b(?=\s+(?:(?:is|of|at|>|>=|above|over)\s+)?(?:\d+(?:\.\d+)?\s*x\b|(?:the\s+)?(?:avg|average)\b))",
                  "volume", text)
    return text


def normalize(prompt: str) -> str:
    """The canonical lower-case form recognisers match (see the module docstring)."""
    text = _mark_tickers(_mark_companies(_basic(prompt))).lower()
    text = _number_words(text)
    text = _shorthand(text)
    text = _money(text)
    for rx, rep in _TERM_RES:
        text = rx.sub(rep, text)
    text = _durations(text)
    # re-run the indicator spellings that durations produced ("14d rsi" -> "rsi(14)")
    text = re.sub(r"\b(\d+)d\s*-?\s*(rsi|atr|cci|adx|mfi|willr|stoch)\b", r"\2(\1)", text)
    text = re.sub(r"\b(\d+)d\s*-?\s*(?:day|d|period)?\s*-?\s*(sma|ema|ma)\b", r"\1d \2", text)
    for rx, rep in _COMPARATOR_RES:
        text = rx.sub(rep, text)
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    text = re.sub(r"(?<![\w.+])\+(?=\d)", "", text)  # "CCI above +100"
    # when in the session a daily-bar strategy looks is fixed (at the close), so these add nothing
    text = re.sub(r"\b(?:at|on|into|by)\s+(?:the\s+)?(?:open|opening bell|close|closing bell)\b"
                  r"(?!\s*(?:price|of|>|<|above|below|over|under))", " ", text)
    # "S&P 500 stocks", "stocks in the Nasdaq": an index's members (the universe), not the index ETF
    text = re.sub(r"\bsym_(spy|qqq|dia)\s+(?=(?:stocks?|names|companies|members|constituents|components|tickers|symbols"
                  r"|equities|shares)\b)", r"index_\1 ", text)
    text = re.sub(r"\b(in|from)\s+(?:the\s+)?sym_(spy|qqq|dia)\b(?=\s*(?:$|,|;|\.|and\b|with\b|that\b|which\b|where\b|whose\b))",
                  r"\1 index_\2", text)
    text = re.sub(r"\bthe\s+(sym_[a-z.]+)", r"\1", text)
    text = re.sub(r"\b(\d+(?:\.\d+)?x)\s+>\s+(?=normal|average|usual|typical)", r"\1 ", text)
    text = re.sub(r"\b(upper|lower|top|bottom)\s+bands?\b", r"\1 bollinger", text)
    text = re.sub(r"\b(\d+(?:\.\d+)?)\s*std\s+(upper|lower|top|bottom)\s+bollinger\b", r"\2 \1 std bollinger", text)
    text = re.sub(r"\bgap\s+(?:and|&|n)\s+go\b", "gapandgo", text)
    # the return since the year began is not a 252-session return: keep it apart (not understood)
    text = re.sub(r"\b(?:252d\s+to\s+date|ytd)\b", "yeartodate", text)
    text = re.sub(r"(\d)\s+%", r"\1%", text)
    # "2-5%", "between 2 and 5%": the percent sign belongs to both numbers
    text = re.sub(r"(?<![\w.])(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)%", r"between \1% and \2%", text)
    text = re.sub(r"\bbetween\s+(\d+(?:\.\d+)?)\s+(and|to)\s+(\d+(?:\.\d+)?)%", r"between \1% \2 \3%", text)
    text = re.sub(r"(\d)\s+x\b", r"\1x", text)
    text = re.sub(r"\$\s+(\d)", r"$\1", text)
    return re.sub(r"\s+", " ", text).strip()
