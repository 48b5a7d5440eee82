"""A small path language to pick numbers out of a JSON document (no eval, no dependencies).

Grammar (documented in the README under "JSON endpoint"):

    path  := ['$' ['.']] first step*
    first := NAME | '[' index ']'
    step  := '.' NAME | '[' index ']'
    NAME  := letters, digits, '_' or '-', not starting with a digit or '-'
    index := INTEGER           list element; negative counts from the end (-1 = last)
           | '*'               every element of a list (or every value of an object)
           | "KEY" | 'KEY'     an object key that is not a NAME (dots, spaces, …)

Examples: `data.metrics[0].value`, `items[*].latency`, `$.result["p95 ms"]`, `[0].auc`.
A path without `*` selects one value; with `*` it selects a list (the source then
aggregates it: mean, min, max, sum, last or count). Why not JSONPath or JMESPath: a
dependency and a much larger language for what is, in every config we have seen, a
walk down keys and indexes — and a config error here must say exactly which step failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.domain.errors import InvalidInput

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = re.compile(r"-?\d+")
WILDCARD = "*"


@dataclass(frozen=True)
class Step:
    """One step: an object key, a list index, or the wildcard."""

    key: str | int

    def render(self, first: bool) -> str:
        if isinstance(self.key, int):
            return f"[{self.key}]"
        if self.key == WILDCARD:
            return "[*]"
        if _NAME.fullmatch(self.key):
            return self.key if first else f".{self.key}"
        return '["' + self.key.replace('"', '\\"') + '"]'


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @property
    def fans_out(self) -> bool:
        return any(step.key == WILDCARD for step in self.steps)

    def select(self, document: Any) -> list[Any]:
        """Every value the path reaches; raises InvalidInput naming the step that failed."""
        current: list[tuple[str, Any]] = [("", document)]
        for i, step in enumerate(self.steps):
            nxt: list[tuple[str, Any]] = []
            for where, value in current:
                here = where + step.render(i == 0)
                nxt.extend(_step(value, step, where or "the document", here))
            current = nxt
        return [value for _, value in current]


def parse(text: str) -> JsonPath:
    """Parse a path; InvalidInput says where the text stops making sense."""
    source = text.strip()
    if not source:
        raise InvalidInput("The JSON path is empty: write something like data.metrics[0].value.")
    pos = 0
    if source.startswith("$"):
        pos = 1
        if source[pos:pos + 1] == ".":
            pos += 1
    steps: list[Step] = []
    while pos < len(source):
        char = source[pos]
        if char == "[":
            step, pos = _bracket(source, pos)
            steps.append(step)
            continue
        if char == ".":
            if not steps:
                raise _bad(source, pos, "a path cannot start with '.'")
            pos += 1
        elif steps:
            raise _bad(source, pos, "expected '.' or '[' between steps")
        match = _NAME.match(source, pos)
        if match is None:
            if source[pos:pos + 1] == WILDCARD:
                steps.append(Step(WILDCARD))
                pos += 1
                continue
            raise _bad(source, pos, "expected a key name (letters, digits, _ or -)")
        steps.append(Step(match.group(0)))
        pos = match.end()
    if not steps:
        raise InvalidInput(f"The JSON path '{text}' selects nothing: name at least one key or index.")
    return JsonPath(source, tuple(steps))


def _bracket(source: str, pos: int) -> tuple[Step, int]:
    end = pos + 1
    if source[end:end + 1] in ('"', "'"):
        quote = source[end]
        end += 1
        chars: list[str] = []
        while end < len(source) and source[end] != quote:
            if source[end] == "\\" and end + 1 < len(source):
                end += 1
            chars.append(source[end])
            end += 1
        if end >= len(source) or source[end + 1:end + 2] != "]":
            raise _bad(source, pos, "a quoted key must end with its quote and ']'")
        return Step("".join(chars)), end + 2
    close = source.find("]", end)
    if close < 0:
        raise _bad(source, pos, "'[' is not closed with ']'")
    inner = source[end:close].strip()
    if inner == WILDCARD:
        return Step(WILDCARD), close + 1
    if _INT.fullmatch(inner):
        return Step(int(inner)), close + 1
    raise _bad(source, pos, "inside [ ] write a number, * or a quoted key")


def _bad(source: str, pos: int, why: str) -> InvalidInput:
    return InvalidInput(f"The JSON path '{source}' is malformed at character {pos + 1}: {why}.")


def _step(value: Any, step: Step, where: str, here: str) -> list[tuple[str, Any]]:
    key = step.key
    if key == WILDCARD:
        if isinstance(value, list):
            return [(f"{here[:-3]}[{i}]", item) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return [(f'{here[:-3]}["{k}"]', item) for k, item in value.items()]
        raise InvalidInput(f"{where} is {_kind(value)}, so [*] has nothing to go through.")
    if isinstance(key, int):
        if not isinstance(value, list):
            raise InvalidInput(f"{where} is {_kind(value)}, not a list, so it has no index {key}.")
        if not -len(value) <= key < len(value):
            raise InvalidInput(f"{where} has no index {key}: it holds {len(value)} item(s).")
        return [(here, value[key])]
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} is {_kind(value)}, not an object, so it has no key '{key}'.")
    if key not in value:
        known = ", ".join(sorted(map(str, value))[:12]) or "none"
        raise InvalidInput(f"{where} has no key '{key}' (keys: {known}).")
    return [(here, value[key])]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
