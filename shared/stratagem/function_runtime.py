"""What every Pub/Sub-triggered function does around its one handler call.

Decode and validate the CloudEvent; malformed messages and permanent errors are logged
and acknowledged (retrying can never help, and nothing else is affected); transient
errors propagate so the platform retries the delivery (and dead-letters it after the
declared number of attempts). Logs are one JSON object per line (Cloud Logging's format).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from . import messages
from .errors import InfraUnavailable, StratagemError


def log(severity: str, message: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"severity": severity, "message": message, "time": time.time(), **fields},
                                default=str) + "\n")
    sys.stdout.flush()


def _event_key(function: str, event: Any, message_id: str) -> str:
    """The key duplicate deliveries are recognised by: the function, the message id and its
    publish time. Pub/Sub message ids are unique within a topic only (each function reads one
    topic), and an emulator that restarts numbers its messages from 1 again, so a bare id
    would take a new message for a duplicate of an old one and drop it; the publish time,
    set once by Pub/Sub, is the same on every redelivery of one message."""
    event_id = (event["id"] if hasattr(event, "__getitem__") else None) or message_id
    if not event_id:
        return ""
    message = (getattr(event, "data", None) or {}).get("message") or {}
    published = message.get("publishTime") or message.get("publish_time") or ""
    return f"{function}/{event_id}" + (f"@{published}" if published else "")


def run_handler(event: Any, handler: Callable[[Any, dict, str], None], function: str,
                services: Callable[[], Any] | None = None) -> None:
    try:
        msg, message_id = messages.decode_cloudevent(getattr(event, "data", None))
    except messages.MalformedMessage as exc:
        log("ERROR", "malformed message acknowledged without processing", function=function, reason=exc.message)
        return
    event_id = _event_key(function, event, message_id)
    if services is None:
        from .factory import services as services_factory

        services = services_factory
    t0 = time.perf_counter()
    try:
        handler(services(), msg, str(event_id or ""))
    except messages.MalformedMessage as exc:
        log("ERROR", "message rejected", function=function, event_id=event_id, reason=exc.message)
        return
    except InfraUnavailable as exc:
        log("WARNING", "transient failure: the delivery will be retried", function=function, event_id=event_id,
            reason=exc.message)
        raise
    except StratagemError as exc:
        log("ERROR", "permanent failure acknowledged", function=function, event_id=event_id, code=exc.code,
            reason=exc.message)
        return
    log("INFO", "handled", function=function, event_id=event_id, schema=msg.get("schema"),
        seconds=round(time.perf_counter() - t0, 3))
