"""Durable delivery: the only path by which state changes reach Slack and webhooks.

The domain writes outbox rows in the transaction of the change it reports; the worker here
sends them, at least once and in order per destination, with retries scheduled in the database
and a circuit breaker per remote endpoint.
`modelbot serve` runs a worker thread beside the app (`start_delivery`); `modelbot deliver`
runs one in the foreground; any number of either may run against one database.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from bot.config.settings import ConfigError
from bot.delivery.settings import DeliverySettings
from bot.delivery.webhooks import sign_webhook, verify_webhook
from bot.delivery.worker import DeliveryWorker

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["DeliverySettings", "DeliveryWorker", "build_worker", "sign_webhook", "start_delivery", "verify_webhook"]


def build_worker(services: Services, settings: DeliverySettings | None = None) -> DeliveryWorker:
    """A worker on the services' database, reaching Slack at MODELBOT_SLACK_API_URL with the bot token."""
    from bot.slack.client import make_web_client

    settings = settings or DeliverySettings.from_env(services.settings.outbox)
    token = services.settings.slack_bot_token
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set: outbox delivery needs the bot token (xoxb-…) to post to Slack.")
    # no retry handlers: the worker schedules retries itself, so a 429 or a hang never pins a thread
    client = make_web_client(token, services.settings.slack_api_url, retries=0, timeout=settings.http_timeout_s)
    from bot.domain.policy import no_groups
    from bot.handlers.home import HomeRefresher
    from bot.slack.usergroups import attach_group_resolver

    if services.deployments.groups is no_groups:  # `modelbot deliver` runs without the Slack app
        attach_group_resolver(services, client)  # Home refreshes go to the members of approver groups
    from bot.delivery.mlflow_aliases import KIND, build_sender

    mlflow = build_sender(services)  # MLflow aliases: a destination of their own
    return DeliveryWorker.from_settings(services.db, client, settings, clock=services.clock,
                                        home=HomeRefresher(services), announce_channel=services.policy.announce_channel,
                                        webhooks=[hook.url for hook in services.policy.webhooks],
                                        senders={KIND: mlflow.send} if mlflow is not None else None)


def start_delivery(services: Services, stop_event: threading.Event,
                   settings: DeliverySettings | None = None) -> threading.Thread:
    """Run a worker in a daemon thread until `stop_event` is set; returns the started thread.

    Settings errors (a missing token, a bad MODELBOT_OUTBOX_* value) raise here, before the
    thread starts, so `modelbot serve` fails at start-up rather than delivering nothing.
    """
    worker = build_worker(services, settings)

    def run() -> None:
        try:
            worker.run_forever(stop_event)
        finally:
            worker.close()

    thread = threading.Thread(target=run, name="modelbot-delivery", daemon=True)
    thread.start()
    return thread
