"""`modelbot shell`: the verb; the console itself is `bot.cli.console`, imported only when it runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import AddCommand

if TYPE_CHECKING:
    from bot.services import Services


def cmd_shell(services: Services, args: argparse.Namespace) -> None:
    from bot.cli.console import main

    code = main(services, args)
    if code:
        raise SystemExit(code)  # after `finally` closes the database


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("shell", cmd_shell, "try the /model commands in a terminal (like Slack, no workspace needed)",
                json_flag=False)
    p.add_argument("--demo", action="store_true", help="first seed a demo registry (idempotent)")
    p.add_argument("--user", metavar="U123", help="act as this Slack user (default $MODELBOT_SHELL_USER or U0SHELL)")
    p.add_argument("--channel", metavar="C123", help="the channel commands come from (default C0SHELL)")
