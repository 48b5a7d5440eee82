"""App Home: build a person's Home view, answer clicks made on it, refresh it after changes.

**Clicks on the Home tab.** Slack sends them like clicks on a message, but with the view as
container: there is no message to replace, no channel and no response_url, so no ephemeral
reply is possible. `home_click` runs the very handler a click on the card runs
(`handlers.click`: same action id, same value, so the same votes, audit rows and outbox card
updates), then returns the Home to publish for the clicker, rebuilt from current state with
the handler's note (the private reply a card click would get) at the top. The note is shown
rather than sent as a DM: the person is looking at the Home, and a DM per click would be
noise. It is transient (the next publish drops it), but what it reports is durable in the
view itself: the request leaves "waiting for your approval", or shows "you approved; waiting
for N more", and the model's serving line changes.

**Refreshes.** Other people's Homes change when a request opens or is decided; the domain
writes a `home` outbox row (`bot.domain.notices`), and the delivery worker asks
`HomeRefresher` who should see a new Home and what it shows, at send time, so a late or
retried refresh still shows the present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot import handlers
from bot.blocks import home as blocks
from bot.blocks.base import Message
from bot.domain import deliveries, home
from bot.domain.errors import InvalidInput
from bot.domain.monitoring import status

if TYPE_CHECKING:
    from bot.services import Services

MAX_OFFSET = 10_000_000


@dataclass(frozen=True)
class HomeUpdate:
    """What a click on the Home changes: the Home to publish for the clicker (None: leave it as
    it is, e.g. while a modal asks "why?"), and a modal to open (with its fallback note)."""

    view: dict[str, Any] | None
    modal: dict[str, Any] | None = None
    fallback: Message | None = None


def home_view(services: Services, user_id: str, *, offset: int = 0, notice: Message | None = None) -> dict[str, Any]:
    """One page of `user_id`'s Home, from current state."""
    now = services.clock()
    query = status.StatusQuery(now=now, directions=dict(services.policy.metric_directions))  # type: ignore[arg-type]
    # all of them (pending_for looks at the newest 200 anyway): the Home lists 10 and counts the rest
    pending = services.deployments.pending_for(user_id, limit=200) if offset == 0 else []
    models = home.models_for(services.registry, user_id, query, offset=offset, limit=blocks.MODELS_PER_PAGE)
    admin = services.policy.is_admin(user_id, services.deployments.groups)
    paused = deliveries.paused_destinations(services.db) if admin else ()
    return blocks.home(blocks.HomeData(user=user_id, pending=pending, models=models, now=now, notice=notice,
                                       paused=paused))


def home_click(services: Services, event: handlers.Click) -> HomeUpdate:
    """A click on the Home tab: paging, or any modelbot button run exactly as on a message."""
    user = event.actor.user_id
    if event.action_id in blocks.PAGE_ACTIONS:
        return HomeUpdate(view=home_view(services, user, offset=_offset(event.value)))
    result = handlers.click(services, event)
    note = result.ephemeral or result.replace
    if result.modal is not None and note is None:
        return HomeUpdate(view=None, modal=result.modal, fallback=result.fallback)
    return HomeUpdate(view=home_view(services, user, notice=note), modal=result.modal, fallback=result.fallback)


def _offset(value: str) -> int:
    try:
        offset = int(json.loads(value)["o"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("That page button is damaged; open the Home tab again.") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput("That page button is damaged; open the Home tab again.")
    return offset


class HomeRefresher:
    """What the delivery worker needs to turn a `home` outbox row into `views.publish` calls
    (`bot.delivery.home.HomeRenderer`)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def audience(self, data: Mapping[str, Any]) -> list[str]:
        """The approvers of the row's environment (user groups resolved) and the admins; only the
        admins for rows about paused deliveries (`{"admins": true}`)."""
        services = self.services
        if data.get("admins"):
            return home.admin_audience(services.policy, services.deployments.groups)
        return home.approval_audience(services.registry, services.policy, str(data.get("environment") or ""),
                                      services.deployments.groups)

    def view(self, user_id: str) -> dict[str, Any]:
        return home_view(self.services, user_id)
