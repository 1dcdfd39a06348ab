"""Persistence ports: strategies with versions and runs (embedded SQLite default, memory fake;
the Firestore adapter arrives with the serverless stack)."""

from .base import RunRecord, StrategyRecord, StrategyStore, StrategyVersion  # noqa: F401
from .memory import MemoryStore  # noqa: F401
from .sqlite import SqliteStore  # noqa: F401
