"""Build the service's dependencies lazily from one ``Settings`` (adapters chosen by settings).

Functions call :func:`services` on their first event, never at import time. Adapters:
store and jobs in Firestore when ``STRATAGEM_BACKEND=gcp`` (the emulator when
``FIRESTORE_EMULATOR_HOST`` is set - the client library reads it), else SQLite/memory;
the bus is Pub/Sub under ``gcp`` (the emulator when ``PUBSUB_EMULATOR_HOST`` is set), else
in-process; the result cache layers Redis over memory when ``STRATAGEM_REDIS_URL`` is set.
"""

from __future__ import annotations

import threading
from typing import Any

from .settings import Settings

_lock = threading.Lock()
_services: Any = None


def build(settings: Settings) -> Any:
    from .data.catalog import open_dataset
    from .sandbox.pool import Sandbox
    from .service import Services

    market = open_dataset(settings)
    if settings.backend == "gcp":
        from .alertlog_firestore import FirestoreAlertLog
        from .bus import PubSubBus
        from .jobs_firestore import FirestoreJobStore
        from .store.firestore import FirestoreStore

        store: Any = FirestoreStore(project=settings.gcp_project, timeout_s=settings.firestore_timeout_s)
        alert_log: Any = FirestoreAlertLog(project=settings.gcp_project)
        jobs: Any = FirestoreJobStore(project=settings.gcp_project, timeout_s=settings.firestore_timeout_s)
        bus: Any = PubSubBus(settings.gcp_project, timeout_s=settings.pubsub_timeout_s)
        from .live_firestore import FirestoreLiveBars

        live_bars: Any = FirestoreLiveBars(project=settings.gcp_project)
    else:
        from .alertlog import SqliteAlertLog
        from .bus import InProcessBus
        from .jobs import MemoryJobStore
        from .store import SqliteStore

        store = SqliteStore.in_home(settings.home)
        alert_log = SqliteAlertLog.in_home(settings.home)
        jobs = MemoryJobStore()
        from .service import TOPICS

        # a long-lived `stratagem serve` keeps only recent messages (alerts publish thousands a tick)
        bus = InProcessBus(dead_letter_topic=TOPICS["dead_letter"], history=10_000)
        from .live import SQLiteLiveBars

        live_bars = SQLiteLiveBars.in_home(settings.home)

    def generator() -> Any:
        from .generation import make_generator

        return make_generator(settings)

    from .cache import LayeredCache, MemoryCache, RedisCache
    from .notify import ConsoleNotifier, FileNotifier

    notifiers: list = [ConsoleNotifier(), FileNotifier(settings.home / "alerts.jsonl")]
    if settings.telegram_token:
        from .telegram import TelegramNotifier
        from .telegram_webhook import chat_directory

        notifiers.append(TelegramNotifier(settings.telegram_token, chat_directory(settings),
                                          base_url=settings.telegram_base_url))
    svc = Services(store=store, jobs=jobs, bus=bus, market=market,
                   sandbox_factory=lambda: Sandbox(market.path, settings.sandbox, settings.workers),
                   generator_factory=generator, alert_log=alert_log, notifiers=notifiers, live_bars=live_bars,
                   # Memory layer per Services (a function instance), Redis shared by all of them.
                   cache=LayeredCache(MemoryCache(), RedisCache(settings.redis_url) if settings.redis_url else None))
    if settings.backend != "gcp":
        wire_in_process(svc)
    return svc


def wire_in_process(svc: Any) -> None:
    """Subscribe every handler to its topic on an in-process bus (the embedded topology)."""
    from . import service

    handlers = {"generate": service.handle_generate, "validate": service.handle_validate,
                "backtest": service.handle_backtest_shard, "screen": service.handle_screen_shard,
                "tick": service.handle_alert_tick, "bars": service.handle_alert_bars, "alerts": service.handle_notify,
                "dead_letter": service.handle_dead_letter}
    for key, fn in handlers.items():
        svc.bus.subscribe(service.TOPICS[key], lambda m, mid, fn=fn: fn(svc, m, mid))


def services() -> Any:
    """The process-wide services, built on first use from ``Settings.from_env()``."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = build(Settings.from_env())
    return _services
