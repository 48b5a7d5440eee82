"""`modelbot alerts|alert|ack|silence|silences|unsilence`: alerting without Slack.

The same decisions as the alert card's buttons and `/model` commands (bot/domain/alerting:
deployers and admins act, everyone reads; each decision and each refusal is audited with
`--actor`); rules are written in the `/model alert add` words, parsed by the same grammar.
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, emit, slack_channels, slack_groups
from bot.domain.errors import InvalidInput

if TYPE_CHECKING:
    from bot.services import Services

ACTOR_HELP = "who acts: the policy's roles apply to this name, and the audit log records it"


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("alerts", cmd_alerts, "what is firing, pending and silenced now (with the alert numbers `ack` takes)")
    p.add_argument("model", nargs="?")

    p = command("alert", cmd_alert, "alert rules: add (in the /model alert add words), list, rm")
    p.add_argument("action", choices=["add", "list", "rm"])
    p.add_argument("words", nargs="*", metavar="WORD",
                   help="add: MODEL[@ENV] METRIC OP THRESHOLD [for 5m] [critical] [#channel] [canary|both] …; "
                        "list: [MODEL]; rm: RULE")
    p.add_argument("--actor", metavar="NAME", help=ACTOR_HELP + " (add and rm)")

    p = command("ack", cmd_ack, "acknowledge an alert: its card shows who is on it")
    p.add_argument("alert", type=int, help="the alert's number (from `modelbot alerts` or the card)")
    p.add_argument("--actor", required=True, metavar="NAME", help=ACTOR_HELP)

    p = command("silence", cmd_silence, "mute a model's alert notifications for a while (evaluation goes on)")
    p.add_argument("target", metavar="MODEL[@ENV]", help="ENV defaults to production")
    p.add_argument("duration", help="like 2h or 1d (at most 30d)")
    p.add_argument("--rule", type=int, help="only this rule")
    p.add_argument("--reason")
    p.add_argument("--actor", required=True, metavar="NAME", help=ACTOR_HELP)

    p = command("silences", cmd_silences, "active silences and when they end")
    p.add_argument("model", nargs="?")

    p = command("unsilence", cmd_unsilence, "end a silence now")
    p.add_argument("silence", type=int)
    p.add_argument("--actor", required=True, metavar="NAME", help=ACTOR_HELP)


def cmd_alerts(services: Services, args: argparse.Namespace) -> None:
    from bot.handlers.alerts import actions

    overview = actions(services).overview(services.clock(), args.model)
    rows = [[kind, e.get("alert") or "–", e["model"], e["environment"], e["metric"],
             f"{textfmt.number(e['value'])} {e['op']} {textfmt.number(e['threshold'])}", e["severity"], e["series"],
             (e["since"] or "")[:16].replace("T", " ")]
            for kind in ("firing", "pending", "silenced") for e in overview[kind]]
    emit(args, overview, lambda: textfmt.table(
        ["state", "alert", "model", "env", "metric", "value", "severity", "series", "since (UTC)"], rows)
        if rows else "nothing is firing")


def cmd_alert(services: Services, args: argparse.Namespace) -> None:
    from bot import commands
    from bot.handlers.alerts import add_rule, rules

    if args.action == "list":
        found = rules(services).list(args.words[0] if args.words else None)
        emit(args, {"rules": [r.to_dict() for r in found]}, lambda: textfmt.table(
            ["rule", "model", "env", "condition", "severity", "watches", "channel", "origin"],
            [[r.id, r.model, r.environment, r.describe(), r.severity, r.target, r.channel or "default", r.origin]
             for r in found]) if found else "no alert rules")
        return
    if not args.actor:
        raise InvalidInput(f"alert {args.action} needs --actor NAME: the policy's roles apply to it.")
    if args.action == "rm":
        command = commands.parse("alert rm " + shlex.join(args.words))
        removed = rules(services).remove(command.rule, actor=args.actor, now=services.clock())  # type: ignore[attr-defined]
        emit(args, removed.to_dict(), lambda: f"rule {removed.id} removed: {removed.describe()}")
        return
    command = commands.parse("alert add " + shlex.join(args.words))
    slack_groups(services)
    slack_channels(services)
    added = add_rule(services, command.rule, args.actor, "cli")  # type: ignore[attr-defined]
    emit(args, added.to_dict(), lambda: f"rule {added.id} added: {added.model}@{added.environment} {added.describe()}")


def cmd_ack(services: Services, args: argparse.Namespace) -> None:
    from bot.handlers.alerts import actions

    slack_groups(services)
    result = actions(services).acknowledge(args.alert, actor=args.actor, now=services.clock())
    emit(args, result.to_dict(), lambda: (f"alert {result.group_id} was already acknowledged by {result.by}"
                                          if result.already else f"alert {result.group_id} acknowledged"))


def cmd_silence(services: Services, args: argparse.Namespace) -> None:
    from bot.commands.alerts import model_and_env
    from bot.handlers.alerts import actions

    slack_groups(services)
    model, env = model_and_env(args.target)
    view = actions(services).silence(model, env, args.duration, actor=args.actor, now=services.clock(),
                                     rule_id=args.rule, reason=args.reason)
    emit(args, view.to_dict(), lambda: f"silence {view.id}: {view.model} {view.environment or 'every environment'} "
         f"until {view.ends_at:%Y-%m-%d %H:%M} UTC")


def cmd_silences(services: Services, args: argparse.Namespace) -> None:
    from bot.handlers.alerts import actions

    found = actions(services).silences(services.clock(), args.model)
    emit(args, {"silences": [s.to_dict() for s in found]}, lambda: textfmt.table(
        ["silence", "model", "env", "rule", "until (UTC)", "by", "reason"],
        [[s.id, s.model, s.environment or "all", s.rule_id or "all", f"{s.ends_at:%Y-%m-%d %H:%M}", s.created_by,
          s.reason or ""] for s in found]) if found else "no active silences")


def cmd_unsilence(services: Services, args: argparse.Namespace) -> None:
    from bot.handlers.alerts import actions

    slack_groups(services)
    view = actions(services).unsilence(args.silence, actor=args.actor, now=services.clock())
    emit(args, view.to_dict(), lambda: f"silence {view.id} ended; notifications resume")
