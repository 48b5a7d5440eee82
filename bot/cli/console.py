"""The console behind `modelbot shell`: the `/model` commands in a terminal, like Hubot's shell adapter,
and a faithful preview of everything the bot would send to Slack.

Commands go through the same grammar, handlers, renderers and error path as Slack, and the
console prints the very blocks Slack would receive (via `bot.blocks.text`), so trying modelbot
needs no workspace and a rendering bug shows up here too. With the preview on (`--demo`, or
`--preview`), the shell also runs what the bot does in the background: the outbox delivery,
with a `PreviewSender` that prints each message where it would appear (`#model-approvals`,
`thread of …`, `only @alice`, `App Home of @carol`) instead of calling Slack, and the
scheduler's minute jobs (alert evaluation, alert charts, request expiry). Messages appear
when they would be sent: after the command or click that caused them.

Every button on screen has a number for the whole session; typing it clicks the button through
`handlers.click`, as a Slack button press would (a confirm dialog asks y/N first, a modal asks
its fields one by one). An updated message's old buttons go away, as in Slack. `/as NAME`
changes who you are. Piped stdin works for scripts: no prompt, no banner, only the answers.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot import handlers
from bot.blocks.base import File, Message
from bot.blocks.text import ANSI, NO_NAMES, PLAIN, Button, Names, Style, modal_inputs, plain_text, render
from bot.cli.terminal import Completer, Interrupted, LineReader, piped_reader, readline_session, tty_reader
from bot.listeners.replies import error_message

if TYPE_CHECKING:
    from bot.delivery.preview import Preview
    from bot.delivery.worker import DeliveryWorker
    from bot.services import Services

HISTORY_FILE = Path("~/.modelbot_history")
CHARTS_DIR = Path("modelbot-charts")
DEFAULT_USER = "U0SHELL"
DEFAULT_CHANNEL = "C0SHELL"
EXIT_WORDS = frozenset({"exit", "quit", ":q"})
EXIT_INTERRUPTED = 130
BACKGROUND_EVERY = timedelta(minutes=1)  # the scheduler runs its alert jobs every minute
TITLE_MAX = 60


@dataclass(frozen=True)
class OnScreen:
    """A numbered button and where it is: the message it belongs to (an update removes it), the
    channel a click comes from, and whose App Home it is on (clicks there act like Slack's)."""

    button: Button
    message: str
    channel: str | None
    home_of: str | None = None


@dataclass
class Directory:
    """Who is who: display names for ids (`@alice`, `#model-approvals`) and the names `/as` takes."""

    names: Names = NO_NAMES
    people: Mapping[str, str] | None = None  # name → user id

    def user_id(self, who: str) -> str:
        """`alice` → U0ALICE for people the shell knows; anything else is used as typed (a Slack
        user id like U123, or a CLI actor name like ci-bot)."""
        key = who.lstrip("@")
        return (self.people or {}).get(key.lower(), key)

    def user(self, user_id: str) -> str:
        return self.names.user(user_id)

    def channel(self, channel_id: str | None) -> str:
        return self.names.channel(channel_id) if channel_id else "a channel"


class Shell:
    """One console session: who acts, the output, the buttons on screen, and (with the preview)
    the delivery worker and background jobs."""

    def __init__(
        self,
        services: Services,
        actor: handlers.Actor,
        *,
        read_line: LineReader,
        out: TextIO,
        style: Style = PLAIN,
        directory: Directory | None = None,
        charts_dir: Path = CHARTS_DIR,
        preview: bool = False,
    ) -> None:
        self.services = services
        self.actor = actor
        self.read_line = read_line
        self.out = out
        self.style = style
        self.directory = directory or Directory()
        self.charts_dir = charts_dir
        self._buttons: dict[int, OnScreen] = {}
        self._next_number = 1
        self._replies = 0
        self._titles: dict[str, str] = {}  # message id → how a thread reply names its parent
        self._labels: dict[str, str] = {}  # message id → where it is (an update keeps it)
        self._background_at: datetime | None = None
        self._worker: DeliveryWorker | None = self._preview_worker() if preview else None

    # ---- the loop -----------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        return f"modelbot ({self.directory.user(self.actor.user_id).lstrip('@')})> "

    def run(self) -> None:
        """Answer lines until EOF or `exit`. Never raises for a bad command: it prints the error."""
        self.background()
        while True:
            try:
                line = self.read_line(self.prompt)
            except Interrupted:
                continue
            if line is None:
                return
            text = line.strip()
            if text.lower() in EXIT_WORDS:
                return
            if not text:
                continue
            try:
                self.handle(text)
                self.background()
            except KeyboardInterrupt:  # Ctrl-C while a command runs: it stops there (each change is atomic)
                self.note("Interrupted.")

    def handle(self, line: str) -> None:
        """One line: a shell command (`/as`, `/home`), a button number / `click N`, else a `/model` command."""
        number = _button_number(line)
        try:
            if line.startswith("/") and not line.lower().startswith("/model"):
                self.shell_command(line)
            elif number is not None:
                self.click(number)
            else:
                self.command(_strip_slash_command(line))
        except (BrokenPipeError, Interrupted):  # the reader has gone (`| head`), or Ctrl-C in a dialog
            raise
        except Exception as exc:  # the same error-to-text path as Slack; the shell keeps going
            message, _outcome = error_message(exc)
            self.show(message, self._only_you())
        self.deliver()

    def command(self, text: str) -> None:
        message = handlers.run_text(self.services, self.actor, text)
        if message.in_channel:
            self.show(message, f"{self.directory.channel(self.actor.channel_id)} · "
                               f"posted for {self.directory.user(self.actor.user_id)}")
        else:
            self.show(message, self._only_you())

    # ---- shell commands -------------------------------------------------------------------

    def shell_command(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        word, rest = word.lower(), rest.strip()
        if word == "/as":
            if not rest:
                self.note(f"You are {self.directory.user(self.actor.user_id)}. `/as NAME` changes who you are.")
                return
            self.actor = handlers.Actor(self.directory.user_id(rest), self.actor.channel_id, self.actor.team_id)
            self.note(f"You are now {self.directory.user(self.actor.user_id)}.")
        elif word == "/home":
            user = self.directory.user_id(rest) if rest else self.actor.user_id
            self.show_home(user)
        elif word in ("/help", "/?"):
            self.note("Shell commands: /as NAME (act as someone else), /home [NAME] (open an App Home), "
                      "a button's number (click it), exit. Everything else is a /model command: /model help.")
        else:
            self.note(f"There is no shell command {word}: /as NAME, /home [NAME], /help, or a /model command.")

    def show_home(self, user: str) -> None:
        from bot.handlers.home import home_view

        self.show_view(home_view(self.services, user), f"App Home of {self.directory.user(user)}", home_of=user)

    # ---- clicks, confirms, modals -----------------------------------------------------------

    def click(self, number: int) -> None:
        on_screen = self._buttons.get(number)
        if on_screen is None:
            if not self._buttons:
                self.note(f"There is no button to click: {number} would click a numbered button like [1].")
            else:
                self.note(f"There is no button [{number}] on screen: buttons shown are "
                          f"{_ranges(sorted(self._buttons))}.")
            return
        button = on_screen.button
        if button.confirm and not self._confirmed(button):
            self.note("Cancelled; nothing changed.")
            return
        actor = handlers.Actor(self.actor.user_id, on_screen.channel or self.actor.channel_id, self.actor.team_id)
        event = handlers.Click(button.action_id, button.value, actor, message_ts=on_screen.message)
        if on_screen.home_of is not None:
            self._click_on_home(event)
            return
        result = handlers.click(self.services, event)
        if result.replace is not None:
            self._forget(on_screen.message)
            where = self._labels.get(on_screen.message) or self.directory.channel(on_screen.channel)
            self.show(result.replace, f"{where} · message updated", message_id=on_screen.message,
                      channel=on_screen.channel)
        if result.ephemeral is not None:
            self.show(result.ephemeral, self._only_you(on_screen.channel))
        if result.modal is not None:
            self.modal(result.modal, actor)
        elif result.replace is None and result.ephemeral is None:
            self.note("Done.")

    def _click_on_home(self, event: handlers.Click) -> None:
        from bot.handlers.home import home_click

        update = home_click(self.services, event)
        if update.modal is not None:
            self.modal(update.modal, event.actor)
        if update.view is not None:
            self._forget(f"home:{event.actor.user_id}")
            self.show_view(update.view, f"App Home of {self.directory.user(event.actor.user_id)}",
                           home_of=event.actor.user_id)

    def modal(self, view: Mapping[str, object], actor: handlers.Actor) -> None:
        """A modal as prompts: its text, then each input in turn; an empty required answer cancels."""
        title = plain_text(view.get("title"), self.directory.names) or "Form"  # type: ignore[arg-type]
        blocks = [b for b in view.get("blocks") or () if isinstance(b, dict) and b.get("type") != "input"]
        self.show_view({**view, "blocks": blocks}, f"modal · {title}")
        inputs = modal_inputs(view)
        if not inputs:
            return
        values: dict[str, str] = {}
        for field in inputs:
            hint = f" [{field.initial}]" if field.initial else (" (optional)" if field.optional else "")
            colon = "" if field.label.endswith((".", "?", ":", "!")) and not hint else ":"
            answer = self.read_line(f"{field.label}{hint}{colon} ")
            if answer is None:
                self.note("Cancelled; nothing changed.")
                return
            answer = answer.strip() or field.initial
            if not answer and not field.optional:
                self.note("Cancelled; nothing changed.")
                return
            values[field.action_id] = answer
        submission = handlers.Submission(str(view.get("callback_id") or ""), values,
                                          str(view.get("private_metadata") or ""), actor)
        result = handlers.submit(self.services, submission)
        if result.view is not None:
            self.modal(result.view, actor)

    def _confirmed(self, button: Button) -> bool:
        assert button.confirm is not None
        confirm = button.confirm
        asked = f"{confirm.title} — {confirm.text}" if confirm.text else confirm.title
        answer = self.read_line(f"{asked}\nConfirm? [y/N] ")
        return answer is not None and answer.strip().lower() in ("y", "yes")

    # ---- output -------------------------------------------------------------------------------

    def show(self, message: Message, label: str, *, message_id: str | None = None, channel: str | None = None,
             home_of: str | None = None) -> None:
        """Print one message under the line saying where it is; number its buttons; write its files."""
        if message_id is None:
            self._replies += 1
            message_id = f"reply:{self._replies}"
        rendered = render(message.blocks, fallback=message.text, style=self.style, first_button=self._next_number,
                          names=self.directory.names)
        self._register(rendered.buttons, message_id, channel or self.actor.channel_id, home_of)
        self._labels.setdefault(message_id, label)
        print(self.style.dim(f"── {label}"), file=self.out)
        print(rendered.text, file=self.out)
        for file in message.files:
            print(self.style.dim(f"chart written to {self._write(file)}"), file=self.out)
        print(file=self.out)
        self.out.flush()

    def show_view(self, view: Mapping[str, object], label: str, *, home_of: str | None = None) -> None:
        blocks = view.get("blocks") or []
        assert isinstance(blocks, list)
        self.show(Message("", blocks), label, message_id=f"home:{home_of}" if home_of else None, home_of=home_of)

    def note(self, text: str) -> None:
        print(self.style.dim(text), file=self.out)
        print(file=self.out)
        self.out.flush()

    def _register(self, buttons: tuple[Button, ...], message_id: str, channel: str | None,
                  home_of: str | None) -> None:
        for button in buttons:
            self._buttons[button.number] = OnScreen(button, message_id, channel, home_of)
        if buttons:
            self._next_number = max(b.number for b in buttons) + 1

    def _forget(self, message_id: str) -> None:
        """The message was replaced: its old buttons are gone, as in Slack."""
        for number in [n for n, b in self._buttons.items() if b.message == message_id]:
            del self._buttons[number]

    def _write(self, file: File) -> Path:
        self.charts_dir.mkdir(parents=True, exist_ok=True)
        path = self.charts_dir / Path(file.filename).name
        path.write_bytes(file.content)
        return path

    def _only_you(self, channel: str | None = None) -> str:
        where = self.directory.channel(channel or self.actor.channel_id)
        return f"only {self.directory.user(self.actor.user_id)} can see this · {where}"

    # ---- the bot's background work (preview) ------------------------------------------------

    def _preview_worker(self) -> DeliveryWorker:
        from bot.delivery.preview import PreviewSender
        from bot.delivery.worker import DeliveryWorker
        from bot.handlers.home import HomeRefresher
        from bot.jobs import jobs

        jobs.bind(self.services)  # the digest job finds the services there, as under the scheduler
        sender = PreviewSender(self._preview, charts_dir=self.charts_dir, home=HomeRefresher(self.services))
        return DeliveryWorker(self.services.db, None, clock=self.services.clock, concurrency=1, post_interval_s=0,
                              backoff_base_s=0.1, backoff_cap_s=1, sender=sender)

    def deliver(self) -> None:
        """Send what the last action put in the outbox, in order (the preview), until nothing is due."""
        if self._worker is None:
            return
        while self._worker.run_once():
            pass

    def background(self) -> None:
        """The scheduler's work, as often as it would run it (every minute): evaluate alerts (their
        cards go to the outbox), expire old requests, send the digests whose time has come since
        the last run, chart new alert cards; then deliver. Time is the services' clock."""
        if self._worker is None:
            return
        now = self.services.clock()
        last = self._background_at
        try:
            if last is None or now - last >= BACKGROUND_EVERY:
                self._background_at = now
                from bot.jobs.alerting import chart_pending, run_cycle

                run_cycle(self.services)
                self.services.deployments.expire_due()
                if last is not None:
                    self._due_digests(last, now)
                self.deliver()
                chart_pending(self.services)
            self.deliver()
        except Exception as exc:  # what the scheduler would log; the shell says it and goes on
            message, _outcome = error_message(exc)
            self.show(message, "modelbot's background work")

    def _due_digests(self, since: datetime, now: datetime) -> None:
        """Each subscription whose next fire time after `since` is past: its digest job, for that time."""
        from bot.domain.subscriptions import Subscriptions
        from bot.jobs import jobs

        for sub in Subscriptions(self.services.registry, self.services.policy).list_all():
            fire = sub.next_run(since)
            if fire is not None and fire <= now:
                jobs.send_digest(sub.id, fire.isoformat())

    def close(self) -> None:
        if self._worker is not None:
            from bot.jobs import jobs

            jobs.unbind()
            self._worker.close()

    def _preview(self, p: Preview) -> None:
        """One message the bot sends, labelled with where it appears."""
        where = self.directory.channel(p.channel)
        if p.kind == "post" and p.message is not None:
            assert p.message_id is not None
            self._titles[p.message_id] = _title(p.message)
            self.show(p.message, where, message_id=p.message_id, channel=p.channel)
        elif p.kind == "update" and p.message is not None:
            assert p.parent is not None
            self._forget(p.parent)
            self._titles[p.parent] = _title(p.message)
            self.show(p.message, f"{where} · message updated: {self._titles[p.parent]}", message_id=p.parent,
                      channel=p.channel)
        elif p.kind == "thread" and p.message is not None:
            self.show(p.message, f"{where} · thread of {self._parent(p.parent)}", channel=p.channel)
        elif p.kind == "ephemeral" and p.message is not None:
            who = self.directory.user(p.user_id or "")
            self.show(p.message, f"only {who} can see this · {where}", channel=p.channel)
        elif p.kind == "upload":
            self.note(f"── {where} · thread of {self._parent(p.parent)}\nchart written to {p.path}")
        elif p.kind == "home":
            assert p.user_id is not None and p.view is not None
            # a Home is a tab people open, not a message that pops up: one line, and `/home` shows it
            who = self.directory.user(p.user_id)
            mine = p.user_id == self.actor.user_id
            self.note(f"── App Home of {who} refreshed (`/home{'' if mine else ' ' + who.lstrip('@')}` shows it)")
        elif p.kind == "webhook":
            self.note(f"── webhook {p.event} → {p.url} (shown, not sent, from the shell)")
        elif p.kind == "mlflow_alias":
            self.note(f"── MLflow aliases of {p.event} (shown, not written, from the shell)")

    def _parent(self, message_id: str | None) -> str:
        title = self._titles.get(message_id or "")
        return f"“{title}”" if title else "an earlier message"


def _title(message: Message) -> str:
    text = render(message.blocks, fallback=message.text).text.strip().splitlines()
    first = text[0] if text else message.text
    return first if len(first) <= TITLE_MAX else first[: TITLE_MAX - 1] + "…"


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] → "1–3, 7"."""
    parts: list[str] = []
    start = previous = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == previous + 1:
            previous = n
            continue
        parts.append(f"{start}–{previous}" if previous > start else str(start))
        if n is not None:
            start = previous = n
    return ", ".join(parts)


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


# ---- entry point ----------------------------------------------------------------------------


def welcome(created: list[str], shell: Shell, demo: bool, style: Style) -> str:
    d = shell.directory
    lines = [style.bold("modelbot shell") + f" — you are {d.user(shell.actor.user_id)} in "
                                            f"{d.channel(shell.actor.channel_id)}"]
    if demo:
        from bot.cli import demo as demo_data

        seeded = f"Seeded the demo models {', '.join(created)}" if created else "The demo models are already there"
        lines.append(style.dim(f"{seeded} ({shell.services.settings.database_url}); the demo's policy is in effect."))
        people = ", ".join(f"{name} ({role})" for name, role in demo_data.ROLES.items())
        lines += [f"People: {people}. `/as NAME` to be one of them.",
                  "Try:  /model promote churn 4 production    /as alice    /model alerts    /model digest churn"]
    else:
        lines.append("Try:  /model list    /model help    `/as NAME` acts as someone else")
    lines += [style.dim("Type a button's number to click it; Tab completes; `exit` or Ctrl-D to leave."), ""]
    return "\n".join(lines)


def main(services: Services, args: argparse.Namespace) -> int:
    """Run the shell for `modelbot shell`; returns the exit code (0 at EOF or `exit`)."""
    interactive = sys.stdin.isatty()
    colour = sys.stdout.isatty() and services.settings.terminal_colour
    style = ANSI if colour else PLAIN
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    demo = bool(getattr(args, "demo", False))
    directory = Directory(Names(users={DEFAULT_USER: "you"}, channels={DEFAULT_CHANNEL: "shell"}), {"you": DEFAULT_USER})
    if demo:
        from bot.cli import demo as demo_data

        directory = Directory(Names(users={v: k for k, v in demo_data.PEOPLE.items()}, channels=demo_data.CHANNELS),
                              demo_data.PEOPLE)
    user = getattr(args, "user", None) or services.settings.shell_user or DEFAULT_USER
    actor = handlers.Actor(directory.user_id(user), getattr(args, "channel", None) or DEFAULT_CHANNEL)
    preview = demo if getattr(args, "preview", None) is None else bool(args.preview)
    created: list[str] = []
    if demo:
        from bot.cli import demo as demo_data

        created = demo_data.seed(services)
    shell = Shell(services, actor, read_line=lambda _: None, out=sys.stdout, style=style, directory=directory,
                  preview=preview)
    if interactive:
        print(welcome(created, shell, demo, style))
        completer = Completer(lambda: _model_names(services), lambda: services.registry.environments,
                              {"/as": lambda: list(directory.people or {}), "/home": lambda: list(directory.people or {}),
                               "/help": list})
        shell.read_line = tty_reader()
    else:  # keep stdout to the answers for scripts
        if demo:
            names = ", ".join(created) if created else "already present"
            print(f"modelbot: demo registry in {services.settings.database_url} ({names})", file=sys.stderr)
        shell.read_line = piped_reader(sys.stdin, echo=sys.stdout, prompt=lambda: shell.prompt)
    if interactive:
        # A parent that ignores SIGINT (a CI runner, `nohup`, a background job of a script) hands the
        # ignore down; a person at a terminal still expects Ctrl-C to drop the line, so take it back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if interactive:
            with readline_session(HISTORY_FILE, completer):
                shell.run()
        else:
            shell.run()
    except (KeyboardInterrupt, Interrupted):
        print()
        return EXIT_INTERRUPTED
    finally:
        shell.close()
    return 0


def _model_names(services: Services) -> list[str]:
    page = services.registry.list_models(limit=200)
    return [m.name for m in page.items]

