"""The `/model` grammar for the digest on demand.

    digest [MODEL] [ENV]

The message a subscription would post, built now over the last 24 hours: for one model (or
every model), optionally one environment. In Slack it is an answer only you see; the shell
also writes its chart to a PNG file.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.grammar import Command, CommandSpec, command, env_token, expect

# In declaration order: the order of `/model help`.
SPECS: list[CommandSpec] = []


@dataclass(frozen=True)
class DigestNow(Command):
    model: str | None = None
    environment: str | None = None

    @property
    def name(self) -> str:
        return "digest"


@command(
    SPECS,
    "digest", "digest [MODEL] [ENV]", "the digest now, over the last 24 hours (what a subscription would post)",
    details="The numbers a daily digest would show if it were sent now: per environment the window's averages "
    "with ▲/▼ against the 24 hours before, availability, drift, version changes and what fires. Without MODEL: "
    "every model. Only you see it (end with `share` to post it); the shell also writes its chart to "
    "./modelbot-charts/.",
)
def _parse_digest(args: list[str]) -> Command:
    expect(args, 0, 2, "model name")
    if not args:
        return DigestNow()
    return DigestNow(args[0], env_token(args[1]) if len(args) > 1 else None)
