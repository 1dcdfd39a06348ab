"""Telegram chat links in Firestore: what the API (issuing link codes), the webhook function
(redeeming them) and the notify function (sending) share on Google Cloud, where each runs in
its own instances and a local JSON file would be seen by one instance only.

Documents (under an optional collection-name ``prefix``)::

    telegramChats/{userId}          userId, chatId
    telegramLinkCodes/{sha256(code)} userId, expires (epoch seconds)   only hashes are stored

A code is redeemed by deleting its document with a precondition on the update time read just
before: of two concurrent ``/start`` messages with the same code exactly one succeeds, so a
code links at most one chat. Expired codes are refused (and removed when met).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .store.firestore import doc_id, firestore_client
from .telegram import LINK_CODE_TTL_S, ChatDirectory, _hash_code

CHATS = "telegramChats"
CODES = "telegramLinkCodes"


class FirestoreChatDirectory(ChatDirectory):
    """:class:`~stratagem.telegram.ChatDirectory` on Firestore (same methods, same ``/start`` handling)."""

    def __init__(self, project: str | None = None, *, client: Any = None, prefix: str = "",
                 code_ttl: float = LINK_CODE_TTL_S, clock: Callable[[], float] = time.time,
                 responder: Callable[[int | str, str], Any] | None = None, timeout_s: float = 30.0) -> None:
        # deliberately not ChatDirectory.__init__: there is no file to load
        self.path = None
        self.code_ttl = float(code_ttl)
        self.clock = clock
        self.responder = responder
        self.project = project
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._client = client
        self._client_lock = threading.Lock()
        self._lock = threading.RLock()
        self._chats: dict = {}
        self._codes: dict = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = firestore_client(self.project)
        return self._client

    def _chat_ref(self, user_id: str) -> Any:
        return self.client.collection(self.prefix + CHATS).document(doc_id(str(user_id)))

    def _code_ref(self, code: str) -> Any:
        return self.client.collection(self.prefix + CODES).document(_hash_code(code))

    # mapping --------------------------------------------------------------------------------
    def chat_for(self, user_id: str) -> int | str | None:
        snap = self._chat_ref(user_id).get(timeout=self.timeout_s)
        return (snap.to_dict() or {}).get("chatId") if snap.exists else None

    def link(self, user_id: str, chat_id: int | str) -> None:
        self._chat_ref(user_id).set({"userId": str(user_id), "chatId": chat_id}, timeout=self.timeout_s)

    def unlink(self, user_id: str) -> bool:
        ref = self._chat_ref(user_id)
        found = ref.get(timeout=self.timeout_s).exists
        ref.delete(timeout=self.timeout_s)
        return found

    def links(self) -> dict[str, int | str]:
        return {d.get("userId"): d.get("chatId") for d in
                (s.to_dict() or {} for s in self.client.collection(self.prefix + CHATS).stream(timeout=self.timeout_s))}

    # link codes -----------------------------------------------------------------------------
    def new_link_code(self, user_id: str) -> str:
        import secrets

        code = secrets.token_urlsafe(16)
        self._code_ref(code).create({"userId": str(user_id), "expires": self.clock() + self.code_ttl},
                                    timeout=self.timeout_s)
        return code

    def redeem(self, code: str, chat_id: int | str) -> str | None:
        from google.api_core import exceptions as gex
        from google.cloud.firestore_v1 import Client

        ref = self._code_ref(code)
        snap = ref.get(timeout=self.timeout_s)
        if not snap.exists:
            return None
        try:  # consume: exactly one of concurrent redeemers gets past this
            ref.delete(option=Client.write_option(last_update_time=snap.update_time), timeout=self.timeout_s)
        except (gex.FailedPrecondition, gex.NotFound, gex.Aborted):
            return None
        entry = snap.to_dict() or {}
        if float(entry.get("expires", 0)) <= self.clock():
            return None
        self.link(entry["userId"], chat_id)
        return entry["userId"]
