"""Versioned Pub/Sub message schemas, validated on arrival.

Every message is a JSON object with ``schema`` naming its type and version
(``stratagem.backtest_shard.v1``). :func:`decode` checks the schema name, required fields
and their types, and returns a plain dict; anything else raises :class:`MalformedMessage`,
a permanent error: the handler acknowledges it (logging why) instead of letting Pub/Sub
retry a message that can never succeed.
"""

from __future__ import annotations

import base64
import json
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
    return msg


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
