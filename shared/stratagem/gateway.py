"""The WebSocket gateway: pushes each user's fired alerts to that user's open browser tabs.

A Cloud Run service (Cloud Functions cannot hold sockets), an asyncio server on the
``websockets`` package. Protocol (JSON text frames):

* **Authenticate** with the same :class:`~stratagem.api.Authenticator` as the API: an API key
  or Firebase ID token in the upgrade request's ``Authorization: Bearer ...`` (or
  ``X-API-Key``) header, or - browsers cannot set headers on a WebSocket - in a first message
  ``{"type": "auth", "token": "...", "since": ...}`` sent within :data:`AUTH_TIMEOUT_S`. Bad or
  missing credentials close the connection with code 4401 and a reason saying what to send;
  more than :data:`MAX_CONNECTIONS_PER_USER` sockets of one user close with 4429.
* The server answers ``{"type": "welcome", "user": ...}`` and then pushes
  ``{"type": "alert", "alert": {...}}`` for each of that user's alerts, exactly once per
  connection (keyed by the alert's ``dedup_key``).
* **Catch-up**: a reconnecting client passes ``since`` (UTC ms of the last alert it saw logged,
  or that alert's ``dedup_key``), in the auth message, as ``?since=`` in the URL, or later as
  ``{"type": "catch_up", "since": ...}``; the alerts logged since then come first (oldest first),
  followed by ``{"type": "caught_up", "count": n}``. Alerts that fire meanwhile are held back
  and sent after the catch-up, never twice on one connection. Across connections catch-up is
  at-least-once: alerts logged in the same millisecond as the ``since`` alert are sent again, so
  a client keeps the ``dedup_key`` of what it has shown.
* Every delivered alert is recorded in the alert log as channel ``websocket``
  (``{"status": "sent", "connections": n}``); nothing is recorded when the user has no open
  connection (the alert waits in the log for the catch-up).

Alert sources (how the gateway hears fired alerts):

* :meth:`Gateway.attach_bus`: the in-process bus (embedded stack, tests, demo).
* :class:`PubSubSource`: production. Each gateway instance pulls from **its own** subscription
  on the alerts topic (created on start, deleted on stop, expiring after a day unused if the
  instance dies), because a user's connections may sit on any instance: every instance must
  see every alert and push only to the connections it holds.
* :class:`LogPollSource`: the local stack without emulators, where alerts fire in the API
  process: polls the alert log for the users connected here.

Run it with :func:`run` (``functions/ws_gateway/main.py``): ``GET /healthz`` answers 200 for
health checks; the upgrade can go to any path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

from .errors import StratagemError

log = logging.getLogger("stratagem.gateway")

AUTH_TIMEOUT_S = 10.0
MAX_CATCH_UP = 1000
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_MESSAGE = 4400
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_TOO_MANY = 4429
MAX_CONNECTIONS_PER_USER = 20  # browser tabs and devices; more is a leak or abuse
_SENT_KEYS_KEPT = 10_000  # per connection: enough to dedupe a catch-up against the live stream


class _Conn:
    """One authenticated connection: its user, what it was sent, what waits for a catch-up."""

    def __init__(self, ws: Any, user: str) -> None:
        self.ws = ws
        self.user = user
        self.sent: dict[str, None] = {}  # insertion-ordered set of dedup keys
        self.catching_up = 0
        self.held: list[dict] = []

    def mark(self, key: str) -> bool:
        """True the first time ``key`` is sent on this connection."""
        if key in self.sent:
            return False
        self.sent[key] = None
        if len(self.sent) > _SENT_KEYS_KEPT:
            self.sent.pop(next(iter(self.sent)))
        return True


class Gateway:
    """Holds open connections per user and fans alerts out to them (one event loop)."""

    def __init__(self, auth: Any, alert_log: Any = None, *, auth_timeout_s: float = AUTH_TIMEOUT_S,
                 max_connections_per_user: int = MAX_CONNECTIONS_PER_USER) -> None:
        self.auth = auth
        self.alert_log = alert_log
        self.auth_timeout_s = auth_timeout_s
        self.max_connections_per_user = max_connections_per_user
        self.conns: dict[str, set[_Conn]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.delivered = 0  # alerts pushed (counting each connection), for tests and health

    # -- feeding alerts in -----------------------------------------------------------------------
    def submit(self, user_id: str, alert: dict) -> None:
        """Thread-safe entry point for alert sources: deliver ``alert`` to ``user_id``'s connections."""
        if self.loop is None:
            raise RuntimeError("the gateway is not serving yet")
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.deliver(user_id, alert)))

    def attach_bus(self, bus: Any) -> None:
        """Hear fired alerts on an in-process bus (``stratagem.alert.v1`` on the alerts topic)."""
        from .service import TOPICS

        bus.subscribe(TOPICS["alerts"], lambda msg, _mid: self.submit(msg["user_id"], msg["alert"]))

    async def deliver(self, user_id: str, alert: dict) -> int:
        """Push to every open connection of ``user_id``; returns how many got it now."""
        key = alert.get("dedup_key")
        if not isinstance(key, str):
            log.warning("alert without a dedup_key dropped")
            return 0
        n = 0
        for c in list(self.conns.get(user_id, ())):
            if c.catching_up:
                c.held.append(alert)
            elif await self._send_alert(c, alert):
                n += 1
        if n:
            await self._record(key, {"status": "sent", "connections": n})
        return n

    async def _send_alert(self, c: _Conn, alert: dict, *, catch_up: bool = False) -> bool:
        if not c.mark(alert["dedup_key"]):
            return False
        body = {k: v for k, v in alert.items() if k != "user_id"}
        try:
            await c.ws.send(json.dumps({"type": "alert", "catch_up": catch_up, "alert": body}, default=str))
        except Exception:  # noqa: BLE001 - a closed socket: its handler unregisters it
            return False
        self.delivered += 1
        return True

    async def _record(self, key: str, result: dict) -> None:
        if self.alert_log is None:
            return
        try:
            await asyncio.to_thread(self.alert_log.set_delivery, key, "websocket", result)
        except Exception as exc:  # noqa: BLE001 - the push happened; a failed record must not stop the stream
            log.warning("could not record websocket delivery of %s: %s", key, exc)

    # -- connections -----------------------------------------------------------------------------
    async def handler(self, ws: Any) -> None:
        """One WebSocket connection, from authentication to close."""
        req = getattr(ws, "request", None)
        headers = dict(req.headers.raw_items()) if req is not None else {}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(req.path if req is not None else "").query)
        since: Any = query.get("since", [None])[0]
        has_creds = any(k.lower() in ("authorization", "x-api-key") for k in headers)
        if has_creds:
            user = await self._identify(ws, headers)
        else:
            first = await self._first_message(ws)
            if first is None:
                return
            token = first.get("token")
            if not isinstance(token, str) or not token:
                await ws.close(CLOSE_UNAUTHORIZED, "unauthorized: send {\"type\": \"auth\", \"token\": \"<API key or "
                                                   "ID token>\"} or an Authorization: Bearer header")
                return
            user = await self._identify(ws, {"Authorization": f"Bearer {token}"})
            since = first.get("since", since)
        if user is None:
            return
        if len(self.conns.get(user, ())) >= self.max_connections_per_user:
            await ws.close(CLOSE_TOO_MANY, f"too many connections: at most {self.max_connections_per_user} per user; "
                                           "close another tab or device")
            return
        c = _Conn(ws, user)
        self.conns.setdefault(user, set()).add(c)
        try:
            await ws.send(json.dumps({"type": "welcome", "user": user}))
            if since is not None:
                await self.catch_up(c, since)
            async for raw in ws:
                await self._on_message(c, raw)
        except Exception as exc:  # noqa: BLE001 - a dropped client is normal
            if type(exc).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError", "ConnectionClosed"):
                log.info("connection of %s ended: %s", user, exc)
        finally:
            self.conns.get(user, set()).discard(c)
            if not self.conns.get(user):
                self.conns.pop(user, None)

    async def _first_message(self, ws: Any) -> dict | None:
        try:
            raw = await asyncio.wait_for(ws.recv(), self.auth_timeout_s)
        except TimeoutError:
            await ws.close(CLOSE_AUTH_TIMEOUT, f"unauthorized: no credentials within {self.auth_timeout_s:g} s; send "
                                               "an Authorization header or a first {\"type\": \"auth\"} message")
            return None
        except Exception:  # noqa: BLE001 - closed before authenticating
            return None
        try:
            msg = json.loads(raw)
        except (TypeError, ValueError):
            msg = None
        if not isinstance(msg, dict) or msg.get("type") != "auth":
            await ws.close(CLOSE_UNAUTHORIZED, "unauthorized: the first message must be "
                                               "{\"type\": \"auth\", \"token\": \"<API key or ID token>\"}")
            return None
        return msg

    async def _identify(self, ws: Any, headers: Mapping[str, str]) -> str | None:
        try:
            return await asyncio.to_thread(self.auth.identify, headers)  # ID-token checks may fetch keys
        except StratagemError as exc:
            await ws.close(CLOSE_UNAUTHORIZED, f"unauthorized: {exc.message}"[:120])
            return None

    async def _on_message(self, c: _Conn, raw: Any) -> None:
        try:
            msg = json.loads(raw)
        except (TypeError, ValueError):
            msg = None
        if isinstance(msg, dict) and msg.get("type") == "catch_up":
            await self.catch_up(c, msg.get("since"))
        elif isinstance(msg, dict) and msg.get("type") == "ping":
            await c.ws.send(json.dumps({"type": "pong"}))
        else:
            await c.ws.send(json.dumps({"type": "error", "message": "unknown message; send {\"type\": \"catch_up\", "
                                                                   "\"since\": <UTC ms or dedup_key>} or {\"type\": \"ping\"}"}))

    async def catch_up(self, c: _Conn, since: Any) -> int:
        """Send ``c``'s user the alerts logged since ``since`` (UTC ms or a dedup key), oldest first."""
        c.catching_up += 1
        sent = 0
        try:
            rows, problem = await asyncio.to_thread(self._missed, c.user, since)
            if problem:
                await c.ws.send(json.dumps({"type": "error", "message": problem}))
            for e in rows:
                if await self._send_alert(c, e, catch_up=True):
                    sent += 1
                    await self._record(e["dedup_key"], {"status": "sent", "connections": 1, "catch_up": True})
            await c.ws.send(json.dumps({"type": "caught_up", "count": sent}))
        finally:
            c.catching_up -= 1
            if not c.catching_up:
                held, c.held = c.held, []
                for a in held:  # fired during the catch-up: after it, and only if not already sent
                    if await self._send_alert(c, a):
                        await self._record(a["dedup_key"], {"status": "sent", "connections": 1})
        return sent

    def _missed(self, user: str, since: Any) -> tuple[list[dict], str | None]:
        if self.alert_log is None:
            return [], "this gateway has no alert log to catch up from"
        skip = None
        if isinstance(since, str) and since.strip().isdigit():
            since = int(since)
        if isinstance(since, str):
            entry = self.alert_log.get(user, since)
            if entry is None:
                return [], f"since: no alert of yours has the dedup key {since!r:.80}; send since as UTC ms instead"
            since, skip = entry["created_at"], entry["dedup_key"]
        if isinstance(since, bool) or not isinstance(since, (int, float)):
            return [], "since must be UTC milliseconds (number) or the dedup_key of the last alert received"
        rows = self.alert_log.list(user, limit=MAX_CATCH_UP, created_after=int(since))
        return [e for e in rows if e["dedup_key"] != skip], None

    # -- serving ---------------------------------------------------------------------------------
    async def serve(self, host: str = "0.0.0.0", port: int = 8080) -> Any:
        """Start listening (returns the ``websockets`` server; ``close()`` then ``wait_closed()``)."""
        from websockets.asyncio.server import serve

        self.loop = asyncio.get_running_loop()

        def health(conn: Any, request: Any) -> Any:
            # Cloud Run and the local stack probe with plain GETs: answer them without an upgrade.
            if request.headers.get("Upgrade", "").lower() != "websocket":
                return conn.respond(200, "ok\n")
            return None

        return await serve(self.handler, host, port, process_request=health, ping_interval=20, ping_timeout=20)


