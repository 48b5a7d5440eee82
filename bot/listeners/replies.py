"""The one place where errors become user text, shared by every listener.

Typed domain errors become a friendly ephemeral message (with the usage line for bad
commands); anything else gives the user a short reference and logs it with that reference.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.blocks import help as help_blocks
from bot.blocks.base import Message
from bot.commands import UsageError
from bot.domain.errors import ModelbotError
from bot.observability import ACK_SECONDS, COMMANDS, REPLY_SECONDS

log = logging.getLogger("modelbot.slack")
RECEIVED_AT = "modelbot_received_at"


def error_message(exc: BaseException) -> tuple[Message, str]:
    """(message for the user, outcome label for metrics)."""
    if isinstance(exc, UsageError):
        # Text the grammar cannot even split (an unclosed quote, a 10 KB paste) has no command
        # yet, hence no usage line of its own: point at help rather than leave the user guessing.
        return help_blocks.error(exc.message, exc.usage or "/model help"), "usage_error"
    if isinstance(exc, ModelbotError):
        return help_blocks.error(exc.message), exc.code
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error (reference %s)", reference, exc_info=exc)
    return help_blocks.unexpected(reference), "internal_error"


def mark_received(context: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Global middleware: remember when the request arrived, for ack/reply latency."""
    context[RECEIVED_AT] = time.perf_counter()
    return next()


def acked(context: dict[str, Any]) -> None:
    started = context.get(RECEIVED_AT)
    if started is not None:
        ACK_SECONDS.observe(time.perf_counter() - started)


@dataclass
class Answer:
    """Filled in by the listener as it learns which command it is answering (for metrics)."""

    command: str = "unknown"


@contextmanager
def answering(context: dict[str, Any], send: Callable[[Message], Any]) -> Iterator[Answer]:
    """Run the body; on any error send its message instead. Counts the outcome, times the reply."""
    answer = Answer()
    outcome = "ok"
    try:
        yield answer
    except Exception as exc:
        message, outcome = error_message(exc)
        try:
            send(message)
        except Exception:
            log.exception("could not deliver an error reply")
    finally:
        COMMANDS.labels(answer.command, outcome).inc()
        started = context.get(RECEIVED_AT)
        if started is not None:
            REPLY_SECONDS.observe(time.perf_counter() - started)
