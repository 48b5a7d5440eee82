"""`/model status` handler: build the status query from the services, call the domain, render."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.blocks import status as blocks
from bot.blocks.base import Message
from bot.commands import monitoring as cmds
from bot.domain import status
from bot.handlers.base import Actor, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


def status_query(services: Services, model: str | None, window: timedelta = status.DEFAULT_WINDOW) -> status.StatusQuery:
    """The sources feeding `model` (from the policy file), metric directions, and the clock."""
    from bot.config.sources import environments_of, sources_for_model

    refs = [status.SourceRef(s.name, s.type, environments_of(s)) for s in sources_for_model(services.policy, model)
            ] if model else []
    from bot.domain.alerting.reads import firing_provider

    return status.StatusQuery(now=services.clock(), window=window, sources=refs,
                              directions=dict(services.policy.metric_directions),  # type: ignore[arg-type]
                              firing=firing_provider(services.registry, services.clock))


@table.handles(cmds.Status)
def _status(services: Services, actor: Actor, cmd: cmds.Status) -> Message:
    if cmd.model is None:
        return blocks.overview(status.overview(services.registry, status_query(services, None)))
    query = status_query(services, cmd.model)
    return blocks.model_status(status.model_status(services.registry, cmd.model, cmd.environment, query))
