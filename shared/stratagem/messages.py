"""Versioned Pub/Sub message schemas, validated on arrival.

Every message is a JSON object with ``schema`` naming its type and version
(``stratagem.backtest_shard.v1``). :func:`decode` checks the schema name, required fields
and their types, and returns a plain dict; anything else raises :class:`MalformedMessage`,
a permanent error: the handler acknowledges it (logging why) instead of letting Pub/Sub
retry a message that can never succeed.

``stratagem.bars.v1`` (market data from other systems) also has each bar checked
(:func:`check_bar`: symbol, timeframe, date, OHLCV consistency; at most
:data:`MAX_BARS_PER_MESSAGE` per batch), with messages naming the bar's index and symbol;
the schema and what happens to a bar are documented in ``docs/bars.md``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import re
from typing import Any

from .errors import BadInput

# schema -> {field: (type or tuple of types, required)}
_INT = (int,)
_STR = (str,)
_LIST = (list,)
_DICT = (dict,)
SCHEMAS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "stratagem.generate.v1": {"job_id": (_STR, True), "user_id": (_STR, True), "prompt": (_STR, True),
                              "strategy_id": (_INT, True), "request_id": (_STR, False), "attempt": (_INT, False),
                              "feedback": (_LIST, False), "attempts": (_LIST, False)},
    "stratagem.validate.v1": {"job_id": (_STR, True), "user_id": (_STR, True), "prompt": (_STR, True),
                              "strategy_id": (_INT, True), "request_id": (_STR, False), "attempt": (_INT, True),
                              "feedback": (_LIST, True), "attempts": (_LIST, True), "candidate": (_DICT, True)},
    "stratagem.backtest_shard.v1": {"job_id": (_STR, True), "shard": (_INT, True), "shards": (_INT, True),
                                    "user_id": (_STR, True), "strategy_id": (_INT, True), "version": (_INT, True),
                                    "symbols": (_LIST, True), "start": (_INT, True), "end": (_INT, True),
                                    "params": (_DICT, False)},
    "stratagem.screen_shard.v1": {"job_id": (_STR, True), "shard": (_INT, True), "shards": (_INT, True),
                                  "user_id": (_STR, True), "strategy_id": (_INT, True), "version": (_INT, True),
                                  "symbols": (_LIST, True), "asof": (_INT, True), "limit": (_INT, True)},
    "stratagem.tick.v1": {"sweep_seconds": (_INT, False), "reason": (_STR, False)},
    "stratagem.bars.v1": {"bars": (_LIST, True), "source": (_STR, False)},
    "stratagem.alert.v1": {"alert": (_DICT, True), "user_id": (_STR, True)},
}
MAX_MESSAGE_BYTES = 9 << 20  # Pub/Sub's limit is 10 MB

# -- stratagem.bars.v1 (market data from other systems; see docs/bars.md) ---------------------
#: Most bars one message may carry (one bar per symbol of a 5,000-symbol universe; ~1 MB of JSON).
MAX_BARS_PER_MESSAGE = 5000
#: Timeframes the live store accepts; the datasets hold daily bars only.
BAR_TIMEFRAMES = ("1d",)
_BAR_PRICES = ("open", "high", "low", "close")
_BAR_FIELDS = frozenset(("symbol", "timeframe", "time", "day") + _BAR_PRICES + ("volume", "adj_close"))
_BAR_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-_^=]{0,31}")
_BAR_DAY_MIN, _BAR_DAY_MAX = 0, 47482  # 1970-01-01 .. 2099-12-31
# OHLC consistency slack, as the importer allows: vendors round high/low and open/close separately.
_OHLC_REL_TOL = 1e-9
_MAX_BAR_PROBLEMS = 10


class MalformedMessage(BadInput):
    """A message that can never be processed (bad JSON, unknown schema, wrong fields)."""

    code = "malformed_message"


def make(schema: str, **fields: Any) -> dict:
    """Build a message and validate it (so a bug on the sending side fails where it is)."""
    msg = {"schema": schema, **fields}
    return validate(msg)


def validate(msg: Any) -> dict:
    if not isinstance(msg, dict):
        raise MalformedMessage(f"a message must be a JSON object, got {type(msg).__name__}")
    schema = msg.get("schema")
    spec = SCHEMAS.get(schema) if isinstance(schema, str) else None
    if spec is None:
        raise MalformedMessage(f"unknown message schema {schema!r}; known: {', '.join(sorted(SCHEMAS))}")
    problems = []
    for name, (types, required) in spec.items():
        if name not in msg:
            if required:
                problems.append(f"missing field {name!r}")
            continue
        v = msg[name]
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            problems.append(f"field {name!r} must be {'/'.join(t.__name__ for t in types)}, got {type(v).__name__}")
    unknown = set(msg) - set(spec) - {"schema"}
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))}")
    if problems:
        raise MalformedMessage(f"{schema}: " + "; ".join(problems))
    check = _CHECKS.get(schema)
    if check is not None:
        check(msg)
    return msg


def _number(bar: dict, name: str, where: str, problems: list[str], *, positive: bool) -> float | None:
    v = bar.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        problems.append(f"{where}: {name!r} must be a number, got "
                        f"{'nothing' if v is None else type(v).__name__}")
        return None
    v = float(v)
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        problems.append(f"{where}: {name!r} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
        return None
    return v


def bar_day(bar: dict) -> int:
    """Days since 1970-01-01 of a validated bar (from ``time`` or the legacy ``day``)."""
    if "time" in bar:
        return (_dt.date.fromisoformat(bar["time"]) - _dt.date(1970, 1, 1)).days
    return int(bar["day"])


def check_bar(bar: Any, index: int) -> list[str]:
    """Problems with bar number ``index`` of a ``stratagem.bars.v1`` message (empty when valid)."""
    where = f"bars[{index}]"
    if not isinstance(bar, dict):
        return [f"{where}: expected an object {{symbol, timeframe, time, open, high, low, close, volume}}, "
                f"got {type(bar).__name__}"]
    problems: list[str] = []
    sym = bar.get("symbol")
    if not isinstance(sym, str) or not _BAR_SYMBOL.fullmatch(sym.strip().upper()):
        problems.append(f"{where}: 'symbol' must be a ticker like 'AAPL' (1-32 letters, digits or .-_^=), "
                        f"got {sym!r}")
    else:
        where = f"bars[{index}] ({sym.strip().upper()})"
    unknown = set(bar) - _BAR_FIELDS
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                        f"expected {', '.join(sorted(_BAR_FIELDS))}")
    tf = bar.get("timeframe", "1d")
    if tf not in BAR_TIMEFRAMES:
        problems.append(f"{where}: 'timeframe' must be one of {', '.join(BAR_TIMEFRAMES)} (daily bars), got {tf!r}")
    if ("time" in bar) == ("day" in bar):
        problems.append(f"{where}: give the bar date as 'time' (\"YYYY-MM-DD\")"
                        + (", not both 'time' and 'day'" if "time" in bar else ""))
    elif "time" in bar:
        t = bar["time"]
        try:
            if not isinstance(t, str) or len(t) != 10:
                raise ValueError
            day = bar_day(bar)
        except ValueError:
            problems.append(f"{where}: 'time' must be the bar's date as \"YYYY-MM-DD\", got {t!r}")
        else:
            if not _BAR_DAY_MIN <= day <= _BAR_DAY_MAX:
                problems.append(f"{where}: 'time' {t} is outside 1970-01-01..2099-12-31")
    else:
        d = bar["day"]
        if isinstance(d, bool) or not isinstance(d, int) or not _BAR_DAY_MIN <= d <= _BAR_DAY_MAX:
            problems.append(f"{where}: 'day' must be an int (days since 1970-01-01, up to 2099-12-31), got {d!r}")
    px = {k: _number(bar, k, where, problems, positive=True) for k in _BAR_PRICES}
    _number(bar, "volume", where, problems, positive=False)
    if "adj_close" in bar and bar["adj_close"] is not None:
        _number(bar, "adj_close", where, problems, positive=True)
    if None not in px.values():
        hi, lo = px["high"], px["low"]
        if hi < lo * (1 - _OHLC_REL_TOL):
            problems.append(f"{where}: expected high >= low, got high {hi!r} < low {lo!r}")
        else:
            for k in ("open", "close"):
                if px[k] > hi * (1 + _OHLC_REL_TOL) or px[k] < lo * (1 - _OHLC_REL_TOL):
                    problems.append(f"{where}: expected low <= {k} <= high, got {k} {px[k]!r} outside "
                                    f"[{lo!r}, {hi!r}]")
    return problems


def _check_bars(msg: dict) -> None:
    bars = msg["bars"]
    if not bars:
        raise MalformedMessage("stratagem.bars.v1: 'bars' is empty; expected 1 to "
                               f"{MAX_BARS_PER_MESSAGE} bars")
    if len(bars) > MAX_BARS_PER_MESSAGE:
        raise MalformedMessage(f"stratagem.bars.v1: {len(bars)} bars in one message; at most "
                               f"{MAX_BARS_PER_MESSAGE} (split the batch)")
    problems: list[str] = []
    bad = 0
    for i, bar in enumerate(bars):
        found = check_bar(bar, i)
        if found:
            bad += 1
            problems.extend(found)
    if problems:
        more = f" (and {len(problems) - _MAX_BAR_PROBLEMS} more)" if len(problems) > _MAX_BAR_PROBLEMS else ""
        raise MalformedMessage(f"stratagem.bars.v1: {bad} of {len(bars)} bars are invalid: "
                               + "; ".join(problems[:_MAX_BAR_PROBLEMS]) + more)


_CHECKS = {"stratagem.bars.v1": _check_bars}


def encode(msg: dict) -> bytes:
    data = json.dumps(validate(msg), separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return data


def decode(data: bytes | str) -> dict:
    """Bytes of a Pub/Sub message body -> validated dict."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"message body is not JSON: {exc}") from None
    return validate(msg)


def decode_cloudevent(event_data: Any) -> tuple[dict, str]:
    """(message, message_id) from a Pub/Sub CloudEvent's ``data`` (``{"message": {"data": b64}}``)."""
    if not isinstance(event_data, dict) or not isinstance(event_data.get("message"), dict):
        raise MalformedMessage("expected a Pub/Sub CloudEvent with data.message")
    m = event_data["message"]
    raw = m.get("data")
    if not isinstance(raw, str):
        raise MalformedMessage("Pub/Sub message has no base64 data")
    try:
        body = base64.b64decode(raw, validate=True)
    except ValueError:
        raise MalformedMessage("Pub/Sub message data is not valid base64") from None
    mid = str(m.get("messageId") or m.get("message_id") or "")
    return decode(body), mid
