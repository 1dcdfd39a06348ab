"""Telegram webhook function: verifies Telegram's secret header and links chats on ``/start <code>``."""

import functions_framework
from flask import Request, Response

_webhook = None  # built on the first request, never at import


def _get_webhook():
    global _webhook
    if _webhook is None:
        from stratagem.settings import Settings
        from stratagem.telegram_webhook import build_webhook

        _webhook = build_webhook(Settings.from_env())
    return _webhook


@functions_framework.http
def telegram_webhook(request: Request) -> Response:
    import json

    status, doc = _get_webhook().handle(request.method, dict(request.headers), request.get_data(cache=False) or b"")
    return Response(json.dumps(doc), status=status, mimetype="application/json")
