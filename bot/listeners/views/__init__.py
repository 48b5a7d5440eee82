"""Modal submissions (the "why?" of Reject and Override gate) go through `handlers.submit`.

Unlike commands and clicks, a submission is acknowledged *after* the domain call: the ack
is the only way to keep the modal open and show an error beside the text the user typed
(`response_action: errors`), or to replace it with a note. The domain call is one short
transaction, well inside Slack's 3 seconds.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from bot import handlers
from bot.blocks.approvals import notice_view
from bot.blocks.base import Message, clip
from bot.listeners.replies import acked, answering

if TYPE_CHECKING:
    from bot.services import Services

CALLBACK_PATTERN = re.compile(r"^modelbot_")
MAX_ERROR_TEXT = 500


def submission_from(body: dict[str, Any]) -> handlers.Submission:
    view = body["view"]
    values: dict[str, str] = {}
    for block in (view.get("state") or {}).get("values", {}).values():
        for action_id, element in block.items():
            if isinstance(element, dict) and isinstance(element.get("value"), str):
                values[action_id] = element["value"]
    return handlers.Submission(
        callback_id=view.get("callback_id") or "",
        values=values,
        private_metadata=view.get("private_metadata") or "",
        actor=handlers.Actor(body["user"]["id"], None, (body.get("team") or {}).get("id")),
    )


def first_input_block(view: dict[str, Any]) -> str | None:
    return next((b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"), None)


def register(app: App, services: Services) -> None:
    @app.view(CALLBACK_PATTERN)
    def submitted(ack: Ack, body: dict[str, Any], context: dict[str, Any]) -> None:
        field = first_input_block(body["view"])

        def send(message: Message) -> None:
            if field:  # beside the input; the modal stays open with what the user typed
                ack(response_action="errors", errors={field: clip(message.text, MAX_ERROR_TEXT)})
            else:
                ack(response_action="update", view=notice_view("Not done", message.text))

        with answering(context, send) as answer:
            event = submission_from(body)
            answer.command = event.callback_id
            result = handlers.submit(services, event)
            if result.view is not None:
                ack(response_action="update", view=result.view)
            else:
                ack()
        acked(context)
