"""Typed domain errors.

Every front end (CLI, Slack, REST) turns these into user text in one place, so the
domain raises them with a message that already reads as one clear sentence: what was
wrong and what to type instead.
"""

from __future__ import annotations


class ModelbotError(Exception):
    """Base of every error a user can cause or meet; `code` is stable for APIs."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ModelbotError):
    """The request itself is malformed (bad name, bad number, unknown environment)."""

    code = "invalid_input"


class NotFound(ModelbotError):
    """A model, version, request or other object named by the user does not exist."""

    code = "not_found"


class Forbidden(ModelbotError):
    """The actor may not do this (role, four-eyes rule, scope)."""

    code = "forbidden"


class Conflict(ModelbotError):
    """The request is well-formed but the current state does not allow it."""

    code = "conflict"


class Unavailable(ModelbotError):
    """A dependency (the database lock, a metric source) did not answer in time."""

    code = "unavailable"
