"""The `/model` grammar for monitoring status.

    status [MODEL] [ENV]

Without MODEL: one compact line per model. With MODEL: every environment in detail, or
just ENV. The window is the last 24 hours (the terminal's `modelbot status --window`
changes it; in Slack the question is nearly always "how is it doing today?").
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.grammar import Command, CommandSpec, command, env_token, expect

# In declaration order: the order of `/model help`.
SPECS: list[CommandSpec] = []


@dataclass(frozen=True)
class Status(Command):
    model: str | None = None
    environment: str | None = None

    @property
    def name(self) -> str:
        return "status"


@command(
    SPECS,
    "status", "status [MODEL] [ENV]", "how models are doing: quality, latency, drift, availability",
    details="Without MODEL: a line per model with badges. With MODEL: per environment the latest of each "
    "metric with ▲/▼ against the previous 24 hours and the previous version, drift, availability, "
    "what is firing and which sources have gone quiet.",
    aliases=("st",),
)
def _parse_status(args: list[str]) -> Command:
    expect(args, 0, 2, "model name")
    if not args:
        return Status()
    return Status(args[0], env_token(args[1]) if len(args) > 1 else None)
