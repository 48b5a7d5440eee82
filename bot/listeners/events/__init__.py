"""Event listeners: the App Home tab."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks import home as home_blocks

if TYPE_CHECKING:
    from bot.runtime import Services

log = logging.getLogger("modelbot.slack")


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        page = services.registry.list_models(limit=home_blocks.MODELS_ON_HOME)
        client.views_publish(user_id=event["user"], view=home_blocks.home(page, services.registry.environments))
