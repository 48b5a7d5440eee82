"""`modelbot shell`: the verb; the console itself is `bot.cli.console`, imported only when it runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import AddCommand

if TYPE_CHECKING:
    from bot.services import Services


def cmd_shell(services: Services, args: argparse.Namespace) -> None:
    from bot.cli.console import main

    if args.demo:  # the demo brings its own policy (approvers, gates, alert rules) instead of modelbot.toml
        from bot.cli.demo import demo_policy
        from bot.services import open_services

        services = open_services(services.settings, policy=demo_policy(), upgrade=False)
    try:
        code = main(services, args)
    finally:
        if args.demo:
            services.close()
    if code:
        raise SystemExit(code)  # after `finally` closes the database


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("shell", cmd_shell, "try the /model commands in a terminal (like Slack, no workspace needed)",
                json_flag=False)
    p.add_argument("--demo", action="store_true",
                   help="seed a demo registry (idempotent) and use the demo's policy: approvers, a gate, alert rules")
    p.add_argument("--user", metavar="U123", help="act as this Slack user, or a demo person's name "
                   "(default $MODELBOT_SHELL_USER or U0SHELL); `/as NAME` changes it in the shell")
    p.add_argument("--channel", metavar="C123", help="the channel commands come from (default C0SHELL)")
    p.add_argument("--preview", action=argparse.BooleanOptionalAction, default=None,
                   help="show what the bot sends (cards, announcements, alerts, charts) by running the outbox "
                   "delivery and the alert jobs here, printing instead of calling Slack (default: on with --demo). "
                   "Only on a database no real modelbot delivers from: what the shell shows counts as delivered.")
