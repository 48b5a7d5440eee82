"""The building blocks of the `/model` grammar: commands, their specs, tokenising, argument checks.

Each command is declared once as a `CommandSpec` (name, usage, summary, parser) in its
feature's table; `help` and every usage hint are generated from these specs, so they cannot
drift from what is accepted.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.domain.errors import InvalidInput
from bot.domain.names import preview

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


def command(table: list[CommandSpec], name: str, usage: str, summary: str, details: str = "",
            aliases: tuple[str, ...] = ()) -> Callable[[Callable[[list[str]], Command]], Callable[[list[str]], Command]]:
    """Declare a subcommand in a feature's table; the decorated function turns its argument
    tokens into a Command. `bot.commands` assembles the tables, in help order, explicitly."""

    def decorate(parse: Callable[[list[str]], Command]) -> Callable[[list[str]], Command]:
        table.append(CommandSpec(name, usage, summary, parse, details, aliases))
        return parse

    return decorate


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
