"""Spec -> strategy source: one small code template per measure kind.

Every measure kind has an emitter that declares its UPPER_CASE constants (the strategy's
parameters), the helper functions it needs (from :data:`HELPERS`), how many bars it wants
and needs, and the lines that compute its value inside ``classify_symbol``. Conditions
compare a measure's value with a threshold constant (``RSI_MAX``, ``GAP_PCT_MIN``...) or
use a boolean pattern flag; the spec's and/or/not tree becomes the ``signal`` expression.

Everything emitted uses only the documented data functions and passes the sandbox
validator: no ``_`` names, no imports, lengths checked before indexing (``fetch`` returns
``None`` when fewer than the needed bars exist, e.g. FB before its listing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..data.reference import canonical_sector
from .base import Parameter
from .offline_spec import AllOf, Condition, Node, Not, Ranking, Spec

# --------------------------------------------------------------------------- helpers library
HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _helper(name: str, source: str, deps: tuple[str, ...] = ()) -> None:
    HELPERS[name] = (source.strip("\n"), deps)


_helper("fetch", '''
def fetch(symbol, want, need):
    """The `want` most recent daily bars of `symbol` (oldest first, last = today) as
    plain lists, or None when fewer than `need` bars exist as of today."""
    data = get_price_data(symbol, timeframe='1d', days=want)
    if not data or len(data['close']) < need:
        return None
    bars = {}
    for key in ('open', 'high', 'low', 'close', 'volume'):
        bars[key] = list(data[key])
    return bars
''')
_helper("mean_last", '''
def mean_last(values, n, skip=0):
    """Mean of the n values that end `skip` bars before the last one."""
    stop = len(values) - skip
    window = values[stop - n:stop]
    return sum(window) / float(n)
''')
_helper("number", '''
def number(value):
    """float(value), or None for missing / non-numeric values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
''')
_helper("sector_key", '''
def sector_key(info):
    """The company's sector (get_fundamental_data) in lower case, '&' spelled 'and'; '' if unknown."""
    return str(info.get('sector') or '').strip().lower().replace('&', 'and')
''')
_helper("opening_gap_pct", '''
def opening_gap_pct(bars):
    """Today's open versus yesterday's close, in percent."""
    prev_close = bars['close'][-2]
    if prev_close <= 0:
        return None
    return (bars['open'][-1] / prev_close - 1.0) * 100.0
''')
_helper("gap_beyond_pct", '''
def gap_beyond_pct(bars, level):
    """Today's open versus yesterday's `level` ('high' or 'low'), in percent."""
    prev = bars[level][-2]
    if prev <= 0:
        return None
    return (bars['open'][-1] / prev - 1.0) * 100.0
''')
_helper("change_pct", '''
def change_pct(closes, lookback):
    """Percent change of the close over the last `lookback` sessions."""
    base = closes[-1 - lookback]
    if base <= 0:
        return None
    return (closes[-1] / base - 1.0) * 100.0
''')
_helper("ema_series", '''
def ema_series(values, n):
    """Exponential moving average at every bar (None until n values exist), seeded
    with the simple mean of the first n values; alpha = 2 / (n + 1)."""
    out = [None] * len(values)
    if len(values) < n:
        return out
    alpha = 2.0 / (n + 1)
    ema = sum(values[:n]) / float(n)
    out[n - 1] = ema
    for i in range(n, len(values)):
        ema = alpha * values[i] + (1.0 - alpha) * ema
        out[i] = ema
    return out
''')
_helper("rsi_value", '''
def rsi_value(avg_gain, avg_loss):
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
''')
_helper("rsi_series", '''
def rsi_series(closes, n):
    """Wilder's RSI at every bar (None until n changes are available): seeded with the
    simple mean of the first n gains/losses, then avg = (avg * (n - 1) + x) / n."""
    out = [None] * len(closes)
    if len(closes) < n + 1:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        change = closes[i] - closes[i - 1]
        if change > 0:
            gain += change
        else:
            loss -= change
    avg_gain = gain / n
    avg_loss = loss / n
    out[n] = rsi_value(avg_gain, avg_loss)
    for i in range(n + 1, len(closes)):
        change = closes[i] - closes[i - 1]
        up = change if change > 0 else 0.0
        down = -change if change < 0 else 0.0
        avg_gain = (avg_gain * (n - 1) + up) / n
        avg_loss = (avg_loss * (n - 1) + down) / n
        out[i] = rsi_value(avg_gain, avg_loss)
    return out
''', ("rsi_value",))
_helper("bollinger", '''
def bollinger(closes, n, k):
    """(middle, upper, lower) of the last n closes: SMA(n) +/- k population standard
    deviations (Bollinger's definition)."""
    window = closes[-n:]
    mid = sum(window) / float(n)
    sd = math.sqrt(sum((x - mid) ** 2 for x in window) / float(n))
    return mid, mid + k * sd, mid - k * sd
''')
_helper("mean_true_range", '''
def mean_true_range(bars, n):
    """Mean of the last n true ranges (max(high - low, |high - previous close|, |low - previous close|))."""
    high, low, close = bars['high'], bars['low'], bars['close']
    total = 0.0
    for i in range(len(close) - n, len(close)):
        total += max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    return total / n
''')
_helper("wilder_atr", '''
def wilder_atr(highs, lows, closes, n):
    """Wilder's average true range. True range = max(high - low, |high - previous close|,
    |low - previous close|); seeded with the mean of the first n, then
    atr = (atr * (n - 1) + tr) / n. None with fewer than n true ranges."""
    ranges = []
    for i in range(1, len(closes)):
        prev = closes[i - 1]
        ranges.append(max(highs[i] - lows[i], abs(highs[i] - prev), abs(lows[i] - prev)))
    if len(ranges) < n:
        return None
    atr = sum(ranges[:n]) / float(n)
    for tr in ranges[n:]:
        atr = (atr * (n - 1) + tr) / n
    return atr
''')
_helper("range_ratio", '''
def range_ratio(bars, lookback):
    """Today's high-low range divided by the mean range of the previous `lookback` sessions."""
    ranges = [high - low for high, low in zip(bars['high'], bars['low'])]
    average = mean_last(ranges, lookback, skip=1)
    if average <= 0:
        return None
    return ranges[-1] / average
''', ("mean_last",))
_helper("range_pct", '''
def range_pct(bars):
    """Today's high-low range as a percentage of yesterday's close."""
    prev_close = bars['close'][-2]
    if prev_close <= 0:
        return None
    return (bars['high'][-1] - bars['low'][-1]) / prev_close * 100.0
''')
_helper("volatility_pct", '''
def volatility_pct(closes, lookback, annualized):
    """Sample standard deviation of the last `lookback` daily log returns, in percent;
    multiplied by sqrt(252) when annualized."""
    window = closes[-lookback - 1:]
    returns = []
    for i in range(1, len(window)):
        if window[i - 1] <= 0 or window[i] <= 0:
            return None
        returns.append(math.log(window[i] / window[i - 1]))
    if len(returns) < 2:
        return None
    vol = statistics.stdev(returns) * 100.0
    return vol * math.sqrt(252) if annualized else vol
''')
_helper("streak_length", '''
def streak_length(closes, up):
    """Consecutive sessions, ending today, whose close was above (up=True) or below
    (up=False) the previous close."""
    count = 0
    i = len(closes) - 1
    while i > 0:
        change = closes[i] - closes[i - 1]
        if (up and change > 0) or (not up and change < 0):
            count += 1
            i -= 1
        else:
            break
    return count
''')
_helper("zscore", '''
def zscore(closes, n):
    """(close - mean) / population standard deviation of the last n closes (today included)."""
    window = closes[-n:]
    mid = sum(window) / float(n)
    sd = math.sqrt(sum((x - mid) ** 2 for x in window) / float(n))
    if sd <= 0:
        return None
    return (closes[-1] - mid) / sd
''')
_helper("outperformance_pct", '''
def outperformance_pct(closes, benchmark, lookback):
    """This symbol's return minus `benchmark`'s return over `lookback` sessions, in
    percentage points; None when the benchmark has too little data."""
    other = fetch(benchmark, lookback + 1, lookback + 1)
    if other is None:
        return None
    mine = change_pct(closes, lookback)
    theirs = change_pct(other['close'], lookback)
    if mine is None or theirs is None:
        return None
    return mine - theirs
''', ("fetch", "change_pct"))
_helper("macd_lines", '''
def macd_lines(closes, fast, slow, signal):
    """(macd, signal line) today and yesterday: macd = EMA(fast) - EMA(slow) of the
    close, signal line = EMA(signal) of macd. None when history is too short."""
    fast_ema = ema_series(closes, fast)
    slow_ema = ema_series(closes, slow)
    macd = [f - s for f, s in zip(fast_ema, slow_ema) if f is not None and s is not None]
    if len(macd) < signal + 1:
        return None
    line = ema_series(macd, signal)
    return macd[-1], line[-1], macd[-2], line[-2]
''', ("ema_series",))
_helper("latest_surprise_pct", '''
def latest_surprise_pct(symbol):
    """Surprise (%) of the most recent earnings report released as of today, or None."""
    reports = get_earnings_data(symbol, 1)
    if not reports:
        return None
    return number(reports[-1].get('surprise_pct'))
''', ("number",))
_helper("inside_day", '''
def inside_day(bars):
    """(inside day, today's range / yesterday's range): high[t] < high[t-1] and low[t] > low[t-1]."""
    high, low = bars['high'], bars['low']
    inside = high[-1] < high[-2] and low[-1] > low[-2]
    prev_range = high[-2] - low[-2]
    ratio = (high[-1] - low[-1]) / prev_range if prev_range > 0 else 1.0
    return inside, ratio
''')
_helper("outside_day", '''
def outside_day(bars):
    """(outside day, today's range / yesterday's range): high[t] > high[t-1] and low[t] < low[t-1]."""
    high, low = bars['high'], bars['low']
    outside = high[-1] > high[-2] and low[-1] < low[-2]
    prev_range = high[-2] - low[-2]
    ratio = (high[-1] - low[-1]) / prev_range if prev_range > 0 else 1.0
    return outside, ratio
''')
_helper("engulfing", '''
def engulfing(bars, bullish):
    """(engulfing, today's body / yesterday's body). Bullish: yesterday closed below its
    open, today closes above its open, today's open <= yesterday's close, today's close
    >= yesterday's open and today's body is larger. Bearish is the mirror image."""
    o, c = bars['open'], bars['close']
    body_prev = abs(c[-2] - o[-2])
    body = abs(c[-1] - o[-1])
    if bullish:
        shape = c[-2] < o[-2] and c[-1] > o[-1] and o[-1] <= c[-2] and c[-1] >= o[-2]
    else:
        shape = c[-2] > o[-2] and c[-1] < o[-1] and o[-1] >= c[-2] and c[-1] <= o[-2]
    ratio = body / body_prev if body_prev > 0 else 0.0
    return shape and body > body_prev, ratio
''')
_helper("candle_parts", '''
def candle_parts(bars):
    """(range, body, lower shadow, upper shadow) of today's candle."""
    o, h, l, c = bars['open'][-1], bars['high'][-1], bars['low'][-1], bars['close'][-1]
    return h - l, abs(c - o), min(o, c) - l, h - max(o, c)
''')
_helper("hammer", '''
def hammer(bars, shadow_multiple, max_other_shadow):
    """(hammer, lower shadow / range): lower shadow >= shadow_multiple x body and upper
    shadow <= max_other_shadow x range (a small body at the top of the day's range)."""
    rng, body, lower, upper = candle_parts(bars)
    if rng <= 0:
        return False, 0.0
    return lower >= shadow_multiple * body and upper <= max_other_shadow * rng, lower / rng
''', ("candle_parts",))
_helper("shooting_star", '''
def shooting_star(bars, shadow_multiple, max_other_shadow):
    """(shooting star / inverted hammer, upper shadow / range): upper shadow >=
    shadow_multiple x body and lower shadow <= max_other_shadow x range."""
    rng, body, lower, upper = candle_parts(bars)
    if rng <= 0:
        return False, 0.0
    return upper >= shadow_multiple * body and lower <= max_other_shadow * rng, upper / rng
''', ("candle_parts",))
_helper("doji", '''
def doji(bars, max_body):
    """(doji, body / range): the body is at most max_body x the day's range."""
    rng, body, lower, upper = candle_parts(bars)
    if rng <= 0:
        return False, 0.0
    return body <= max_body * rng, body / rng
''', ("candle_parts",))
_helper("three_candles", '''
def three_candles(bars, bullish):
    """(three white soldiers / black crows, today's close vs the first candle's open %):
    three candles of the same colour (close above / below its open), each closing beyond the
    previous close and opening inside the previous candle's body."""
    o, c = bars['open'][-3:], bars['close'][-3:]
    for i in range(3):
        if (c[i] <= o[i]) if bullish else (c[i] >= o[i]):
            return False, 0.0
    for i in (1, 2):
        beyond = c[i] > c[i - 1] if bullish else c[i] < c[i - 1]
        lo, hi = min(o[i - 1], c[i - 1]), max(o[i - 1], c[i - 1])
        if not beyond or not lo <= o[i] <= hi:
            return False, 0.0
    return True, (c[2] / o[0] - 1.0) * 100.0 if o[0] > 0 else 0.0
''')
_helper("star", '''
def star(bars, bullish, long_body, small_body):
    """(morning / evening star, how far the third close went into the first body, 0..1+).
    Morning star: a long red candle (body >= long_body x its range), then a small body
    (<= small_body x the first body) entirely below the first body, then a green candle
    closing above the middle of the first body. The evening star is the mirror image."""
    o, h, l, c = bars['open'][-3:], bars['high'][-3:], bars['low'][-3:], bars['close'][-3:]
    body1, range1 = abs(c[0] - o[0]), h[0] - l[0]
    if range1 <= 0 or body1 < long_body * range1 or abs(c[1] - o[1]) > small_body * body1:
        return False, 0.0
    middle = (o[0] + c[0]) / 2.0
    if bullish:
        shape = c[0] < o[0] and max(o[1], c[1]) < c[0] and c[2] > o[2] and c[2] > middle
        depth = (c[2] - c[0]) / body1
    else:
        shape = c[0] > o[0] and min(o[1], c[1]) > c[0] and c[2] < o[2] and c[2] < middle
        depth = (c[0] - c[2]) / body1
    return shape, depth
''')
_helper("two_candle", '''
def two_candle(bars, pattern):
    """(pattern, today's body / yesterday's body) for two-candle reversals. Bullish harami: a
    red candle, then a green one whose body lies inside it; piercing line: a red candle, then a
    green one opening below its close and closing above the middle of its body (but below its
    open). Bearish harami and dark cloud cover are the mirror images."""
    o, c = bars['open'][-2:], bars['close'][-2:]
    body0, body1 = abs(c[0] - o[0]), abs(c[1] - o[1])
    if body0 <= 0:
        return False, 0.0
    middle = (o[0] + c[0]) / 2.0
    if pattern == 'bullish_harami':
        shape = c[0] < o[0] and c[1] > o[1] and o[1] > c[0] and c[1] < o[0]
    elif pattern == 'bearish_harami':
        shape = c[0] > o[0] and c[1] < o[1] and o[1] < c[0] and c[1] > o[0]
    elif pattern == 'piercing_line':
        shape = c[0] < o[0] and c[1] > o[1] and o[1] < c[0] and middle < c[1] < o[0]
    else:
        shape = c[0] > o[0] and c[1] < o[1] and o[1] > c[0] and o[0] < c[1] < middle
    return shape, body1 / body0
