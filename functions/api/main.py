"""HTTP API function (CONTRACT §6): decode the request, call the API core, return JSON."""

import functions_framework
from flask import Request, Response

_api = None  # built on the first request, never at import


def _get_api():
    global _api
    if _api is None:
        from stratagem.api import Api, ApiKeyAuth, FirebaseAuth
        from stratagem.factory import services
        from stratagem.settings import Settings

        settings = Settings.from_env()
        auth = ApiKeyAuth(settings.api_keys) if settings.api_keys else FirebaseAuth(settings.gcp_project)
        from stratagem.telegram_webhook import chat_directory

        # link codes need only the shared chat directory (the API holds no bot token)
        _api = Api(services(), auth, chats=chat_directory(settings))
    return _api


@functions_framework.http
def api(request: Request) -> Response:
    import json

    from stratagem.api import MAX_BODY

    if (request.content_length or 0) > MAX_BODY:
        # Refuse by the declared length, before reading (and buffering) the body at all.
        doc = {"error": {"code": "too_large", "message": f"request body over {MAX_BODY} bytes"}}
        return Response(json.dumps(doc), status=413, mimetype="application/json")
    status, doc = _get_api().handle(request.method, request.path, request.get_data(cache=False) or b"",
                                     dict(request.headers))
    return Response(json.dumps(doc, allow_nan=False), status=status, mimetype="application/json")
