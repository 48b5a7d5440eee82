"""The new-version card's buttons: Compare, Promote to staging, Request production.

Each button is the `/model` command it stands for, handed to that command's own handler, so
a click on the card and `/model promote churn 7 production` cannot differ: same rule book
(`Deployments.request_promotion`), same answer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.blocks import mlflow as blocks
from bot.commands import Compare
from bot.commands.deploy import Promote
from bot.domain.errors import InvalidInput
from bot.handlers import deploy, registry
from bot.handlers.base import Click, ClickResult, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


def _card_value(event: Click, *keys: str) -> dict[str, Any]:
    """The button's JSON value, or one sentence when it is not what the card wrote."""
    try:
        data = json.loads(event.value)
        if not isinstance(data, dict) or not all(k in data for k in keys):
            raise ValueError
        return {k: (str(data[k]) if k in ("m", "e") else int(data[k])) for k in keys}
    except (ValueError, TypeError):
        raise InvalidInput("That button is damaged or from an older modelbot card; use `/model promote` instead.") from None


@table.on_click(blocks.COMPARE_ACTION)
def _compare(services: Services, event: Click) -> ClickResult:
    data = _card_value(event, "m", "v", "b")
    command = Compare(model=data["m"], refs=(str(data["b"]), str(data["v"])))
    return ClickResult(ephemeral=registry.table.commands[Compare](services, event.actor, command))


@table.on_click(blocks.PROMOTE_ACTION)
@table.on_click(blocks.REQUEST_ACTION)
def _promote(services: Services, event: Click) -> ClickResult:
    """`/model promote MODEL VERSION ENV`: moves at once or opens a request, as the policy says."""
    data = _card_value(event, "m", "v", "e")
    command = Promote(model=data["m"], ref=str(data["v"]), environment=data["e"])
    return ClickResult(ephemeral=deploy.table.commands[Promote](services, event.actor, command))