''')
_helper("narrow_range", '''
def narrow_range(bars, lookback):
    """(narrowest range, today's range / the smallest of the previous lookback - 1):
    today's high-low range is below every range of the previous lookback - 1 sessions."""
    ranges = [high - low for high, low in zip(bars['high'][-lookback:], bars['low'][-lookback:])]
    smallest = min(ranges[:-1])
    ratio = ranges[-1] / smallest if smallest > 0 else 1.0
    return ranges[-1] < smallest, ratio
''')

_helper("stochastic", '''
def stochastic(bars, n, smooth, d):
    """(%K, %D) today and yesterday, or None with too little history. Fast %K = 100 x
    (close - lowest low) / (highest high - lowest low) over the last n sessions; %K is the
    fast %K averaged over `smooth` sessions (1 = fast, 3 = slow stochastic) and %D the
    average of %K over `d` sessions."""
    high, low, close = bars['high'], bars['low'], bars['close']
    count = smooth + d  # fast values behind today's and yesterday's %D
    if len(close) < n + count - 1:
        return None
    fast = []
    for end in range(len(close) - count, len(close)):
        hh = max(high[end - n + 1:end + 1])
        ll = min(low[end - n + 1:end + 1])
        if hh <= ll:
            return None
        fast.append(100.0 * (close[end] - ll) / (hh - ll))
    k = [sum(fast[i - smooth + 1:i + 1]) / float(smooth) for i in range(smooth - 1, len(fast))]
    k_today, k_prev = k[-1], k[-2]
    d_today = sum(k[-d:]) / float(d)
    d_prev = sum(k[-d - 1:-1]) / float(d)
    return k_today, d_today, k_prev, d_prev
''')
_helper("williams_pct_r", '''
def williams_pct_r(bars, n):
    """Williams %R: -100 x (highest high - close) / (highest high - lowest low) over the last
    n sessions (0 = at the high, -100 = at the low); None when the range is zero."""
    hh = max(bars['high'][-n:])
    ll = min(bars['low'][-n:])
    if hh <= ll:
        return None
    return -100.0 * (hh - bars['close'][-1]) / (hh - ll)
''')
_helper("commodity_channel_index", '''
def commodity_channel_index(bars, n):
    """Commodity Channel Index: (typical price - its n-session mean) / (0.015 x mean absolute
    deviation), typical price = (high + low + close) / 3; None when the deviation is zero."""
    typical = [(h + l + c) / 3.0 for h, l, c in zip(bars['high'][-n:], bars['low'][-n:], bars['close'][-n:])]
    mean = sum(typical) / float(n)
    deviation = sum(abs(t - mean) for t in typical) / float(n)
    if deviation <= 0:
        return None
    return (typical[-1] - mean) / (0.015 * deviation)
''')
_helper("money_flow_index", '''
def money_flow_index(bars, n):
    """Money Flow Index over the last n sessions: 100 - 100 / (1 + positive flow / negative
    flow), flow = typical price x volume, positive when the typical price rose from the
    session before; 100 when there was no negative flow, None when there was no flow."""
    high, low, close, volume = bars['high'][-n - 1:], bars['low'][-n - 1:], bars['close'][-n - 1:], bars['volume'][-n - 1:]
    typical = [(h + l + c) / 3.0 for h, l, c in zip(high, low, close)]
    positive = 0.0
    negative = 0.0
    for i in range(1, len(typical)):
        if typical[i] > typical[i - 1]:
            positive += typical[i] * volume[i]
        elif typical[i] < typical[i - 1]:
            negative += typical[i] * volume[i]
    if negative <= 0:
        return 100.0 if positive > 0 else None
    return 100.0 - 100.0 / (1.0 + positive / negative)
''')
_helper("dmi_lines", '''
def dmi_lines(bars, n):
    """Wilder's directional movement: (ADX, +DI, -DI) today and (+DI, -DI) yesterday, or
    None with fewer than 2n + 1 bars. +DM = today's high - yesterday's high when that is
    positive and larger than yesterday's low - today's low (-DM the mirror image); TR, +DM and
    -DM are Wilder-smoothed over n (seeded with their first n values), +DI = 100 x +DM / TR,
    DX = 100 x |+DI - -DI| / (+DI + -DI), ADX = Wilder average of DX (seeded with the mean
    of the first n DX values)."""
    high, low, close = bars['high'], bars['low'], bars['close']
    if len(close) < 2 * n + 1:
        return None
    tr_s = 0.0
    plus_s = 0.0
    minus_s = 0.0
    adx = 0.0
    dx_seen = 0
    pdi = mdi = pdi_prev = mdi_prev = 0.0
    for i in range(1, len(close)):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus_dm = up if up > down and up > 0 else 0.0
        minus_dm = down if down > up and down > 0 else 0.0
        tr = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        if i <= n:
            tr_s += tr
            plus_s += plus_dm
            minus_s += minus_dm
            if i < n:
                continue
        else:
            tr_s = tr_s - tr_s / n + tr
            plus_s = plus_s - plus_s / n + plus_dm
            minus_s = minus_s - minus_s / n + minus_dm
        pdi_prev, mdi_prev = pdi, mdi
        pdi = 100.0 * plus_s / tr_s if tr_s > 0 else 0.0
        mdi = 100.0 * minus_s / tr_s if tr_s > 0 else 0.0
        dx = 100.0 * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi > 0 else 0.0
        dx_seen += 1
        if dx_seen <= n:
            adx += dx / n
        else:
            adx = (adx * (n - 1) + dx) / n
    return adx, pdi, mdi, pdi_prev, mdi_prev
''')
_helper("keltner", '''
def keltner(bars, n, multiple, atr_n):
    """(middle, upper, lower) Keltner channel today: middle = EMA(n) of the close, bands =
    middle +/- multiple x Wilder ATR(atr_n); None with too little history."""
    closes = bars['close']
    middle = ema_series(closes, n)[-1]
    atr = wilder_atr(bars['high'], bars['low'], closes, atr_n)
    if middle is None or atr is None:
        return None
    return middle, middle + multiple * atr, middle - multiple * atr
''', ("ema_series", "wilder_atr"))
_helper("obv_window", '''
def obv_window(bars, n):
    """On-balance volume over the last n sessions, counted from the session before them:
    each session adds its volume when the close rose and subtracts it when it fell. (Only
    differences within the window matter, so the starting point changes no comparison.)"""
    closes, volumes = bars['close'][-n - 1:], bars['volume'][-n - 1:]
    out = []
    total = 0.0
    for i in range(1, len(closes)):
        if closes[i] > closes[i - 1]:
            total += volumes[i]
        elif closes[i] < closes[i - 1]:
            total -= volumes[i]
        out.append(total)
    return out
''')
_helper("bandwidth_squeeze", '''
def bandwidth_squeeze(closes, n, k, lookback):
    """(squeeze, today's BandWidth %): Bollinger BandWidth = (upper - lower) / middle x 100
    for each of the last `lookback` sessions; squeeze = today's is the lowest of them."""
    widths = []
    for end in range(len(closes) - lookback + 1, len(closes) + 1):
        mid, upper, lower = bollinger(closes[end - n:end], n, k)
        if mid <= 0:
            return False, None
        widths.append((upper - lower) / mid * 100.0)
    return widths[-1] <= min(widths[:-1]), widths[-1]
''', ("bollinger",))
_helper("close_in_range_pct", '''
def close_in_range_pct(bars):
    """Where today's close sits in today's range: 0 = at the low, 100 = at the high."""
    high, low = bars['high'][-1], bars['low'][-1]
    if high <= low:
        return None
    return (bars['close'][-1] - low) / (high - low) * 100.0
