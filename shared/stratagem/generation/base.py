"""The generator port and the value it produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..errors import InfraUnavailable, StratagemError


@dataclass(frozen=True)
class Parameter:
    """A tunable value of a generated strategy: its name in the code, value and meaning."""

    name: str
    value: Any
    meaning: str


@dataclass
class GeneratedStrategy:
    """What a generator returns (before validation and smoke run)."""

    name: str
    description: str
    code: str
    parameters: list[Parameter] = field(default_factory=list)
    explanation: str = ""
    generator: str = ""

    def to_json(self) -> dict:
        return asdict(self)


class GenerationRefused(StratagemError):
    """The request cannot be expressed honestly with the data API (intraday bars, options,
    news, "make me rich"). The message says what the generator *can* do. Exit code 1."""

    exit_code = 1
    http_status = 422
    code = "refused"


class GenerationFailed(StratagemError):
    """The generator produced nothing usable after its bounded attempts. Exit code 1."""

    exit_code = 1
    http_status = 422
    code = "generation_failed"


class GeneratorUnavailable(InfraUnavailable):
    """The model service could not be reached or kept failing (after retries). Exit code 3."""

    code = "generator_unavailable"


class Generator(Protocol):
    """Turns a prompt into strategy source. ``feedback`` holds the exact errors of earlier
    attempts (validation findings, smoke-run failures) so the generator can repair them."""

    name: str

    def generate(self, prompt: str, feedback: list[str] | None = None) -> GeneratedStrategy: ...
