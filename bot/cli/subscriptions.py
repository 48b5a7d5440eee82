"""`modelbot subscribe|unsubscribe|subscriptions`: digest subscriptions without Slack.

The words after the verb are those of `/model subscribe …` (the same grammar), and the
decisions are the domain's: deployers and admins subscribe channels, anyone their own DM
(a Slack user id as `--actor` with the target `dm`), only the subscriber or an admin changes
or removes a digest. A `#channel-name` is looked up in Slack when SLACK_BOT_TOKEN is set;
otherwise give the channel's id.
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, emit, slack_channels, slack_groups

if TYPE_CHECKING:
    from bot.domain.subscriptions import SubscriptionView
    from bot.services import Services

ACTOR_HELP = "who acts: the policy's roles apply to this name, and the audit log records it"


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("subscribe", cmd_subscribe, "a digest of a model (or *) to a channel or your DM, on a schedule")
    p.add_argument("words", nargs="+", metavar="WORD",
                   help="MODEL|* CHANNEL|dm daily|weekly|hourly [DAY] [HH:MM] [TZ], as /model subscribe "
                        "(quote '#channel' in a shell)")
    p.add_argument("--actor", required=True, metavar="NAME", help=ACTOR_HELP)

    p = command("unsubscribe", cmd_unsubscribe, "stop a digest")
    p.add_argument("words", nargs="+", metavar="WORD", help="MODEL|* CHANNEL|dm [daily|weekly|hourly]")
    p.add_argument("--actor", required=True, metavar="NAME", help=ACTOR_HELP)

    p = command("subscriptions", cmd_subscriptions, "digests and when each runs next (all, or one channel's)")
    p.add_argument("channel", nargs="?", help="a channel id or #name; default: every channel")


def _target(services: Services, raw: str | None, actor: str) -> str:
    from bot.domain.errors import InvalidInput
    from bot.handlers.base import Actor
    from bot.handlers.subscriptions import target

    if raw is None:
        raise InvalidInput("Name the channel for the digest (its id, or #name with SLACK_BOT_TOKEN set), or `dm`.")
    slack_channels(services)
    return target(services, raw, Actor(actor))


def cmd_subscribe(services: Services, args: argparse.Namespace) -> None:
    from bot import commands
    from bot.domain.schedule import DEFAULT_TIME, Schedule
    from bot.handlers.subscriptions import subscriptions

    command = commands.parse("subscribe " + shlex.join(args.words))
    schedule = Schedule(command.frequency, command.at_time or DEFAULT_TIME,  # type: ignore[attr-defined]
                        command.weekday or 0, command.timezone or "UTC")  # type: ignore[attr-defined]
    slack_groups(services)
    outcome = subscriptions(services).subscribe(
        model=command.model, channel=_target(services, command.channel, args.actor),  # type: ignore[attr-defined]
        schedule=schedule, actor=args.actor)
    view = outcome.subscription
    now = services.clock()
    emit(args, {**view.to_dict(now), "created": outcome.created},
         lambda: f"{'subscribed' if outcome.created else 'changed'}: {_line(view, now)}")


def cmd_unsubscribe(services: Services, args: argparse.Namespace) -> None:
    from bot import commands
    from bot.handlers.subscriptions import subscriptions

    command = commands.parse("unsubscribe " + shlex.join(args.words))
    slack_groups(services)
    removed = subscriptions(services).unsubscribe(
        model=command.model, channel=_target(services, command.channel, args.actor),  # type: ignore[attr-defined]
        frequency=command.frequency, actor=args.actor)  # type: ignore[attr-defined]
    now = services.clock()
    emit(args, {"removed": [v.to_dict(now) for v in removed]},
         lambda: "stopped: " + "; ".join(_line(v, now) for v in removed))


def cmd_subscriptions(services: Services, args: argparse.Namespace) -> None:
    from bot.domain import channels
    from bot.handlers.subscriptions import subscriptions

    channel = None
    if args.channel:
        slack_channels(services)
        channel = channels.resolve(args.channel, services.channels)
    now = services.clock()
    views = subscriptions(services).list_all(channel)
    emit(args, {"subscriptions": [v.to_dict(now) for v in views]}, lambda: textfmt.table(
        ["id", "model", "to", "schedule", "next run", "by"],
        [[v.id, v.model, v.channel, v.schedule.describe(), _next(v, now), v.created_by] for v in views])
        if views else "no digests yet")


def _next(view: SubscriptionView, now: Any) -> str:
    from bot.blocks.subscriptions import next_run_text

    return next_run_text(view, now)


def _line(view: SubscriptionView, now: Any) -> str:
    return f"{view.schedule.frequency} digest of {view.model} to {view.channel}, {view.schedule.describe()}; " \
           f"next {_next(view, now)}"