''')

# --------------------------------------------------------------------------- context
HISTORY_BARS = 250  # warm-up window for Wilder/EMA smoothing (about a year of sessions)
ALL_HISTORY = 20000  # "all-time": every available session (up to ~80 years)


#: names generated variables must not shadow (builtins, modules, data functions)
RESERVED = frozenset(["abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "int", "isinstance", "len", "list", "map", "max", "min", "range", "round", "set", "sorted", "str", "sum", "tuple", "zip", "math", "statistics", "np", "datetime", "get_price_data", "get_multiple_symbols_data", "get_fundamental_data", "get_earnings_data", "get_sector_data", "scan_universe", "classify_symbol", "run_screening", "True", "False", "None"])


class Ctx:
    """Names, constants, helpers and bar requirements collected while emitting."""

    def __init__(self) -> None:
        self.consts: dict[str, tuple[Any, str]] = {}
        self.expr_consts: dict[str, tuple[str, str]] = {}
        self.helpers: list[str] = []
        self.names: set[str] = {"symbol", "bars", "closes", "info", "signal", "score", "result"} | set(HELPERS) | RESERVED
        self.wants: list[str] = []
        self.needs: list[str] = []
        self.uses_info = False
        self.uses_closes = False
        # lines already emitted for a computation several measures read (ADX and DMI, %K and
        # its cross): (setup name, params) -> the variable names they set
        self.shared: dict[tuple, tuple[str, ...]] = {}
        self.functions: list[str] = []  # module-level functions built for this strategy (see e_within)

    def const(self, base: str, value: Any, meaning: str) -> str:
        name = base
        i = 2
        while name in self.consts or name in self.expr_consts:
            if name in self.consts and self.consts[name][0] == value and type(self.consts[name][0]) is type(value):
                return name
            name = f"{base}_{i}"
            i += 1
        self.consts[name] = (value, meaning)
        return name

    def var(self, base: str) -> str:
        name = base
        i = 2
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def use(self, name: str) -> None:
        if name in self.helpers:
            return
        for dep in HELPERS[name][1]:
            self.use(dep)
        self.helpers.append(name)

    def bars(self, want: str, need: str) -> None:
        self.use("fetch")
        self.uses_closes = True
        if want not in self.wants:
            self.wants.append(want)
        if need not in self.needs:
            self.needs.append(need)


@dataclass
class Measure:
    lines: list[str]
    value: str | None = None  # numeric value variable
    flag: str | None = None  # boolean pattern variable
    report: list[str] = field(default_factory=list)  # variables reported in the result
    score: str | None = None  # score expression of a boolean pattern
    nullable: bool = False  # value may be None (missing data)
    formula: str = ""  # docstring line
    noun: str = ""  # English name of the value / description of the pattern
    prefix: str = "VALUE"  # threshold constant prefix
    unit: str = ""  # '%', 'x', '$', ''
    names: tuple[str, str] = ("above", "below")  # flag names for > and < conditions


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1e6:
            return f"{v:.0f}"
        return repr(v)
    return repr(v)


def _ma_label(ma: str) -> str:
    return "EMA" if ma == "ema" else "SMA"


# --------------------------------------------------------------------------- emitters
def e_gap(ctx: Ctx, p: dict) -> Measure:
    ref = p.get("ref", "close")
    ctx.bars("2", "2")
    if ref == "close":
        ctx.use("opening_gap_pct")
        v = ctx.var("gap_pct")
        return Measure([f"{v} = opening_gap_pct(bars)"], value=v, report=[v], nullable=True,
                       formula=f"{v} = (open[t] / close[t-1] - 1) * 100",
                       noun="the opening gap (today's open vs yesterday's close)", prefix="GAP_PCT", unit="%",
                       names=("gap_up", "gap_down"))
    ctx.use("gap_beyond_pct")
    v = ctx.var(f"gap_vs_{ref}_pct")
    return Measure([f"{v} = gap_beyond_pct(bars, '{ref}')"], value=v, report=[v], nullable=True,
                   formula=f"{v} = (open[t] / {ref}[t-1] - 1) * 100",
                   noun=f"today's open vs yesterday's {ref}", prefix=f"GAP_VS_{ref.upper()}_PCT", unit="%",
                   names=("full_gap_up", "full_gap_down"))


def e_body(ctx: Ctx, p: dict) -> Measure:
    ctx.bars("1", "1")
    v = ctx.var("body_pct")
    lines = [f"{v} = (closes[-1] / bars['open'][-1] - 1.0) * 100.0 if bars['open'][-1] > 0 else None"]
    return Measure(lines, value=v, report=[v], nullable=True, formula=f"{v} = (close[t] / open[t] - 1) * 100",
                   noun="today's close vs today's open", prefix="BODY_PCT", unit="%",
                   names=("closed_above_open", "closed_below_open"))


def e_return(ctx: Ctx, p: dict) -> Measure:
    n = p["lookback"]
    lb = ctx.const("RETURN_LOOKBACK", n, "sessions the return is measured over")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    ctx.use("change_pct")
    v = ctx.var(f"return_{n}d_pct")
    what = "today's change" if n == 1 else f"the {n}-session return"
    return Measure([f"{v} = change_pct(closes, {lb})"], value=v, report=[v], nullable=True,
                   formula=f"{v} = (close[t] / close[t-{lb}] - 1) * 100", noun=f"{what} (close vs close {n} "
                   f"session{'s' if n != 1 else ''} earlier)", prefix="RETURN_PCT", unit="%", names=("rising", "falling"))


def e_price(ctx: Ctx, p: dict) -> Measure:
    ctx.bars("1", "1")
    v = ctx.var("price")
    return Measure([f"{v} = closes[-1]"], value=v, report=[v], formula=f"{v} = close[t]",
                   noun="the closing price", prefix="PRICE", unit="$", names=("price_above", "price_below"))


def _ma_lines(ctx: Ctx, ma: str, period_const: str, n: int, label: str,
              with_prev: bool = True) -> tuple[list[str], str, str, str, str]:
    """Lines computing today's (and yesterday's) moving average; (lines, now, prev, want, need)."""
    now = ctx.var(f"{ma}{n}")
    prev = ctx.var(f"{ma}{n}_prev") if with_prev else ""
    extra = 1 if with_prev else 0
    if ma == "ema":
        ctx.use("ema_series")
        hist = ctx.const("EMA_HISTORY", HISTORY_BARS, "sessions used to warm up the EMAs")
        series = ctx.var(f"{ma}{n}_series")
        lines = [f"{series} = ema_series(closes[-{hist}:], {period_const})"]
        lines.append(f"{now}, {prev} = {series}[-1], {series}[-2]" if with_prev else f"{now} = {series}[-1]")
        need = f"{period_const} + 1" if with_prev else period_const
        return lines, now, prev, f"max({hist}, {need})", need
    ctx.use("mean_last")
    lines = [f"{now} = mean_last(closes, {period_const})"]
    if with_prev:
        lines.append(f"{prev} = mean_last(closes, {period_const}, skip=1)")
    need = f"{period_const} + 1" if extra else period_const
    return lines, now, prev, need, need


def e_ma_cross(ctx: Ctx, p: dict) -> Measure:
    fast, slow, ma, up = p["fast"], p["slow"], p["ma"], p["direction"] == "up"
    label = _ma_label(ma)
    slow_c = ctx.const("SLOW_PERIOD" if fast > 1 else "MA_PERIOD", slow,
                       f"sessions in the {'slow ' if fast > 1 else ''}{label}")
    s_lines, s_now, s_prev, want, need = _ma_lines(ctx, ma, slow_c, slow, label)
    lines = list(s_lines)
    if fast > 1:
        fast_c = ctx.const("FAST_PERIOD", fast, f"sessions in the fast {label}")
        f_lines, f_now, f_prev, want_f, _ = _ma_lines(ctx, ma, fast_c, fast, label)
        lines = f_lines + lines
        if want_f != want:
            want = f"max({want_f}, {want})"
        subject, report = f"the {fast}-day {label}", [f_now, s_now]
    else:
        f_now, f_prev = ctx.var("price"), ctx.var("prev_close")
        lines = [f"{f_now}, {f_prev} = closes[-1], closes[-2]"] + lines
        subject, report = "the close", [f_now, s_now]
    ctx.bars(want, need)
    if (fast, slow, ma) == (50, 200, "sma"):
        flag = ctx.var("golden_cross" if up else "death_cross")
    else:
        flag = ctx.var("crossed_above" if up else "crossed_below")
    if up:
        lines.append(f"{flag} = {f_now} > {s_now} and {f_prev} <= {s_prev}")
    else:
        lines.append(f"{flag} = {f_now} < {s_now} and {f_prev} >= {s_prev}")
    spread = f"({f_now} / {s_now} - 1.0) * 100.0"
    word = "above" if up else "below"
    return Measure(lines, flag=flag, report=report, score=spread if up else f"-{spread}",
                   formula=(f"{flag}: {subject} crosses {word} the {slow}-day {label} today "
                            f"({'fast' if fast > 1 else 'close'}[t] {'>' if up else '<'} slow[t] and "
                            f"{'fast' if fast > 1 else 'close'}[t-1] {'<=' if up else '>='} slow[t-1])"),
                   noun=f"{subject} crosses {word} the {slow}-day {label} today")


def e_ma_spread(ctx: Ctx, p: dict) -> Measure:
    fast, slow, ma = p["fast"], p["slow"], p["ma"]
    label = _ma_label(ma)
    fast_c = ctx.const("FAST_PERIOD", fast, f"sessions in the fast {label}")
    slow_c = ctx.const("SLOW_PERIOD", slow, f"sessions in the slow {label}")
    f_lines, f_now, _, want_f, _ = _ma_lines(ctx, ma, fast_c, fast, label, with_prev=False)
    s_lines, s_now, _, want_s, need = _ma_lines(ctx, ma, slow_c, slow, label, with_prev=False)
    ctx.bars(f"max({want_f}, {want_s})" if want_f != want_s else want_s, need)
    v = ctx.var("ma_spread_pct")
    lines = f_lines + s_lines + [f"{v} = ({f_now} / {s_now} - 1.0) * 100.0 if {s_now} > 0 else None"]
    return Measure(lines, value=v, report=[f_now, s_now, v], nullable=True,
                   formula=f"{v} = ({label}{fast} / {label}{slow} - 1) * 100",
                   noun=f"the {fast}-day {label} vs the {slow}-day {label}", prefix="MA_SPREAD_PCT", unit="%",
                   names=("fast_above_slow", "fast_below_slow"))


def e_ma_distance(ctx: Ctx, p: dict) -> Measure:
    n, ma = p["period"], p["ma"]
    label = _ma_label(ma)
    c = ctx.const("MA_PERIOD", n, f"sessions in the {label}")
    lines, now, _, want, need = _ma_lines(ctx, ma, c, n, label, with_prev=False)
    ctx.bars(want, need)
    v = ctx.var(f"distance_{ma}{n}_pct")
    lines = lines + [f"{v} = (closes[-1] / {now} - 1.0) * 100.0 if {now} > 0 else None"]
    return Measure(lines, value=v, report=[now, v], nullable=True,
                   formula=f"{v} = (close[t] / {label}{n}[t] - 1) * 100",
                   noun=f"the close vs its {n}-day {label}", prefix="MA_DISTANCE_PCT", unit="%",
                   names=(f"above_{ma}{n}", f"below_{ma}{n}"))


def _rsi_setup(ctx: Ctx, n: int) -> tuple[str, str, str]:
    ctx.use("rsi_series")
    per = ctx.const("RSI_PERIOD", n, "RSI period (Wilder's smoothing)")
    hist = ctx.const("RSI_HISTORY", HISTORY_BARS, "sessions used to warm up the RSI")
    ctx.bars(f"max({hist}, {per} + 2)", f"{per} + 1")
    series = ctx.var("rsi_values")
    return per, hist, series


def e_rsi(ctx: Ctx, p: dict) -> Measure:
    n = p["period"]
    per, hist, series = _rsi_setup(ctx, n)
    v = ctx.var("rsi" if n == 14 else f"rsi{n}")
    lines = [f"{series} = rsi_series(closes[-{hist}:], {per})", f"{v} = {series}[-1]"]
    return Measure(lines, value=v, report=[v], nullable=True, formula=f"{v} = Wilder RSI({per}) of the closes",
                   noun=f"RSI({n})", prefix="RSI" if n == 14 else f"RSI{n}", names=("rsi_high", "rsi_low"))


def e_rsi_cross(ctx: Ctx, p: dict) -> Measure:
    n, up, level = p["period"], p["direction"] == "up", p["level"]
    per, hist, series = _rsi_setup(ctx, n)
    ctx.needs.append(f"{per} + 2")
    lvl = ctx.const("RSI_LEVEL", float(level), "RSI level the cross is measured against")
    v = ctx.var("rsi" if n == 14 else f"rsi{n}")
    prev = ctx.var(f"{v}_prev")
    flag = ctx.var("rsi_crossed_above" if up else "rsi_crossed_below")
    lines = [f"{series} = rsi_series(closes[-{hist}:], {per})", f"{v}, {prev} = {series}[-1], {series}[-2]"]
    if up:
        lines.append(f"{flag} = {prev} is not None and {prev} <= {lvl} < {v}")
    else:
        lines.append(f"{flag} = {prev} is not None and {prev} >= {lvl} > {v}")
    return Measure(lines, flag=flag, value=v, report=[v], nullable=True,
                   score=f"{v} - {lvl}" if up else f"{lvl} - {v}",
                   formula=f"{flag}: RSI({per}) {'rose above' if up else 'fell below'} {lvl} today",
                   noun=f"RSI({n}) crosses {'above' if up else 'below'} {level:g} today")


def e_bollinger(ctx: Ctx, p: dict) -> Measure:
    n, k, lower, touch = p["period"], p["width"], p["band"] == "lower", p["mode"] == "touch"
    ctx.use("bollinger")
    per = ctx.const("BAND_PERIOD", n, "sessions in the Bollinger middle band (SMA)")
    width = ctx.const("BAND_WIDTH", float(k), "standard deviations between the middle and outer bands")
    ctx.bars(per, per)
    mid, up_b, lo_b = ctx.var("middle_band"), ctx.var("upper_band"), ctx.var("lower_band")
    lines = [f"{mid}, {up_b}, {lo_b} = bollinger(closes, {per}, {width})"]
    if lower:
        price = "bars['low'][-1]" if touch else "closes[-1]"
        flag = ctx.var("touches_lower_band" if touch else "below_lower_band")
        lines.append(f"{flag} = {price} {'<=' if touch else '<'} {lo_b}")
        score = f"({lo_b} - {price}) / {mid} * 100.0"
        what = ("today's low touches or pierces" if touch else "the close is below") + " the lower band"
    else:
        price = "bars['high'][-1]" if touch else "closes[-1]"
        flag = ctx.var("touches_upper_band" if touch else "above_upper_band")
        lines.append(f"{flag} = {price} {'>=' if touch else '>'} {up_b}")
        score = f"({price} - {up_b}) / {mid} * 100.0"
        what = ("today's high touches or pierces" if touch else "the close is above") + " the upper band"
    return Measure(lines, flag=flag, report=[lo_b if lower else up_b, mid], score=score,
                   formula=f"{flag}: {what}; bands = SMA({n}) +/- {k:g} population std of the last {n} closes",
                   noun=f"{what} (Bollinger {n}, {k:g})")


def e_relative_volume(ctx: Ctx, p: dict) -> Measure:
    n = p["lookback"]
    ctx.use("mean_last")
    lb = ctx.const("VOLUME_LOOKBACK", n, "previous sessions in the average volume (today excluded)")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    avg, v = ctx.var("avg_volume"), ctx.var("relative_volume")
    lines = [f"{avg} = mean_last(bars['volume'], {lb}, skip=1)", f"{v} = bars['volume'][-1] / {avg} if {avg} > 0 else None"]
    return Measure(lines, value=v, report=[v], nullable=True,
                   formula=f"{v} = volume[t] / mean(volume[t-{lb}..t-1])",
                   noun=f"today's volume vs the average of the previous {n} sessions", prefix="RELATIVE_VOLUME",
                   unit="x", names=("high_volume", "low_volume"))


def e_volume(ctx: Ctx, p: dict) -> Measure:
    n = p["lookback"]
    if n == 1:
        ctx.bars("1", "1")
        v = ctx.var("volume")
        return Measure([f"{v} = bars['volume'][-1]"], value=v, report=[v], formula=f"{v} = volume[t]",
                       noun="today's volume (shares)", prefix="VOLUME", names=("volume_above", "volume_below"))
    ctx.use("mean_last")
    lb = ctx.const("AVG_VOLUME_LOOKBACK", n, "sessions in the average volume (today included)")
    ctx.bars(lb, lb)
    v = ctx.var("avg_volume")
    return Measure([f"{v} = mean_last(bars['volume'], {lb})"], value=v, report=[v],
                   formula=f"{v} = mean(volume[t-{n - 1}..t])", noun=f"the {n}-session average volume (shares)",
                   prefix="AVG_VOLUME", names=("avg_volume_above", "avg_volume_below"))


def _lookback_const(ctx: Ctx, base: str, n: int | None, meaning: str) -> str:
    if n is None:
        return ctx.const(base, ALL_HISTORY, meaning + " (all available history)")
    return ctx.const(base, n, meaning)


def e_new_extreme(ctx: Ctx, p: dict) -> Measure:
    n, high, price = p["lookback"], p["side"] == "high", p["price"]
    word = "high" if high else "low"
    lb = _lookback_const(ctx, f"NEW_{word.upper()}_LOOKBACK", n, f"sessions in the new-{word} window (today included)")
    ctx.bars(lb, lb if n is not None else "2")
    series = "closes" if price == "close" else f"bars['{price}']"
    stem = "volume_" if price == "volume" else ""
    prior = ctx.var(f"prior_{stem}{word}")
    flag = ctx.var(f"{stem}{word}est_in_window" if stem else f"new_{word}")
    v = ctx.var(f"beyond_prior_{stem}{word}_pct")
    lines = [f"{prior} = {'max' if high else 'min'}({series}[-{lb}:-1])",
             f"{flag} = {series}[-1] {'>' if high else '<'} {prior}",
             f"{v} = ({series}[-1] / {prior} - 1.0) * 100.0 if {prior} > 0 else 0.0"]
    window = "all available history" if n is None else f"the last {n} sessions"
    pname = "close" if price == "close" else price
    noun = (f"today's volume is the {word}est of {window}" if price == "volume" else
            f"today makes a new {'all-time' if n is None else str(n) + '-session'} {word} (today's "
            f"{pname} {'above' if high else 'below'} every earlier {pname} in the window)")
    return Measure(lines, flag=flag, value=v, report=[prior, v], score=v if high else f"-{v}",
                   formula=f"{flag}: today's {pname} {'>' if high else '<'} every {pname} of the previous sessions in "
                           f"{window} (today included in the window)", noun=noun)


def e_breakout(ctx: Ctx, p: dict) -> Measure:
    n, high = p["lookback"], p["side"] == "high"
    word = "high" if high else "low"
    lb = ctx.const("BREAKOUT_LOOKBACK", n, f"previous sessions whose {word} the close must break")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    level = ctx.var(f"prior_{word}")
    flag = ctx.var("breakout" if high else "breakdown")
    v = ctx.var("breakout_pct" if high else "breakdown_pct")
    lines = [f"{level} = {'max' if high else 'min'}(bars['{word}'][-{lb} - 1:-1])",
             f"{flag} = closes[-1] {'>' if high else '<'} {level}",
             f"{v} = (closes[-1] / {level} - 1.0) * 100.0 if {level} > 0 else 0.0"]
    return Measure(lines, flag=flag, value=v, report=[level, v], score=v if high else f"-{v}",
                   formula=f"{flag}: close[t] {'>' if high else '<'} {'max' if high else 'min'}({word}[t-{n}..t-1])",
                   noun=f"the close breaks {'above' if high else 'below'} the {word} of the previous {n} sessions")


def e_extreme_distance(ctx: Ctx, p: dict) -> Measure:
    n, high = p["lookback"], p["side"] == "high"
    word = "high" if high else "low"
    lb = _lookback_const(ctx, f"{word.upper()}_LOOKBACK", n, f"sessions in the {word} window (today included)")
    ctx.bars(lb, lb if n is not None else "1")
    level = ctx.var(f"{word}_{n}d" if n else f"alltime_{word}")
    v = ctx.var(f"pct_from_{word}")
    lines = [f"{level} = {'max' if high else 'min'}(bars['{word}'][-{lb}:])",
             f"{v} = (closes[-1] / {level} - 1.0) * 100.0 if {level} > 0 else None"]
    window = "all available history" if n is None else f"{n}-session"
    return Measure(lines, value=v, report=[level, v], nullable=True,
                   formula=f"{v} = (close[t] / {'max' if high else 'min'}({word} over {window}) - 1) * 100",
                   noun=f"the close vs the {window} {word}", prefix=f"PCT_FROM_{word.upper()}", unit="%",
                   names=(f"near_{word}", f"off_{word}") if high else (f"off_{word}", f"near_{word}"))


_CANDLE_NOUNS = {
    "inside_day": "today is an inside day (high below and low above yesterday's)",
    "outside_day": "today is an outside day (high above and low below yesterday's)",
    "bullish_engulfing": "today is a bullish engulfing candle",
    "bearish_engulfing": "today is a bearish engulfing candle",
    "hammer": "today is a hammer candle (long lower shadow, small body at the top)",
    "shooting_star": "today is a shooting star / inverted hammer (long upper shadow, small body at the bottom)",
    "doji": "today is a doji (tiny body)",
    "narrow_range": "today has the narrowest daily range",
    "morning_star": "a morning star completes today (long red, small body below it, green closing past its middle)",
    "evening_star": "an evening star completes today (long green, small body above it, red closing past its middle)",
    "three_white_soldiers": "three white soldiers end today (3 green candles, rising closes, each opening in the last body)",
    "three_black_crows": "three black crows end today (3 red candles, falling closes, each opening in the last body)",
    "bullish_harami": "today is a bullish harami (a green body inside yesterday's red one)",
    "bearish_harami": "today is a bearish harami (a red body inside yesterday's green one)",
    "piercing_line": "today is a piercing line (opens below yesterday's red close, closes past its middle)",
    "dark_cloud_cover": "today is a dark cloud cover (opens above yesterday's green close, closes below its middle)",
}


def e_candle(ctx: Ctx, p: dict) -> Measure:
    pat = p["pattern"]
    noun = _CANDLE_NOUNS[pat]
    if pat in ("inside_day", "outside_day"):
        ctx.use(pat)
        ctx.bars("2", "2")
        flag, v = ctx.var(pat.split("_")[0]), ctx.var("range_vs_yesterday")
        return Measure([f"{flag}, {v} = {pat}(bars)"], flag=flag, value=v, report=[v],
                       score=f"-{v}" if pat == "inside_day" else v,
                       formula=(f"{flag}: high[t] < high[t-1] and low[t] > low[t-1]" if pat == "inside_day"
                                else f"{flag}: high[t] > high[t-1] and low[t] < low[t-1]"),
                       noun=noun)
    if pat in ("bullish_engulfing", "bearish_engulfing"):
        ctx.use("engulfing")
        ctx.bars("2", "2")
        flag, v = ctx.var(pat), ctx.var("body_ratio")
        bullish = pat == "bullish_engulfing"
        return Measure([f"{flag}, {v} = engulfing(bars, {bullish})"], flag=flag, value=v, report=[v], score=v,
                       formula=f"{flag}: " + ("yesterday down, today up, today's body engulfs yesterday's"
                                              if bullish else "yesterday up, today down, today's body engulfs yesterday's"),
                       noun=noun)
    if pat in ("hammer", "shooting_star"):
        ctx.use(pat)
        ctx.bars("1", "1")
        mult = ctx.const("SHADOW_MULTIPLE", 2.0, "long shadow must be at least this many bodies")
        other = ctx.const("MAX_OTHER_SHADOW", 0.1, "the other shadow may be at most this fraction of the range")
        flag, v = ctx.var("is_" + pat), ctx.var("shadow_ratio")
        long_side = "lower" if pat == "hammer" else "upper"
        short_side = "upper" if pat == "hammer" else "lower"
        return Measure([f"{flag}, {v} = {pat}(bars, {mult}, {other})"], flag=flag, value=v, report=[v], score=v,
                       formula=f"{flag}: {long_side} shadow >= {mult} x body and {short_side} shadow <= {other} x range",
                       noun=noun)
    if pat == "doji":
        ctx.use("doji")
        ctx.bars("1", "1")
        mb = ctx.const("DOJI_MAX_BODY", 0.1, "body at most this fraction of the day's range")
        flag, v = ctx.var("is_doji"), ctx.var("body_to_range")
        return Measure([f"{flag}, {v} = doji(bars, {mb})"], flag=flag, value=v, report=[v], score=f"-{v}",
                       formula=f"{flag}: |close - open| <= {mb} x (high - low)", noun=noun)
    if pat in ("three_white_soldiers", "three_black_crows"):
        ctx.use("three_candles")
        ctx.bars("3", "3")
        flag, v = ctx.var(pat), ctx.var("three_day_move_pct")
        bullish = pat == "three_white_soldiers"
        return Measure([f"{flag}, {v} = three_candles(bars, {bullish})"], flag=flag, value=v, report=[v],
                       score=v if bullish else f"-{v}", formula=f"{flag}: {noun.split(' (', 1)[1].rstrip(')')}",
                       noun=noun)
    if pat in ("morning_star", "evening_star"):
        ctx.use("star")
        ctx.bars("3", "3")
        long_body = ctx.const("STAR_LONG_BODY", 0.5, "the first candle's body is at least this fraction of its range")
        small = ctx.const("STAR_SMALL_BODY", 0.3, "the star's body is at most this fraction of the first body")
        flag, v = ctx.var(pat), ctx.var("star_depth")
        return Measure([f"{flag}, {v} = star(bars, {pat == 'morning_star'}, {long_body}, {small})"], flag=flag,
                       value=v, report=[v], score=v, formula=f"{flag}: {noun.split(' (', 1)[1].rstrip(')')}",
                       noun=noun)
    if pat in ("bullish_harami", "bearish_harami", "piercing_line", "dark_cloud_cover"):
        ctx.use("two_candle")
        ctx.bars("2", "2")
        flag, v = ctx.var(pat), ctx.var("body_ratio")
        return Measure([f"{flag}, {v} = two_candle(bars, '{pat}')"], flag=flag, value=v, report=[v],
                       score=f"-{v}" if "harami" in pat else v, formula=f"{flag}: {noun.split(' (', 1)[1].rstrip(')')}",
                       noun=noun)
    n = p["lookback"]
    ctx.use("narrow_range")
    lb = ctx.const("NARROW_RANGE_LOOKBACK", n, "sessions compared (today included), e.g. NR7")
    ctx.bars(lb, lb)
    flag, v = ctx.var(f"nr{n}"), ctx.var("range_vs_smallest")
    return Measure([f"{flag}, {v} = narrow_range(bars, {lb})"], flag=flag, value=v, report=[v], score=f"-{v}",
                   formula=f"{flag}: today's range < every range of the previous {n - 1} sessions (NR{n})",
                   noun=f"today has the narrowest range of the last {n} sessions (NR{n})")


def _atr_setup(ctx: Ctx, n: int) -> tuple[list[str], str]:
    ctx.use("wilder_atr")
    per = ctx.const("ATR_PERIOD", n, "ATR period (Wilder's smoothing)")
    hist = ctx.const("ATR_HISTORY", HISTORY_BARS, "sessions used to warm up the ATR")
    ctx.bars(f"max({hist}, {per} + 1)", f"{per} + 1")
    atr = ctx.var("atr")
    return [f"{atr} = wilder_atr(bars['high'][-{hist}:], bars['low'][-{hist}:], closes[-{hist}:], {per})"], atr


def e_atr_pct(ctx: Ctx, p: dict) -> Measure:
    lines, atr = _atr_setup(ctx, p["period"])
    v = ctx.var("atr_pct")
    lines.append(f"{v} = {atr} / closes[-1] * 100.0 if {atr} is not None and closes[-1] > 0 else None")
    return Measure(lines, value=v, report=[atr, v], nullable=True, formula=f"{v} = ATR({p['period']}) / close[t] * 100",
                   noun=f"ATR({p['period']}) as a percentage of the close", prefix="ATR_PCT", unit="%",
                   names=("volatile", "calm"))


def e_atr(ctx: Ctx, p: dict) -> Measure:
    lines, atr = _atr_setup(ctx, p["period"])
    return Measure(lines, value=atr, report=[atr], nullable=True, formula=f"{atr} = ATR({p['period']}) in dollars",
                   noun=f"ATR({p['period']}) in dollars", prefix="ATR", unit="$", names=("atr_above", "atr_below"))


def e_range_ratio(ctx: Ctx, p: dict) -> Measure:
    ctx.use("range_ratio")
    lb = ctx.const("RANGE_LOOKBACK", p["lookback"], "previous sessions in the average range (today excluded)")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    v = ctx.var("range_ratio")
    return Measure([f"{v} = range_ratio(bars, {lb})"], value=v, report=[v], nullable=True,
                   formula=f"{v} = (high[t] - low[t]) / mean(high - low over the previous {p['lookback']} sessions)",
                   noun=f"today's range vs the average range of the previous {p['lookback']} sessions",
                   prefix="RANGE_RATIO", unit="x", names=("wide_range", "narrow_range_day"))


def e_range_pct(ctx: Ctx, p: dict) -> Measure:
    ctx.use("range_pct")
    ctx.bars("2", "2")
    v = ctx.var("range_pct")
    return Measure([f"{v} = range_pct(bars)"], value=v, report=[v], nullable=True,
                   formula=f"{v} = (high[t] - low[t]) / close[t-1] * 100",
                   noun="today's high-low range as a percentage of yesterday's close", prefix="RANGE_PCT", unit="%",
                   names=("wide_range", "narrow_range_day"))


def e_volatility(ctx: Ctx, p: dict) -> Measure:
    ctx.use("volatility_pct")
    lb = ctx.const("VOLATILITY_LOOKBACK", p["lookback"], "daily returns in the volatility estimate")
    ann = p["annualized"]
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    v = ctx.var("volatility_pct")
    return Measure([f"{v} = volatility_pct(closes, {lb}, {ann})"], value=v, report=[v], nullable=True,
                   formula=f"{v} = stdev of the last {p['lookback']} daily log returns * 100"
                           + (" * sqrt(252) (annualised)" if ann else " (daily)"),
                   noun=f"{'annualised' if ann else 'daily'} {p['lookback']}-session volatility",
                   prefix="VOLATILITY_PCT", unit="%", names=("high_volatility", "low_volatility"))


def e_streak(ctx: Ctx, p: dict, minimum: float | None = None) -> Measure:
    up = p["direction"] == "up"
    ctx.use("streak_length")
    extra = ctx.const("STREAK_WINDOW", 30, "sessions inspected when counting the streak")
    ctx.bars(extra, "2")
    v = ctx.var("up_streak" if up else "down_streak")
    return Measure([f"{v} = streak_length(closes, {up})"], value=v, report=[v],
                   formula=f"{v} = consecutive closes {'above' if up else 'below'} the previous close, ending today",
                   noun=f"consecutive {'up' if up else 'down'} closes ending today", prefix="STREAK_DAYS",
                   names=("streak", "short_streak"))


def e_zscore(ctx: Ctx, p: dict) -> Measure:
    ctx.use("zscore")
    lb = ctx.const("ZSCORE_LOOKBACK", p["lookback"], "closes in the mean and standard deviation (today included)")
    ctx.bars(lb, lb)
    v = ctx.var("zscore_value")
    return Measure([f"{v} = zscore(closes, {lb})"], value=v, report=[v], nullable=True,
                   formula=f"{v} = (close[t] - mean) / population std of the last {p['lookback']} closes",
                   noun=f"the z-score of the close vs its {p['lookback']}-session mean (in standard deviations)",
                   prefix="ZSCORE", names=("stretched_up", "stretched_down"))


def e_relative_strength(ctx: Ctx, p: dict) -> Measure:
    ctx.use("outperformance_pct")
    bench = ctx.const("BENCHMARK", p["benchmark"], "symbol the return is compared with")
    lb = ctx.const("RS_LOOKBACK", p["lookback"], "sessions the returns are measured over")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    v = ctx.var("outperformance_pct")
    return Measure([f"{v} = outperformance_pct(closes, {bench}, {lb})"], value=v, report=[v], nullable=True,
                   formula=f"{v} = return over {lb} sessions - {p['benchmark']}'s return over the same sessions",
                   noun=f"the {p['lookback']}-session return minus {p['benchmark']}'s (percentage points)",
                   prefix="OUTPERFORMANCE_PCT", unit="%", names=("outperforming", "underperforming"))


_FIELD_NOUN = {"pe_ratio": ("the P/E ratio", "PE", ""), "eps": ("EPS (trailing, $)", "EPS", "$"),
               "market_cap": ("market capitalisation ($)", "MARKET_CAP", "$"),
               "debt_to_equity": ("debt to equity", "DEBT_TO_EQUITY", "")}


def e_fundamental(ctx: Ctx, p: dict) -> Measure:
    f = p["field"]
    ctx.use("number")
    ctx.uses_info = True
    v = ctx.var(f)
    noun, prefix, unit = _FIELD_NOUN[f]
    return Measure([f"{v} = number(info.get('{f}'))"], value=v, report=[v], nullable=True,
                   formula=f"{v} = get_fundamental_data(symbol)['{f}'] (as of the date)", noun=noun, prefix=prefix,
                   unit=unit, names=(f"{f}_above", f"{f}_below"))


def e_earnings_surprise(ctx: Ctx, p: dict) -> Measure:
    ctx.use("latest_surprise_pct")
    v = ctx.var("surprise_pct")
    return Measure([f"{v} = latest_surprise_pct(symbol)"], value=v, report=[v], nullable=True,
                   formula=f"{v} = surprise_pct of the newest report from get_earnings_data(symbol, 1)",
                   noun="the latest earnings surprise (%)", prefix="SURPRISE_PCT", unit="%",
                   names=("beat", "missed"))


def _macd_setup(ctx: Ctx, p: dict) -> tuple[list[str], str, str, str, str]:
    ctx.use("macd_lines")
    fast = ctx.const("MACD_FAST", p["fast"], "fast EMA period of MACD")
    slow = ctx.const("MACD_SLOW", p["slow"], "slow EMA period of MACD")
    sig = ctx.const("MACD_SIGNAL", p["signal"], "EMA period of the MACD signal line")
    hist = ctx.const("MACD_HISTORY", HISTORY_BARS, "sessions used to warm up the EMAs")
    ctx.bars(f"max({hist}, {slow} + {sig} + 1)", f"{slow} + {sig}")
    lines_v = ctx.var("macd_values")
    m, s, mp, sp = ctx.var("macd"), ctx.var("macd_signal"), ctx.var("macd_prev"), ctx.var("macd_signal_prev")
    lines = [f"{lines_v} = macd_lines(closes[-{hist}:], {fast}, {slow}, {sig})",
             f"if {lines_v} is None:", "    return False",
             f"{m}, {s}, {mp}, {sp} = {lines_v}"]
    return lines, m, s, mp, sp


def e_macd_cross(ctx: Ctx, p: dict) -> Measure:
    lines, m, s, mp, sp = _macd_setup(ctx, p)
    up, zero = p["direction"] == "up", p["line"] == "zero"
    ref, ref_prev = ("0.0", "0.0") if zero else (s, sp)
    flag = ctx.var("macd_crossed_above" if up else "macd_crossed_below")
    if up:
        lines.append(f"{flag} = {m} > {ref} and {mp} <= {ref_prev}")
    else:
        lines.append(f"{flag} = {m} < {ref} and {mp} >= {ref_prev}")
    target = "zero" if zero else "its signal line"
    return Measure(lines, flag=flag, report=[m, s], score=f"{m} - {ref}" if up else f"{ref} - {m}",
                   formula=f"{flag}: MACD({p['fast']},{p['slow']},{p['signal']}) crosses "
                           f"{'above' if up else 'below'} {target} today",
                   noun=f"MACD crosses {'above' if up else 'below'} {target} today")


def e_macd(ctx: Ctx, p: dict) -> Measure:
    lines, m, s, _, _ = _macd_setup(ctx, p)
    if p["line"] == "histogram":
        v = ctx.var("macd_histogram")
        lines.append(f"{v} = {m} - {s}")
        return Measure(lines, value=v, report=[m, s, v], formula=f"{v} = MACD - signal line",
                       noun="MACD minus its signal line", prefix="MACD_HISTOGRAM",
                       names=("macd_above_signal", "macd_below_signal"))
    return Measure(lines, value=m, report=[m, s], formula=f"{m} = EMA({p['fast']}) - EMA({p['slow']}) of the close",
                   noun="the MACD line", prefix="MACD", names=("macd_positive", "macd_negative"))


def e_streak_cond(ctx: Ctx, p: dict) -> Measure:
    return e_streak(ctx, p)


# ---- oscillators, channels, OBV, squeeze, close location, volume trend, range vs ATR -------------
def _stoch_setup(ctx: Ctx, p: dict) -> tuple[list[str], str, str, str, str]:
    key = ("stochastic", p["period"], p["smooth"], p["d"])
    if key in ctx.shared:
        k, dv, kp, dp = ctx.shared[key]
        return [], k, dv, kp, dp
    ctx.use("stochastic")
    n = ctx.const("STOCH_PERIOD", p["period"], "sessions in the stochastic's high-low window")
    sm = ctx.const("STOCH_SMOOTH", p["smooth"], "sessions %K is averaged over (1 = fast, 3 = slow stochastic)")
    d = ctx.const("STOCH_D", p["d"], "sessions in %D, the average of %K")
    ctx.bars(f"{n} + {sm} + {d} - 1", f"{n} + {sm} + {d} - 1")
    k, dv, kp, dp = ctx.var("stoch_k"), ctx.var("stoch_d"), ctx.var("stoch_k_prev"), ctx.var("stoch_d_prev")
    st = ctx.var("stoch")
    lines = [f"{st} = stochastic(bars, {n}, {sm}, {d})",
             f"{k}, {dv}, {kp}, {dp} = {st} if {st} is not None else (None, None, None, None)"]
    ctx.shared[key] = (k, dv, kp, dp)
    return lines, k, dv, kp, dp


def _stoch_label(p: dict) -> str:
    kind = "slow " if p["smooth"] == 3 else "" if p["smooth"] == 1 else f"{p['smooth']}-smoothed "
    return f"{kind}stochastic({p['period']}, {p['d']})"


def e_stochastic(ctx: Ctx, p: dict) -> Measure:
    lines, k, dv, _, _ = _stoch_setup(ctx, p)
    line = p["line"]
    v = k if line == "k" else dv
    label = _stoch_label(p)
    return Measure(lines, value=v, report=[k, dv], nullable=True,
                   formula=(f"{k} = %K of the {label}: 100 x (close - lowest low) / (highest high - lowest low) over "
                            f"{p['period']} sessions" + (f", averaged over {p['smooth']}" if p["smooth"] > 1 else "")
                            + f"; {dv} = mean of %K over {p['d']} sessions"),
                   noun=f"%{line.upper()} of the {label}", prefix="STOCH_" + line.upper(),
                   names=("stoch_high", "stoch_low"))


def e_stoch_cross(ctx: Ctx, p: dict) -> Measure:
    lines, k, dv, kp, dp = _stoch_setup(ctx, p)
    up = p["direction"] == "up"
    flag = ctx.var("k_crossed_above_d" if up else "k_crossed_below_d")
    if up:
        lines.append(f"{flag} = {k} is not None and {kp} <= {dp} and {k} > {dv}")
    else:
        lines.append(f"{flag} = {k} is not None and {kp} >= {dp} and {k} < {dv}")
    label = _stoch_label(p)
    return Measure(lines, flag=flag, report=[k, dv], score=(f"{k} - {dv}" if up else f"{dv} - {k}") + f" if {k} is not None else 0.0",
                   formula=f"{flag}: %K of the {label} crosses {'above' if up else 'below'} %D today",
                   noun=f"%K crosses {'above' if up else 'below'} %D today ({label})")


def _period_value(ctx: Ctx, p: dict, helper: str, const: str, meaning: str, var: str, label: str, formula: str,
                  extra_bar: bool = False) -> Measure:
    """One value from a helper of (bars, period): Williams %R, CCI, MFI."""
    ctx.use(helper)
    n = ctx.const(const, p["period"], meaning)
    need = f"{n} + 1" if extra_bar else n
    ctx.bars(need, need)
    v = ctx.var(var)
    prefix = const.split("_")[0]
    return Measure([f"{v} = {helper}(bars, {n})"], value=v, report=[v], nullable=True, formula=f"{v} = {formula}",
                   noun=f"{label}({p['period']})", prefix=prefix, names=(f"{prefix.lower()}_high", f"{prefix.lower()}_low"))


def e_williams_r(ctx: Ctx, p: dict) -> Measure:
    return _period_value(ctx, p, "williams_pct_r", "WILLR_PERIOD", "sessions in the Williams %R high-low window",
                         "williams_r", "Williams %R",
                         f"-100 x (highest high - close) / (highest high - lowest low) over {p['period']} sessions")


def e_cci(ctx: Ctx, p: dict) -> Measure:
    return _period_value(ctx, p, "commodity_channel_index", "CCI_PERIOD", "sessions in the CCI's mean and mean deviation",
                         "cci", "CCI", f"(typical price - SMA({p['period']}) of it) / (0.015 x its mean absolute deviation)")


def e_mfi(ctx: Ctx, p: dict) -> Measure:
    return _period_value(ctx, p, "money_flow_index", "MFI_PERIOD", "sessions in the Money Flow Index", "mfi", "MFI",
                         f"100 - 100 / (1 + positive / negative money flow over {p['period']} sessions)", extra_bar=True)


def _dmi_setup(ctx: Ctx, p: dict) -> tuple[list[str], str, str, str, str, str]:
    key = ("dmi", p["period"])
    if key in ctx.shared:
        adx, pdi, mdi, pp, mp = ctx.shared[key]
        return [], adx, pdi, mdi, pp, mp
    ctx.use("dmi_lines")
    n = ctx.const("ADX_PERIOD", p["period"], "ADX / DMI period (Wilder's smoothing)")
    hist = ctx.const("ADX_HISTORY", HISTORY_BARS, "sessions used to warm up the ADX")
    ctx.bars(f"max({hist}, 2 * {n} + 1)", f"2 * {n} + 1")
    adx, pdi, mdi, pp, mp = (ctx.var("adx"), ctx.var("plus_di"), ctx.var("minus_di"), ctx.var("plus_di_prev"),
                             ctx.var("minus_di_prev"))
    dmi = ctx.var("dmi")
    lines = [f"{dmi} = dmi_lines({{'high': bars['high'][-{hist}:], 'low': bars['low'][-{hist}:], "
             f"'close': closes[-{hist}:]}}, {n})",
             f"{adx}, {pdi}, {mdi}, {pp}, {mp} = {dmi} if {dmi} is not None else (None, None, None, None, None)"]
    ctx.shared[key] = (adx, pdi, mdi, pp, mp)
    return lines, adx, pdi, mdi, pp, mp


def e_adx(ctx: Ctx, p: dict) -> Measure:
    lines, adx, pdi, mdi, _, _ = _dmi_setup(ctx, p)
    return Measure(lines, value=adx, report=[adx, pdi, mdi], nullable=True,
                   formula=f"{adx} = Wilder's ADX({p['period']}) (average of DX = 100 x |+DI - -DI| / (+DI + -DI))",
                   noun=f"ADX({p['period']})", prefix="ADX", names=("trending", "not_trending"))


def e_dmi(ctx: Ctx, p: dict) -> Measure:
    lines, adx, pdi, mdi, pp, mp = _dmi_setup(ctx, p)
    bull, cross = p["side"] == "bull", p["mode"] == "cross"
    a, b, ap, bp = (pdi, mdi, pp, mp) if bull else (mdi, pdi, mp, pp)
    flag = ctx.var(("plus_di" if bull else "minus_di") + ("_crossed_above" if cross else "_above"))
    test = f"{a} > {b}" + (f" and {ap} <= {bp}" if cross else "")
    lines.append(f"{flag} = {adx} is not None and {test}")
    what = ("+DI" if bull else "-DI") + (" crosses above " if cross else " is above ") + ("-DI" if bull else "+DI")
    return Measure(lines, flag=flag, report=[pdi, mdi, adx], score=f"{a} - {b} if {adx} is not None else 0.0",
                   formula=f"{flag}: {what}" + (" today" if cross else "") + f" (Wilder's DMI, {p['period']})",
                   noun=what + (" today" if cross else "") + f" (DMI {p['period']})")


def e_keltner(ctx: Ctx, p: dict) -> Measure:
    ctx.use("keltner")
    lower = p["band"] == "lower"
    n = ctx.const("KELTNER_PERIOD", p["period"], "sessions in the Keltner middle line (EMA of the close)")
    mult = ctx.const("KELTNER_MULTIPLE", float(p["mult"]), "ATRs between the middle line and each band")
    an = ctx.const("KELTNER_ATR_PERIOD", p["atr"], "ATR period of the band width (Wilder's smoothing)")
    hist = ctx.const("KELTNER_HISTORY", HISTORY_BARS, "sessions used to warm up the EMA and ATR")
    ctx.bars(f"max({hist}, {n}, {an} + 1)", f"max({n}, {an} + 1)")
    mid, up_b, lo_b = ctx.var("keltner_middle"), ctx.var("keltner_upper"), ctx.var("keltner_lower")
    ch = ctx.var("channel")
    lines = [f"{ch} = keltner({{'high': bars['high'][-{hist}:], 'low': bars['low'][-{hist}:], "
             f"'close': closes[-{hist}:]}}, {n}, {mult}, {an})",
             f"{mid}, {up_b}, {lo_b} = {ch} if {ch} is not None else (None, None, None)"]
    if lower:
        flag = ctx.var("below_lower_keltner")
        lines.append(f"{flag} = {lo_b} is not None and closes[-1] < {lo_b}")
        score = f"({lo_b} - closes[-1]) / {mid} * 100.0 if {lo_b} is not None and {mid} > 0 else 0.0"
        what = "the close is below the lower Keltner band"
    else:
        flag = ctx.var("above_upper_keltner")
        lines.append(f"{flag} = {up_b} is not None and closes[-1] > {up_b}")
        score = f"(closes[-1] - {up_b}) / {mid} * 100.0 if {up_b} is not None and {mid} > 0 else 0.0"
        what = "the close is above the upper Keltner band"
    return Measure(lines, flag=flag, report=[lo_b if lower else up_b, mid], score=score,
                   formula=f"{flag}: {what}; bands = EMA({p['period']}) +/- {p['mult']:g} x ATR({p['atr']})",
                   noun=f"{what} (EMA {p['period']} +/- {p['mult']:g} ATR({p['atr']}))")


def e_obv_extreme(ctx: Ctx, p: dict) -> Measure:
    ctx.use("obv_window")
    high = p["side"] == "high"
    word = "high" if high else "low"
    lb = ctx.const(f"OBV_{word.upper()}_LOOKBACK", p["lookback"], f"sessions in the OBV new-{word} window (today included)")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    obv, prior, flag = ctx.var("obv"), ctx.var(f"prior_obv_{word}"), ctx.var(f"obv_new_{word}")
    lines = [f"{obv} = obv_window(bars, {lb})", f"{prior} = {'max' if high else 'min'}({obv}[:-1])",
             f"{flag} = {obv}[-1] {'>' if high else '<'} {prior}"]
    return Measure(lines, flag=flag, report=[], score=f"({obv}[-1] - {prior}) / bars['volume'][-1] if bars['volume'][-1] > 0 else 0.0"
                   if high else f"({prior} - {obv}[-1]) / bars['volume'][-1] if bars['volume'][-1] > 0 else 0.0",
                   formula=f"{flag}: on-balance volume today {'>' if high else '<'} every OBV value of the previous "
                           f"{p['lookback'] - 1} sessions",
                   noun=f"on-balance volume makes a new {p['lookback']}-session {word}")


def e_kc_squeeze(ctx: Ctx, p: dict) -> Measure:
    """The TTM squeeze: the Bollinger bands inside the Keltner channel, both around the same SMA
    (Keltner width = a multiple of the mean true range, as in the common public version)."""
    ctx.use("bollinger")
    ctx.use("mean_true_range")
    per = ctx.const("BAND_PERIOD", p["period"], "sessions in the Bollinger middle band (SMA) and the Keltner channel")
    width = ctx.const("BAND_WIDTH", float(p["width"]), "standard deviations between the middle and outer Bollinger bands")
    mult = ctx.const("SQUEEZE_KELTNER_MULTIPLE", float(p["mult"]), "mean true ranges between the middle and each Keltner band")
    ctx.bars(f"{per} + 1", f"{per} + 1")
    mid, up_b, lo_b = ctx.var("middle_band"), ctx.var("upper_band"), ctx.var("lower_band")
    tr, ratio, flag = ctx.var("mean_tr"), ctx.var("bands_vs_keltner"), ctx.var("squeeze_on")
    lines = [f"{mid}, {up_b}, {lo_b} = bollinger(closes, {per}, {width})",
             f"{tr} = mean_true_range(bars, {per})",
             f"{ratio} = ({up_b} - {lo_b}) / (2.0 * {mult} * {tr}) if {tr} > 0 else None",
             f"{flag} = {up_b} < {mid} + {mult} * {tr} and {lo_b} > {mid} - {mult} * {tr}"]
    return Measure(lines, flag=flag, value=ratio, report=[ratio], score=f"-{ratio} if {ratio} is not None else None",
                   formula=(f"{flag}: Bollinger({p['period']}, {p['width']:g}) bands inside the Keltner channel "
                            f"SMA({p['period']}) +/- {p['mult']:g} x mean true range({p['period']}); {ratio} = band width "
                            f"/ channel width (< 1 while the squeeze is on)"),
                   noun=(f"the TTM squeeze is on (Bollinger({p['period']}, {p['width']:g}) inside Keltner("
                         f"{p['period']}, {p['mult']:g} x mean true range))"))


def e_bb_squeeze(ctx: Ctx, p: dict) -> Measure:
    ctx.use("bandwidth_squeeze")
    per = ctx.const("BAND_PERIOD", p["period"], "sessions in the Bollinger middle band (SMA)")
    width = ctx.const("BAND_WIDTH", float(p["width"]), "standard deviations between the middle and outer bands")
    lb = ctx.const("SQUEEZE_LOOKBACK", p["lookback"], "sessions whose BandWidth today's must be the lowest of")
    ctx.bars(f"{lb} + {per} - 1", f"{lb} + {per} - 1")
    flag, v = ctx.var("squeeze"), ctx.var("bandwidth_pct")
    return Measure([f"{flag}, {v} = bandwidth_squeeze(closes, {per}, {width}, {lb})"], flag=flag, value=v, report=[v],
                   score=f"-{v} if {v} is not None else 0.0",
                   formula=f"{flag}: Bollinger({p['period']}, {p['width']:g}) BandWidth today is the lowest of the last "
                           f"{p['lookback']} sessions",
                   noun=f"Bollinger BandWidth is at its lowest of the last {p['lookback']} sessions (a squeeze)")


def e_close_location(ctx: Ctx, p: dict) -> Measure:
    ctx.use("close_in_range_pct")
    ctx.bars("1", "1")
    v = ctx.var("close_location_pct")
    return Measure([f"{v} = close_in_range_pct(bars)"], value=v, report=[v], nullable=True,
                   formula=f"{v} = (close[t] - low[t]) / (high[t] - low[t]) * 100",
                   noun="where today's close sits in the day's range (0 = the low, 100 = the high)",
                   prefix="CLOSE_LOCATION_PCT", unit="%", names=("closed_near_high", "closed_near_low"))


def e_volume_trend(ctx: Ctx, p: dict) -> Measure:
    ctx.use("mean_last")
    fast = ctx.const("FAST_VOLUME_LOOKBACK", p["fast"], "sessions in the shorter average volume (today included)")
    slow = ctx.const("SLOW_VOLUME_LOOKBACK", p["slow"], "sessions in the longer average volume (today included)")
    ctx.bars(f"max({fast}, {slow})", f"max({fast}, {slow})")
    a, b, v = ctx.var("avg_volume_fast"), ctx.var("avg_volume_slow"), ctx.var("volume_trend")
    lines = [f"{a} = mean_last(bars['volume'], {fast})", f"{b} = mean_last(bars['volume'], {slow})",
             f"{v} = {a} / {b} if {b} > 0 else None"]
    return Measure(lines, value=v, report=[a, b, v], nullable=True,
                   formula=f"{v} = mean(volume, last {p['fast']} sessions) / mean(volume, last {p['slow']} sessions)",
                   noun=f"the {p['fast']}-session average volume vs the {p['slow']}-session average volume",
                   prefix="VOLUME_TREND", unit="x", names=("volume_rising", "volume_drying_up"))


def e_range_atr(ctx: Ctx, p: dict) -> Measure:
    ctx.use("wilder_atr")
    per = ctx.const("ATR_PERIOD", p["period"], "ATR period (Wilder's smoothing), as of yesterday")
    hist = ctx.const("ATR_HISTORY", HISTORY_BARS, "sessions used to warm up the ATR")
    ctx.bars(f"max({hist}, {per} + 2)", f"{per} + 2")
    atr, v = ctx.var("atr_yesterday"), ctx.var("range_vs_atr")
    lines = [f"{atr} = wilder_atr(bars['high'][-{hist}:-1], bars['low'][-{hist}:-1], closes[-{hist}:-1], {per})",
             f"{v} = (bars['high'][-1] - bars['low'][-1]) / {atr} if {atr} else None"]
    return Measure(lines, value=v, report=[atr, v], nullable=True,
                   formula=f"{v} = (high[t] - low[t]) / ATR({p['period']}) as of yesterday",
                   noun=f"today's range vs the ATR({p['period']}) as of yesterday", prefix="RANGE_ATR", unit="x",
                   names=("range_expansion", "range_contraction"))


def e_prev_bar(ctx: Ctx, p: dict) -> Measure:
    field, ref = p["field"], p["ref"]
    ctx.bars("2", "2")
    now = "closes[-1]" if field == "close" else f"bars['{field}'][-1]"
    v = ctx.var(f"{field}_vs_prev_{ref}_pct")
    lines = [f"{v} = ({now} / bars['{ref}'][-2] - 1.0) * 100.0 if bars['{ref}'][-2] > 0 else None"]
    return Measure(lines, value=v, report=[v], nullable=True,
                   formula=f"{v} = ({field}[t] / {ref}[t-1] - 1) * 100",
                   noun=f"today's {field} vs yesterday's {ref}", prefix=f"{field.upper()}_VS_PREV_{ref.upper()}_PCT",
                   unit="%", names=(f"{field}_above_prev_{ref}", f"{field}_below_prev_{ref}"))


_helper("bars_before", '''
def bars_before(bars, k):
    """The bars as they stood k sessions ago (the last k sessions removed)."""
    if k == 0:
        return bars
    return {key: values[:len(values) - k] for key, values in bars.items()}
