"""What every `modelbot` verb shares: one-line errors, exit codes, `--json` output, NAME=VALUE pairs.

Bad input prints one line on stderr and exits 2; failures of the environment (database locked
or unreachable) exit 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from bot.domain import names
from bot.domain.errors import InvalidInput

if TYPE_CHECKING:
    from bot.services import Services

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
Run = Callable[["Services", argparse.Namespace], None]


class AddCommand(Protocol):
    """`command(name, func, help)`: a new verb whose handler is `func`; `--json` unless json_flag=False."""

    def __call__(self, name: str, func: Run, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser: ...


class Parser(argparse.ArgumentParser):
    """argparse prints usage plus a message; we want one line that says what to type."""

    def error(self, message: str) -> NoReturn:
        # argparse lists every choice after an unknown one; --help lists them better
        message = re.sub(r"invalid choice: ('[^']*') \(choose from .*\)$", r"invalid choice: \1",
                         message, flags=re.S)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in values or ():
        name, sep, value = raw.partition("=")
        if not sep:
            raise InvalidInput(
                f"--{what} '{names.preview(raw)}' has no '=': write --{what} NAME=VALUE, for example --{what} auc=0.91."
            )
        names.key(name, what)
        if name in out:
            raise InvalidInput(f"--{what} {name} is given twice: give each {what} once.")
        out[name] = value
    return out


def default_actor(services: Services) -> str:
    """$MODELBOT_ACTOR, else the login name."""
    return services.settings.actor or getpass.getuser()


def emit(args: argparse.Namespace, document: Any, text: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(text())


def more(total: int, offset: int, shown: int) -> str:
    end = offset + shown
    return f"\n({offset + 1}–{end} of {total}; --offset {end} for more)" if end < total else ""


def port(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"'{names.preview(raw, 20)}' is not a TCP port (0–65535)")
    return int(raw)


def slack_groups(services: Services) -> None:
    """Resolve the policy's @user-group handles through Slack when a bot token is configured."""
    if services.settings.slack_bot_token and services.policy.group_handles():
        from bot.slack.client import make_web_client
        from bot.slack.usergroups import attach_group_resolver

        attach_group_resolver(services, make_web_client(services.settings.slack_bot_token,
                                                        services.settings.slack_api_url))


def slack_channels(services: Services) -> None:
    """Look `#channel-name` up through Slack when a bot token is configured (else ids only)."""
    if services.settings.slack_bot_token:
        from bot.slack.channels import attach_channel_resolver
        from bot.slack.client import make_web_client

        attach_channel_resolver(services, make_web_client(services.settings.slack_bot_token,
                                                          services.settings.slack_api_url))
