"""One exception hierarchy for the whole package.

Every error a user can see derives from :class:`StratagemError`. Each subclass carries the
CLI exit code and the HTTP status it maps to (CONTRACT §1 and §6), and a short machine code
for ``{"error": {"code", "message"}}`` bodies. Messages say what was expected and what was
found, so a user can fix the input without reading our source.
"""

from __future__ import annotations


class StratagemError(Exception):
    """Base of every error Stratagem reports to a user."""

    exit_code = 1
    http_status = 500
    code = "error"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadInput(StratagemError):
    """The user's input is wrong (file, flag, date, symbol, JSON field). Exit code 2."""

    exit_code = 2
    http_status = 400
    code = "bad_input"


class NotFound(BadInput):
    """A named thing (strategy id, dataset, universe) does not exist."""

    http_status = 404
    code = "not_found"


class StrategyRejected(StratagemError):
    """The strategy source failed validation. Exit code 1."""

    exit_code = 1
    http_status = 422
    code = "strategy_rejected"


class StrategyFailed(StratagemError):
    """The strategy ran but failed as a whole (e.g. it raised while loading). Exit code 1."""

    exit_code = 1
    http_status = 422
    code = "strategy_failed"


class InfraUnavailable(StratagemError):
    """A service we depend on is down or unreachable; retrying may help. Exit code 3."""

    exit_code = 3
    http_status = 503
    code = "unavailable"
