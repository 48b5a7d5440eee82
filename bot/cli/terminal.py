"""The shell's input side: line readers (a terminal with readline, or a pipe), history, and tab
completion generated from the `/model` grammar.

Completion reads each command's usage line (`promote MODEL REF [to] ENV [reason…]`), so it
knows what comes next without a second description of the grammar: command names first, then
model names where the usage says MODEL, environments where it says ENV, the words of a choice
(`daily|weekly|hourly`), and so on.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from bot import commands

LineReader = Callable[[str], "str | None"]

_CHOICE = re.compile(r"^[a-z]+(\|[a-z]+)+$")


class Interrupted(Exception):
    """Ctrl-C at the prompt: the line is dropped and the shell asks again."""


# ---- readers -----------------------------------------------------------------------------------


def piped_reader(stream: TextIO, echo: TextIO | None = None, *, prompt: Callable[[], str] | None = None) -> LineReader:
    """Lines from a pipe: no prompt is printed (only answers), None at EOF. A question that is not
    the prompt (a confirmation, a modal's field) is echoed with its answer, so scripts see what
    they answered."""

    def read(question: str) -> str | None:
        asked = echo is not None and (prompt is None or question != prompt())
        if asked:  # asked before reading, so a script driving the pipe can wait for the question
            print(question.rstrip(), end=" ", file=echo, flush=True)
        line = stream.readline()
        if asked:
            print(line.rstrip("\n"), file=echo, flush=True)
        return line.rstrip("\n") if line else None

    return read


def tty_reader() -> LineReader:
    """`input()` with readline editing: Ctrl-D is EOF (None), Ctrl-C drops the line (Interrupted)."""

    def read(question: str) -> str | None:
        try:
            return input(question)
        except EOFError:
            print()
            return None
        except KeyboardInterrupt:
            print("^C")
            raise Interrupted from None

    return read


@contextlib.contextmanager
def readline_session(history: Path, completer: Completer | None) -> Iterator[None]:
    """History across sessions and tab completion, when readline exists; a read-only home or no
    readline (Windows without pyreadline) is not an error."""
    try:
        import readline
    except ImportError:
        yield
        return
    path = history.expanduser()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(1000)
    if completer is not None:
        readline.set_completer_delims(" \t\n")
        readline.set_completer(completer.complete)
        if "libedit" in (readline.__doc__ or ""):  # macOS's readline is libedit
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
    try:
        yield
    finally:
        readline.set_completer(None)
        with contextlib.suppress(OSError):
            readline.write_history_file(path)


# ---- completion ---------------------------------------------------------------------------------


class Completer:
    """Candidates for the word being typed, from the grammar and the current registry.

    `models` and `environments` are callables so the lists stay current (a model registered a
    minute ago completes); `extra` are the shell's own commands (`/as NAME`) with their words.
    """

    def __init__(self, models: Callable[[], Sequence[str]], environments: Callable[[], Sequence[str]],
                 extra: dict[str, Callable[[], Sequence[str]]] | None = None) -> None:
        self.models = models
        self.environments = environments
        self.extra = extra or {}
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        """readline's protocol: called with state 0, 1, … until it returns None."""
        if state == 0:
            import readline

            line = readline.get_line_buffer()[: readline.get_endidx()]
            self._matches = self.candidates(line)
        return self._matches[state] if state < len(self._matches) else None

    def candidates(self, line: str) -> list[str]:
        """Completions (with a trailing space) for the last word of `line`."""
        words = line.split()
        current = "" if not words or line[-1:].isspace() else words.pop()
        if not words:  # the first word: `/model`, a command (the shell takes them bare too), `/as`
            return _matching(["/model", *commands.SPECS, *self.extra], current)
        if words[0].lower() == "/model":
            words = words[1:]
            if not words:
                return _matching(list(commands.SPECS), current)
        head = words[0].lower()
        if head in self.extra:
            return _matching(list(self.extra[head]()), current) if len(words) == 1 else []
        name = commands._ALIASES.get(head, head)
        spec = commands.SPECS.get(name)
        if spec is None:
            return []
        options: list[str] = []
        for placeholder in next_placeholders(spec.usage, words[1:]):
            options += self._options(placeholder)
        return _matching(options, current)

    def _options(self, placeholder: str) -> list[str]:
        if placeholder == "MODEL[@ENV]":
            return [*self.models(), *(f"{m}@{e}" for m in self.models() for e in self.environments())]
        bare = placeholder.strip("[]").rstrip("…").rstrip(".")
        if bare in ("MODEL", "MODEL|*"):
            return [*self.models(), *(["*"] if "*" in bare else [])]
        if bare == "ENV":
            return list(self.environments())
        if bare == "REF":
            return ["latest", *(f"@{e}" for e in self.environments())]
        if bare == "COMMAND":
            return list(commands.SPECS)
        if _CHOICE.match(bare):
            return bare.split("|")
        if bare.islower() and bare.isalpha():
            return [bare]  # a literal word: `to`, `add`, `list`
        return []


def next_placeholders(usage: str, typed: Sequence[str]) -> list[str]:
    """The usage words that may come after `typed`, across the usage's alternatives (`a | b`).

    `promote MODEL REF [to] ENV`, typed ["churn", "4"] → ["[to]", "ENV"]: an optional literal word
    may be skipped, so what follows it is possible too."""
    found: list[str] = []
    for alternative in usage.split(" | "):
        pattern = alternative.split()[1:]  # without the command's name
        position = 0
        for word in typed:
            while position < len(pattern) and _optional_literal(pattern[position]) and \
                    word.lower() != pattern[position].strip("[]"):
                position += 1
            if position >= len(pattern) or (_literal(pattern[position]) and
                                             word.lower() not in pattern[position].strip("[]").split("|")):
                position = len(pattern) + 1
                break
            position += 1
        while position < len(pattern):
            found.append(pattern[position])
            if not _optional_literal(pattern[position]):
                break
            position += 1
    return list(dict.fromkeys(found))


def _literal(word: str) -> bool:
    bare = word.strip("[]")
    return bare.islower() and all(part.isalpha() for part in bare.split("|"))


def _optional_literal(word: str) -> bool:
    return word.startswith("[") and _literal(word)


def _matching(options: Sequence[str], current: str) -> list[str]:
    lowered = current.lower()
    return [f"{o} " for o in dict.fromkeys(options) if o.lower().startswith(lowered)]
