"""The alert log in Cloud Firestore (or its emulator): the ``alertLogs`` collection.

One document per fired alert, id = the dedup key (``strategy:version:symbol:bar``, made
safe by :func:`stratagem.store.firestore.doc_id`)::

    alertLogs/{dedupKey}  userId, strategyId (str), strategyVersion, symbol, date,
                          timestamp (bar time, UTC ms), createdAt (UTC ms), message,
                          alertJson (the alert as fired, canonical JSON text),
                          delivery {channel: result as JSON text}

``add`` is a ``create`` (fails if the document exists), so duplicate notifications log and
deliver once. A channel may report before ``add`` (the WebSocket gateway hears alerts on its
own subscription): ``set_delivery`` then merges ``delivery.<channel>`` into a stub document
without ``userId``; ``add`` finding such a stub fills it in with an update conditioned on the
stub's update time (a lost race starts again), and stubs never match a user's query.

Queries filter on ``userId`` and order by ``timestamp`` (or ``createdAt`` for catch-up), which
needs the composite indexes declared in ``infra/stack.toml`` (collection ``alertLogs``). The
client is created on first use; pass ``client=`` to share one.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import StratagemError
from .notify import check_list_args, sort_entries
from .store.firestore import _translate, doc_id, firestore_client

COLLECTION = "alertLogs"
_CHANNEL_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class FirestoreAlertLog:
    """:class:`~stratagem.notify.AlertLog` on Firestore."""

    def __init__(self, project: str | None = None, *, client: Any = None, prefix: str = "",
                 clock: Callable[[], float] = time.time, timeout_s: float = 30.0) -> None:
        self.project = project
        self.prefix = prefix
        self.clock = clock
        self.timeout_s = timeout_s
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = firestore_client(self.project)
        return self._client

    def _col(self) -> Any:
        return self.client.collection(self.prefix + COLLECTION)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StratagemError:
            raise
        except Exception as exc:
            mapped = _translate(exc, what)
            if mapped is None:
                raise
            raise mapped from exc

    # -- the port ------------------------------------------------------------------------------
    def add(self, user_id: str, alert: dict, *, sending: Sequence[str] = ()) -> bool:
        from google.api_core import exceptions as gex

        for ch in sending:
            _check_channel(ch)
        ref = self._col().document(doc_id(alert["dedup_key"]))
        now = round(self.clock() * 1000)
        fields = {"userId": user_id, "strategyId": str(alert["strategy_id"]),
                  "strategyVersion": alert.get("strategy_version"), "symbol": alert["symbol"],
                  "date": alert.get("date"), "timestamp": int(alert["timestamp"]),
                  "createdAt": now, "message": alert.get("message", ""),
                  "alertJson": json.dumps(alert, default=str, sort_keys=True, allow_nan=False)}
        claim = json.dumps({"at": now, "status": "sending"}, sort_keys=True)
        deadline = time.monotonic() + self.timeout_s
        with self._errors(f"logging alert {alert['dedup_key']!r:.80}"):
            while True:
                try:
                    ref.create({**fields, "delivery": {ch: claim for ch in sending}}, timeout=self.timeout_s)
                    return True
                except gex.AlreadyExists:
                    pass
                snap = ref.get(timeout=self.timeout_s)
                if not snap.exists:
                    continue  # deleted in between: try the create again
                stub = snap.to_dict() or {}
                if stub.get("userId") is not None:
                    return False  # logged already: a duplicate notification
                # A delivery stub written before the alert was logged: fill it in, unless it changed.
                from google.cloud.firestore_v1 import Client

                try:
                    early = stub.get("delivery") or {}  # deliveries already reported win over the claim
                    ref.update({**fields, **{f"delivery.{ch}": claim for ch in sending if ch not in early}},
                               option=Client.write_option(last_update_time=snap.update_time), timeout=self.timeout_s)
                    return True
                except (gex.FailedPrecondition, gex.Aborted):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    def set_delivery(self, key: str, channel: str, result: dict) -> None:
        _check_channel(channel)
        with self._errors(f"recording {channel} delivery of {key!r:.80}"):
            self._col().document(doc_id(key)).set(
                {"delivery": {channel: json.dumps(result, default=str, sort_keys=True)}}, merge=True,
                timeout=self.timeout_s)

    def list(self, user_id: str, strategy_id: int | str | None = None, limit: int = 100, *,
             since: int | None = None, until: int | None = None, created_after: int | None = None) -> list[dict]:
        from google.cloud.firestore_v1 import Query
        from google.cloud.firestore_v1.base_query import FieldFilter

        check_list_args(limit, since, until)
        q = self._col().where(filter=FieldFilter("userId", "==", user_id))
        if strategy_id is not None:
            q = q.where(filter=FieldFilter("strategyId", "==", str(strategy_id)))
        if created_after is not None:
            # Firestore allows range filters on one field per index: the bar range is applied here.
            q = q.where(filter=FieldFilter("createdAt", ">=", created_after)).order_by("createdAt")
            batch = 4 * limit
        else:
            if since is not None:
                q = q.where(filter=FieldFilter("timestamp", ">=", since))
            if until is not None:
                q = q.where(filter=FieldFilter("timestamp", "<=", until))
            q = q.order_by("timestamp", direction=Query.DESCENDING)
            batch = limit
        with self._errors("listing alert logs"):
            rows = []
            for snap in q.limit(batch).stream(timeout=self.timeout_s):
                e = _entry(snap.to_dict())
                if (since is None or e["timestamp"] >= since) and (until is None or e["timestamp"] <= until):
                    rows.append(e)
        return sort_entries(rows, created_after)[:limit]

    def get(self, user_id: str, key: str) -> dict | None:
        with self._errors(f"reading alert {key!r:.80}"):
            snap = self._col().document(doc_id(key)).get(timeout=self.timeout_s)
        d = snap.to_dict() if snap.exists else None
        return _entry(d) if d and d.get("userId") == user_id else None


def _check_channel(channel: str) -> None:
    # channels become field paths (delivery.<channel>): plain identifiers only
    if not channel or not set(channel) <= _CHANNEL_OK:
        raise ValueError(f"channel names are lower-case identifiers, got {channel!r}")


def _entry(d: dict) -> dict:
    return {**json.loads(d["alertJson"]), "user_id": d["userId"], "created_at": int(d["createdAt"]),
            "delivery": {ch: json.loads(v) for ch, v in (d.get("delivery") or {}).items()}}
