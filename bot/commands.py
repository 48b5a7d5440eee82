"""The `/model` grammar: text → a typed command. One parser for Slack, the shell and tests.

Each command is declared once as a `CommandSpec` (name, usage, summary, parser); `help` and
every usage hint are generated from these specs, so they cannot drift from what is accepted.
Later features add their commands with `@command(...)` in their own modules.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.errors import InvalidInput
from bot.domain.names import preview
from bot.domain.refs import parse_ref

MAX_INPUT = 4000
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})
_ENV_TOKEN = re.compile(r"@?[A-Za-z][A-Za-z0-9_-]{0,31}")


class UsageError(InvalidInput):
    """Bad command text; carries the usage line of the command it was meant to be."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Command:
    """Base of all parsed commands. `share` posts the answer in the channel for everyone."""

    share: bool = field(default=False, kw_only=True)
    offset: int = field(default=0, kw_only=True)

    @property
    def name(self) -> str:
        raise NotImplementedError

    def with_offset(self, offset: int) -> Command:
        return replace(self, offset=offset)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    parse: Callable[[list[str]], Command]
    details: str = ""
    aliases: tuple[str, ...] = ()


SPECS: dict[str, CommandSpec] = {}
_ALIASES: dict[str, str] = {}


def command(name: str, usage: str, summary: str, details: str = "", aliases: tuple[str, ...] = ()) -> Callable[
    [Callable[[list[str]], Command]], Callable[[list[str]], Command]
]:
    """Declare a subcommand; the decorated function turns its argument tokens into a Command."""

    def decorate(parse: Callable[[list[str]], Command]) -> Callable[[list[str]], Command]:
        SPECS[name] = CommandSpec(name, usage, summary, parse, details, aliases)
        for alias in aliases:
            _ALIASES[alias] = name
        return parse

    return decorate


def usage_of(name: str) -> str:
    return f"/model {SPECS[name].usage}"


# ---- tokenising -----------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Shell-like words; phones' typographic quotes count as quotes."""
    if len(text) > MAX_INPUT:
        raise UsageError(f"That command is {len(text):,} characters long; commands are at most {MAX_INPUT:,}.")
    try:
        lexer = shlex.shlex(text.translate(_QUOTES), posix=True, punctuation_chars=False)
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:
        raise UsageError("A quote is not closed: put the text between a pair of quotes, like \"needs retraining\".") from None


def parse(text: str) -> Command:
    """Parse `/model` text (without the `/model` itself). Empty text means help."""
    tokens = tokenize(text.strip())
    share = False
    if tokens and tokens[-1].lower() == "share":
        share, tokens = True, tokens[:-1]
    if not tokens:
        return Help(None, share=share)
    head = tokens[0].lower()
    name = _ALIASES.get(head, head)
    spec = SPECS.get(name)
    if spec is None:
        raise UsageError(
            f"There is no command '{preview(tokens[0], 30)}'. Commands: {', '.join(sorted(SPECS))}.",
            usage="/model help",
        )
    try:
        parsed = spec.parse(tokens[1:])
    except UsageError as exc:
        raise UsageError(exc.message, exc.usage or usage_of(name)) from None
    except InvalidInput as exc:
        raise UsageError(exc.message, usage_of(name)) from None
    return replace(parsed, share=share)


# ---- argument helpers -----------------------------------------------------------------------


def expect(args: list[str], minimum: int, maximum: int | None, what: str) -> None:
    if len(args) < minimum:
        raise UsageError(f"Missing {what}.")
    if maximum is not None and len(args) > maximum:
        extra = " ".join(preview(a, 20) for a in args[maximum:])
        raise UsageError(f"Too many arguments: '{preview(extra, 40)}' was not expected.")


def env_token(token: str) -> str:
    if not _ENV_TOKEN.fullmatch(token):
        raise UsageError(f"'{preview(token)}' is not an environment name.")
    return token.lstrip("@").lower()


# ---- core commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class Help(Command):
    topic: str | None = None

    @property
    def name(self) -> str:
        return "help"


@dataclass(frozen=True)
class ListModels(Command):
    model: str | None = None

    @property
    def name(self) -> str:
        return "list"


@dataclass(frozen=True)
class Show(Command):
    model: str
    ref: str = "latest"

    @property
    def name(self) -> str:
        return "show"


@dataclass(frozen=True)
class Compare(Command):
    model: str
    refs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "compare"


@dataclass(frozen=True)
class History(Command):
    model: str
    environment: str | None = None

    @property
    def name(self) -> str:
        return "history"


@command("help", "help [COMMAND]", "what each command does", aliases=("?",))
def _parse_help(args: list[str]) -> Command:
    expect(args, 0, 1, "command name")
    if args:
        topic = _ALIASES.get(args[0].lower(), args[0].lower())
        if topic not in SPECS:
            raise UsageError(f"There is no command '{preview(args[0], 30)}'. Commands: {', '.join(sorted(SPECS))}.")
        return Help(topic)
    return Help(None)


@command(
    "list", "list [MODEL]", "models and what each environment serves, or a model's versions",
    details="Without MODEL: every model with its latest version and what staging and production serve. "
    "With MODEL: its versions, newest first.",
    aliases=("ls",),
)
def _parse_list(args: list[str]) -> Command:
    expect(args, 0, 1, "model name")
    return ListModels(args[0] if args else None)


@command(
    "show", "show MODEL [REF]", "one version: metrics, params, tags, lineage",
    details="REF is 7, v7, latest (the default) or @production (what that environment serves now).",
)
def _parse_show(args: list[str]) -> Command:
    expect(args, 1, 2, "the model name, for example `show churn 7`")
    ref = args[1] if len(args) > 1 else "latest"
    parse_ref(ref)
    return Show(args[0], ref)


@command(
    "compare", "compare MODEL [REF REF …]", "metrics side by side with deltas, and what params and tags differ",
    details="The first version is the baseline. Without versions: what production serves against latest. "
    "▲ better, ▼ worse, by each metric's direction (lower is better for loss, error, latency, …).",
    aliases=("diff",),
)
def _parse_compare(args: list[str]) -> Command:
    expect(args, 1, 11, "the model name, for example `compare churn 2 3`")
    refs = tuple(args[1:])
    if len(refs) == 1:
        raise UsageError("Give at least two versions to compare, or none for production against latest.")
    for ref in refs:
        parse_ref(ref)
    return Compare(args[0], refs)


@command("history", "history MODEL [ENV]", "promotions and rollbacks, newest last", aliases=("log",))
def _parse_history(args: list[str]) -> Command:
    expect(args, 1, 2, "the model name, for example `history churn production`")
    return History(args[0], env_token(args[1]) if len(args) > 1 else None)


def help_lines() -> list[tuple[str, str]]:
    """(usage, summary) for every command, in declaration order."""
    return [(f"/model {spec.usage}", spec.summary) for spec in SPECS.values()]


def spec_for(name: str) -> CommandSpec:
    return SPECS[name]


def describe(cmd: Command) -> dict[str, Any]:
    """For logs and metrics: the command name, never the user's free text."""
    return {"command": cmd.name}


# Feature modules register their commands on import (after everything above exists).
# The order is the order of `/model help`: registry, promotions, monitoring, digests, alerts.
from bot import commands_deploy as _commands_deploy  # noqa: E402,F401,I001
from bot import commands_monitoring as _commands_monitoring  # noqa: E402,F401
from bot import commands_subscriptions as _commands_subscriptions  # noqa: E402,F401
from bot import commands_alerts as _commands_alerts  # noqa: E402,F401
