"""What every handler speaks: who acts (`Actor`), a click, a modal submission, what they change
on screen, and the `HandlerTable` in which a feature declares its handlers.

Errbot's rule: commands only talk to the user, helpers do the work. A handler takes a parsed
command (or click, or submission) and who is asking, calls the domain and returns a rendered
`Message`. No Slack client, no HTTP: front ends deliver the message their own way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bot.blocks.base import Message
from bot.commands import Command

if TYPE_CHECKING:
    from bot.services import Services

C = TypeVar("C", bound=Command)


@dataclass(frozen=True)
class Actor:
    """Who typed the command, and where."""

    user_id: str
    channel_id: str | None = None
    team_id: str | None = None


Handler = Callable[["Services", Actor, Any], Message]


@dataclass(frozen=True)
class Click:
    """A button press, independent of where it came from (Slack payload or shell number)."""

    action_id: str
    value: str
    actor: Actor
    message_ts: str | None = None


@dataclass(frozen=True)
class ClickResult:
    """What a click changes on screen: the clicked message replaced, and/or a private note,
    and/or a modal to open (a Block Kit view dict, e.g. "why do you reject it?").

    A modal needs the click's trigger_id, which only the Slack listener has; `fallback` is
    shown instead where no modal can be opened (the trigger expired, or a front end
    without modals such as the shell).
    """

    replace: Message | None = None
    ephemeral: Message | None = None
    modal: dict[str, Any] | None = None
    fallback: Message | None = None


ClickHandler = Callable[["Services", Click], ClickResult]


@dataclass(frozen=True)
class Submission:
    """A submitted modal: its callback id, the text of each input (by action id), its metadata."""

    callback_id: str
    values: dict[str, str]
    private_metadata: str
    actor: Actor


@dataclass(frozen=True)
class SubmitResult:
    """Close the modal (`view` None) or show `view` in its place. Errors are raised, and the
    listener shows them beside the modal's input."""

    view: dict[str, Any] | None = None


SubmitHandler = Callable[["Services", Submission], SubmitResult]


@dataclass
class HandlerTable:
    """One feature's handlers, by command type, action id and modal callback id. `bot.handlers`
    assembles the tables explicitly; declaring a handler twice across tables is an error there."""

    commands: dict[type[Command], Handler] = field(default_factory=dict)
    clicks: dict[str, ClickHandler] = field(default_factory=dict)
    submits: dict[str, SubmitHandler] = field(default_factory=dict)

    def handles(self, kind: type[C]) -> Callable[[Callable[[Services, Actor, C], Message]],
                                                 Callable[[Services, Actor, C], Message]]:
        def decorate(func: Callable[[Services, Actor, C], Message]) -> Callable[[Services, Actor, C], Message]:
            self.commands[kind] = func
            return func

        return decorate

    def on_click(self, action_id: str) -> Callable[[ClickHandler], ClickHandler]:
        def decorate(func: ClickHandler) -> ClickHandler:
            self.clicks[action_id] = func
            return func

        return decorate

    def on_submit(self, callback_id: str) -> Callable[[SubmitHandler], SubmitHandler]:
        def decorate(func: SubmitHandler) -> SubmitHandler:
            self.submits[callback_id] = func
            return func

        return decorate
