"""Button listeners: every modelbot button goes through `handlers.click` (on the App Home via `handlers.home`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import handlers
from bot.blocks.base import Message
from bot.handlers import home as home_handlers
from bot.listeners.replies import acked, answering

if TYPE_CHECKING:
    from bot.services import Services

ACTION_PATTERN = re.compile(r"^modelbot_")


def click_from(body: dict[str, Any]) -> handlers.Click:
    action = body["actions"][0]
    container = body.get("container") or {}
    return handlers.Click(
        action_id=action["action_id"],
        value=action.get("value") or "",
        actor=handlers.Actor(
            body["user"]["id"],
            (body.get("channel") or {}).get("id") or container.get("channel_id"),
            (body.get("team") or {}).get("id"),
        ),
        message_ts=container.get("message_ts"),
    )


def register(app: App, services: Services) -> None:
    @app.action(ACTION_PATTERN)
    def button(ack: Ack, body: dict[str, Any], respond: Respond, context: dict[str, Any], client: WebClient) -> None:
        ack()
        acked(context)
        event = click_from(body)
        if from_home(body):
            home_button(services, client, body, context, event)
            return

        def send(message: Message) -> None:
            respond(**message.payload(), replace_original=False)

        with answering(context, send) as answer:
            answer.command = event.action_id
            result = handlers.click(services, event)
            if result.replace is not None:
                respond(**result.replace.payload(), replace_original=True)
            if result.ephemeral is not None:
                send(result.ephemeral)
            if result.modal is not None:
                open_modal(client, body.get("trigger_id"), result.modal, result.fallback, send)


def from_home(body: dict[str, Any]) -> bool:
    return (body.get("container") or {}).get("type") == "view" and (body.get("view") or {}).get("type") == "home"


def home_button(services: Services, client: WebClient, body: dict[str, Any], context: dict[str, Any],
                event: handlers.Click) -> None:
    """A click on the App Home has no message to replace and no response_url: the answer is the
    Home itself, published again with the note at the top (see `bot.handlers.home`)."""
    user = event.actor.user_id

    def send(message: Message) -> None:
        client.views_publish(user_id=user, view=home_handlers.home_view(services, user, notice=message))

    with answering(context, send) as answer:
        answer.command = event.action_id
        update = home_handlers.home_click(services, event)
        if update.modal is not None:
            open_modal(client, body.get("trigger_id"), update.modal, update.fallback, send)
        if update.view is not None:
            client.views_publish(user_id=user, view=update.view)


def open_modal(client: WebClient, trigger_id: str | None, view: dict[str, Any], fallback: Message | None,
               send: Callable[[Message], Any]) -> None:
    """Open a modal on the click's trigger_id (valid once, for 3 s). When Slack refuses it
    (expired trigger), send the fallback note, which says how to do the same by command."""
    if trigger_id:
        try:
            client.views_open(trigger_id=trigger_id, view=view)
            return
        except SlackApiError:
            if fallback is None:
                raise
    if fallback is not None:
        send(fallback)
