"""The console behind `modelbot shell`: the `/model` commands in a terminal, like Hubot's shell adapter.

It goes through the same grammar, dispatch, renderers and error path as Slack, and prints
the very blocks Slack would receive (via `bot.blocks.text`), so trying modelbot needs no
workspace and a rendering bug shows up here too. Buttons are numbered; typing the number
clicks it through `handlers.click`, as a Slack button press would. Piped stdin works for
scripts: no prompt, no banner, only the answers on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot import handlers
from bot.blocks.base import Message
from bot.blocks.text import ANSI, PLAIN, Button, Rendered, Style, render
from bot.listeners.replies import error_message

if TYPE_CHECKING:
    from bot.services import Services

PROMPT = "modelbot> "
HISTORY_FILE = Path("~/.modelbot_history")
DEFAULT_USER = "U0SHELL"
DEFAULT_CHANNEL = "C0SHELL"
EXIT_WORDS = frozenset({"exit", "quit", ":q"})
EXIT_INTERRUPTED = 130

LineReader = Callable[[str], "str | None"]


class Shell:
    """One console session: the actor, the output, and the buttons currently on screen."""

    def __init__(
        self,
        services: Services,
        actor: handlers.Actor,
        *,
        read_line: LineReader,
        out: TextIO,
        style: Style = PLAIN,
    ) -> None:
        self.services = services
        self.actor = actor
        self.read_line = read_line
        self.out = out
        self.style = style
        # numbering lives until the next command, as the clicked message stays on screen
        self.buttons: tuple[Button, ...] = ()

    def run(self) -> None:
        """Answer lines until EOF or `exit`. Never raises for a bad command: it prints the error."""
        while True:
            line = self.read_line(PROMPT)
            if line is None:
                return
            text = line.strip()
            if text.lower() in EXIT_WORDS:
                return
            if text:
                self.handle(text)

    def handle(self, line: str) -> None:
        """One line: a button number / `click N`, else a `/model` command (with or without `/model`)."""
        number = _button_number(line)
        try:
            if number is not None:
                self.click(number)
            else:
                self.command(_strip_slash_command(line))
        except BrokenPipeError:  # the reader of our output has gone (`| head`): stop, not an error
            raise
        except Exception as exc:  # the same error-to-text path as Slack; the shell keeps going
            message, _outcome = error_message(exc)
            self.show(message, marker=self._private_marker())

    def command(self, text: str) -> None:
        message = handlers.run_text(self.services, self.actor, text)
        marker = self._channel_marker() if message.in_channel else self._private_marker()
        self.buttons = self.show(message, marker=marker)

    def click(self, number: int) -> None:
        button = next((b for b in self.buttons if b.number == number), None)
        if button is None:
            if not self.buttons:
                self._note(f"There is no button to click: {number} would click a numbered button like [1].")
            else:
                self._note(f"There is no button [{number}]: choose 1–{len(self.buttons)}.")
            return
        if button.confirm and not self._confirmed(button):
            self._note("Cancelled; nothing changed.")
            return
        result = handlers.click(
            self.services, handlers.Click(button.action_id, button.value, self.actor, message_ts=None)
        )
        if result.replace is not None:
            self.buttons = self.show(result.replace, marker="(message updated)")
        if result.ephemeral is not None:
            extra = self.show(result.ephemeral, marker="(only you)", first_button=len(self.buttons) + 1)
            self.buttons += extra
        if result.modal is not None and result.fallback is not None:
            # no modals in a terminal: the fallback says which command to type instead
            self.buttons += self.show(result.fallback, marker="(only you)", first_button=len(self.buttons) + 1)
        elif result.replace is None and result.ephemeral is None:
            self._note("Done.")

    def show(self, message: Message, *, marker: str, first_button: int = 1) -> tuple[Button, ...]:
        """Print one message under its visibility marker; returns the buttons it numbered."""
        rendered: Rendered = render(message.blocks, fallback=message.text, style=self.style,
                                    first_button=first_button)
        print(self.style.dim(marker), file=self.out)
        print(rendered.text, file=self.out)
        print(file=self.out)
        self.out.flush()
        return rendered.buttons

    def _confirmed(self, button: Button) -> bool:
        assert button.confirm is not None
        confirm = button.confirm
        asked = f"{confirm.title} — {confirm.text}" if confirm.text else confirm.title
        answer = self.read_line(f"{asked}\nConfirm? [y/N] ")
        return answer is not None and answer.strip().lower() in ("y", "yes")

    def _note(self, text: str) -> None:
        print(self.style.dim(text), file=self.out)
        print(file=self.out)
        self.out.flush()

    def _private_marker(self) -> str:
        return f"(visible only to you, {self.actor.user_id})"

    def _channel_marker(self) -> str:
        return f"(posted in channel {self.actor.channel_id} by {self.actor.user_id})"


def _button_number(line: str) -> int | None:
    words = line.split()
    if len(words) == 2 and words[0].lower() == "click":
        words = words[1:]
    if len(words) == 1 and words[0].isdecimal() and len(words[0]) < 6:
        return int(words[0])
    return None


def _strip_slash_command(line: str) -> str:
    """`/model list` and `list` mean the same; `/model` alone means help, as in Slack."""
    head, _, rest = line.partition(" ")
    return rest if head.lower() == "/model" else line


# ---- input --------------------------------------------------------------------------------


def piped_reader(stream: TextIO, echo: TextIO | None = None) -> LineReader:
    """Lines from a pipe: no prompt is printed (only answers), None at EOF."""

    def read(prompt: str) -> str | None:
        line = stream.readline()
        if not line:
            return None
        if echo is not None and prompt != PROMPT:
            # a confirmation question is part of the dialogue, so scripts see what they answered
            print(prompt.rstrip(), line.rstrip("\n"), file=echo)
        return line.rstrip("\n")

    return read


def tty_reader() -> LineReader:
    """`input()` with readline editing; Ctrl-D is EOF (None), Ctrl-C propagates to exit."""

    def read(prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            print()
            return None

    return read


@contextlib.contextmanager
def readline_history(path: Path) -> Iterator[None]:
    """Keep history across sessions when possible; a read-only home or no readline is not an error."""
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        yield
        return
    path = path.expanduser()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(1000)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            readline.write_history_file(path)


# ---- entry point --------------------------------------------------------------------------


def welcome(created: list[str], database_url: str, actor: handlers.Actor, style: Style) -> str:
    seeded = f"Seeded the demo models {', '.join(created)}" if created else "The demo models are already there"
    return "\n".join([
        style.bold("modelbot shell") + f" — acting as {actor.user_id} in {actor.channel_id}",
        style.dim(f"{seeded} ({database_url})."),
        "Try:  /model list    /model compare churn 2 3    /model history churn    /model help",
        style.dim("Type a button's number to click it; `exit` or Ctrl-D to leave."),
        "",
    ])


def main(services: Services, args: argparse.Namespace) -> int:
    """Run the shell for `modelbot shell`; returns the exit code (0 at EOF or `exit`)."""
    interactive = sys.stdin.isatty()
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    style = ANSI if colour else PLAIN
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    user = getattr(args, "user", None) or os.environ.get("MODELBOT_SHELL_USER") or DEFAULT_USER
    actor = handlers.Actor(user, getattr(args, "channel", None) or DEFAULT_CHANNEL)
    if getattr(args, "demo", False):
        from bot.cli import demo

        created = demo.seed(services.db)
        if interactive:
            print(welcome(created, services.settings.database_url, actor, style))
        else:  # keep stdout to the answers for scripts
            names = ", ".join(created) if created else "already present"
            print(f"modelbot: demo registry in {services.settings.database_url} ({names})", file=sys.stderr)
    elif interactive:
        print(style.dim(f"modelbot shell — acting as {actor.user_id} in {actor.channel_id}; "
                        "`help` lists the commands, `exit` leaves."))
    reader = tty_reader() if interactive else piped_reader(sys.stdin, echo=sys.stdout)
    shell = Shell(services, actor, read_line=reader, out=sys.stdout, style=style)
    try:
        if interactive:
            with readline_history(HISTORY_FILE):
                shell.run()
        else:
            shell.run()
    except KeyboardInterrupt:
        print()
        return EXIT_INTERRUPTED
    return 0
