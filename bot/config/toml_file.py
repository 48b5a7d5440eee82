"""modelbot.toml as a file people edit by hand: where a key is written (for file:line errors),
and the duration syntax every section shares (`30m`, `24h`, `7d`)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from bot.config.settings import ConfigError
from bot.domain import names
from bot.domain.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise InvalidInput(f"'{names.preview(str(text))}' is not a duration: write a number and a unit, like 30m, 24h or 7d.")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class PolicyFile:
    """Errors that point at the line where a key is written."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str, section: str | None = None) -> int | None:
        start = 0
        if section:
            header = re.compile(r"^\s*\[+\s*" + re.escape(section) + r"\s*\]+\s*(#.*)?$")
            for i, line in enumerate(self.lines):
                if header.match(line):
                    start = i
                    break
        pattern = re.compile(r"^\s*(" + re.escape(key) + r"\s*=|\[+\s*" + re.escape(key) + r"\s*[.\]])")
        for i in range(start, len(self.lines)):
            if pattern.match(self.lines[i]):
                return i + 1
        return start + 1 if section else None

    def error(self, message: str, key: str | None = None, section: str | None = None) -> ConfigError:
        line = self.line_of(key, section) if key else (self.line_of("", section) if section else None)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {message}")
