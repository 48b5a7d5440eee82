"""Command → domain → renderer, shared by every front end (Slack, shell, tests).

Errbot's rule: commands only talk to the user, helpers do the work. A handler here takes a
parsed command and who is asking, calls the domain and returns a rendered `Message`. No
Slack client, no HTTP: front ends deliver the message their own way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bot import commands
from bot.blocks import Message
from bot.blocks import compare as compare_blocks
from bot.blocks import help as help_blocks
from bot.blocks import registry as registry_blocks
from bot.domain.errors import NotFound

if TYPE_CHECKING:
    from bot.runtime import Services

C = TypeVar("C", bound=commands.Command)


@dataclass(frozen=True)
class Actor:
    """Who typed the command, and where."""

    user_id: str
    channel_id: str | None = None
    team_id: str | None = None


Handler = Callable[["Services", Actor, Any], Message]
HANDLERS: dict[type[commands.Command], Handler] = {}


def handles(kind: type[C]) -> Callable[[Callable[[Services, Actor, C], Message]], Callable[[Services, Actor, C], Message]]:
    def decorate(func: Callable[[Services, Actor, C], Message]) -> Callable[[Services, Actor, C], Message]:
        HANDLERS[kind] = func
        return func

    return decorate


def run(services: Services, actor: Actor, command: commands.Command) -> Message:
    handler = HANDLERS[type(command)]
    return handler(services, actor, command).shared(command.share)


def run_text(services: Services, actor: Actor, text: str, *, offset: int = 0) -> Message:
    command = commands.parse(text)
    if offset:
        command = command.with_offset(offset)
    return run(services, actor, command)


# ---- core handlers --------------------------------------------------------------------------


@handles(commands.Help)
def _help(services: Services, actor: Actor, cmd: commands.Help) -> Message:
    return help_blocks.help_one(cmd.topic) if cmd.topic else help_blocks.help_all()


@handles(commands.ListModels)
def _list(services: Services, actor: Actor, cmd: commands.ListModels) -> Message:
    registry = services.registry
    if cmd.model is None:
        page = registry.list_models(offset=cmd.offset, limit=registry_blocks.MODELS_PER_PAGE)
        return registry_blocks.model_list(page, registry.environments)
    page = registry.list_versions(cmd.model, offset=cmd.offset, limit=registry_blocks.VERSIONS_PER_PAGE)
    return registry_blocks.version_list(registry.get_model(cmd.model).name, page)


@handles(commands.Show)
def _show(services: Services, actor: Actor, cmd: commands.Show) -> Message:
    return registry_blocks.version_detail(services.registry.show(cmd.model, cmd.ref))


@handles(commands.Compare)
def _compare(services: Services, actor: Actor, cmd: commands.Compare) -> Message:
    from bot.domain.compare import compare

    refs: list[Any] = list(cmd.refs)
    if not refs:
        # production against latest: the question people ask before promoting
        try:
            services.registry.show(cmd.model, "@production")
        except NotFound:
            raise NotFound(
                f"Nothing of {cmd.model} serves production yet, so there is no default comparison: "
                f"name two versions, for example `compare {cmd.model} 1 2`."
            ) from None
        refs = ["@production", "latest"]
    versions = services.registry.versions(cmd.model, refs)
    if len(versions) == 2 and versions[0].version == versions[1].version:
        raise NotFound(f"Production already serves the latest version of {cmd.model} (v{versions[0].version}).")
    return compare_blocks.comparison(compare(versions))


@handles(commands.History)
def _history(services: Services, actor: Actor, cmd: commands.History) -> Message:
    entries = services.registry.history(cmd.model, cmd.environment, limit=registry_blocks.HISTORY_PER_PAGE)
    return registry_blocks.history(services.registry.get_model(cmd.model).name, cmd.environment, entries)


# ---- button clicks ---------------------------------------------------------------------------


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
CLICK_HANDLERS: dict[str, ClickHandler] = {}


def on_click(action_id: str) -> Callable[[ClickHandler], ClickHandler]:
    def decorate(func: ClickHandler) -> ClickHandler:
        CLICK_HANDLERS[action_id] = func
        return func

    return decorate


def click(services: Services, event: Click) -> ClickResult:
    handler = CLICK_HANDLERS.get(event.action_id)
    if handler is None:
        raise NotFound("That button is no longer handled by this version of modelbot.")
    return handler(services, event)


# ---- modal submissions -----------------------------------------------------------------------


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
SUBMIT_HANDLERS: dict[str, SubmitHandler] = {}


def on_submit(callback_id: str) -> Callable[[SubmitHandler], SubmitHandler]:
    def decorate(func: SubmitHandler) -> SubmitHandler:
        SUBMIT_HANDLERS[callback_id] = func
        return func

    return decorate


def submit(services: Services, event: Submission) -> SubmitResult:
    handler = SUBMIT_HANDLERS.get(event.callback_id)
    if handler is None:
        raise NotFound("That form is no longer handled by this version of modelbot.")
    return handler(services, event)


@on_click(registry_blocks.PAGE_ACTION)
def _next_page(services: Services, event: Click) -> ClickResult:
    import json

    from bot.domain.errors import InvalidInput

    try:
        data = json.loads(event.value)
        text, offset = str(data["c"]), int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("That page button is damaged; run the command again.") from None
    return ClickResult(replace=run_text(services, event.actor, text, offset=offset))


# Feature modules register their handlers on import (after everything above exists).
from bot import dispatch_alerts as _dispatch_alerts  # noqa: E402,F401
from bot import dispatch_deploy as _dispatch_deploy  # noqa: E402,F401
from bot import dispatch_monitoring as _dispatch_monitoring  # noqa: E402,F401
from bot import dispatch_subscriptions as _dispatch_subscriptions  # noqa: E402,F401
