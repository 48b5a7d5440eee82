"""Event listeners: the App Home tab."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.handlers import home as home_handlers

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("modelbot.slack")


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        client.views_publish(user_id=event["user"], view=home_handlers.home_view(services, event["user"]))
