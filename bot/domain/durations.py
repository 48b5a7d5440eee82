"""The one duration grammar: in modelbot.toml, in `/model` commands, in CLI flags and the REST API.

A duration is one or more number–unit pairs, summed: `30s`, `5m`, `1.5h`, `7d`, `2w`,
`1h30m`, `1h 30m`, `5 min`, `2 hours`. Units: s, m, h, d, w, or their words (sec, min,
hour, day, week, singular or plural), any case. Bounds are the caller's business (a silence
lasts at most 30 days, an alert `for` at most 90): this module only reads what was written.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.domain import names
from bot.domain.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WORDS = {
    "s": ("seconds", "second", "secs", "sec", "s"),
    "m": ("minutes", "minute", "mins", "min", "m"),
    "h": ("hours", "hour", "hrs", "hr", "h"),
    "d": ("days", "day", "d"),
    "w": ("weeks", "week", "wk", "w"),
}
_UNIT_OF = {word: unit for unit, words in _WORDS.items() for word in words}
_UNIT = "|".join(sorted(_UNIT_OF, key=len, reverse=True))
_PAIR = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT})(?![a-z])", re.IGNORECASE)
_WHOLE = re.compile(rf"^\s*(?:\d+(?:\.\d+)?\s*(?:{_UNIT})(?![a-z])\s*)+$", re.IGNORECASE)
MAX_TEXT = 64


def parse_duration(text: object, what: str = "duration") -> timedelta:
    """`1h30m` → 1:30:00. Refuses anything else with one sentence naming `what` it should have been."""
    raw = str(text)
    if len(raw) > MAX_TEXT or not _WHOLE.match(raw):
        raise InvalidInput(f"'{names.preview(raw)}' is not a {what}: write a number and a unit, like 30m, 24h, "
                           "7d or 1h30m.")
    seconds = sum(float(number) * _UNITS[_UNIT_OF[unit.lower()]] for number, unit in _PAIR.findall(raw))
    return timedelta(seconds=seconds)


def whole_seconds(text: object, what: str = "duration", *, at_most: timedelta | None = None) -> int:
    """`parse_duration` as whole seconds, refusing more than `at_most`."""
    value = parse_duration(text, what)
    if at_most is not None and value > at_most:
        limit = f"{at_most.days} days" if at_most >= timedelta(days=2) else human(at_most)
        raise InvalidInput(f"A {what} of more than {limit} is not useful here.")
    return int(value.total_seconds())


def human(value: timedelta | int) -> str:
    """The shortest way to write a duration in the grammar above: 90m → 1h30m, 604800 s → 1w."""
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
