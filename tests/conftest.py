"""Shared fixtures: a private Stratagem home with the bundled dataset, and a warm sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratagem.data.catalog import ensure_sample
from stratagem.data.store import MarketData
from stratagem.settings import SandboxLimits, Settings

# Vendored copies of the team's samples (shared/examples), so a clean clone tests the same.
EXAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("stratagem-home"))


@pytest.fixture(scope="session")
def market(settings: Settings) -> MarketData:
    return ensure_sample(settings)


@pytest.fixture(scope="session")
def sandbox(market: MarketData):
    from stratagem.sandbox.pool import Sandbox

    sbx = Sandbox(market.path, SandboxLimits(memory_mb=128, cpu_seconds=20, call_seconds=2.0), workers=2)
    sbx.start()
    yield sbx
    sbx.close()


def pytest_collection_modifyitems(session, config, items):
    """Run the OS-limit tests first. They fork this pytest process and install seccomp in the
    child; once a gRPC client (Firestore, Pub/Sub) has started threads in this process, a
    forked child inherits gRPC's fork handlers, which try to start threads and fail under the
    filter. The production sandbox never has this problem: its zygote is a fresh interpreter."""
    items.sort(key=lambda it: 0 if it.nodeid.startswith("tests/unit/test_oslimits.py") else 1)
