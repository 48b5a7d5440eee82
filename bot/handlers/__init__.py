"""Command, click and modal-submit dispatch, shared by every front end (Slack, shell, tests).

The feature tables are assembled here explicitly: registry, deployments, monitoring, the
digest on demand, subscriptions, alerts, MLflow. A front end parses, then calls `run`, `click` or
`submit`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bot import commands
from bot.blocks import registry as registry_blocks
from bot.blocks.base import Message
from bot.domain.errors import InvalidInput, NotFound
from bot.handlers import alerts, deploy, digest, mlflow, monitoring, registry, subscriptions
from bot.handlers.base import (
    Actor,
    Click,
    ClickHandler,
    ClickResult,
    Handler,
    HandlerTable,
    Submission,
    SubmitHandler,
    SubmitResult,
)

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["Actor", "Click", "ClickResult", "Submission", "SubmitResult", "click", "run", "run_text", "submit"]


def _merged(tables: tuple[HandlerTable, ...]) -> tuple[dict[type[commands.Command], Handler], dict[str, ClickHandler],
                                                      dict[str, SubmitHandler]]:
    runs: dict[type[commands.Command], Handler] = {}
    clicks: dict[str, ClickHandler] = {}
    submits: dict[str, SubmitHandler] = {}
    for table in tables:
        for into, items in ((runs, table.commands), (clicks, table.clicks), (submits, table.submits)):
            for key, func in items.items():
                if key in into:
                    raise RuntimeError(f"two handlers for {key!r}")
                into[key] = func  # type: ignore[index]
    return runs, clicks, submits


def run(services: Services, actor: Actor, command: commands.Command) -> Message:
    handler = HANDLERS[type(command)]
    return handler(services, actor, command).shared(command.share)


def run_text(services: Services, actor: Actor, text: str, *, offset: int = 0) -> Message:
    command = commands.parse(text)
    if offset:
        command = command.with_offset(offset)
    return run(services, actor, command)


def click(services: Services, event: Click) -> ClickResult:
    handler = CLICK_HANDLERS.get(event.action_id)
    if handler is None:
        raise NotFound("That button is no longer handled by this version of modelbot.")
    return handler(services, event)


def submit(services: Services, event: Submission) -> SubmitResult:
    handler = SUBMIT_HANDLERS.get(event.callback_id)
    if handler is None:
        raise NotFound("That form is no longer handled by this version of modelbot.")
    return handler(services, event)


def _next_page(services: Services, event: Click) -> ClickResult:
    """A list's *Next* button: the same command again at the next offset."""
    try:
        data = json.loads(event.value)
        text, offset = str(data["c"]), int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("That page button is damaged; run the command again.") from None
    return ClickResult(replace=run_text(services, event.actor, text, offset=offset))


_paging = HandlerTable(clicks={registry_blocks.PAGE_ACTION: _next_page})
HANDLERS, CLICK_HANDLERS, SUBMIT_HANDLERS = _merged(
    (registry.table, deploy.table, monitoring.table, digest.table, subscriptions.table, alerts.table, mlflow.table,
     _paging)
)
