"""The `/model` grammar: text → a typed command. One parser for Slack, the shell and tests.

The feature tables are assembled here, explicitly and in the order of `/model help`:
registry, promotions, monitoring, the digest on demand, digest subscriptions, alerts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.commands import alerts, deploy, digest, monitoring, registry, subscriptions
from bot.commands.grammar import Command, CommandSpec, UsageError, tokenize
from bot.commands.registry import Compare, Help, History, ListModels, Show
from bot.domain.errors import InvalidInput
from bot.domain.names import did_you_mean, preview

__all__ = ["SPECS", "Command", "CommandSpec", "Compare", "Help", "History", "ListModels", "Show", "UsageError",
           "describe", "help_lines", "parse", "spec_for", "usage_of"]

SPECS: dict[str, CommandSpec] = {
    spec.name: spec
    for table in (registry.SPECS, deploy.SPECS, monitoring.SPECS, digest.SPECS, subscriptions.SPECS, alerts.SPECS)
    for spec in table
}
_ALIASES: dict[str, str] = {alias: spec.name for spec in SPECS.values() for alias in spec.aliases}


def usage_of(name: str) -> str:
    return f"/model {SPECS[name].usage}"


def _command_name(word: str) -> str | None:
    name = _ALIASES.get(word.lower(), word.lower())
    return name if name in SPECS else None


def _unknown(word: str) -> str:
    hint = did_you_mean(word, [*SPECS, *_ALIASES])
    return f"There is no command '{preview(word, 30)}'.{hint} Commands: {', '.join(sorted(SPECS))}."


def parse(text: str) -> Command:
    """Parse `/model` text (without the `/model` itself). Empty text means help."""
    tokens = tokenize(text.strip())
    share = False
    if tokens and tokens[-1].lower() == "share":
        share, tokens = True, tokens[:-1]
    if not tokens:
        return Help(None, share=share)
    name = _command_name(tokens[0])
    if name is None:
        raise UsageError(_unknown(tokens[0]), usage="/model help")
    spec = SPECS[name]
    try:
        parsed = spec.parse(tokens[1:])
    except UsageError as exc:
        raise UsageError(exc.message, exc.usage or usage_of(name)) from None
    except InvalidInput as exc:
        raise UsageError(exc.message, usage_of(name)) from None
    if isinstance(parsed, Help) and parsed.topic is not None:
        topic = _command_name(parsed.topic)
        if topic is None:
            raise UsageError(_unknown(parsed.topic), usage_of("help"))
        parsed = Help(topic)
    return replace(parsed, share=share)


def help_lines() -> list[tuple[str, str]]:
    """(usage, summary) for every command, in declaration order."""
    return [(f"/model {spec.usage}", spec.summary) for spec in SPECS.values()]


def spec_for(name: str) -> CommandSpec:
    return SPECS[name]


def describe(cmd: Command) -> dict[str, Any]:
    """For logs and metrics: the command name, never the user's free text."""
    return {"command": cmd.name}
