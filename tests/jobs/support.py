"""Shared pieces for the scheduler and digest tests: services on a controlled clock, seed data,
and a delivery drain against the strict fake Slack."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.config.settings import Settings
from bot.delivery.worker import DeliveryWorker
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.policy import Policy, default_policy
from bot.domain.registry import NewVersion
from bot.services import Services, open_services
from bot.slack.client import make_web_client
from storage.models import OutboxMessage
from tests.slack_fake import SlackFake

CHANNEL = "C0GENERAL"


class Clock:
    """The services' notion of now; `None` means the (possibly time-machine travelled) wall clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now if self.now is not None else datetime.now(UTC)

    def set(self, moment: datetime | None) -> None:
        with self._lock:
            self.now = moment


def make_services(url: str, clock: Callable[[], datetime], policy: Policy | None = None) -> Services:
    return open_services(Settings(database_url=url, db_lock_timeout_s=10.0), policy=policy or default_policy(),
                         clock=clock)


def policy_with_sources(*names: str) -> Policy:
    """The default policy plus prometheus sources measuring churn (never pulled in these tests)."""
    sources = [{"name": name, "type": "prometheus", "interval": "1m", "url": "http://127.0.0.1:9",
                "models": ["churn"], "queries": {"auc": 'auc{model="{model}"}'}} for name in names]
    return replace(default_policy(), sections={"sources": sources})


def seed_churn(services: Services, clock: Clock, *, start: datetime, end: datetime, step: timedelta,
               promote_v2_at: datetime | None = None) -> None:
    """churn v1 serving production, v2 promoted at `promote_v2_at`, hourly auc/latency samples."""
    registry = services.registry
    clock.set(start - timedelta(hours=1))
    for v in (1, 2):
        registry.register(NewVersion(model="churn", artifact_uri=f"s3://models/churn/{v}", actor="ci"))
    registry.promote("churn", "1", "production", actor="ci")
    if promote_v2_at is not None:
        clock.set(promote_v2_at)
        registry.promote("churn", "2", "production", actor="ci")
    batch = []
    at, i = start, 0
    while at < end:
        version = 2 if promote_v2_at is not None and at >= promote_v2_at else 1
        batch.append(SampleIn("churn", "production", "auc", 0.85 + 0.01 * (i % 4), at, version))
        batch.append(SampleIn("churn", "production", "latency_p95_ms", 120.0 + i, at, version))
        batch.append(SampleIn("churn", "production", "up", 1.0, at, version))  # health probes
        batch.append(SampleIn("churn", "production", "psi:age", 0.05, at, version))  # drift of one feature
        at, i = at + step, i + 1
    Samples(registry).record(batch, source="test")
    clock.set(None)


def deliver_all(services: Services, slack: SlackFake, clock: Callable[[], datetime], rounds: int = 20) -> int:
    """Run delivery rounds until nothing is due (no sleeping: retries would need the clock moved)."""
    worker = DeliveryWorker(services.db, make_web_client(slack.bot_token, slack.api_url, retries=0, timeout=5),
                            clock=clock, post_interval_s=0)
    sent = 0
    try:
        for _ in range(rounds):
            attempted = worker.run_once()
            sent += attempted
            if attempted == 0:
                break
    finally:
        worker.close()
    return sent


def outbox_rows(services: Services) -> list[OutboxMessage]:
    from sqlmodel import col, select

    with services.db.read() as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())
