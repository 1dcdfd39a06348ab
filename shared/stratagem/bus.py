"""The message bus port: publish a validated message to a topic.

``InProcessBus`` (embedded default) delivers to subscribed handlers in this process, with
Pub/Sub's semantics that matter here: at-least-once (a handler that raises is retried with
backoff), a dead-letter list after ``max_attempts``, and duplicate delivery on demand for
tests. ``PubSubBus`` publishes to Google Cloud Pub/Sub (or its emulator when
``PUBSUB_EMULATOR_HOST`` is set); the client is created on first use.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, Protocol

from . import messages
from .errors import InfraUnavailable

Handler = Callable[[dict, str], None]


class Publisher(Protocol):
    def publish(self, topic: str, message: dict) -> str:
        """Publish; returns the message id."""
        ...


class PublishIncomplete(InfraUnavailable):
    """Some messages of a :func:`publish_many` were not accepted; ``accepted[i]`` says, for
    each message in order, whether the bus took it (those it took will be delivered)."""

    def __init__(self, message: str, accepted: list[bool]) -> None:
        super().__init__(message)
        self.accepted = accepted


def publish_many(bus: Any, topic: str, msgs: list[dict]) -> list[str]:
    """Publish ``msgs`` to ``topic``, all in flight at once where the bus can (Pub/Sub batches
    them: one round trip, not one per message); returns their ids in order. Raises
    :class:`PublishIncomplete` when any was not accepted."""
    many = getattr(bus, "publish_many", None)
    if many is not None:
        return many(topic, msgs)
    return _one_by_one(bus, topic, msgs)


def _one_by_one(bus: Any, topic: str, msgs: list[dict]) -> list[str]:
    ids: list[str] = []
    for m in msgs:
        try:
            ids.append(bus.publish(topic, m))
        except PublishIncomplete:
            raise
        except InfraUnavailable as exc:
            # Stop at the first refusal (the bus is likely down); the rest were never sent.
            raise PublishIncomplete(exc.message, [True] * len(ids) + [False] * (len(msgs) - len(ids))) from exc
    return ids


class InProcessBus:
    """Synchronous in-process delivery (deterministic for the CLI and tests)."""

    def __init__(self, max_attempts: int = 5, backoff_s: float = 0.0, dead_letter_topic: str | None = None,
                 history: int | None = None) -> None:
        """``history``: how many published messages and dead letters to keep for inspection and
        :meth:`redeliver` (all when None, for tests; a long-lived service keeps the last ones:
        delivery is synchronous, so nothing depends on the older ones)."""
        self.handlers: dict[str, list[Handler]] = defaultdict(list)
        # Where a message that failed every attempt goes (as a Pub/Sub dead-letter policy sends
        # it): its handlers are delivered to like any topic's, but never dead-lettered again.
        self.dead_letter_topic = dead_letter_topic
        self.published: list | deque = [] if history is None else deque(maxlen=history)
        self.dead_letters: list | deque = [] if history is None else deque(maxlen=history)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._n = 0
        # Message ids unique across bus instances (as Pub/Sub's are): event ids are recorded in a
        # job store that several in-process buses (function instances) may share.
        self._prefix = f"local-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self.handlers[topic].append(handler)

    def publish(self, topic: str, message: dict) -> str:
        messages.encode(message)  # validates and checks size exactly as the real bus would
        with self._lock:
            self._n += 1
            mid = f"{self._prefix}-{self._n}"
        self.published.append((topic, message, mid))
        for h in list(self.handlers.get(topic, [])):
            self._deliver(topic, h, message, mid)
        return mid

    def publish_many(self, topic: str, msgs: list[dict]) -> list[str]:
        """:func:`publish_many`: one message after the other (each goes through :meth:`publish`)."""
        return _one_by_one(self, topic, msgs)

    def _deliver(self, topic: str, handler: Handler, message: dict, mid: str) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                handler(message, mid)
                return
            except messages.MalformedMessage:
                self.dead_letters.append((topic, message, "malformed"))
                return
            except Exception as exc:  # noqa: BLE001 - at-least-once: retry, then dead-letter
                if attempt == self.max_attempts:
                    self.dead_letters.append((topic, message, f"{type(exc).__name__}: {exc}"))
                    dl = self.dead_letter_topic
                    if dl is not None and topic != dl:
                        for h in list(self.handlers.get(dl, [])):
                            self._deliver(dl, h, message, f"{mid}-dead-letter")
                    return
                time.sleep(self.backoff_s * attempt)

    def redeliver(self, index: int = -1) -> None:
        """Deliver an already-published message again (duplicate delivery, for tests)."""
        topic, message, mid = self.published[index]
        for h in list(self.handlers.get(topic, [])):
            self._deliver(topic, h, message, mid)


class PubSubBus:
    """Google Cloud Pub/Sub publisher (emulator-aware through the client library).

    ``publish`` (one message) and ``publish_many`` wait up to ``timeout_s`` for Pub/Sub to accept
    the messages; when it cannot (Pub/Sub unreachable, an error answer, the wait exceeded) they
    raise :class:`PublishIncomplete`, an :class:`~stratagem.errors.InfraUnavailable`, which
    callers treat as transient: a handler re-raises it so its own delivery is retried, the API
    answers 503 and fails the job.
    """

    def __init__(self, project: str, *, client: Any = None, timeout_s: float = 30.0) -> None:
        self.project = project
        self._client = client
        self.timeout_s = timeout_s

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud import pubsub_v1

            self._client = pubsub_v1.PublisherClient()
        return self._client

    def publish(self, topic: str, message: dict) -> str:
        return self.publish_many(topic, [message])[0]

    def publish_many(self, topic: str, msgs: list[dict]) -> list[str]:
        """:func:`publish_many`: every message handed to the client before waiting for any, so
        the client batches them (a message waits at most its batch latency, 10 ms by default,
        instead of each paying a round trip after the previous one); one deadline for all."""
        datas = [messages.encode(m) for m in msgs]  # validate everything before sending anything
        path = self.client.topic_path(self.project, topic)
        futures: list[Any] = []
        first: Exception | None = None
        for m, data in zip(msgs, datas):
            try:
                futures.append(self.client.publish(path, data, schema=m["schema"]))
            except Exception as exc:  # noqa: BLE001 - the client refused to queue it
                futures.append(None)
                first = first or exc
        deadline = time.monotonic() + self.timeout_s
        ids: list[str] = []
        for f in futures:
            mid = ""
            if f is not None:
                try:
                    mid = f.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001 - google.api_core errors, futures.TimeoutError, gRPC
                    first = first or exc
            ids.append(mid)
        if first is not None:
            accepted = [bool(mid) for mid in ids]
            raise PublishIncomplete(f"Pub/Sub did not accept {accepted.count(False)} of {len(msgs)} message(s) for "
                                    f"{topic} within {self.timeout_s:g} s ({type(first).__name__}: {str(first)[:200]}); "
                                    "retrying may help", accepted)
        return ids