''')


def e_ma_slope(ctx: Ctx, p: dict) -> Measure:
    n, ma, k = p["period"], p["ma"], p["lookback"]
    label = _ma_label(ma)
    per = ctx.const("MA_PERIOD", n, f"sessions in the {label}")
    lb = ctx.const("SLOPE_LOOKBACK", k, f"sessions back the {label} is compared with")
    now, then, v = ctx.var(f"{ma}{n}"), ctx.var(f"{ma}{n}_before"), ctx.var(f"{ma}{n}_slope_pct")
    if ma == "ema":
        ctx.use("ema_series")
        hist = ctx.const("EMA_HISTORY", HISTORY_BARS, "sessions used to warm up the EMAs")
        series = ctx.var(f"{ma}{n}_series")
        lines = [f"{series} = ema_series(closes[-{hist}:], {per})", f"{now}, {then} = {series}[-1], {series}[-1 - {lb}]"]
        ctx.bars(f"max({hist}, {per} + {lb})", f"{per} + {lb}")
    else:
        ctx.use("mean_last")
        lines = [f"{now} = mean_last(closes, {per})", f"{then} = mean_last(closes, {per}, skip={lb})"]
        ctx.bars(f"{per} + {lb}", f"{per} + {lb}")
    lines.append(f"{v} = ({now} / {then} - 1.0) * 100.0 if {then} else None")
    return Measure(lines, value=v, report=[now, v], nullable=True,
                   formula=f"{v} = ({label}{n}[t] / {label}{n}[t-{k}] - 1) * 100",
                   noun=f"the {n}-day {label}'s change over {k} sessions", prefix="MA_SLOPE_PCT", unit="%",
                   names=(f"{ma}{n}_rising", f"{ma}{n}_falling"))


def e_bb_width(ctx: Ctx, p: dict) -> Measure:
    ctx.use("bollinger")
    per = ctx.const("BAND_PERIOD", p["period"], "sessions in the Bollinger middle band (SMA)")
    width = ctx.const("BAND_WIDTH", float(p["width"]), "standard deviations between the middle and outer bands")
    ctx.bars(per, per)
    mid, up_b, lo_b, v = ctx.var("middle_band"), ctx.var("upper_band"), ctx.var("lower_band"), ctx.var("bandwidth_pct")
    lines = [f"{mid}, {up_b}, {lo_b} = bollinger(closes, {per}, {width})",
             f"{v} = ({up_b} - {lo_b}) / {mid} * 100.0 if {mid} > 0 else None"]
    return Measure(lines, value=v, report=[v], nullable=True,
                   formula=f"{v} = (upper - lower band) / middle band * 100, Bollinger({p['period']}, {p['width']:g})",
                   noun=f"the Bollinger BandWidth ({p['period']}, {p['width']:g})", prefix="BANDWIDTH_PCT", unit="%",
                   names=("wide_bands", "narrow_bands"))


def e_percent_b(ctx: Ctx, p: dict) -> Measure:
    ctx.use("bollinger")
    per = ctx.const("BAND_PERIOD", p["period"], "sessions in the Bollinger middle band (SMA)")
    width = ctx.const("BAND_WIDTH", float(p["width"]), "standard deviations between the middle and outer bands")
    ctx.bars(per, per)
    mid, up_b, lo_b, v = ctx.var("middle_band"), ctx.var("upper_band"), ctx.var("lower_band"), ctx.var("percent_b")
    lines = [f"{mid}, {up_b}, {lo_b} = bollinger(closes, {per}, {width})",
             f"{v} = (closes[-1] - {lo_b}) / ({up_b} - {lo_b}) if {up_b} > {lo_b} else None"]
    return Measure(lines, value=v, report=[v], nullable=True,
                   formula=f"{v} = (close - lower band) / (upper band - lower band), Bollinger({p['period']}, {p['width']:g})",
                   noun=f"Bollinger %B ({p['period']}, {p['width']:g})", prefix="PERCENT_B",
                   names=("percent_b_high", "percent_b_low"))


def e_dollar_volume(ctx: Ctx, p: dict) -> Measure:
    n = p["lookback"]
    lb = ctx.const("DOLLAR_VOLUME_LOOKBACK", n, "sessions in the average dollar volume (today included)")
    ctx.bars(lb, lb)
    v = ctx.var("dollar_volume")
    lines = [f"{v} = sum(c * q for c, q in zip(closes[-{lb}:], bars['volume'][-{lb}:])) / {lb}"]
    return Measure(lines, value=v, report=[v], formula=f"{v} = mean(close x volume over the last {n} sessions)",
                   noun=f"the {n}-session average dollar volume (close x volume)" if n > 1 else "today's dollar volume",
                   prefix="DOLLAR_VOLUME", unit="$", names=("liquid", "illiquid"))


@dataclass
class _AsOf:
    """A condition compiled into a module-level function of the bars (see :func:`_as_of`)."""

    fn: str  # the function's name: fn(bars) -> bool
    base: str  # a variable-name stem for what it tests
    what: str  # the condition in words
    formula: str  # the inner measure's formula line
    want: str  # bars the condition reads today (expression)
    need: str  # bars it needs today (expression)


def _as_of(ctx: Ctx, p: dict, value: bool = False) -> _AsOf:
    """Compile condition ``p`` (``kind``, ``params``, optional ``op`` / ``threshold``) into a
    function of the bars, so it can be evaluated on the bars as they stood on an earlier session
    (``bars_before(bars, k)``): "in the last N days", "N days in a row", "after ...". Its lines live
    in their own function, so nothing computed for today is shared with them. ``value``: the
    function returns the measure's value (None when missing) instead of the condition."""
    wants, needs, shared = ctx.wants, ctx.needs, ctx.shared
    ctx.wants, ctx.needs, ctx.shared = [], [], {}
    inner = EMITTERS[p["kind"]](ctx, dict(p["params"]))
    inner_wants, inner_needs = ctx.wants, ctx.needs
    ctx.wants, ctx.needs, ctx.shared = wants, needs, shared
    ctx.use("bars_before")
    op = p.get("op")
    if value:
        test, what, base = inner.value, _plain(inner.noun), inner.prefix.lower()
    elif op is None:
        test, what, base = inner.flag, _plain(inner.noun), inner.flag
    else:
        up = op in (">", ">=")
        const = ctx.const(f"{inner.prefix}_{'MIN' if up else 'MAX'}", float(p["threshold"]),
                          f"{'lower' if up else 'upper'} bound on {inner.noun} ({op})")
        test = f"{inner.value} is not None and {inner.value} {op} {const}"
        what = f"{inner.noun} is {_OP_WORDS[op]} {_value_text(p['threshold'], inner.unit)}"
        base = inner.names[0] if up else inner.names[1]
    fn = ctx.var(f"{base}_at" if value else f"{base}_on")
    body = ["closes = bars['close']", *inner.lines, f"return {test}"]
    doc = f"{what[0].upper()}{what[1:]} on the last of these bars." if value else f"Whether {what} on the last of these bars."
    ctx.functions.append(f"def {fn}(bars):\n    \"\"\"{doc}\"\"\"\n"
                         + "\n".join("    " + line for line in body))
    return _AsOf(fn, base, what, inner.formula.split(": ", 1)[-1], _max_expr(inner_wants), _max_expr(inner_needs))


def e_within(ctx: Ctx, p: dict) -> Measure:
    """A pattern (a cross, a candle, a new high...) on any of the last ``days`` sessions, each
    evaluated on the bars as they stood that day (so nothing after that day is seen)."""
    days = p["days"]
    a = _as_of(ctx, p)
    n = ctx.const("WITHIN_SESSIONS", days, "the pattern may have happened on any of this many sessions (today included)")
    # enough bars for the pattern on the earliest of the sessions too
    ctx.bars(f"{a.want} + {n} - 1", f"{a.need} + {n} - 1")
    days_v, flag = ctx.var(f"{a.base}_days_ago"), ctx.var(f"{a.base}_recently")
    lines = [f"{days_v} = next((k for k in range({n}) if {a.fn}(bars_before(bars, k))), None)",
             f"{flag} = {days_v} is not None"]
    return Measure(lines, flag=flag, report=[days_v], score=f"-{days_v} if {days_v} is not None else None",
                   formula=f"{flag}: {a.formula}, on one of the last {days} sessions "
                           f"({days_v} = how many sessions ago, 0 = today)",
                   noun=f"{a.what} on one of the last {days} sessions")


def e_persist(ctx: Ctx, p: dict) -> Measure:
    """A condition that held on each of the last ``days`` sessions ("above its 200-day moving
    average for 10 straight days"), each evaluated on the bars as they stood that day."""
    days = p["days"]
    a = _as_of(ctx, p)
    n = ctx.const("HELD_SESSIONS", days, "sessions in a row (today included) the condition must hold on")
    ctx.bars(f"{a.want} + {n} - 1", f"{a.need} + {n} - 1")
    held, flag = ctx.var(f"{a.base}_sessions"), ctx.var(f"{a.base}_{days}_in_a_row")
    lines = [f"{held} = next((k for k in range({n}) if not {a.fn}(bars_before(bars, k))), {n})",
             f"{flag} = {held} == {n}"]
    return Measure(lines, flag=flag, report=[held], score=held,
                   formula=f"{flag}: {a.what} on each of the last {days} sessions ({held} = sessions in a row it held, "
                           f"counted back from today, up to {days})",
                   noun=f"{a.what} on each of the last {days} sessions")


def e_prior(ctx: Ctx, p: dict) -> Measure:
    """A condition as of the session before today ("an inside day after a gap up": the gap was
    yesterday's), evaluated on the bars as they stood then."""
    a = _as_of(ctx, p)
    ctx.bars(f"{a.want} + 1", f"{a.need} + 1")
    flag = ctx.var(f"{a.base}_yesterday")
    return Measure([f"{flag} = {a.fn}(bars_before(bars, 1))"], flag=flag, report=[], score="0.0",
                   formula=f"{flag}: {a.what}, as of yesterday's close (the session before today)",
                   noun=f"{a.what} yesterday (the session before today)")


def e_count(ctx: Ctx, p: dict) -> Measure:
    """How many of the last ``days`` sessions (today included) a condition held on ("up on 4 of
    the last 5 days"), each evaluated on the bars as they stood that day."""
    days = p["days"]
    a = _as_of(ctx, p)
    n = ctx.const("COUNTED_SESSIONS", days, "sessions counted back (today included)")
    ctx.bars(f"{a.want} + {n} - 1", f"{a.need} + {n} - 1")
    v = ctx.var(f"{a.base}_sessions")
    lines = [f"{v} = sum(1 for k in range({n}) if {a.fn}(bars_before(bars, k)))"]
    return Measure(lines, value=v, report=[v],
                   formula=f"{v} = how many of the last {days} sessions (today included) {a.what} ({a.formula})",
                   noun=f"the number of the last {days} sessions on which {a.what}", prefix="SESSIONS",
                   names=(f"{a.base}_often", f"{a.base}_seldom"))


def e_first(ctx: Ctx, p: dict) -> Measure:
    """A condition that holds today and held on none of the ``days`` sessions before ("RSI above
    50 for the first time in 20 days"), each evaluated on the bars as they stood that day."""
    days = p["days"]
    a = _as_of(ctx, p)
    n = ctx.const("QUIET_SESSIONS", days, "sessions before today on which the condition must not have held")
    ctx.bars(f"{a.want} + {n}", f"{a.need} + {n}")
    now, flag = ctx.var(f"{a.base}_today"), ctx.var(f"{a.base}_first_in_{days}")
    lines = [f"{now} = {a.fn}(bars)",
             f"{flag} = {now} and not any({a.fn}(bars_before(bars, k)) for k in range(1, {n} + 1))"]
    return Measure(lines, flag=flag, report=[], score="0.0",
                   formula=f"{flag}: {a.what} today ({a.formula}) and on none of the {days} sessions before",
                   noun=f"{a.what} today for the first time in {days} sessions (on none of the {days} before)")


def e_change(ctx: Ctx, p: dict) -> Measure:
    """How much a measure moved over ``lookback`` sessions ("RSI rising", "the MACD histogram is
    increasing"): its value today minus its value as it stood then."""
    a = _as_of(ctx, p, value=True)
    unit = EMITTERS[p["kind"]](Ctx(), dict(p["params"])).unit
    lb = ctx.const("CHANGE_LOOKBACK", p["lookback"], "sessions back the value is compared with")
    ctx.bars(f"{a.want} + {lb}", f"{a.need} + {lb}")
    now, then, v = ctx.var(f"{a.base}_now"), ctx.var(f"{a.base}_before"), ctx.var(f"{a.base}_change")
    lines = [f"{now} = {a.fn}(bars)", f"{then} = {a.fn}(bars_before(bars, {lb}))",
             f"{v} = {now} - {then} if {now} is not None and {then} is not None else None"]
    back = "the session before" if p["lookback"] == 1 else f"{p['lookback']} sessions earlier"
    return Measure(lines, value=v, report=[now, then, v], nullable=True,
                   formula=f"{v} = {a.what} today minus {a.what} as of {back} ({a.formula})",
                   noun=f"the change in {a.what} since {back}", prefix="CHANGE", unit=unit,
                   names=(f"{a.base}_rising", f"{a.base}_falling"))


def e_atr_change(ctx: Ctx, p: dict) -> Measure:
    lines, atr = _atr_setup(ctx, p["period"])
    per = ctx.const("ATR_PERIOD", p["period"], "ATR period (Wilder's smoothing)")
    hist = ctx.const("ATR_HISTORY", HISTORY_BARS, "sessions used to warm up the ATR")
    lb = ctx.const("ATR_CHANGE_LOOKBACK", p["lookback"], "sessions back the ATR is compared with")
    # the ATR as it stood lb sessions ago: the same window, lb bars earlier
    ctx.bars(f"max({hist}, {per} + 1) + {lb}", f"{per} + 1 + {lb}")
    then, v = ctx.var("atr_before"), ctx.var("atr_change_pct")
    window = f"[-{hist} - {lb}:-{lb}]"
    lines += [f"{then} = wilder_atr(bars['high']{window}, bars['low']{window}, closes{window}, {per})",
              f"{v} = ({atr} / {then} - 1.0) * 100.0 if {atr} is not None and {then} else None"]
    return Measure(lines, value=v, report=[atr, then, v], nullable=True,
                   formula=f"{v} = (ATR({p['period']})[t] / ATR({p['period']})[t-{p['lookback']}] - 1) * 100",
                   noun=f"ATR({p['period']})'s change over {p['lookback']} sessions", prefix="ATR_CHANGE_PCT", unit="%",
                   names=("atr_rising", "atr_falling"))


def e_atr_ratio(ctx: Ctx, p: dict) -> Measure:
    fast_lines, fast = _atr_setup(ctx, p["fast"])
    slow_lines, slow = _atr_setup(ctx, p["slow"])
    v = ctx.var(f"atr{p['fast']}_vs_atr{p['slow']}")
    lines = [*fast_lines, *slow_lines,
             f"{v} = {fast} / {slow} if {fast} is not None and {slow} else None"]
    return Measure(lines, value=v, report=[fast, slow, v], nullable=True,
                   formula=f"{v} = ATR({p['fast']}) / ATR({p['slow']}) (Wilder's smoothing, both as of today)",
                   noun=f"the ratio ATR({p['fast']}) / ATR({p['slow']})", prefix="ATR_RATIO", unit="x",
                   names=("atr_expanding", "atr_contracting"))


def e_return_extreme(ctx: Ctx, p: dict) -> Measure:
    n, high = p["lookback"], p["side"] == "high"
    lb = ctx.const("DAILY_RETURN_WINDOW", n, "sessions whose one-day returns today's is compared with (today included)")
    ctx.bars(f"{lb} + 1", f"{lb} + 1")
    rets, today, prior = ctx.var("daily_returns_pct"), ctx.var("return_today_pct"), ctx.var("prior_extreme_return_pct")
    flag = ctx.var("largest_daily_gain" if high else "largest_daily_drop")
    lines = [(f"{rets} = [(closes[i] / closes[i - 1] - 1.0) * 100.0 if closes[i - 1] > 0 else 0.0 "
              f"for i in range(len(closes) - {lb}, len(closes))]"),
             f"{today}, {prior} = {rets}[-1], {'max' if high else 'min'}({rets}[:-1])",
             f"{flag} = {today} {'>' if high else '<'} {prior}"]
    word = "gain" if high else "drop"
    return Measure(lines, flag=flag, value=today, report=[today, prior], score=today if high else f"-{today}",
                   formula=f"{flag}: today's one-day return {'>' if high else '<'} every one-day return of the previous "
                           f"sessions in the last {n} sessions",
                   noun=f"today's one-day {word} is the largest of the last {n} sessions")


def e_close_off_extreme(ctx: Ctx, p: dict) -> Measure:
    high = p["side"] == "high"
    ctx.bars("1", "1")
    v = ctx.var("close_below_high_pct" if high else "close_above_low_pct")
    if high:
        lines = [f"{v} = (bars['high'][-1] - closes[-1]) / bars['high'][-1] * 100.0 if bars['high'][-1] > 0 else None"]
        formula = f"{v} = (high[t] - close[t]) / high[t] * 100"
    else:
        lines = [f"{v} = (closes[-1] - bars['low'][-1]) / bars['low'][-1] * 100.0 if bars['low'][-1] > 0 else None"]
        formula = f"{v} = (close[t] - low[t]) / low[t] * 100"
    return Measure(lines, value=v, report=[v], nullable=True, formula=formula,
                   noun=f"the close's distance {'below' if high else 'above'} the day's {p['side']} (% of the {p['side']})",
                   prefix="OFF_HIGH_PCT" if high else "OFF_LOW_PCT", unit="%",
                   names=("far_from_high" if high else "far_from_low", "near_high" if high else "near_low"))


def _plain(noun: str) -> str:
    return re.sub(r"\s+today$", "", noun.replace(" today (", " (").strip())


EMITTERS = {
    "gap": e_gap, "body": e_body, "return": e_return, "price": e_price, "ma_cross": e_ma_cross, "ma_spread": e_ma_spread,
    "ma_distance": e_ma_distance, "rsi": e_rsi, "rsi_cross": e_rsi_cross, "bollinger": e_bollinger,
    "relative_volume": e_relative_volume, "volume": e_volume, "new_extreme": e_new_extreme, "breakout": e_breakout,
    "extreme_distance": e_extreme_distance, "candle": e_candle, "atr_pct": e_atr_pct, "atr": e_atr,
    "range_ratio": e_range_ratio, "range_pct": e_range_pct, "volatility": e_volatility, "streak": e_streak_cond,
    "zscore": e_zscore, "relative_strength": e_relative_strength, "fundamental": e_fundamental,
    "earnings_surprise": e_earnings_surprise, "macd_cross": e_macd_cross, "macd": e_macd,
    "stochastic": e_stochastic, "stoch_cross": e_stoch_cross, "williams_r": e_williams_r, "cci": e_cci, "mfi": e_mfi,
    "adx": e_adx, "dmi": e_dmi, "keltner": e_keltner, "obv_extreme": e_obv_extreme, "bb_squeeze": e_bb_squeeze,
    "close_location": e_close_location, "volume_trend": e_volume_trend, "range_atr": e_range_atr,
    "prev_bar": e_prev_bar, "within": e_within, "persist": e_persist, "dollar_volume": e_dollar_volume,
    "prior": e_prior, "count": e_count, "first": e_first, "atr_change": e_atr_change, "change": e_change, "kc_squeeze": e_kc_squeeze,
    "atr_ratio": e_atr_ratio, "return_extreme": e_return_extreme,
    "close_off_extreme": e_close_off_extreme, "ma_slope": e_ma_slope, "bb_width": e_bb_width, "percent_b": e_percent_b,
}

#: score = value - threshold ("how far past the threshold") for these kinds; otherwise the value
_DISTANCE_SCORE = {"rsi", "zscore", "stochastic", "williams_r", "cci", "mfi", "adx"}
_OP_WORDS = {">": "more than", ">=": "at least", "<": "less than", "<=": "at most"}


# --------------------------------------------------------------------------- descriptions
def _value_text(value: float, unit: str) -> str:
    if unit == "$":
        a = abs(value)
        for div, suf in ((1e12, " trillion"), (1e9, " billion"), (1e6, " million")):
            if a >= div:
                return f"{'-' if value < 0 else ''}${a / div:g}{suf}"
        return f"${value:g}"
    if unit == "%":
        return f"{value:g}%"
    if unit == "x":
        return f"{value:g}x"
    return f"{value:g}"


def describe_condition(c: Condition) -> str:
    """Plain English for one condition (no code generation needed)."""
    m = EMITTERS[c.kind](Ctx(), c.params)
    if c.op is None:
        return m.noun
    if c.threshold == 0 and c.kind in ("ma_distance", "ma_spread"):
        p = c.params
        side = "above" if c.op in (">", ">=") else "below"
        label = _ma_label(p["ma"])
        if c.kind == "ma_distance":
            return f"the close is {side} its {p['period']}-day {label}"
        return f"the {p['fast']}-day {label} is {side} the {p['slow']}-day {label}"
    return f"{m.noun} is {_OP_WORDS[c.op]} {_value_text(c.threshold, m.unit)}"


def describe_node(node: Node | None, top: bool = True) -> str:
    if node is None:
        return "always (every symbol with enough data)"
    if isinstance(node, Condition):
        return describe_condition(node)
    if isinstance(node, Not):
        return f"NOT ({describe_node(node.item, False)})"
    joiner = " AND " if isinstance(node, AllOf) else " OR "
    text = joiner.join(describe_node(item, False) for item in node.items)
    return text if top else f"({text})"


def describe_ranking(r: Ranking) -> str:
    m = EMITTERS[r.kind](Ctx(), r.params)
    order = "highest" if r.descending else "lowest"
    head = f"top {r.limit}" if r.limit else "ranked"
    return f"{head} by {m.noun} ({order} first)"


# --------------------------------------------------------------------------- assembly
_SECTOR_CANDIDATES = (
    "technology", "tech", "information technology", "info tech", "communication services", "communications services",
    "communication", "communications", "telecommunication services", "telecommunications services",
    "telecommunications", "telecom", "media", "healthcare", "health care", "health", "financials", "financial",
    "financial services", "finance", "consumer discretionary", "discretionary", "consumer cyclical",
    "consumer cyclicals", "consumer staples", "staples", "consumer defensive", "consumer non cyclical",
    "consumer non cyclicals", "industrials", "industrial", "industrial goods", "energy", "oil and gas", "materials",
    "basic materials", "utilities", "utility", "real estate", "reit", "reits", "real estate investment trust",
)


def sector_spellings(sectors: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for name in _SECTOR_CANDIDATES + tuple(s.lower() for s in sectors):
        if canonical_sector(name) in sectors and name not in out:
            out.append(name)
    return tuple(out)


def _leaves(node: Node | None) -> list[tuple[Condition, bool]]:
    """(condition, required) in order; required = a direct member of a top-level AND."""
    if node is None:
        return []
    if isinstance(node, Condition):
        return [(node, True)]
    if isinstance(node, AllOf):
        out = []
        for item in node.items:
            if isinstance(item, Condition):
                out.append((item, True))
            else:
                out.extend((c, False) for c, _ in _leaves(item))
        return out
    if isinstance(node, Not):
        return [(c, False) for c, _ in _leaves(node.item)]
    return [(c, False) for item in node.items for c, _ in _leaves(item)]


def _render(node: Node, flags: dict[int, str], top: bool = True) -> str:
    if isinstance(node, Condition):
        return flags[id(node)]
    if isinstance(node, Not):
        inner = _render(node.item, flags, False)
        return f"not {inner}" if isinstance(node.item, Condition) else f"not ({inner})"
    joiner = " and " if isinstance(node, AllOf) else " or "
    text = joiner.join(_render(item, flags, False) for item in node.items)
    return text if top else f"({text})"


def _max_expr(parts: list[str]) -> str:
    flat: list[str] = []
    for part in parts:
        if part.startswith("max(") and part.endswith(")") and part.count("(") == 1:
            flat.extend(x.strip() for x in part[4:-1].split(","))
        else:
            flat.append(part)
    parts = list(dict.fromkeys(flat))
    if len(parts) > 1:
        parts = [x for x in parts if not x.isdigit()] + [x for x in parts if x.isdigit()]
        if all(x.isdigit() for x in parts):
            parts = [str(max(int(x) for x in parts))]
    return parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"


def _eval_const(expr: str, values: dict[str, Any]) -> Any:
    return eval(expr, {"__builtins__": {"max": max}}, dict(values))


@dataclass
class Emitted:
    code: str
    parameters: list[Parameter]
    description: str
    explanation: str
    name: str


def emit(spec: Spec) -> Emitted:
    ctx = Ctx()
    if spec.tickers:
        ctx.const("TICKERS", tuple(spec.tickers), "only these symbols can signal")
    if spec.excluded_tickers:
        ctx.const("EXCLUDED_TICKERS", tuple(spec.excluded_tickers), "these symbols never signal")
    if spec.sectors:
        ctx.const("SECTORS", tuple(spec.sectors), "sectors a symbol must belong to (get_fundamental_data()['sector'])")
        ctx.const("SECTOR_NAMES", sector_spellings(spec.sectors), "accepted spellings of SECTORS (lower case)")
    if spec.excluded_sectors:
        ctx.const("EXCLUDED_SECTORS", tuple(spec.excluded_sectors), "sectors a symbol must not belong to")
        ctx.const("EXCLUDED_SECTOR_NAMES", sector_spellings(spec.excluded_sectors),
                  "spellings of EXCLUDED_SECTORS (lower case)")
    if spec.sectors or spec.excluded_sectors:
        ctx.use("sector_key")
        ctx.uses_info = True

    leaves = _leaves(spec.expr)
    measures: dict[tuple, Measure] = {}
    order: list[tuple] = []

    def measure_for(kind: str, params: dict) -> Measure:
        key = (kind, tuple(sorted(params.items())))
        if key not in measures:
            measures[key] = EMITTERS[kind](ctx, params)
            order.append(key)
        return measures[key]

    if spec.ranking is not None:
        measure_for(spec.ranking.kind, spec.ranking.params)
    for c, _ in leaves:
        measure_for(c.kind, c.params)

    required_keys = {c.measure_key for c, req in leaves if req}
    if spec.ranking is not None:
        required_keys.add(spec.ranking.measure_key)

    # conditions -> flag lines
    cond_lines: list[str] = []
    flags: dict[int, str] = {}
    bound_const: dict[int, str] = {}
    docs: list[str] = []
    for c, _ in leaves:
        m = measures[c.measure_key]
        if c.op is None:
            flags[id(c)] = m.flag
            continue
        up = c.op in (">", ">=")
        const = ctx.const(f"{m.prefix}_{'MIN' if up else 'MAX'}", float(c.threshold),
                          f"{'lower' if up else 'upper'} bound on {m.noun} ({c.op})")
        bound_const[id(c)] = const
        flag = ctx.var(m.names[0] if up else m.names[1])
        test = f"{m.value} {c.op} {const}"
        if c.kind == "fundamental" and c.params["field"] == "pe_ratio" and not up:
            test = f"0 < {m.value} {c.op} {const}"
        if m.nullable and c.measure_key not in required_keys:
            test = f"{m.value} is not None and {test}"
        cond_lines.append(f"{flag} = {test}")
        flags[id(c)] = flag

    # classify_symbol body
    body: list[str] = []
    if spec.tickers:
        body += ["if symbol.upper() not in TICKERS:", "    return False"]
    if spec.excluded_tickers:
        body += ["if symbol.upper() in EXCLUDED_TICKERS:", "    return False"]
    if ctx.uses_info:
        body.append("info = get_fundamental_data(symbol) or {}")
    if spec.sectors:
        body += ["if sector_key(info) not in SECTOR_NAMES:", "    return False"]
    if spec.excluded_sectors:
        # a company without a sector on record cannot be shown to be outside the excluded ones
        body += ["if sector_key(info) in EXCLUDED_SECTOR_NAMES or not sector_key(info):", "    return False"]
    if ctx.wants:
        want_expr, need_expr = _max_expr(ctx.wants), _max_expr(ctx.needs)
        body += ["bars = fetch(symbol, HISTORY, MIN_BARS)", "if bars is None:", "    return False",
                 "closes = bars['close']"]
    for key in order:
        body += measures[key].lines
    null_required = [measures[k].value for k in order if k in required_keys and measures[k].nullable]
    if null_required:
        body.append(f"if {' or '.join(v + ' is None' for v in null_required)}:")
        body.append("    return False")
    body += cond_lines
    signal = _render(spec.expr, flags) if spec.expr is not None else "True"
    if spec.ranking is not None and spec.ranking.kind == "fundamental" and spec.ranking.params.get("field") == "pe_ratio":
        # a P/E of zero or below is a loss, not a cheap stock: it never ranks (either way)
        pe = measures[spec.ranking.measure_key].value
        signal = f"{pe} > 0" if signal == "True" else f"({signal}) and {pe} > 0"
    body.append(f"signal = {signal}")

    # score
    if spec.ranking is not None:
        m = measures[spec.ranking.measure_key]
        score = m.value if spec.ranking.descending else f"-{m.value}"
        score_doc = f"score = {'' if spec.ranking.descending else '-'}{m.value} (the ranking measure)"
    else:
        first, _ = leaves[0]
        m = measures[first.measure_key]
        if first.op is None:
            score = m.score
        elif first.kind in _DISTANCE_SCORE:
            const = bound_const[id(first)]
            score = f"{m.value} - {const}" if first.op in (">", ">=") else f"{const} - {m.value}"
        else:
            score = m.value if first.op in (">", ">=") else f"-{m.value}"
        if m.nullable and first.measure_key not in required_keys:
            score = f"{score} if {m.value} is not None else None"
        score_doc = f"score = {score}"
    body.append(f"score = {score}")
    report = []
    for key in order:
        for v in measures[key].report:
            if v not in report:
                report.append(v)
    items = ", ".join(["'signal': signal", "'score': score"] + [f"'{v}': {v}" for v in report])
    body.append(f"return {{{items}}}")

    # constants
    derived: dict[str, tuple[str, str]] = {}
    if ctx.wants:
        derived["HISTORY"] = (want_expr, "bars requested per symbol (the longest window any condition uses)")
        derived["MIN_BARS"] = (need_expr, "bars required; with fewer (e.g. before a listing) nothing signals")
    if spec.ranking is not None and spec.ranking.limit:
        ctx.consts["TOP_N"] = (int(spec.ranking.limit), "how many symbols run_screening returns (highest score first)")

    values = {k: v for k, (v, _) in ctx.consts.items()}
    params: list[Parameter] = []
    const_lines: list[str] = []
    for name, (value, meaning) in ctx.consts.items():
        const_lines.append(f"{name} = {_fmt(value)}  # {meaning}")
        params.append(Parameter(name, value, meaning))
    for name, (expr, meaning) in derived.items():
        value = _eval_const(expr, values)
        values[name] = value
        const_lines.append(f"{name} = {expr}  # {meaning}")
        params.append(Parameter(name, value, meaning))

    # docstring
    title = _title(spec)
    doc = [title, "", "Interpretation (offline generator; daily bars, evaluated at each session's close):"]
    if spec.tickers:
        doc.append(f"  * only {', '.join(spec.tickers)} can signal")
    if spec.excluded_tickers:
        doc.append(f"  * never {', '.join(spec.excluded_tickers)}")
    if spec.sectors:
        doc.append(f"  * sector filter: {', '.join(spec.sectors)} (from get_fundamental_data(symbol)['sector'])")
    if spec.excluded_sectors:
        doc.append(f"  * sectors left out: {', '.join(spec.excluded_sectors)}, and companies without a sector on record")
    for key in order:
        docs.append(measures[key].formula)
    for line in docs:
        doc.append(f"  * {line}")
    doc.append(f"  * signal = {signal}")
    doc.append(f"  * {score_doc}")
    if ctx.wants:
        doc.append("  * fewer than MIN_BARS bars as of the date (e.g. before a listing): no signal")
    for note in spec.defaults:
        doc.append(f"  * default: {note}")
    if spec.ignored:
        doc.append(f"  * not understood, ignored: {' '.join(spec.ignored)}")
    doc += ["", f"Prompt: \"{_safe(spec.prompt)}\""]

    parts = ['"""' + "\n".join(_wrap_doc(doc)).rstrip() + '\n"""', ""]
    for h in sorted(ctx.helpers, key=lambda h: h != "fetch"):
        parts += ["", HELPERS[h][0], ""]
    parts += ["", *const_lines, "", ""]
    for src in ctx.functions:
        parts += [src, "", ""]
    parts.append("def classify_symbol(symbol):")
    parts += ["    " + line for line in body]
    if spec.ranking is not None and spec.ranking.limit:
        parts += ["", "", *_RUN_SCREENING.strip("\n").splitlines()]
    code = "\n".join(parts).rstrip() + "\n"
    code = re.sub(r"\n{3,}", "\n\n\n", code)

    explanation = _explanation(spec, signal_text=describe_node(spec.expr))
    return Emitted(code=code, parameters=params, description=_description(spec), explanation=explanation,
                   name=_name(spec))


_RUN_SCREENING = '''
def run_screening(universe, limit):
    """The TOP_N (or `limit`, if smaller) signalling symbols of `universe`, highest score first."""
    count = TOP_N if not limit else min(TOP_N, int(limit))
    rows = []
    for symbol in universe:
        result = classify_symbol(symbol)
        if not result or not result['signal'] or result['score'] is None:
            continue
        values = {}
        for key in result:
            if key not in ('signal', 'score'):
                values[key] = result[key]
        rows.append({'symbol': symbol, 'score': result['score'], 'values': values})
    rows.sort(key=lambda row: row['score'], reverse=True)
    return rows[:count]
