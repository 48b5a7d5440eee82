"""Digest subscriptions: command handlers.

Each handler resolves where the digest goes (a `#name` through Slack, before the domain is
called), calls `bot.domain.subscriptions` and renders the result; who may subscribe, change
and remove is decided there. The target defaults to the channel the command was typed in —
typed in a DM, to the typist's own DM. The scheduler picks changes up through the domain's
change listeners (at once in the leader process, within its periodic sync elsewhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import subscriptions as blocks
from bot.blocks.base import Message
from bot.commands import subscriptions as cmds
from bot.domain import channels
from bot.domain.errors import InvalidInput
from bot.domain.schedule import DEFAULT_TIME, Schedule
from bot.domain.subscriptions import Subscriptions
from bot.handlers.base import Actor, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


def target(services: Services, raw: str | None, actor: Actor) -> str:
    """A channel id or the actor's user id (their DM), from what was typed or where."""
    if raw == cmds.DM or (raw is None and (actor.channel_id or "").startswith("D")):
        return actor.user_id
    channel = raw or actor.channel_id
    if not channel:
        raise InvalidInput("Name the channel for the digest, for example `subscribe churn #ml-team daily` (or `dm` "
                           "for your own DM).")
    return channels.resolve(channel, services.channels)


def subscriptions(services: Services) -> Subscriptions:
    return Subscriptions(services.registry, services.policy, services.groups)


@table.handles(cmds.Subscribe)
def _subscribe(services: Services, actor: Actor, cmd: cmds.Subscribe) -> Message:
    schedule = Schedule(cmd.frequency, cmd.at_time or DEFAULT_TIME, cmd.weekday or 0, cmd.timezone or "UTC")
    outcome = subscriptions(services).subscribe(
        model=cmd.model, channel=target(services, cmd.channel, actor), schedule=schedule, actor=actor.user_id)
    return blocks.subscribed(outcome.subscription, outcome.created, services.clock())


@table.handles(cmds.Unsubscribe)
def _unsubscribe(services: Services, actor: Actor, cmd: cmds.Unsubscribe) -> Message:
    removed = subscriptions(services).unsubscribe(
        model=cmd.model, channel=target(services, cmd.channel, actor), frequency=cmd.frequency, actor=actor.user_id)
    return blocks.unsubscribed(removed)


@table.handles(cmds.ListSubscriptions)
def _subscriptions(services: Services, actor: Actor, cmd: cmds.ListSubscriptions) -> Message:
    channel = None if cmd.everywhere else target(services, cmd.channel, actor)
    views = subscriptions(services).list_all(channel)
    return blocks.subscription_list(views, services.clock(), channel=channel)
