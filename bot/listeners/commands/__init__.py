"""Slash command listeners."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot import commands, handlers
from bot.blocks.base import Message
from bot.listeners.replies import acked, answering

if TYPE_CHECKING:
    from bot.services import Services

SLASH_COMMAND = "/model"


def slack_text(raw: str) -> str:
    """Slack sends `&`, `<`, `>` as HTML entities in command text; the grammar wants them raw."""
    return html.unescape(raw)


def register(app: App, services: Services) -> None:
    @app.command(SLASH_COMMAND)
    def model_command(ack: Ack, body: dict[str, Any], respond: Respond, context: dict[str, Any]) -> None:
        ack()
        acked(context)
        actor = handlers.Actor(body["user_id"], body.get("channel_id"), body.get("team_id"))
        text = slack_text(body.get("text") or "")

        def send(message: Message) -> None:
            respond(**message.payload())

        with answering(context, send) as answer:
            command = commands.parse(text)
            answer.command = command.name
            send(handlers.run(services, actor, command))
