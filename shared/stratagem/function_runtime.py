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


def run_handler(event: Any, handler: Callable[[Any, dict, str], None], function: str,
                services: Callable[[], Any] | None = None) -> None:
    try:
        msg, message_id = messages.decode_cloudevent(getattr(event, "data", None))
    except messages.MalformedMessage as exc:
        log("ERROR", "malformed message acknowledged without processing", function=function, reason=exc.message)
        return
    event_id = (event["id"] if hasattr(event, "__getitem__") else None) or message_id
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
