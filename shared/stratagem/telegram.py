"""Telegram delivery channel: a :class:`~stratagem.notify.Notifier` on python-telegram-bot.

* :class:`TelegramNotifier` sends a fired alert to the chat a user linked, formatted for a
  phone (HTML parse mode, every interpolated value escaped). It honours Telegram's flood
  control (``RetryAfter``: wait exactly ``retry_after`` through the injectable ``sleep``),
  retries ``TimedOut``/``NetworkError`` with exponential backoff, and turns permanent
  failures (bot blocked → ``Forbidden``, ``BadRequest`` such as "chat not found", a rejected
  token) into ``{"status": "failed", "permanent": True, ...}`` instead of raising.
* :class:`ChatDirectory` maps Stratagem user ids to Telegram chat ids (in memory, optionally
  persisted to a JSON file). Linking: the app shows the user a single-use, expiring code from
  :meth:`ChatDirectory.new_link_code`; the user sends ``/start <code>`` to the bot (the
  ``t.me/<bot>?start=<code>`` deep link does exactly that); the webhook hands the update to
  :meth:`ChatDirectory.handle_update`, which links the chat and answers with a confirmation.

The bot token is secret: it is never logged by this module, it is redacted from the log
records of python-telegram-bot and httpx (whose request URLs contain it), and it never appears
in a returned dict (every reason string is scrubbed).

``send`` is synchronous (the Notifier protocol): each call runs its own short-lived event loop
(``asyncio.run``) with its own ``telegram.Bot``; called from inside a running event loop it
runs that loop on a worker thread instead, so it is safe from async code too (though it blocks).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import html
import inspect
import json
import logging
import math
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import certifi
import telegram
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

__all__ = ["LINK_CODE_TTL_S", "ChatDirectory", "TelegramNotifier", "format_alert_html"]

_LOG = logging.getLogger(__name__)

LINK_CODE_TTL_S = 15 * 60
MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one text message
_MAX_VALUES = 8
_BACKOFF_BASE_S = 0.5
_BACKOFF_MAX_S = 30.0

# --------------------------------------------------------------------------------------------
# Token redaction (python-telegram-bot logs the API URL at debug level; httpx logs every request
# URL at info level; both contain the token).
# --------------------------------------------------------------------------------------------

_TOKENS: set[str] = set()
_TOKENS_LOCK = threading.Lock()
_TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")  # the shape of a real bot token
_REDACTED = "<redacted-token>"
_REDACTED_LOGGERS = ("httpx", "httpcore", "httpcore.http11", "httpcore.connection", "telegram",
                     "telegram.Bot", "telegram.BaseRequest", "telegram.HTTPXRequest")


def _redact(text: str) -> str:
    with _TOKENS_LOCK:
        tokens = sorted(_TOKENS, key=len, reverse=True)
    for t in tokens:
        text = text.replace(t, _REDACTED)
    return _TOKEN_RE.sub(_REDACTED, text)


class _RedactTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = _redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_FILTER = _RedactTokenFilter()


def _register_token(token: str) -> None:
    with _TOKENS_LOCK:
        _TOKENS.add(token)
    for name in _REDACTED_LOGGERS:
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=False)


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def format_alert_html(alert: Mapping[str, Any]) -> str:
    """The alert as a short Telegram HTML message (parse_mode="HTML"), every value escaped.

    Layout: the strategy name, the symbol in bold with the bar date, the close, the score,
    up to eight of the values behind the signal, and a note when demo data was involved.
    """
    name = alert.get("strategy_name") or "Strategy"
    symbol = alert.get("symbol") or "?"
    lines = [f"🔔 <b>{_e(name)}</b>",
             f"<b>{_e(symbol)}</b> signalled at the close of {_e(alert.get('date') or '?')}"]
    close = alert.get("close")
    if isinstance(close, (int, float)) and not isinstance(close, bool):
        lines.append(f"Close: {close:,.2f}")
    score = alert.get("score")
    if score is not None:
        lines.append(f"Score: {_e(_num(score))}")
    values = alert.get("values") or {}
    shown = [(k, v) for k, v in values.items() if v is not None] if isinstance(values, Mapping) else []
    if shown:
        lines.append("")
        lines.append("<i>Why:</i>")
        for k, v in shown[:_MAX_VALUES]:
            lines.append(f"• {_e(k)}: {_e(_num(v))}")
        if len(shown) > _MAX_VALUES:
            lines.append(f"• … and {len(shown) - _MAX_VALUES} more")
    if alert.get("demo_data"):
        lines.append("")
        lines.append("⚠️ <i>DEMO DATA: based on illustrative fundamentals, not real ones.</i>")
    text = "\n".join(lines)
    if len(text) > MAX_MESSAGE_CHARS:  # only reachable with absurdly long names/values
        plain = _e(alert.get("message") or f"{name}: {symbol}")
        text = plain[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


# --------------------------------------------------------------------------------------------
# Chat directory and linking
# --------------------------------------------------------------------------------------------


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


_START_RE = re.compile(r"^/start(?:@[A-Za-z0-9_]+)?(?:\s+(\S+))?\s*$")

LINKED_TEXT = "✅ Linked: Stratagem alerts will be sent to this chat."
BAD_CODE_TEXT = ("This link code is invalid, already used or expired. "
                 "Open Stratagem and create a new one to link this chat.")


class ChatDirectory:
    """User id → Telegram chat id, plus single-use expiring link codes.

    In memory, or persisted to ``path`` (a JSON file, rewritten atomically and re-read on every
    operation so a web process that issues codes and a webhook process that redeems them can
    share it). Only SHA-256 hashes of pending link codes are stored.

    ``responder(chat_id, text)`` is used to answer ``/start`` updates; a
    :class:`TelegramNotifier` constructed with this directory installs itself as the responder
    when none was given.
    """

    def __init__(self, path: str | Path | None = None, *, chats: Mapping[str, int | str] | None = None,
                 code_ttl: float = LINK_CODE_TTL_S, clock: Callable[[], float] = time.time,
                 responder: Callable[[int | str, str], Any] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.code_ttl = float(code_ttl)
        self.clock = clock
        self.responder = responder
        self._lock = threading.RLock()
        self._chats: dict[str, int | str] = {}
        self._codes: dict[str, dict] = {}  # sha256(code) -> {"user_id", "expires"}
        self._load()
        if chats:
            with self._lock:
                self._chats.update({str(u): c for u, c in chats.items()})
                self._save()

    # persistence ----------------------------------------------------------------------------
    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            _LOG.warning("telegram chat directory %s is unreadable; starting empty", self.path)
            return
        self._chats = {str(k): v for k, v in (data.get("chats") or {}).items()}
        self._codes = dict(data.get("codes") or {})

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"chats": self._chats, "codes": self._codes}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _prune(self) -> None:
        now = self.clock()
        for h in [h for h, c in self._codes.items() if c["expires"] <= now]:
            del self._codes[h]

    # mapping --------------------------------------------------------------------------------
    def chat_for(self, user_id: str) -> int | str | None:
        with self._lock:
            self._load()
            return self._chats.get(str(user_id))

    def get(self, user_id: str, default: Any = None) -> int | str | None:  # Mapping-like
        chat = self.chat_for(user_id)
        return default if chat is None else chat

    def link(self, user_id: str, chat_id: int | str) -> None:
        with self._lock:
            self._load()
            self._chats[str(user_id)] = chat_id
            self._save()

    def unlink(self, user_id: str) -> bool:
        with self._lock:
            self._load()
            found = self._chats.pop(str(user_id), None) is not None
            self._save()
            return found

    def links(self) -> dict[str, int | str]:
        with self._lock:
            self._load()
            return dict(self._chats)

    # link codes -----------------------------------------------------------------------------
    def new_link_code(self, user_id: str) -> str:
        """A fresh random code (single use, expires after ``code_ttl`` seconds) for ``user_id``.

        The code is URL-safe and fits Telegram's deep-link ``start`` parameter (≤ 64 chars of
        ``A-Za-z0-9_-``), so ``https://t.me/<bot>?start=<code>`` works as a one-tap link.
        """
        code = secrets.token_urlsafe(16)  # 22 chars, 128 bits
        with self._lock:
            self._load()
            self._prune()
            self._codes[_hash_code(code)] = {"user_id": str(user_id), "expires": self.clock() + self.code_ttl}
            self._save()
        return code

    def redeem(self, code: str, chat_id: int | str) -> str | None:
        """Consume ``code`` and link ``chat_id`` to its user; the user id, or None if invalid/expired."""
        with self._lock:
            self._load()
            entry = self._codes.pop(_hash_code(code), None)
            self._prune()
            if entry is None or entry["expires"] <= self.clock():
                self._save()
                return None
            self._chats[entry["user_id"]] = chat_id
            self._save()
            return entry["user_id"]

    def handle_update(self, update_json: str | bytes | Mapping[str, Any]) -> str | None:
        """Process one Telegram update (webhook body or a ``getUpdates`` item).

        ``/start <code>`` with a valid code links that chat to the code's user, answers the chat
        with a confirmation and returns the user id. A bad/used/expired code gets an explanatory
        answer and returns None; anything else (other messages, malformed JSON) returns None
        silently. Answering is best effort: a failed reply does not undo the link.
        """
        try:
            update = json.loads(update_json) if isinstance(update_json, (str, bytes, bytearray)) else update_json
        except ValueError:
            return None
        if not isinstance(update, Mapping):
            return None
        message = update.get("message") or update.get("edited_message")
        if not isinstance(message, Mapping):
            return None
        chat = message.get("chat")
        text = message.get("text")
        if not isinstance(chat, Mapping) or "id" not in chat or not isinstance(text, str):
            return None
        m = _START_RE.match(text.strip())
        if not m:
            return None
        chat_id = chat["id"]
        code = m.group(1)
        user_id = self.redeem(code, chat_id) if code else None
        self._reply(chat_id, LINKED_TEXT if user_id is not None else BAD_CODE_TEXT)
        if user_id is not None:
            _LOG.info("telegram chat linked for user %s", user_id)
        return user_id

    def _reply(self, chat_id: int | str, text: str) -> None:
        if self.responder is None:
            return
        try:
            self.responder(chat_id, text)
        except Exception as exc:  # noqa: BLE001 - best effort; the link stands
            _LOG.warning("telegram link reply failed: %s", _redact(f"{type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------------------------
# Notifier
# --------------------------------------------------------------------------------------------


def _seconds(value: Any) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)


def _run(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion on a private event loop (a worker thread if one is running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-send") as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


class TelegramNotifier:
    """Delivers alerts to the Telegram chat linked to each user (the Notifier protocol).

    ``chats`` is a plain mapping ``{user_id: chat_id}`` or a :class:`ChatDirectory`.
    ``max_retries`` bounds the retries after the first attempt (flood-control waits included);
    ``sleep`` is awaited (or called, if it is a plain function) for every wait, so tests can
    observe the waits. ``timeout`` is the per-request connect/read/write timeout in seconds.

    ``send`` returns ``{"status": "sent", "message_id", "chat_id", "attempts"}``, or
    ``{"status": "skipped", "reason": "no Telegram chat linked"}``, or
    ``{"status": "failed", "permanent": bool, "reason", "error", "attempts"}``; it does not raise
    for delivery problems (a transient failure that outlived the retries is reported with
    ``permanent: False``).
    """

    channel = "telegram"

    def __init__(self, token: str, chats: Mapping[str, int | str] | ChatDirectory, *, base_url: str | None = None,
                 max_retries: int = 3, sleep: Callable[[float], Any] = asyncio.sleep,
                 timeout: float = 10.0, backoff_base: float = _BACKOFF_BASE_S) -> None:
        if not token or not isinstance(token, str):
            raise ValueError("a Telegram bot token is required")
        _register_token(token)
        self.__token = token
        self.chats = chats
        self.base_url = base_url
        self.max_retries = max(0, int(max_retries))
        self.sleep = sleep
        self.timeout = float(timeout)
        self.backoff_base = float(backoff_base)
        self._tls_ctx: ssl.SSLContext | None = None
        self._tls_lock = threading.Lock()
        if isinstance(chats, ChatDirectory) and chats.responder is None:
            chats.responder = self.send_text

    def __repr__(self) -> str:  # never show the token
        return f"TelegramNotifier(base_url={self.base_url!r}, max_retries={self.max_retries})"

    # public API -----------------------------------------------------------------------------
    def chat_for(self, user_id: str) -> int | str | None:
        if isinstance(self.chats, ChatDirectory):
            return self.chats.chat_for(user_id)
        return self.chats.get(str(user_id), self.chats.get(user_id))  # type: ignore[call-overload]

    def send(self, user_id: str, alert: dict) -> dict:
        chat_id = self.chat_for(user_id)
        if chat_id is None or chat_id == "":
            return {"status": "skipped", "reason": "no Telegram chat linked"}
        return self.send_text(chat_id, format_alert_html(alert), parse_mode="HTML")

    def send_text(self, chat_id: int | str, text: str, *, parse_mode: str | None = None) -> dict:
        """Send one message to a chat with the retry policy; a result dict (never raises for delivery)."""
        try:
            result = _run(lambda: self._send_async(chat_id, text, parse_mode))
        except Exception as exc:  # noqa: BLE001 - anything unexpected becomes a failed result
            result = {"status": "failed", "permanent": False, "error": type(exc).__name__,
                      "reason": str(exc)}
        if "reason" in result:
            result["reason"] = _redact(str(result["reason"]).replace(self.__token, _REDACTED))[:300]
        return result

    def handle_update(self, update_json: str | bytes | Mapping[str, Any]) -> str | None:
        """Convenience: :meth:`ChatDirectory.handle_update` on this notifier's directory."""
        if not isinstance(self.chats, ChatDirectory):
            raise TypeError("chat linking needs a ChatDirectory")
        return self.chats.handle_update(update_json)

    # internals ------------------------------------------------------------------------------
    def _bot(self) -> tuple[telegram.Bot, HTTPXRequest]:
        # One HTTPXRequest serves both of the Bot's request slots, and the TLS context (costly to
        # build: it loads the CA bundle) is built once per notifier and shared by all calls.
        request = HTTPXRequest(connection_pool_size=4, connect_timeout=self.timeout, read_timeout=self.timeout,
                               write_timeout=self.timeout, pool_timeout=self.timeout,
                               httpx_kwargs={"verify": self._tls()})
        kwargs: dict[str, Any] = {"request": request, "get_updates_request": request}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return telegram.Bot(self.__token, **kwargs), request

    def _tls(self) -> ssl.SSLContext:
        with self._tls_lock:
            if self._tls_ctx is None:
                self._tls_ctx = ssl.create_default_context(cafile=certifi.where())
            return self._tls_ctx

    async def _wait(self, seconds: float) -> None:
        res = self.sleep(seconds)
        if inspect.isawaitable(res):
            await res

    async def _send_async(self, chat_id: int | str, text: str, parse_mode: str | None) -> dict:
        # Not ``async with bot`` (that calls getMe first, and PTB puts the token in the
        # InvalidToken text it raises there); the request object is initialised directly.
        bot, request = self._bot()
        await request.initialize()
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    msg = await bot.send_message(chat_id=chat_id, text=text, parse_mode=parse_mode)
                    return {"status": "sent", "message_id": msg.message_id, "chat_id": chat_id, "attempts": attempt}
                except RetryAfter as exc:
                    with warnings.catch_warnings():  # PTB's int→timedelta deprecation notice
                        warnings.simplefilter("ignore")
                        wait = _seconds(exc.retry_after)
                    if attempt > self.max_retries:
                        return self._failed(exc, attempt, permanent=False)
                    _LOG.info("telegram flood control: waiting %.1fs before retry %d", wait, attempt)
                    await self._wait(wait)
                except ChatMigrated as exc:  # group upgraded to a supergroup: follow it once
                    if attempt > self.max_retries:
                        return self._failed(exc, attempt, permanent=False)
                    old, chat_id = chat_id, exc.new_chat_id
                    if isinstance(self.chats, ChatDirectory):
                        for uid, cid in self.chats.links().items():
                            if str(cid) == str(old):
                                self.chats.link(uid, chat_id)
                except (Forbidden, BadRequest, InvalidToken) as exc:
                    return self._failed(exc, attempt, permanent=True)
                except NetworkError as exc:  # includes TimedOut; 5xx answers arrive as NetworkError
                    if attempt > self.max_retries:
                        return self._failed(exc, attempt, permanent=False)
                    wait = min(_BACKOFF_MAX_S, self.backoff_base * 2 ** (attempt - 1))
                    _LOG.info("telegram transient error (%s); retry %d in %.1fs", type(exc).__name__, attempt, wait)
                    await self._wait(wait)
                except TelegramError as exc:  # Conflict, EndPointNotFound, ...: not fixed by retrying
                    return self._failed(exc, attempt, permanent=True)
        finally:
            await request.shutdown()

    @staticmethod
    def _failed(exc: TelegramError, attempts: int, *, permanent: bool) -> dict:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return {"status": "failed", "permanent": permanent, "error": type(exc).__name__,
                "reason": reason, "attempts": attempts}
