"""Rerun a unit behaviour suite against a real adapter: adopt its tests that take one fixture."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any


def adopt_tests(unit_module: str, fixture: str, namespace: dict[str, Any]) -> ModuleType:
    """Import ``tests.unit.<unit_module>`` and copy into ``namespace`` every ``test_*`` taking
    ``fixture``; the caller's module then defines that fixture for its own adapter."""
    module = importlib.import_module(f"tests.unit.{unit_module}")
    for name, test in vars(module).copy().items():
        if name.startswith("test_") and callable(test) and fixture in inspect.signature(test).parameters:
            namespace[name] = test
    return module
