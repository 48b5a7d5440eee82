"""build_app(): the Bolt app with every listener, shared by HTTP mode and Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult

from bot.config.settings import ConfigError
from bot.listeners import actions, commands, events, views
from bot.listeners.replies import error_message, mark_received
from bot.slack.channels import attach_channel_resolver
from bot.slack.client import make_web_client
from bot.slack.usergroups import attach_group_resolver

if TYPE_CHECKING:
    from bot.services import Services

Mode = Literal["http", "socket"]
LISTENER_THREADS = 64
log = logging.getLogger("modelbot.slack")


def require_slack_settings(services: Services, mode: Mode) -> None:
    """Fail fast with one line naming the missing variable."""
    settings = services.settings
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from your app's "
                          "OAuth & Permissions page.")
    if mode == "http" and not settings.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set: copy the Signing Secret from your app's Basic "
                          "Information page (needed to verify requests in HTTP mode).")
    if mode == "socket" and not settings.slack_app_token:
        raise ConfigError("SLACK_APP_TOKEN is not set: create an app-level token (xapp-…) with the "
                          "connections:write scope for Socket Mode.")


def local_authorization(token: str) -> Callable[..., AuthorizeResult]:
    """Who a request is for, without asking Slack.

    Bolt's single-workspace authorization calls `auth.test` on the first request after every
    start, and when Slack's API fails at that moment it answers the command with an error
    after acknowledging it, so the command is lost (the fault soak, `bench.soak`, found it
    after restarts during a Slack outage). modelbot serves one workspace with one bot token
    and needs nothing `auth.test` returns (it subscribes to no message events, so it never
    has to recognise its own), so each request is authorized with the token and the ids it
    carries.
    """

    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    return authorize


def build_app(services: Services, mode: Mode) -> App:
    require_slack_settings(services, mode)
    settings = services.settings
    assert settings.slack_bot_token is not None  # require_slack_settings checked it
    client = make_web_client(settings.slack_bot_token, settings.slack_api_url)
    app = App(
        # no token on the app's own client: each request's client gets it from `authorize`
        client=make_web_client(None, settings.slack_api_url),
        authorize=local_authorization(settings.slack_bot_token),
        signing_secret=settings.slack_signing_secret or "unused-in-socket-mode",
        request_verification_enabled=mode == "http",
        token_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=log,
        # Bolt acks from inside the listener, which waits for a free executor thread. Its default
        # pool of 5 let five replies stuck on a slow Slack block every new command's ack past the
        # 3 s limit (Bolt then answers 404); threads mostly wait on I/O, so give them room.
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="modelbot-listener"),
    )
    app.middleware(mark_received)
    commands.register(app, services)
    actions.register(app, services)
    events.register(app, services)
    views.register(app, services)
    attach_group_resolver(services, client)  # the policy's @handles resolve through this workspace
    attach_channel_resolver(services, client)  # and `#channel-name` in commands

    @app.error
    def unhandled(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        # Listeners answer their own errors (bot.listeners.replies); this catches what escapes them.
        error_message(error)

    return app


def registered_commands() -> list[str]:
    return [commands.SLASH_COMMAND]


def registered_events() -> list[str]:
    return ["app_home_opened"]
