"""modelbot.toml as a file people edit by hand: the one key → line locator behind every
file:line error, whichever section the key is in.

A key is named by its path in the parsed document, the way the parsers walk it:
`("roles", "admins")`, `("environments", "production", "approvals")`, `("alerts", "rules", 2,
"op")` (the third `[[alerts.rules]]`), `("sources", 0, "queries", "auc")` (a key of the first
`[[sources]]`'s `[sources.queries]` sub-table). The file is scanned once: table headers
(`[a.b]`, `[[a.b]]`, with arrays of tables counted as TOML counts them), `key = …` lines
(bare, quoted and dotted keys), and multi-line strings skipped. A path that is not written
(a missing key, a value inside an inline table) points at the nearest written part of it: the
key's table header, or the line of the inline table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bot.config.settings import ConfigError

Key = str | int
KeyPath = tuple[Key, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*(\]\]?)\s*(#.*)?$")
_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")
_PART = re.compile(_BARE_OR_QUOTED)
_TRIPLE = re.compile(r'"""|\'\'\'')


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(dotted))


class PolicyFile:
    """Where each key of a modelbot.toml is written, for errors that name the line to fix."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self._index: dict[KeyPath, int] = {}
        self._scan()

    def _scan(self) -> None:
        table: KeyPath = ()
        arrays: dict[tuple[str, ...], int] = {}  # array-of-tables path (names only) → its last index
        in_string: str | None = None
        for number, line in enumerate(self.lines, 1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                names = _parts(header.group(2))
                if header.group(1) == "[[":
                    arrays[names] = arrays.get(names, -1) + 1
                table = self._resolve(names, arrays)
                for end in range(1, len(table) + 1):  # `webhooks` is where the first [[webhooks]] starts
                    self._index.setdefault(table[:end], number)
                continue
            key = _KEY.match(line)
            if key:
                self._index.setdefault(table + _parts(key.group(1)), number)
                opened = _TRIPLE.findall(line[key.end():])
                if len(opened) % 2 == 1:
                    in_string = opened[-1]

    @staticmethod
    def _resolve(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> KeyPath:
        """`[sources.queries]` after the third `[[sources]]` is (sources, 2, queries)."""
        path: list[Key] = []
        for i, name in enumerate(names):
            path.append(name)
            if names[: i + 1] in arrays:
                path.append(arrays[names[: i + 1]])
        return tuple(path)

    def line_at(self, path: Sequence[Key]) -> int | None:
        """The line of `path`, or of its nearest written ancestor; None when nothing of it is written."""
        key = tuple(path)
        while key:
            if key in self._index:
                return self._index[key]
            key = key[:-1]
        return None

    def error_at(self, message: str, path: Sequence[Key]) -> ConfigError:
        line = self.line_at(path)
        return ConfigError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")

    # the policy file's own sections name a key and its dotted section
    def line_of(self, key: str, section: str | None = None) -> int | None:
        return self.line_at(_section_path(section) + ((key,) if key else ()))

    def error(self, message: str, key: str | None = None, section: str | None = None) -> ConfigError:
        return self.error_at(message, _section_path(section) + ((key,) if key else ()))


def _section_path(section: str | None) -> KeyPath:
    return tuple(section.split(".")) if section else ()


def config_error(file: PolicyFile | None, message: str, path: Sequence[Key], label: str) -> ConfigError:
    """An error at `path` in `file`; without a file (a policy parsed before), prefixed with `label`."""
    if file is None:
        return ConfigError(f"{label}: {message}")
    return file.error_at(message, path)
