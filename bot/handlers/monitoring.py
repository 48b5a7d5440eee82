"""`/model status` handler: build the status query from the services, call the domain, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import status as blocks
from bot.blocks.base import Message
from bot.commands import monitoring as cmds
from bot.domain.monitoring import status
from bot.handlers.base import Actor, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


@table.handles(cmds.Status)
def _status(services: Services, actor: Actor, cmd: cmds.Status) -> Message:
    if cmd.model is None:
        return blocks.overview(status.overview(services.registry, services.status_query(None)))
    query = services.status_query(cmd.model)
    return blocks.model_status(status.model_status(services.registry, cmd.model, cmd.environment, query))
