"""Wiring shared by every front end: open the database (upgrading it) and build the services."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config.settings import ConfigError, Settings
from bot.domain.channels import ChannelResolver, no_channel_names
from bot.domain.policy import GroupResolver, Policy, no_groups
from bot.domain.registry import Registry, utc_now
from storage.db import Database, DatabaseUrlError

if TYPE_CHECKING:
    from bot.domain.deployments import Deployments
    from bot.domain.monitoring.digest import FeedingSource
    from bot.domain.monitoring.status import StatusQuery
    from storage.serving_feed import ServingFeed


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    policy: Policy
    clock: Callable[[], datetime] = field(default=utc_now)
    groups: GroupResolver = field(default=no_groups)
    # `#name` → channel id through Slack (bot/slack/channels.py) when a bot token is configured
    channels: ChannelResolver = field(default=no_channel_names)
    _deployments: Deployments | None = field(default=None, init=False, repr=False, compare=False)
    _serving_feed: ServingFeed | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def deployments(self) -> Deployments:
        """Built on first use: a read-only command (`modelbot show`) never imports the
        promotion/approval machinery. Built once; every caller gets the same instance."""
        if self._deployments is None:
            with self._lock:
                if self._deployments is None:
                    from bot.domain.deployments import Deployments

                    self._deployments = Deployments(self.registry, self.policy, groups=self.groups, clock=self.clock)
        return self._deployments

    def status_query(self, model: str | None, window: timedelta | None = None) -> StatusQuery:
        """What `/model status`, `modelbot status` and digests ask the monitoring domain: the sources
        feeding `model` (from the policy file), metric directions, what fires, and the clock.

        Lives here, below every front end, so `modelbot status` reaches it without importing the
        Slack handlers; the source parser (and its HTTP client) is imported only when sources exist."""
        from bot.domain.alerting.reads import firing_provider
        from bot.domain.monitoring import status

        refs: list[status.SourceRef] = []
        if model and self.policy.sections.get("sources"):
            from bot.config.sources import environments_of, sources_for_model

            refs = [status.SourceRef(s.name, s.type, environments_of(s)) for s in sources_for_model(self.policy, model)]
        return status.StatusQuery(now=self.clock(), window=window or status.DEFAULT_WINDOW, sources=refs,
                                  directions=dict(self.policy.metric_directions),  # type: ignore[arg-type]
                                  firing=firing_provider(self.registry, self.clock))

    def feeding_sources(self) -> list[FeedingSource]:
        """The configured metric sources as digests need them: a health reference plus the models they
        measure, so a digest can say which of its sources went quiet."""
        from bot.domain.monitoring import status
        from bot.domain.monitoring.digest import FeedingSource

        if not self.policy.sections.get("sources"):
            return []
        from bot.config.sources import configured_sources, environments_of

        out = []
        for source in configured_sources(self.policy):
            models = getattr(source, "models", None) or (getattr(source, "model", None),)
            out.append(FeedingSource(status.SourceRef(source.name, source.type, environments_of(source)),
                                     tuple(m.lower() for m in models if m)))
        return out

    @property
    def serving_feed(self) -> ServingFeed:
        """Built on first use (the REST API's serving-state reads): one per process, so one
        LISTEN connection or one poll, however many servers share these services."""
        if self._serving_feed is None:
            with self._lock:
                if self._serving_feed is None:
                    from storage.serving_feed import ServingFeed

                    self._serving_feed = ServingFeed(self.db)
        return self._serving_feed

    def close(self) -> None:
        if self._serving_feed is not None:
            self._serving_feed.close()
        self.db.dispose()


def open_services(
    settings: Settings,
    *,
    upgrade: bool = True,
    policy: Policy | None = None,
    groups: GroupResolver = no_groups,
    clock: Callable[[], datetime] = utc_now,
) -> Services:
    """Policy errors surface before the database is touched (ConfigError with file:line); a
    database URL that cannot work is a ConfigError too (one line, exit 2 from the CLI)."""
    if policy is None:
        from bot.config.policy_file import load_policy

        policy = load_policy(settings.config_path, required=settings.config_required)
    try:
        db = Database(settings.database)
    except DatabaseUrlError as exc:
        raise ConfigError(str(exc)) from None
    if upgrade:
        db.upgrade()
    registry = Registry(db, environments=policy.environment_names, clock=clock)
    return Services(settings=settings, db=db, registry=registry, policy=policy, clock=clock, groups=groups)
