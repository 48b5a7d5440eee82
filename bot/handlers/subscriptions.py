"""Digest subscriptions: command handlers.

Each handler calls `bot.domain.subscriptions` and renders the result. The channel defaults to
the one the command was typed in; the scheduler picks changes up through the domain's change
listeners (at once in the leader process, within its periodic sync elsewhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import subscriptions as blocks
from bot.blocks.base import Message
from bot.commands import subscriptions as cmds
from bot.domain.errors import InvalidInput
from bot.domain.schedule import DEFAULT_TIME, Schedule
from bot.domain.subscriptions import Subscriptions
from bot.handlers.base import Actor, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


def _channel(cmd_channel: str | None, actor: Actor) -> str:
    channel = cmd_channel or actor.channel_id
    if not channel:
        raise InvalidInput("Name the channel for the digest, for example `subscribe churn #ml-team daily`.")
    return channel


@table.handles(cmds.Subscribe)
def _subscribe(services: Services, actor: Actor, cmd: cmds.Subscribe) -> Message:
    schedule = Schedule(cmd.frequency, cmd.at_time or DEFAULT_TIME, cmd.weekday or 0, cmd.timezone or "UTC")
    outcome = Subscriptions(services.registry).subscribe(
        model=cmd.model, channel=_channel(cmd.channel, actor), schedule=schedule, actor=actor.user_id)
    return blocks.subscribed(outcome.subscription, outcome.created, services.clock())


@table.handles(cmds.Unsubscribe)
def _unsubscribe(services: Services, actor: Actor, cmd: cmds.Unsubscribe) -> Message:
    removed = Subscriptions(services.registry).unsubscribe(
        model=cmd.model, channel=_channel(cmd.channel, actor), frequency=cmd.frequency)
    return blocks.unsubscribed(removed)


@table.handles(cmds.ListSubscriptions)
def _subscriptions(services: Services, actor: Actor, cmd: cmds.ListSubscriptions) -> Message:
    channel = None if cmd.everywhere else _channel(cmd.channel, actor)
    views = Subscriptions(services.registry).list_all(channel)
    return blocks.subscription_list(views, services.clock(), channel=channel)
