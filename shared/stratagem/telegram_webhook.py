"""Telegram webhook: the Bot API pushes updates here, so production needs no polling.

Telegram calls the registered HTTPS URL with each update as a JSON body and, when the
webhook was registered with a ``secret_token``, the header ``X-Telegram-Bot-Api-Secret-Token``
carrying it. :class:`TelegramWebhook` answers:

* 401 when the header is missing or wrong (compared in constant time): only Telegram knows
  the secret, so nobody else can link chats by posting forged updates;
* 503 when no secret is configured (refusing is safer than accepting unauthenticated updates);
* 405 for anything but POST, 413 for bodies over :data:`MAX_UPDATE_BYTES`;
* 200 for every authenticated update, including ones it ignores (Telegram retries non-2xx
  answers, and retrying a malformed or irrelevant update cannot help). ``/start <code>`` links
  the chat through :meth:`stratagem.telegram.ChatDirectory.handle_update`, which also answers
  the chat.

:func:`register_webhook` tells Telegram the URL and secret (``setWebhook``, through
python-telegram-bot); ``stratagem telegram set-webhook URL`` runs it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from .errors import BadInput

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token

log = logging.getLogger("stratagem.telegram_webhook")


def check_secret(secret: str) -> str:
    """The secret, if Telegram would accept it (1-256 of ``A-Za-z0-9_-``); BadInput otherwise."""
    if not isinstance(secret, str) or not _SECRET_RE.fullmatch(secret):
        raise BadInput("the Telegram webhook secret must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-'")
    return secret


class TelegramWebhook:
    """The webhook's HTTP logic, framework-free: ``handle(method, headers, body) -> (status, json)``."""

    def __init__(self, secret: str | None, directory: Any) -> None:
        self._secret = check_secret(secret) if secret else None
        self.directory = directory

    def __repr__(self) -> str:  # never show the secret
        return f"TelegramWebhook(configured={self._secret is not None})"

    def handle(self, method: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
        if method != "POST":
            return 405, {"error": {"code": "method_not_allowed", "message": "Telegram posts updates with POST"}}
        if self._secret is None:
            return 503, {"error": {"code": "unavailable", "message": "the webhook secret is not configured "
                                                                     "(STRATAGEM_TELEGRAM_WEBHOOK_SECRET)"}}
        given = {k.lower(): v for k, v in headers.items()}.get(SECRET_HEADER.lower(), "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            return 401, {"error": {"code": "unauthorized", "message": f"missing or wrong {SECRET_HEADER} header"}}
        if len(body) > MAX_UPDATE_BYTES:
            return 413, {"error": {"code": "too_large", "message": f"update over {MAX_UPDATE_BYTES} bytes"}}
        update = _parse(body)
        if update is None:
            log.warning("telegram webhook: malformed update acknowledged and ignored")
            return 200, {"ok": True, "handled": False}
        user = self.directory.handle_update(update)
        return 200, {"ok": True, "handled": True, "linked": user is not None}


def _parse(body: bytes) -> dict | None:
    """The update as a dict if python-telegram-bot can read it as an ``Update``, else None."""
    import telegram

    try:
        data = json.loads(body)
        if not isinstance(data, dict) or telegram.Update.de_json(data, None) is None:
            return None
    except Exception:  # noqa: BLE001 - anything unreadable is ignored, never retried
        return None
    return data


def register_webhook(token: str, url: str, secret: str, *, base_url: str | None = None) -> bool:
    """``setWebhook``: Telegram will POST ``message`` updates to ``url`` with ``secret``."""
    import telegram
    from telegram.request import HTTPXRequest

    check_secret(secret)
    if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        raise BadInput(f"Telegram only calls https:// webhook URLs, got {url!r}")

    async def go() -> bool:
        request = HTTPXRequest(connect_timeout=10, read_timeout=10)
        bot = telegram.Bot(token, request=request, **({"base_url": base_url} if base_url else {}))
        await request.initialize()
        try:
            return bool(await bot.set_webhook(url=url, secret_token=secret, allowed_updates=["message"]))
        finally:
            await request.shutdown()

    return asyncio.run(go())


def chat_directory(settings: Any) -> Any:
    """The backend's Telegram chat directory: Firestore on Google Cloud (shared by the API, the
    webhook and notify instances), the JSON file under the home locally. No client is created
    before first use."""
    from .telegram import ChatDirectory

    if settings.backend == "gcp":
        from .telegram_firestore import FirestoreChatDirectory

        return FirestoreChatDirectory(project=settings.gcp_project)
    return ChatDirectory(settings.home / "telegram_chats.json")


def build_webhook(settings: Any) -> TelegramWebhook:
    """The webhook for ``settings``: the backend's chat directory, answering chats through the
    bot when a token is configured."""
    from .telegram import TelegramNotifier

    directory = chat_directory(settings)
    if settings.telegram_token:  # installs itself as the directory's responder
        TelegramNotifier(settings.telegram_token, directory, base_url=settings.telegram_base_url)
    return TelegramWebhook(settings.telegram_webhook_secret, directory)