'''


def _safe(text: str) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = text.replace("\\", "/").replace('"', "'")
    return text[:300]


def _wrap_doc(lines: list[str], width: int = 96) -> list[str]:
    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        lead = "  * " if line.startswith("  * ") else ""
        indent = "    " if lead else ""
        words = line[len(lead):].split(" ")
        cur = lead + words[0]
        for w in words[1:]:
            if cur.strip() and len(cur) + 1 + len(w) > width:
                out.append(cur)
                cur = indent + w
            else:
                cur = f"{cur} {w}" if cur.strip() else cur + w
        if cur.strip():
            out.append(cur)
    return out


def _who(spec: Spec) -> str:
    """'Technology stocks', 'stocks outside Financials', 'stocks other than AAPL'..."""
    who = f"{'/'.join(spec.sectors)} stocks" if spec.sectors else "stocks"
    if spec.excluded_sectors:
        who += f" outside {'/'.join(spec.excluded_sectors)}"
    if spec.excluded_tickers:
        who += f" other than {', '.join(spec.excluded_tickers)}"
    return who


def _title(spec: Spec) -> str:
    text = describe_node(spec.expr) if spec.expr is not None else ""
    if spec.ranking is not None:
        text = (describe_ranking(spec.ranking) + (f", among symbols where {text}" if spec.expr is not None else ""))
    if spec.sectors or spec.excluded_sectors or spec.excluded_tickers:
        text = f"{_who(spec)}: {text}"
    if spec.tickers:
        text = f"{', '.join(spec.tickers)}: {text}"
    text = text[0].upper() + text[1:] if text else "Strategy"
    return _safe(text)[:600].rstrip(".") + "."


def _description(spec: Spec) -> str:
    who = "stocks"
    if spec.tickers:
        who = ", ".join(spec.tickers)
    elif spec.sectors or spec.excluded_sectors or spec.excluded_tickers:
        who = _who(spec)
    if spec.ranking is not None:
        rank = describe_ranking(spec.ranking)
        cond = f" where {describe_node(spec.expr)}" if spec.expr is not None else ""
        return f"Ranks {who}{cond}: {rank}."
    return f"Signals {who} when {describe_node(spec.expr)}."


def _explanation(spec: Spec, signal_text: str) -> str:
    parts = ["Daily bars, evaluated at each session's close with data as of that day."]
    if spec.tickers:
        parts.append(f"Only {', '.join(spec.tickers)} can signal.")
    if spec.excluded_tickers:
        parts.append(f"{', '.join(spec.excluded_tickers)} never signal{'s' if len(spec.excluded_tickers) == 1 else ''}.")
    if spec.sectors:
        parts.append(f"Only companies in the {' or '.join(spec.sectors)} sector (get_fundamental_data()['sector']).")
    if spec.excluded_sectors:
        parts.append(f"No companies in the {' or '.join(spec.excluded_sectors)} sector, nor any without a sector on "
                     "record (get_fundamental_data()['sector']).")
    if spec.ranking is not None:
        parts.append("Signal: " + ("every symbol with enough data" if spec.expr is None else signal_text) + ".")
        parts.append(f"Ranking: {describe_ranking(spec.ranking)}; the score is the ranking measure"
                     + (f", and run_screening returns the top {spec.ranking.limit}." if spec.ranking.limit else "."))
    else:
        parts.append(f"Signal when {signal_text}.")
    if spec.defaults:
        parts.append("Defaults: " + "; ".join(spec.defaults) + ".")
    if spec.ignored:
        parts.append("Not understood (ignored): " + " ".join(spec.ignored) + ".")
    return " ".join(parts)


def _slug_condition(c: Condition) -> str:
    p = c.params
    t = "" if c.threshold is None else f"{abs(c.threshold):g}".replace(".", "p")
    side = "" if c.op is None else ("above" if c.op in (">", ">=") else "below")
    k = c.kind
    if k == "gap":
        return f"gap_{'up' if c.op in ('>', '>=') else 'down'}_{t}pct"
    if k == "return":
        return f"{'up' if c.op in ('>', '>=') else 'down'}_{t}pct_{p['lookback']}d"
    if k == "ma_cross":
        if (p["fast"], p["slow"], p["ma"]) == (50, 200, "sma"):
            return "golden_cross" if p["direction"] == "up" else "death_cross"
        fast = "price" if p["fast"] == 1 else f"{p['ma']}{p['fast']}"
        return f"{fast}_cross_{'above' if p['direction'] == 'up' else 'below'}_{p['ma']}{p['slow']}"
    if k == "rsi":
        return f"rsi{p['period']}_{side}_{t}"
    if k == "candle":
        return p["pattern"] if p["pattern"] != "narrow_range" else f"nr{p['lookback']}"
    if k == "bollinger":
        return f"{'below' if p['band'] == 'lower' else 'above'}_{p['band']}_bollinger"
    if k == "relative_volume":
        return f"volume_{t}x_{p['lookback']}d"
    if k == "fundamental":
        return f"{p['field']}_{side}_{_value_text(c.threshold, '$' if p['field'] == 'market_cap' else '')}".replace("$", "").replace(" ", "").replace(".", "p")
    if k == "new_extreme":
        return f"new_{p['lookback'] or 'alltime'}d_{p['side']}"
    if k == "streak":
        return f"{p['direction']}_{t}_days_in_a_row"
    if k == "relative_strength":
        return f"{'outperforming' if side == 'above' else 'underperforming'}_{p['benchmark'].lower()}"
    if k == "ma_distance" and not c.threshold:
        return f"{side}_{p['ma']}{p['period']}"
    if k == "ma_spread" and not c.threshold:
        return f"{p['ma']}{p['fast']}_{side}_{p['ma']}{p['slow']}"
    if k == "earnings_surprise":
        return "earnings_beat" if side == "above" else "earnings_miss"
    return f"{k}_{side}_{t}".rstrip("_")


def _name(spec: Spec) -> str:
    parts: list[str] = []
    if spec.tickers:
        parts.append("_".join(t.lower() for t in spec.tickers))
    if spec.sectors:
        parts.append("_".join(s.lower().replace(" ", "_") for s in spec.sectors))
    if spec.excluded_sectors:
        parts.append("ex_" + "_".join(s.lower().replace(" ", "_") for s in spec.excluded_sectors))
    if spec.excluded_tickers:
        parts.append("ex_" + "_".join(t.lower() for t in spec.excluded_tickers))
    if spec.ranking is not None:
        r = spec.ranking
        head = f"top{r.limit}" if r.limit else "ranked"
        metric = r.kind if r.kind != "return" else f"return_{r.params['lookback']}d"
        if r.kind == "fundamental":
            metric = r.params["field"]
        parts.append(f"{head}_by_{metric}")
    for c in spec.conditions():
        slug = _slug_condition(c)
        if slug not in parts:
            parts.append(slug)
    name = "_".join(parts)
    name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    name = re.sub(r"_+", "_", name)
    if len(name) > 60:
        name = name[:60].rstrip("_")
    return name or "strategy"
