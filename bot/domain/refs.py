"""Version references, the same everywhere: `7`, `v7`, `latest`, `@production`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.errors import InvalidInput
from bot.domain.names import preview

_NUMBER = re.compile(r"[vV]?([0-9]{1,9})")


@dataclass(frozen=True)
class VersionRef:
    """Exactly one of `number`, `latest` or `environment` is set."""

    number: int | None = None
    latest: bool = False
    environment: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"v{self.number}"
        if self.latest:
            return "latest"
        return f"@{self.environment}"


def parse_ref(text: str) -> VersionRef:
    raw = text.strip()
    match = _NUMBER.fullmatch(raw)
    if match:
        number = int(match.group(1))
        if number < 1:
            raise InvalidInput("Version numbers start at 1: write for example 3 or v3.")
        return VersionRef(number=number)
    if raw.lower() == "latest":
        return VersionRef(latest=True)
    if raw.startswith("@") and len(raw) > 1:
        return VersionRef(environment=raw[1:].lower())
    raise InvalidInput(
        f"'{preview(raw)}' is not a version: write a number (7 or v7), latest, or @ENVIRONMENT (@production)."
    )