class PubSubSource:
    """This instance's own pull subscription on the alerts topic (see the module docstring).

    The subscriber client is created in :meth:`start`, never at import; ``PUBSUB_EMULATOR_HOST``
    points it at the emulator."""

    def __init__(self, gateway: Gateway, project: str, topic: str, *, subscription: str | None = None) -> None:
        self.gateway = gateway
        self.project = project
        self.topic = topic
        self.subscription = subscription or f"stratagem-ws-gateway-{uuid.uuid4().hex[:12]}"
        self._client: Any = None
        self._future: Any = None

    def start(self) -> None:
        from google.cloud import pubsub_v1

        from . import messages

        self._client = pubsub_v1.SubscriberClient()
        path = self._client.subscription_path(self.project, self.subscription)
        self._client.create_subscription(request={
            "name": path, "topic": f"projects/{self.project}/topics/{self.topic}", "ack_deadline_seconds": 30,
            "expiration_policy": {"ttl": {"seconds": 86400}},  # removed a day after its instance died
            "message_retention_duration": {"seconds": 600}})

        def callback(message: Any) -> None:
            try:
                msg = messages.decode(message.data)
                if msg["schema"] != "stratagem.alert.v1":
                    raise messages.MalformedMessage(f"expected stratagem.alert.v1, got {msg['schema']}")
                self.gateway.submit(msg["user_id"], msg["alert"])
            except Exception as exc:  # noqa: BLE001 - malformed: acknowledged, logged (retrying cannot help)
                log.error("alert message dropped by the gateway: %s", exc)
            message.ack()

        self._future = self._client.subscribe(path, callback=callback)
        log.info("gateway subscribed to %s as %s", self.topic, self.subscription)

    def stop(self) -> None:
        if self._future is not None:
            self._future.cancel()
            with contextlib.suppress(Exception):
                self._future.result(timeout=5)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.delete_subscription(
                    request={"subscription": self._client.subscription_path(self.project, self.subscription)})
            self._client.close()


