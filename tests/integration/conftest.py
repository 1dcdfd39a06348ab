"""Integration fixtures: the official Firestore and Pub/Sub emulators, one of each per session.

Each emulator starts on first use (a session that never asks for Pub/Sub never starts it)
on a free 127.0.0.1 port and stops at the end of the session. When the Cloud SDK component
or Java is missing, every test that needs it is skipped with a reason saying what to install.
Tests never share documents: each gets a unique collection-name ``prefix``, so nothing is
reset between tests (``firestore_emulator.reset()`` drops everything if a test needs it).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from stratagem.emulator import (
    INSTALL_HINT,
    EmulatorMissing,
    FirestoreEmulator,
    PubSubEmulator,
    find_firestore_emulator,
    find_pubsub_emulator,
)

PROJECT = "stratagem-it"


def _skip(reason: str) -> None:
    warnings.warn(reason, stacklevel=2)  # in the warnings summary too, not only in -ra
    pytest.skip(reason)


def _start(emulator: Any) -> Any:
    try:
        return emulator.start()
    except EmulatorMissing as exc:  # e.g. no Java: the message says what to install
        _skip(str(exc))


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """The session's Firestore emulator (``.host``, ``.client()``, ``.reset()``)."""
    pytest.importorskip("google.cloud.firestore", reason="google-cloud-firestore is not installed: "
                        "pip install google-cloud-firestore")
    if find_firestore_emulator() is None:
        _skip(f"Firestore emulator not found: {INSTALL_HINT}")
    emulator = _start(FirestoreEmulator(project=PROJECT))  # starts empty: no reset
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[PubSubEmulator]:
    """The session's Pub/Sub emulator (``.host``, ``.reset()``)."""
    if find_pubsub_emulator() is None:
        _skip(f"Pub/Sub emulator not found: {INSTALL_HINT}")
    emulator = _start(PubSubEmulator())
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def firestore_client(firestore_emulator: FirestoreEmulator) -> Any:
    """One client for the session, bound to the emulator (no credentials, no global env)."""
    return firestore_emulator.client(PROJECT)


@pytest.fixture
def prefix() -> str:
    """A collection-name prefix no other test uses (``t1a2b3c4d5_``)."""
    return f"t{uuid.uuid4().hex[:10]}_"


@pytest.fixture
def firestore_env(firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> FirestoreEmulator:
    """``FIRESTORE_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT`` set for one test (code that
    builds its own client from the environment, e.g. ``Settings.from_env()``)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return firestore_emulator


@pytest.fixture
def pubsub_env(pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> PubSubEmulator:
    """``PUBSUB_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT`` set for one test, on a freshly reset emulator."""
    pubsub_emulator.reset()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return pubsub_emulator
