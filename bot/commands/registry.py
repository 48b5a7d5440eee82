"""The `/model` grammar of the registry: help, list, show, compare, history."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.grammar import Command, CommandSpec, UsageError, command, env_token, expect
from bot.domain.refs import parse_ref

# In declaration order: the order of `/model help`.
SPECS: list[CommandSpec] = []

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


@command(SPECS, "help", "help [COMMAND]", "what each command does", aliases=("?",))
def _parse_help(args: list[str]) -> Command:
    expect(args, 0, 1, "command name")
    return Help(args[0] if args else None)


@command(
    SPECS,
    "list", "list [MODEL]", "models and what each environment serves, or a model's versions",
    details="Without MODEL: every model with its latest version and what staging and production serve. "
    "With MODEL: its versions, newest first.",
    aliases=("ls",),
)
def _parse_list(args: list[str]) -> Command:
    expect(args, 0, 1, "model name")
    return ListModels(args[0] if args else None)


@command(
    SPECS,
    "show", "show MODEL [REF]", "one version: metrics, params, tags, lineage",
    details="REF is 7, v7, latest (the default) or @production (what that environment serves now).",
)
def _parse_show(args: list[str]) -> Command:
    expect(args, 1, 2, "the model name, for example `show churn 7`")
    ref = args[1] if len(args) > 1 else "latest"
    parse_ref(ref)
    return Show(args[0], ref)


@command(
    SPECS,
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


@command(SPECS, "history", "history MODEL [ENV]", "promotions and rollbacks, newest last", aliases=("log",))
def _parse_history(args: list[str]) -> Command:
    expect(args, 1, 2, "the model name, for example `history churn production`")
    return History(args[0], env_token(args[1]) if len(args) > 1 else None)