class LogPollSource:
    """Polls the alert log for the users connected to this gateway (the local stack, where
    alerts fire in another process with no shared bus)."""

    def __init__(self, gateway: Gateway, alert_log: Any, *, interval_s: float = 0.25,
                 clock: Any = time.time) -> None:
        self.gateway = gateway
        self.alert_log = alert_log
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()
        self._since: dict[str, int] = {}

    def poll_once(self) -> int:
        n = 0
        for user in list(self.gateway.conns):
            since = self._since.setdefault(user, int(self.clock() * 1000) - 5_000)
            rows = self.alert_log.list(user, limit=MAX_CATCH_UP, created_after=since)
            for e in rows:
                self.gateway.submit(user, e)  # connections dedupe by dedup_key
                n += 1
            if rows:
                # same-ms entries may still be landing: re-read the last ms next time (deduped)
                self._since[user] = max(e["created_at"] for e in rows)
        return n

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.poll_once()
                except Exception as exc:  # noqa: BLE001 - keep polling; the log may be briefly locked
                    log.warning("alert log poll failed: %s", exc)

        threading.Thread(target=loop, name="gateway-log-poll", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def build_gateway(settings: Any) -> tuple[Gateway, Any]:
    """The gateway and its alert source for ``settings`` (the same adapters as the functions)."""
    from .api import ApiKeyAuth, FirebaseAuth
    from .service import TOPICS

    auth = ApiKeyAuth(settings.api_keys) if settings.api_keys else FirebaseAuth(settings.gcp_project)
    if settings.backend == "gcp":
        from .alertlog_firestore import FirestoreAlertLog

        gw = Gateway(auth, FirestoreAlertLog(project=settings.gcp_project))
        return gw, PubSubSource(gw, settings.gcp_project, TOPICS["alerts"])
    from .alertlog import SqliteAlertLog

    alert_log = SqliteAlertLog.in_home(settings.home)
    gw = Gateway(auth, alert_log)
    return gw, LogPollSource(gw, alert_log)


async def run(settings: Any, host: str = "0.0.0.0", port: int = 8080, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or forever): the Cloud Run entry point's body."""
    gw, source = build_gateway(settings)
    server = await gw.serve(host, port)
    await asyncio.to_thread(source.start)
    log.info("WebSocket gateway on %s:%d", host, port)
    try:
        await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.to_thread(source.stop)
